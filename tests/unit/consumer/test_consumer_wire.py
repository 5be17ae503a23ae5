"""The consumer's bodies: requests valid against the official schemas, responses read."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from lxml import etree

from gateway.consumer import wire
from gateway.soap import ns
from gateway.soap.message import Attachment, xop_include

SPEC = Path(__file__).resolve().parents[4] / "shared" / "conformance" / "spec"


def assert_schema_valid(element: etree._Element) -> None:
    from tests.conformance.nist.schema import validate

    if not SPEC.is_dir():
        pytest.skip(f"official schemas not found at {SPEC}")
    validate(element, SPEC)


def ref(
    uid: str, study: str = "1.2.3", series: str = "1.2.3.1", loc: str = "9.9"
) -> wire.ImagingRef:
    return wire.ImagingRef(
        study_instance_uid=study,
        series_instance_uid=series,
        sop_instance_uid=uid,
        retrieve_location_uid=loc,
    )


def test_retrieve_request_is_schema_valid() -> None:
    body = wire.build_retrieve_request(
        [
            wire.DocumentRef(repository_unique_id="1.1", document_unique_id="2.2"),
            wire.DocumentRef(
                repository_unique_id="1.1", document_unique_id="2.3", home_community_id="urn:oid:3"
            ),
        ]
    )
    assert_schema_valid(body)
    requests = body.findall(ns.qname(ns.XDSB, "DocumentRequest"))
    assert [r.findtext(ns.qname(ns.XDSB, "DocumentUniqueId")) for r in requests] == ["2.2", "2.3"]
    assert requests[1][0].tag == ns.qname(ns.XDSB, "HomeCommunityId")  # first, per the schema
    with pytest.raises(ValueError):
        wire.build_retrieve_request([])


def test_imaging_request_groups_by_study_and_series_in_order() -> None:
    refs = [
        ref("1", series="s1"),
        ref("2", series="s2"),
        ref("3", series="s1"),
        ref("4", study="other", series="s9"),
    ]
    body = wire.build_imaging_request(refs, ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"])
    assert_schema_valid(body)
    rad = ns.IHERAD
    studies = body.findall(ns.qname(rad, "StudyRequest"))
    assert [s.get("studyInstanceUID") for s in studies] == ["1.2.3", "other"]
    series = studies[0].findall(ns.qname(rad, "SeriesRequest"))
    assert [s.get("seriesInstanceUID") for s in series] == ["s1", "s2"]
    docs = series[0].findall(ns.qname(ns.XDSB, "DocumentRequest"))
    assert [d.findtext(ns.qname(ns.XDSB, "DocumentUniqueId")) for d in docs] == ["1", "3"]
    assert docs[0].findtext(ns.qname(ns.XDSB, "RepositoryUniqueId")) == "9.9"
    syntaxes = body.findall(f"{{{rad}}}TransferSyntaxUIDList/{{{rad}}}TransferSyntaxUID")
    assert [s.text for s in syntaxes] == ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"]
    assert body[-1].tag == ns.qname(rad, "TransferSyntaxUIDList")
    with pytest.raises(ValueError):
        wire.build_imaging_request(refs, [])
    with pytest.raises(ValueError):
        wire.build_imaging_request([], ["1.2.840.10008.1.2.1"])


def _response(status: str, documents: list[etree._Element], errors: int = 0) -> etree._Element:
    root = etree.Element(ns.qname(ns.XDSB, "RetrieveDocumentSetResponse"))
    registry = etree.SubElement(root, ns.qname(ns.RS, "RegistryResponse"), status=status)
    if errors:
        error_list = etree.SubElement(registry, ns.qname(ns.RS, "RegistryErrorList"))
        etree.SubElement(
            error_list,
            ns.qname(ns.RS, "RegistryError"),
            errorCode="XDSDocumentUniqueIdError",
            codeContext="no such instance",
            location="1.9",
            severity="urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error",
        )
    root.extend(documents)
    return root


def _document(uid: str, content: etree._Element | str) -> etree._Element:
    item = etree.Element(ns.qname(ns.XDSB, "DocumentResponse"))
    etree.SubElement(item, ns.qname(ns.XDSB, "RepositoryUniqueId")).text = "9.9"
    etree.SubElement(item, ns.qname(ns.XDSB, "DocumentUniqueId")).text = uid
    etree.SubElement(item, ns.qname(ns.XDSB, "mimeType")).text = "application/dicom"
    document = etree.SubElement(item, ns.qname(ns.XDSB, "Document"))
    if isinstance(content, str):
        document.text = content
    else:
        document.append(content)
    return item


def test_retrieve_response_reads_mtom_parts_inline_base64_and_errors() -> None:
    part = Attachment.from_bytes(b"DICM-bytes")
    body = _response(
        "urn:ihe:iti:2007:ResponseStatusType:PartialSuccess",
        [
            _document("1.1", xop_include(part.content_id)),
            _document("1.2", base64.b64encode(b"\r\ninline\n").decode()),
        ],
        errors=1,
    )
    result = wire.parse_retrieve_response(body, {part.content_id: part})
    assert result.status == "PartialSuccess"
    assert [d.document_unique_id for d in result.documents] == ["1.1", "1.2"]
    assert result.documents[0].attachment is part
    assert result.documents[1].attachment.read_bytes() == b"\r\ninline\n"
    [error] = result.errors
    assert (error.code, error.location, error.is_warning) == (
        "XDSDocumentUniqueIdError",
        "1.9",
        False,
    )
    assert str(error) == "XDSDocumentUniqueIdError: no such instance [1.9]"


@pytest.mark.parametrize(
    "body",
    [
        etree.Element(ns.qname(ns.XDSB, "Other")),
        etree.Element(ns.qname(ns.XDSB, "RetrieveDocumentSetResponse")),
        _response("Success", [_document("1.1", xop_include("missing@x"))]),
        _response("Success", [_document("1.1", "!!not base64!!")]),
    ],
    ids=["wrong-body", "no-registry-response", "unknown-part", "bad-base64"],
)
def test_retrieve_response_refuses_malformed_bodies(body: etree._Element) -> None:
    with pytest.raises(wire.ResponseFormatError):
        wire.parse_retrieve_response(body, {})
