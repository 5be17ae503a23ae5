"""The RAD-69 bodies (gateway.imaging.rad69_codec): round trips, the NIST requests, malformed
requests, and schema validity against the official XDS-I.b / XDS.b schemas."""

from __future__ import annotations

import base64
import copy
from pathlib import Path

import pytest
from lxml import etree

from gateway.errors import XDSErrorList, XDSRepositoryError, XDSUnknownRepositoryId
from gateway.imaging import rad69_codec as codec
from gateway.soap.message import Attachment, cid_from_href
from gateway.soap.registry_response import PARTIAL_SUCCESS, SUCCESS
from gateway.soap.safexml import parse_bytes
from tests.unit.imaging.support import NIST_TESTS

SPEC = NIST_TESTS.parents[1] / "spec" / "iti" / "schema" / "IHE"
REQUEST = codec.ImagingRetrieveRequest(
    studies=(
        codec.StudyRequest(
            study_instance_uid="1.1",
            series=(
                codec.SeriesRequest(
                    series_instance_uid="1.1.1",
                    documents=(
                        codec.DocumentRequest(
                            repository_unique_id="9.9",
                            document_unique_id="1.1.1.1",
                            home_community_id="urn:oid:1.2.3",
                        ),
                        codec.DocumentRequest(
                            repository_unique_id="9.9", document_unique_id="1.1.1.2"
                        ),
                    ),
                ),
            ),
        ),
    ),
    transfer_syntaxes=("1.2.840.10008.1.2.1", "1.2.840.10008.1.2"),
)


def schema(name: str) -> etree.XMLSchema:
    path = SPEC / name
    if not path.is_file():
        pytest.skip(f"official schemas not found at {SPEC}")
    return etree.XMLSchema(etree.parse(str(path)))


def xop_infoset(element: etree._Element, parts: dict[str, Attachment]) -> etree._Element:
    """The XOP infoset (XOP 1.0 §3.2): each xop:Include replaced by the base64 of its part."""
    infoset = copy.deepcopy(element)
    for include in list(infoset.iter("{http://www.w3.org/2004/08/xop/include}Include")):
        holder = include.getparent()
        holder.remove(include)
        holder.text = base64.b64encode(
            parts[cid_from_href(include.get("href"))].read_bytes()
        ).decode()
    return infoset


def test_request_round_trip_and_schema_validity() -> None:
    element = codec.build_request(REQUEST)
    schema("XDSI.b_ImagingDocumentSource.xsd").assertValid(element)
    assert codec.parse_request(element) == REQUEST
    assert [d.document_unique_id for _, _, d in codec.requested_documents(REQUEST)] == [
        "1.1.1.1",
        "1.1.1.2",
    ]


def test_response_round_trip_and_schema_validity() -> None:
    first = Attachment.from_bytes(b"DICM-1", content_type="application/dicom")
    second = Attachment.from_bytes(b"DICM-2", content_type="application/dicom")
    response = codec.RetrieveResponse(
        status=PARTIAL_SUCCESS,
        errors=[XDSUnknownRepositoryId("unknown", location="1.1.1.3")],
        documents=[
            codec.DocumentResponse(
                repository_unique_id="9.9",
                document_unique_id="1.1.1.1",
                attachment=first,
                home_community_id="urn:oid:1.2.3",
            ),
            codec.DocumentResponse(
                repository_unique_id="9.9", document_unique_id="1.1.1.2", attachment=second
            ),
        ],
    )
    element = codec.build_response(response)
    parts = {first.content_id: first, second.content_id: second}
    schema("XDS.b_DocumentRepository.xsd").assertValid(xop_infoset(element, parts))
    parsed = codec.parse_response(element, {first.content_id: first, second.content_id: second})
    assert parsed.status == PARTIAL_SUCCESS
    assert [(e.code, e.location) for e in parsed.errors] == [("XDSUnknownRepositoryId", "1.1.1.3")]
    assert [(d.document_unique_id, d.home_community_id, d.mime_type) for d in parsed.documents] == [
        ("1.1.1.1", "urn:oid:1.2.3", "application/dicom"),
        ("1.1.1.2", None, "application/dicom"),
    ]
    assert parsed.documents[1].attachment.read_bytes() == b"DICM-2"


def test_response_naming_a_missing_part_is_rejected() -> None:
    part = Attachment.from_bytes(b"x")
    element = codec.build_response(
        codec.RetrieveResponse(
            status=SUCCESS,
            documents=[
                codec.DocumentResponse(
                    repository_unique_id="9", document_unique_id="1", attachment=part
                )
            ],
        )
    )
    with pytest.raises(ValueError, match="part"):
        codec.parse_response(element, {})


def nist_requests() -> list[Path]:
    found = sorted(NIST_TESTS.glob("ids_2018-48*/**/rad69-request.xml"))
    if not found:
        pytest.skip(f"NIST testkit not found at {NIST_TESTS}")
    return found


EXPECTED_FAILURES = {
    "case-05_Empty_Study_Instance_UID": ["XDSIRequestError"],
    "case-06_Empty_Series_Instance_UID": ["XDSIRequestError"],
    "case-07_Empty_Study_and_Series_Instance_UIDs": ["XDSIRequestError", "XDSIRequestError"],
    "case-08_Empty_Transfer_Syntax_UID": ["XDSRepositoryError"],
}


