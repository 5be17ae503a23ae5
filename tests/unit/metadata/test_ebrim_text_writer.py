"""The ebRIM writer's text path: values that XML treats specially survive exactly, derived ids
are the UUID v5 values, and what lxml refuses is refused."""

from __future__ import annotations

import uuid

import pytest
from lxml import etree

from gateway.metadata import _ebrim_common as c
from gateway.metadata.datatypes import Code
from gateway.metadata.ebrim import (
    build_registry_object_list,
    build_registry_objects,
    parse_registry_object_list,
)
from gateway.soap import ns
from tests.factories import make_author, make_document_entry, make_folder, make_submission_set

RIM = f"{{{ns.RIM}}}"
AWKWARD = "a\tb\nc\r\nd & <e> \"f\" 'g' ]]> é 𝄞"


@pytest.mark.parametrize(
    ("owner", "kind", "index"),
    [
        ("urn:uuid:5a3c0dff-b5a6-4d4b-9a8c-0a4c1b1d6c01", "Classification", 0),
        ("urn:uuid:5a3c0dff-b5a6-4d4b-9a8c-0a4c1b1d6c01", "ExternalIdentifier", 1),
        ("Document01", "Label", 0),
        ("ünïcode-id", "Classification", 17),
    ],
)
def test_child_ids_are_uuid5_of_owner_kind_and_index(owner: str, kind: str, index: int) -> None:
    namespace = uuid.UUID("0f5a0d3e-0c5b-5f4e-9c3e-5d1a8f2b7c61")
    expected = f"urn:uuid:{uuid.uuid5(namespace, f'{owner}|{kind}|{index}')}"
    assert c.child_id(owner, kind, index) == expected
    assert c.ChildIds(owner).child(kind, index) == expected


def test_awkward_values_survive_serialisation_exactly() -> None:
    entry = make_document_entry(
        entry_uuid="urn:uuid:5a3c0dff-b5a6-4d4b-9a8c-0a4c1b1d6c01",
        title=AWKWARD,
        comments="line1\r\nline2\rline3",
        class_code=Code("A&B", "1.2.3", AWKWARD),
        author=[make_author(person=AWKWARD)],
        extra_slots={"urn:x:awkward": [AWKWARD, "", "  "]},
    )
    wire = etree.tostring(build_registry_object_list([entry]))
    [parsed] = parse_registry_object_list(etree.fromstring(wire))
    assert parsed == entry


def test_an_empty_value_is_written_as_an_empty_element_not_an_absent_text() -> None:
    entry = make_document_entry(extra_slots={"urn:x:empty": [""]})
    [element] = build_registry_objects([entry])
    [value] = element.findall(f"{RIM}Slot[@name='urn:x:empty']/{RIM}ValueList/{RIM}Value")
    assert value.text == ""
    assert b"<rim:Value></rim:Value>" in etree.tostring(element)


@pytest.mark.parametrize("bad", ["\x00", "\x0b", "a\x1fb"])
def test_a_control_character_is_refused_as_by_lxml(bad: str) -> None:
    with pytest.raises(ValueError, match="XML compatible"):
        build_registry_object_list([make_document_entry(title=bad)])


def test_each_standalone_element_declares_the_rim_namespace() -> None:
    elements = build_registry_objects([make_submission_set(), make_folder()])
    assert len(elements) == 4  # two packages, each with its label
    for element in elements:
        assert element.getparent() is None
        assert etree.tostring(element).startswith(
            f'<rim:{etree.QName(element).localname} xmlns:rim="{ns.RIM}"'.encode()
        )


def test_the_list_declares_the_namespace_once() -> None:
    wire = etree.tostring(build_registry_object_list([make_document_entry(), make_folder()]))
    assert wire.count(b"xmlns:rim=") == 1
