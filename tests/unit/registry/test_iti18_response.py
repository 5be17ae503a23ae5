"""The AdhocQueryResponse bodies of ITI-18: Success with objects, Failure with errors.

Standard: ITI TF-2 §3.18.4.1.3 (rev. 19.0); ebRS 3.0 query.xsd (RegistryObjectList required),
ITI TF-3 §4.2.4 (RegistryError). Schema checks are skipped without ``../shared/conformance``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from gateway.errors import XDSErrorList, XDSStoredQueryMissingParam, XDSStoredQueryParamNumber
from gateway.metadata import vocabulary as v
from gateway.metadata.model import ObjectRef
from gateway.registry import iti18
from gateway.soap import ns
from tests.factories import make_document_entry, make_submission_set

QUERY_XSD = (
    Path(__file__).resolve().parents[3].parent / "shared/conformance/spec/iti/schema/ebRS/query.xsd"
)
needs_schema = pytest.mark.skipif(not QUERY_XSD.is_file(), reason=f"{QUERY_XSD} not found")


def validate(element: etree._Element) -> None:
    etree.XMLSchema(etree.parse(str(QUERY_XSD))).assertValid(etree.ElementTree(element))


def test_wire_constants_are_those_of_iti_18() -> None:
    assert iti18.ACTION == "urn:ihe:iti:2007:RegistryStoredQuery"
    assert iti18.RESPONSE_ACTION == "urn:ihe:iti:2007:RegistryStoredQueryResponse"
    assert ns.qname(ns.QUERY, "AdhocQueryRequest") == iti18.REQUEST_QNAME
    assert ns.qname(ns.QUERY, "AdhocQueryResponse") == iti18.RESPONSE_QNAME


@needs_schema
def test_success_with_leaf_class_objects() -> None:
    entry = make_document_entry(
        entry_uuid="urn:uuid:11111111-1111-4111-8111-111111111111",
        availability_status=v.STATUS_APPROVED,
    )
    package = make_submission_set(
        entry_uuid="urn:uuid:22222222-2222-4222-8222-222222222222",
        availability_status=v.STATUS_APPROVED,
    )
    element = iti18.response_element([package, entry])
    validate(element)
    assert element.get("status").endswith(":Success")
    object_list = element.find(ns.qname(ns.RIM, "RegistryObjectList"))
    assert object_list is not None
    tags = [etree.QName(child).localname for child in object_list]
    assert tags == ["RegistryPackage", "Classification", "ExtrinsicObject"]


@needs_schema
def test_success_with_object_refs_and_empty() -> None:
    refs = [
        ObjectRef(
            entry_uuid="urn:uuid:11111111-1111-4111-8111-111111111111",
            home_community_id="urn:oid:1.2",
        )
    ]
    element = iti18.response_element(refs)
    validate(element)
    (ref,) = element.find(ns.qname(ns.RIM, "RegistryObjectList"))
    assert ref.tag == ns.qname(ns.RIM, "ObjectRef") and ref.get("home") == "urn:oid:1.2"
    empty = iti18.response_element([])
    validate(empty)
    assert len(empty.find(ns.qname(ns.RIM, "RegistryObjectList"))) == 0


@needs_schema
def test_failure_carries_every_error_and_an_empty_object_list() -> None:
    error = XDSErrorList(
        [XDSStoredQueryMissingParam("missing $X"), XDSStoredQueryParamNumber("two values for $Y")]
    )
    element = iti18.failure_element(error)
    validate(element)
    assert element.get("status").endswith(":Failure")
    codes = [e.get("errorCode") for e in element.iter(ns.qname(ns.RS, "RegistryError"))]
    assert codes == ["XDSStoredQueryMissingParam", "XDSStoredQueryParamNumber"]
    object_list = element.find(ns.qname(ns.RIM, "RegistryObjectList"))
    assert object_list is not None and len(object_list) == 0


def test_negative_limit_is_refused() -> None:
    with pytest.raises(ValueError):
        iti18.StoredQueries(None, max_leafclass_results=-1)  # type: ignore[arg-type]
