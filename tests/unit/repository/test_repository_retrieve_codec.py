"""The RetrieveDocumentSet codec: round trips, element order, schema validity, samples."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from lxml import etree

from gateway.errors import XDSDocumentUniqueIdError
from gateway.repository.model import DocumentRequest
from gateway.repository.retrieve_codec import (
    build_request,
    build_response,
    parse_request,
    parse_response,
)
from gateway.soap import ns

SHARED = Path(__file__).resolve().parents[4] / "shared/conformance"
SCHEMA = SHARED / "spec/iti/schema/IHE/XDS.b_DocumentRepository.xsd"
SAMPLES = SHARED / "samples/ihe-xds.b"

REQUESTS = [
    DocumentRequest(repository_unique_id="1.2.3", document_unique_id="1.2.3.4"),
    DocumentRequest(
        repository_unique_id="1.2.3", document_unique_id="1.2.3.5", home_community_id="urn:oid:9"
    ),
]


def test_request_round_trip() -> None:
    assert parse_request(build_request(REQUESTS)) == REQUESTS


def test_request_element_order() -> None:
    element = build_request(REQUESTS[1:])
    [request] = element
    assert [etree.QName(child).localname for child in request] == [
        "HomeCommunityId",
        "RepositoryUniqueId",
        "DocumentUniqueId",
    ]


def test_response_round_trip_with_errors_and_echoed_home() -> None:
    error = XDSDocumentUniqueIdError("not here", location="1.2.3.4")
    body = build_response("PartialSuccess", [error], [(REQUESTS[1], "text/plain", "part@x")])
    parsed = parse_response(body)
    assert parsed.status == "PartialSuccess"
    assert [(e.code, e.severity, e.location) for e in parsed.errors] == [
        ("XDSDocumentUniqueIdError", "Error", "1.2.3.4")
    ]
    [document] = parsed.documents
    assert document.request == REQUESTS[1] and document.mime_type == "text/plain"
    include = document.document.find(ns.qname(ns.XOP, "Include"))
    assert include is not None and include.get("href") == "cid:part@x"
    status = body.find(ns.qname(ns.RS, "RegistryResponse")).get("status")
    assert status == "urn:ihe:iti:2007:ResponseStatusType:PartialSuccess"


def test_parse_response_refuses_other_elements() -> None:
    with pytest.raises(ValueError):
        parse_response(etree.Element("x"))


@pytest.mark.skipif(not SCHEMA.is_file(), reason=f"{SCHEMA} is absent")
def test_built_bodies_are_schema_valid() -> None:
    schema = etree.XMLSchema(etree.parse(str(SCHEMA)))
    schema.assertValid(build_request(REQUESTS))
    body = build_response("Success", [], [(REQUESTS[0], "application/pdf", "a@b")])
    # XOP 1.0 §3.2: the infoset to validate has the part's base64 where xop:Include was.
    for include in list(body.iter(ns.qname(ns.XOP, "Include"))):
        parent = include.getparent()
        parent.remove(include)
        parent.text = base64.b64encode(b"%PDF").decode()
    schema.assertValid(body)


@pytest.mark.skipif(not SAMPLES.is_dir(), reason=f"{SAMPLES} is absent")
def test_ihe_samples_parse() -> None:
    request = etree.parse(str(SAMPLES / "RetrieveDocumentSetRequest.xml")).getroot()
    assert [r.document_unique_id for r in parse_request(request)]
    response = etree.parse(str(SAMPLES / "RetrieveDocumentSetResponse.xml")).getroot()
    parsed = parse_response(response)
    assert parsed.status == "Success"
    assert [d.mime_type for d in parsed.documents] == ["text/xml", "text/xml"]
