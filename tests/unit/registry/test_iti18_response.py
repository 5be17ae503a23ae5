"""The ITI-18 handler's wire constants and its Failure body (the Success body is the codec's,
``tests/unit/metadata/test_query.py``).

Standard: ITI TF-2 §3.18.4.1.3 (rev. 19.0); ebRS 3.0 query.xsd (RegistryObjectList required),
ITI TF-3 §4.2.4 (RegistryError). Schema checks are skipped without ``../shared/conformance``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from gateway.errors import XDSErrorList, XDSStoredQueryMissingParam, XDSStoredQueryParamNumber
from gateway.registry import iti18
from gateway.soap import ns

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