def test_nist_requests_parse_or_fail_with_the_expected_codes() -> None:
    for path in nist_requests():
        element = parse_bytes(path.read_bytes())
        expected = EXPECTED_FAILURES.get(path.parent.name)
        if expected is None:
            parsed = codec.parse_request(element)
            assert parsed.studies and parsed.transfer_syntaxes, path
            continue
        with pytest.raises(XDSErrorList) as caught:
            codec.parse_request(element)
        assert [e.code for e in caught.value] == expected, path


def test_home_community_id_is_read() -> None:
    path = NIST_TESTS / "ids_2018-4820" / "case-01_With_HomeCommunityID" / "rad69-request.xml"
    if not path.is_file():
        pytest.skip("NIST testkit absent")
    parsed = codec.parse_request(parse_bytes(path.read_bytes()))
    [(_, _, document)] = codec.requested_documents(parsed)
    assert document.home_community_id == "urn:oid:1.3.6.1.4.1.21367.13.70.200"


@pytest.mark.parametrize(
    ("xml", "codes"),
    [
        (
            "<r:RetrieveImagingDocumentSetRequest {ns}><r:TransferSyntaxUIDList>"
            "<r:TransferSyntaxUID>1.2.840.10008.1.2.1</r:TransferSyntaxUID></r:TransferSyntaxUIDList>"
            "</r:RetrieveImagingDocumentSetRequest>",
            ["XDSIRequestError"],
        ),
        (
            "<r:RetrieveImagingDocumentSetRequest {ns}><r:StudyRequest studyInstanceUID='1'/>"
            "<r:TransferSyntaxUIDList><r:TransferSyntaxUID>1.2</r:TransferSyntaxUID>"
            "</r:TransferSyntaxUIDList></r:RetrieveImagingDocumentSetRequest>",
            ["XDSIRequestError"],
        ),
        (
            "<r:RetrieveImagingDocumentSetRequest {ns}><r:StudyRequest studyInstanceUID='1'>"
            "<r:SeriesRequest seriesInstanceUID='2'/></r:StudyRequest><r:TransferSyntaxUIDList>"
            "<r:TransferSyntaxUID>1.2</r:TransferSyntaxUID></r:TransferSyntaxUIDList>"
            "</r:RetrieveImagingDocumentSetRequest>",
            ["XDSIRequestError"],
        ),
        (
            "<r:RetrieveImagingDocumentSetRequest {ns}><r:StudyRequest studyInstanceUID='1'>"
            "<r:SeriesRequest seriesInstanceUID='2'><x:DocumentRequest><x:RepositoryUniqueId>9"
            "</x:RepositoryUniqueId></x:DocumentRequest></r:SeriesRequest></r:StudyRequest>"
            "<r:TransferSyntaxUIDList><r:TransferSyntaxUID>1.2</r:TransferSyntaxUID>"
            "</r:TransferSyntaxUIDList></r:RetrieveImagingDocumentSetRequest>",
            ["XDSIRequestError"],
        ),
        (
            "<r:RetrieveImagingDocumentSetRequest {ns}><r:StudyRequest studyInstanceUID='1'>"
            "<r:SeriesRequest seriesInstanceUID='2'><x:DocumentRequest><x:RepositoryUniqueId>9"
            "</x:RepositoryUniqueId><x:DocumentUniqueId>3</x:DocumentUniqueId></x:DocumentRequest>"
            "</r:SeriesRequest></r:StudyRequest></r:RetrieveImagingDocumentSetRequest>",
            ["XDSIRequestError"],
        ),
        (
            "<r:RetrieveImagingDocumentSetRequest {ns}><r:StudyRequest studyInstanceUID='1'>"
            "<r:SeriesRequest seriesInstanceUID='2'><x:DocumentRequest><x:RepositoryUniqueId>9"
            "</x:RepositoryUniqueId><x:DocumentUniqueId>3</x:DocumentUniqueId></x:DocumentRequest>"
            "</r:SeriesRequest></r:StudyRequest><r:TransferSyntaxUIDList>"
            "<r:TransferSyntaxUID> </r:TransferSyntaxUID></r:TransferSyntaxUIDList>"
            "</r:RetrieveImagingDocumentSetRequest>",
            ["XDSRepositoryError"],
        ),
    ],
    ids=[
        "no-study",
        "no-series",
        "no-document",
        "no-document-uid",
        "no-syntax-list",
        "blank-syntax",
    ],
)
def test_malformed_requests(xml: str, codes: list[str]) -> None:
    namespaces = 'xmlns:r="urn:ihe:rad:xdsi-b:2009" xmlns:x="urn:ihe:iti:xds-b:2007"'
    with pytest.raises(XDSErrorList) as caught:
        codec.parse_request(parse_bytes(xml.format(ns=namespaces).encode()))
    assert [e.code for e in caught.value] == codes


def test_wrong_body_element_is_a_request_error() -> None:
    with pytest.raises(Exception) as caught:
        codec.parse_request(etree.Element("{urn:ihe:iti:xds-b:2007}RetrieveDocumentSetRequest"))
    assert getattr(caught.value, "code", None) == "XDSIRequestError"


def test_repository_error_is_the_code_of_an_empty_list() -> None:
    assert XDSRepositoryError.code == "XDSRepositoryError"
