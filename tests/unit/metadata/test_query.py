"""The ITI-18 bodies (``gateway.metadata.query``): both ends, round trips and the schemas.

Standard: ITI TF-2 §3.18.4.1.2 (request), §3.18.4.1.3 (response), §3.18.5.1 (audit facts),
rev. 19.0; ebRS 3.0 query.xsd. Schema checks are skipped without ``../shared/conformance``.
"""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from lxml import etree

from gateway.errors import XDSError
from gateway.metadata import vocabulary as v
from gateway.metadata.ebrim import build_registry_object_list
from gateway.metadata.model import DocumentEntry, ObjectRef
from gateway.metadata.query import (
    AdhocQuery,
    QuerySlot,
    build_query_request,
    build_query_response,
    parse_query_request,
    parse_query_response,
    query_audit_facts,
)
from gateway.metadata.query_values import quote, quote_list
from gateway.metadata.retrieve import ResponseFormatError
from gateway.soap import ns
from tests.factories import make_document_entry, make_submission_set

SPEC = Path(__file__).resolve().parents[4] / "shared" / "conformance" / "spec"
QUERY_XSD = SPEC / "iti/schema/ebRS/query.xsd"
needs_schema = pytest.mark.skipif(not QUERY_XSD.is_file(), reason=f"{QUERY_XSD} not found")

FIND_DOCUMENTS = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"
PID = "'PAT-1^^^&1.2.3&ISO'"


def validate(element: etree._Element) -> None:
    etree.XMLSchema(etree.parse(str(QUERY_XSD))).assertValid(etree.ElementTree(element))


def request_xml(
    query_id: str, slots: str, *, return_type: str = "LeafClass", home: str = ""
) -> bytes:
    home_attr = f' home="{home}"' if home else ""
    return (
        f'<query:AdhocQueryRequest xmlns:query="{ns.QUERY}" xmlns:rim="{ns.RIM}">'
        f'<query:ResponseOption returnComposedObjects="true" returnType="{return_type}"/>'
        f'<rim:AdhocQuery id="{query_id}"{home_attr}>{slots}</rim:AdhocQuery>'
        "</query:AdhocQueryRequest>"
    ).encode()


def slot(name: str, *values: str) -> str:
    inner = "".join(f"<rim:Value>{escape(value)}</rim:Value>" for value in values)
    return f'<rim:Slot name="{name}"><rim:ValueList>{inner}</rim:ValueList></rim:Slot>'


# -- request ------------------------------------------------------------------------------------


@needs_schema
def test_request_is_schema_valid_and_carries_slots() -> None:
    query = AdhocQuery(query_id=FIND_DOCUMENTS, return_type="ObjectRef", home="urn:oid:1.2.3")
    body = build_query_request(query.add("$XDSDocumentEntryPatientId", PID))
    validate(body)
    option = body.find(ns.qname(ns.QUERY, "ResponseOption"))
    assert option is not None
    assert option.get("returnType") == "ObjectRef"
    assert option.get("returnComposedObjects") == "true"
    adhoc = body.find(ns.qname(ns.RIM, "AdhocQuery"))
    assert adhoc is not None and adhoc.get("home") == "urn:oid:1.2.3"
    values = adhoc.findall(f"{{{ns.RIM}}}Slot/{{{ns.RIM}}}ValueList/{{{ns.RIM}}}Value")
    assert [value.text for value in values] == [PID]


def test_request_refuses_a_return_type_iti18_does_not_allow() -> None:
    with pytest.raises(ValueError, match="LeafClass or ObjectRef"):
        build_query_request(AdhocQuery(query_id=FIND_DOCUMENTS, return_type="Everything"))


def test_request_round_trip_keeps_order_repeats_and_quotes() -> None:
    query = AdhocQuery(query_id=FIND_DOCUMENTS, home="urn:oid:1.2")
    query.add("$XDSDocumentEntryPatientId", quote("O'Hara^^^&1.2&ISO"))
    query.add("$XDSDocumentEntryEventCodeList", quote_list(["a^^s", "b^^s"]))
    query.add("$XDSDocumentEntryEventCodeList", quote_list(["c^^s"]))
    query.add("$XDSDocumentEntryStatus", quote_list([v.STATUS_APPROVED]), "('x')")
    parsed = parse_query_request(etree.fromstring(etree.tostring(build_query_request(query))))
    assert parsed == query
    assert parsed.slots[0] == QuerySlot("$XDSDocumentEntryPatientId", ("'O''Hara^^^&1.2&ISO'",))


def test_parse_request_reads_id_return_type_home_and_slots() -> None:
    xml = request_xml(
        f"  {FIND_DOCUMENTS}  ",
        slot("$XDSDocumentEntryPatientId", PID)
        + slot("$XDSDocumentEntryEventCodeList", "('a^^s')", "('b^^s')")
        + '<rim:Slot name="$Empty"/>',
        return_type="ObjectRef",
        home="urn:oid:1.2.3",
    )
    query = parse_query_request(etree.fromstring(xml))
    assert query.query_id == FIND_DOCUMENTS  # blanks around an anyURI do not count
    assert query.return_type == "ObjectRef"
    assert query.home == "urn:oid:1.2.3"
    assert query.slots == [
        ("$XDSDocumentEntryPatientId", (PID,)),
        ("$XDSDocumentEntryEventCodeList", ("('a^^s')", "('b^^s')")),
        ("$Empty", ()),
    ]


