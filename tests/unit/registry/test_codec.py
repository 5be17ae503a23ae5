"""The registry's body codec: model <-> JSON round trips, column overrides, DTM normalisation."""

from __future__ import annotations

import json

import pytest

from gateway.metadata import vocabulary as v
from gateway.metadata.datatypes import Code, DataTypeError
from gateway.metadata.model import Association, Author, ObjectRef
from gateway.registry.codec import KINDS, from_json, from_row, kind_of, normalise_dtm, to_json
from tests.factories import (
    make_document_entry,
    make_folder,
    make_has_member,
    make_submission,
    make_submission_set,
)


def _rich_entry():
    return make_document_entry(
        entry_uuid="urn:uuid:0b7d5f0e-4c0e-4c55-9b3a-6e7c1d1f2a01",
        logical_id="urn:uuid:0b7d5f0e-4c0e-4c55-9b3a-6e7c1d1f2a01",
        version="1",
        availability_status=v.STATUS_APPROVED,
        home_community_id="urn:oid:1.2.3",
        title="Ä title",
        title_lang="de-CH",
        title_charset="UTF-8",
        comments_lang="en",
        class_code=Code("IMAGES", "1.3.6.1.4.1.19376.1.2.6.1", "Images", "en", "UTF-8"),
        author=[
            Author(person="^A^B", institution=["X"], extra_slots={"urn:x:a": ["1", "2"]}),
            Author(role=["only role"]),
        ],
        object_type=v.DOCUMENT_ENTRY_ON_DEMAND,
        uri="http://example.org/doc",
        document_availability=v.DOCUMENT_AVAILABILITY_ONLINE,
        limited_metadata=True,
        extra_slots={"urn:nist:extraDESlot": ["a", "b"], "urn:z:first": ["z"]},
    )


@pytest.mark.parametrize(
    "obj",
    [
        _rich_entry(),
        make_document_entry(),
        make_document_entry(object_type=None, class_code=None, author=[]),
        make_submission_set(extra_slots={"urn:nist:extraSSSlot": ["x"]}),
        make_folder(last_update_time="20240102030405"),
        make_has_member("A", "B", extra_slots={"urn:nist:extraAssocSlot": ["y"]}),
        Association(
            entry_uuid="R",
            association_type=v.RPLC,
            source_object="A",
            target_object="B",
            association_documentation=[Code("c", "s", "d")],
            previous_version="2",
        ),
        ObjectRef(entry_uuid="urn:uuid:1", home_community_id="urn:oid:1.2"),
    ],
    ids=lambda o: type(o).__name__,
)
def test_round_trip_is_exact(obj: object) -> None:
    text = to_json(obj)  # type: ignore[arg-type]
    assert from_json(kind_of(obj), text) == obj  # type: ignore[arg-type]


def test_every_submission_object_round_trips() -> None:
    for obj in make_submission(entries=2, folder=True).objects():
        assert from_json(kind_of(obj), to_json(obj)) == obj


def test_defaults_are_left_out_and_terms_are_plain_strings() -> None:
    data = json.loads(to_json(make_has_member("A", "B", submission_set_status=None)))
    assert data == {
        "entry_uuid": "HasMember-A-B",
        "association_type": "urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember",
        "source_object": "A",
        "target_object": "B",
    }
    # a None that differs from a non-None default is kept, so it reads back as None
    entry = make_document_entry(object_type=None)
    assert json.loads(to_json(entry))["object_type"] is None
    assert from_json("DocumentEntry", to_json(entry)).object_type is None  # type: ignore[union-attr]


def test_extra_slot_order_is_kept() -> None:
    entry = make_document_entry(extra_slots={"z": ["1"], "a": ["2"], "m": ["3"]})
    restored = from_json("DocumentEntry", to_json(entry))
    assert list(restored.extra_slots) == ["z", "a", "m"]


def test_unknown_keys_are_ignored_and_unknown_kinds_refused() -> None:
    text = json.dumps({"entry_uuid": "X", "a_future_field": 1})
    assert from_json("ObjectRef", text) == ObjectRef(entry_uuid="X")
    with pytest.raises(KeyError):
        from_json("Document", text)
    with pytest.raises(ValueError):
        from_json("ObjectRef", "[1, 2]")
    with pytest.raises(TypeError):
        to_json("not a model")  # type: ignore[arg-type]


def test_kinds_name_every_model_class() -> None:
    assert set(KINDS) == {"DocumentEntry", "SubmissionSet", "Folder", "Association", "ObjectRef"}


def test_from_row_applies_status_and_last_update_time_columns() -> None:
    folder = make_folder(availability_status=v.STATUS_APPROVED, last_update_time="20200101")
    row = {
        "body": to_json(folder),
        "status": v.STATUS_DEPRECATED,
        "last_update_time": "20240601120000",
    }
    restored = from_row("Folder", row)
    assert restored.availability_status == v.STATUS_DEPRECATED  # type: ignore[union-attr]
    assert restored.last_update_time == "20240601120000"  # type: ignore[union-attr]
    entry = make_document_entry(availability_status=v.STATUS_APPROVED)
    restored = from_row("DocumentEntry", {"body": to_json(entry), "status": v.STATUS_DEPRECATED})
    assert restored.availability_status == v.STATUS_DEPRECATED  # type: ignore[union-attr]
    # without the columns the body's values stay
    assert from_row("DocumentEntry", {"body": to_json(entry)}) == entry


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2004", "20040101000000"),
        ("200412", "20041201000000"),
        ("20041224", "20041224000000"),
        ("2004122413", "20041224130000"),
        ("200412241359", "20041224135900"),
        ("20041224135959", "20041224135959"),
        (" 20041224 ", "20041224000000"),
    ],
)
def test_normalise_dtm_pads_with_lowest_values(value: str, expected: str) -> None:
    assert normalise_dtm(value) == expected


def test_normalised_times_sort_like_times() -> None:
    values = ["2005", "20041231235959", "200412", "20041224"]
    ordered = sorted(values, key=normalise_dtm)
    assert ordered == ["200412", "20041224", "20041231235959", "2005"]


@pytest.mark.parametrize("value", ["", "04", "20041", "2004-12-24", "20041301", "200412241360x"])
def test_normalise_dtm_refuses_non_dtm(value: str) -> None:
    with pytest.raises(DataTypeError):
        normalise_dtm(value)