@pytest.mark.parametrize("return_type", ["RegistryObject", "LeafClassWithRepositoryItem", "Leaf"])
def test_parse_request_refuses_other_return_types(return_type: str) -> None:
    xml = request_xml(FIND_DOCUMENTS, "", return_type=return_type)
    with pytest.raises(XDSError) as raised:
        parse_query_request(etree.fromstring(xml))
    assert [e.code for e in raised.value] == ["XDSRegistryError"]


def test_parse_request_needs_the_request_and_its_query() -> None:
    wrong = etree.fromstring(f'<rs:X xmlns:rs="{ns.RS}"/>'.encode())
    with pytest.raises(XDSError):
        parse_query_request(wrong)
    xml = request_xml(FIND_DOCUMENTS, "").replace(b"rim:AdhocQuery", b"rim:Other")
    with pytest.raises(XDSError) as raised:
        parse_query_request(etree.fromstring(xml))
    assert [e.code for e in raised.value] == ["XDSRegistryError"]


def test_audit_facts_of_a_request() -> None:
    query = AdhocQuery(query_id=FIND_DOCUMENTS, home="urn:oid:7.7")
    query.add("$XDSDocumentEntryPatientId", PID).add("$XDSFolderPatientId", PID)
    body = build_query_request(query)
    facts = query_audit_facts(body)
    assert facts["query_id"] == FIND_DOCUMENTS
    assert facts["patient_ids"] == ["PAT-1^^^&1.2.3&ISO"]
    assert facts["home_community_ids"] == ["urn:oid:7.7"]
    assert etree.fromstring(facts["query_request"]).tag == ns.qname(ns.QUERY, "AdhocQueryRequest")
    # A body the registry refuses is audited too: no AdhocQuery, no facts but the request.
    empty = query_audit_facts(etree.fromstring(request_xml(FIND_DOCUMENTS, "").replace(
        b"rim:AdhocQuery", b"rim:Other")))  # fmt: skip
    assert empty["query_id"] is None and empty["patient_ids"] == []


# -- response -----------------------------------------------------------------------------------


@needs_schema
def test_success_with_leaf_class_objects_round_trips() -> None:
    entry = make_document_entry(
        entry_uuid="urn:uuid:11111111-1111-4111-8111-111111111111",
        availability_status=v.STATUS_APPROVED,
    )
    package = make_submission_set(
        entry_uuid="urn:uuid:22222222-2222-4222-8222-222222222222",
        availability_status=v.STATUS_APPROVED,
    )
    element = build_query_response([package, entry])
    validate(element)
    object_list = element.find(ns.qname(ns.RIM, "RegistryObjectList"))
    assert object_list is not None
    tags = [etree.QName(child).localname for child in object_list]
    assert tags == ["RegistryPackage", "Classification", "ExtrinsicObject"]
    read = parse_query_response(etree.fromstring(etree.tostring(element)))
    assert read.status == "Success" and read.errors == []
    assert [type(obj).__name__ for obj in read.objects] == ["SubmissionSet", "DocumentEntry"]
    [found] = [obj for obj in read.objects if isinstance(obj, DocumentEntry)]
    assert found.unique_id == entry.unique_id and found.patient_id == entry.patient_id


@needs_schema
def test_success_with_object_refs_and_empty() -> None:
    refs = [
        ObjectRef(
            entry_uuid="urn:uuid:11111111-1111-4111-8111-111111111111",
            home_community_id="urn:oid:1.2",
        )
    ]
    element = build_query_response(refs)
    validate(element)
    object_list = element.find(ns.qname(ns.RIM, "RegistryObjectList"))
    assert object_list is not None
    (ref,) = object_list
    assert ref.tag == ns.qname(ns.RIM, "ObjectRef") and ref.get("home") == "urn:oid:1.2"
    assert parse_query_response(element).objects == refs
    empty = build_query_response([])
    validate(empty)
    assert parse_query_response(empty).objects == []


def test_response_reads_partial_success_with_errors_in_either_form() -> None:
    entry = make_document_entry(availability_status=v.STATUS_APPROVED)
    root = etree.Element(
        ns.qname(ns.QUERY, "AdhocQueryResponse"),
        status="urn:ihe:iti:2007:ResponseStatusType:PartialSuccess",
    )
    errors = etree.SubElement(root, ns.qname(ns.RS, "RegistryErrorList"))
    etree.SubElement(
        errors,
        ns.qname(ns.RS, "RegistryError"),
        errorCode="XDSRegistryError",
        codeContext="one community down",
        severity="urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Warning",
        location="urn:oid:1.2",
    )
    # codeContext as element text (seen from some peers) is read too.
    as_text = etree.SubElement(errors, ns.qname(ns.RS, "RegistryError"), errorCode="XDSX")
    as_text.text = " said in the text "
    root.append(build_registry_object_list([entry]))
    result = parse_query_response(root)
    assert result.status == "PartialSuccess"
    assert result.errors[0].is_warning and not result.errors[1].is_warning
    assert str(result.errors[0]) == "XDSRegistryError: one community down [urn:oid:1.2]"
    assert result.errors[1].context == "said in the text"
    [found] = result.objects
    assert isinstance(found, DocumentEntry) and found.unique_id == entry.unique_id


def test_response_of_another_kind_is_refused() -> None:
    with pytest.raises(ResponseFormatError):
        parse_query_response(etree.Element("nothing"))
