"""The RetrieveDocumentSet codec (gateway.metadata.retrieve): round trips of every body, the
lenient reading of status, severity, codeContext and inline documents, malformed bodies, the IHE
and NIST samples, and schema validity of what is written against the official XSDs."""

from __future__ import annotations

import base64
import copy
from collections.abc import Mapping
from pathlib import Path

import pytest
from lxml import etree

from gateway.errors import (
    SEVERITY_ERROR,
    SEVERITY_WARNING,
    XDSDocumentUniqueIdError,
    XDSErrorList,
    XDSExtraMetadataNotSaved,
    XDSRepositoryError,
    XDSUnknownRepositoryId,
)
from gateway.metadata import retrieve as codec
from gateway.metadata.retrieve import (
    DocumentRequest,
    DocumentResponse,
    ImagingDocumentRequest,
    RegistryError,
    ResponseFormatError,
    RetrieveDocumentSetResponse,
    RetrieveImagingDocumentSetRequest,
    SeriesRequest,
    Status,
    StudyRequest,
)
from gateway.soap import ns
from gateway.soap.message import Attachment, cid_from_href
from gateway.soap.safexml import parse_bytes
from gateway.soap.transactions import ITI_18, ITI_41, ITI_42, ITI_43, RAD_69

CONFORMANCE = Path(__file__).resolve().parents[4] / "shared" / "conformance"
SPEC = CONFORMANCE / "spec"
SAMPLES = CONFORMANCE / "samples"
NIST_TESTS = CONFORMANCE / "nist-testkit" / "tests"
needs_conformance = pytest.mark.skipif(
    not SPEC.is_dir(), reason="../shared/conformance (official schemas and samples) is absent"
)
SHORT = {
    "Success": Status.SUCCESS,
    "PartialSuccess": Status.PARTIAL_SUCCESS,
    "Failure": Status.FAILURE,
}
HOME = "urn:oid:1.2.3"
REQUESTS = [
    DocumentRequest(repository_unique_id="1.2.3", document_unique_id="1.2.3.4"),
    DocumentRequest(
        repository_unique_id="1.2.3", document_unique_id="1.2.3.5", home_community_id=HOME
    ),
]
IMAGING = RetrieveImagingDocumentSetRequest(
    studies=(
        StudyRequest(
            study_instance_uid="1.1",
            series=(
                SeriesRequest(
                    series_instance_uid="1.1.1",
                    documents=(
                        DocumentRequest(
                            repository_unique_id="9.9",
                            document_unique_id="1.1.1.1",
                            home_community_id=HOME,
                        ),
                        DocumentRequest(repository_unique_id="9.9", document_unique_id="1.1.1.2"),
                    ),
                ),
            ),
        ),
    ),
    transfer_syntaxes=("1.2.840.10008.1.2.1", "1.2.840.10008.1.2"),
)


def assert_schema_valid(element: etree._Element) -> None:
    from tests.conformance.nist.schema import validate

    if not SPEC.is_dir():
        pytest.skip(f"official schemas not found at {SPEC} (../shared/conformance absent)")
    validate(element, SPEC)


def xop_infoset(element: etree._Element, parts: Mapping[str, Attachment]) -> etree._Element:
    """The XOP infoset (XOP 1.0 §3.2): each xop:Include replaced by the base64 of its part."""
    infoset = copy.deepcopy(element)
    for include in list(infoset.iter(ns.qname(ns.XOP, "Include"))):
        holder = include.getparent()
        assert holder is not None
        holder.remove(include)
        holder.text = base64.b64encode(
            parts[cid_from_href(include.get("href", ""))].read_bytes()
        ).decode()
    return infoset


def local_names(element: etree._Element) -> list[str]:
    return [etree.QName(child).localname for child in element]


# -- status, RegistryError list, RegistryResponse -----------------------------------------------


@pytest.mark.parametrize("short", list(SHORT))
def test_status_is_read_in_both_forms_and_written_as_a_urn(short: str) -> None:
    status = SHORT[short]
    assert Status.parse(short) is status
    assert Status.parse(status.value) is status
    assert Status.parse(f" {status.value} ") is status
    assert status.short == short
    written = codec.build_registry_response(status)
    assert written.get("status") == status.value
    assert written.get("status").startswith(
        ("urn:oasis:names:tc:ebxml-regrep:", "urn:ihe:iti:2007:")
    )


@pytest.mark.parametrize("text", [None, "", "Done", "urn:x:Sucess"])
def test_unknown_status_is_a_format_error(text: str | None) -> None:
    with pytest.raises(ResponseFormatError):
        Status.parse(text)


def test_error_list_round_trip_with_errors_and_warnings() -> None:
    raised = [
        XDSErrorList(
            [
                XDSDocumentUniqueIdError("not here", location="1.2.3.4"),
                XDSUnknownRepositoryId("other repository"),
            ]
        ),
        XDSExtraMetadataNotSaved("a warning", location="x"),
    ]
    element = codec.build_error_list(raised)
    assert element is not None and element.tag == ns.REGISTRY_ERROR_LIST
    assert element.get("highestSeverity") == SEVERITY_ERROR
    assert [item.get("severity") for item in element] == [
        SEVERITY_ERROR,
        SEVERITY_ERROR,
        SEVERITY_WARNING,
    ]
    for item in element:
        assert item.get("codeContext") and item.text is None  # rs.xsd: codeContext attribute
        assert item.get("severity", "").startswith(
            "urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:"
        )
    assert codec.read_errors(element) == codec.registry_errors(raised)
    assert [e.code for e in codec.read_errors(element)] == [
        "XDSDocumentUniqueIdError",
        "XDSUnknownRepositoryId",
        "XDSExtraMetadataNotSaved",
    ]
    assert codec.build_error_list([]) is None


def test_warnings_only_are_success_with_warning_as_highest_severity() -> None:
    warning = RegistryError(
        code="XDSExtraMetadataNotSaved", context="dropped", severity=SEVERITY_WARNING
    )
    element = codec.build_registry_response(codec.status_for([warning]), [warning])
    assert element.get("status") == Status.SUCCESS.value
    [error_list] = element
    assert error_list.get("highestSeverity") == SEVERITY_WARNING
    read = codec.read_registry_response(element)
    assert read.status is Status.SUCCESS and read.errors == [warning] and read.errors[0].is_warning
    assert_schema_valid(element)


def test_errors_are_read_leniently() -> None:
    element = etree.fromstring(
        f'<rs:RegistryErrorList xmlns:rs="{ns.RS}">'
        '<rs:RegistryError errorCode="XDSRegistryError" severity="Warning">'
        " in text </rs:RegistryError>"
        '<rs:RegistryError errorCode="XDSRepositoryError" codeContext="attr" severity="Error">'
        "text</rs:RegistryError>"
        '<rs:RegistryError errorCode="XDSMissingDocument" codeContext="no severity" location=""/>'
        "</rs:RegistryErrorList>"
    )
    assert codec.read_errors(element) == [
        RegistryError(code="XDSRegistryError", context="in text", severity=SEVERITY_WARNING),
        RegistryError(code="XDSRepositoryError", context="attr", severity=SEVERITY_ERROR),
        RegistryError(code="XDSMissingDocument", context="no severity", severity=SEVERITY_ERROR),
    ]
    assert codec.read_errors(None) == []


def test_registry_error_text() -> None:
    assert str(RegistryError(code="X", context="why", location="1.2")) == "X: why [1.2]"
    assert str(RegistryError(code="X")) == "X"


def test_read_registry_response_refuses_other_elements() -> None:
    with pytest.raises(ResponseFormatError):
        codec.read_registry_response(etree.Element(ns.RETRIEVE_DOCUMENT_SET_RESPONSE))
    with pytest.raises(ResponseFormatError):
        codec.read_registry_response(None)


@pytest.mark.parametrize(
    "transaction", [ITI_18, ITI_41, ITI_42, ITI_43, RAD_69], ids=lambda t: t.name
)
def test_failure_bodies_are_schema_valid(transaction: object) -> None:
    from gateway.soap.transactions import Transaction

    assert isinstance(transaction, Transaction)
    body = codec.failure_body(transaction, XDSRepositoryError("broken", location="1.2"))
    assert body.tag == transaction.response_qname
    assert [e.code for e in codec.read_errors(body)] == ["XDSRepositoryError"]
    holder = body if body.get("status") else body.find(ns.REGISTRY_RESPONSE)
    assert holder is not None and holder.get("status") == Status.FAILURE.value
    assert_schema_valid(body)


# -- ITI-43 request --------------------------------------------------------------------------------


def test_retrieve_request_round_trip_order_and_schema_validity() -> None:
    element = codec.build_retrieve_request(REQUESTS)
    assert_schema_valid(element)
    assert codec.parse_retrieve_request(element) == REQUESTS
    first, second = element
    assert local_names(first) == ["RepositoryUniqueId", "DocumentUniqueId"]  # home absent
    assert local_names(second) == ["HomeCommunityId", "RepositoryUniqueId", "DocumentUniqueId"]


def test_empty_home_community_id_is_not_written() -> None:
    request = DocumentRequest(
        repository_unique_id="1", document_unique_id="2", home_community_id=""
    )
    [item] = codec.build_retrieve_request([request])
    assert local_names(item) == ["RepositoryUniqueId", "DocumentUniqueId"]


def test_retrieve_request_needs_a_document() -> None:
    with pytest.raises(ValueError):
        codec.build_retrieve_request([])
    with pytest.raises(XDSRepositoryError):
        codec.parse_retrieve_request(etree.Element(ns.RETRIEVE_DOCUMENT_SET_REQUEST))
    with pytest.raises(XDSRepositoryError):
        codec.parse_retrieve_request(etree.Element(ns.RETRIEVE_IMAGING_DOCUMENT_SET_REQUEST))


def test_missing_values_are_read_as_empty_for_the_actor_to_judge() -> None:
    element = parse_bytes(
        f'<x:RetrieveDocumentSetRequest xmlns:x="{ns.XDSB}"><x:DocumentRequest>'
        "<x:HomeCommunityId> </x:HomeCommunityId><x:DocumentUniqueId> 1.2 </x:DocumentUniqueId>"
        "</x:DocumentRequest></x:RetrieveDocumentSetRequest>".encode()
    )
    assert codec.parse_retrieve_request(element) == [
        DocumentRequest(repository_unique_id="", document_unique_id="1.2")
    ]


# -- RAD-69 request --------------------------------------------------------------------------------


def test_imaging_request_round_trip_and_schema_validity() -> None:
    element = codec.build_imaging_request(IMAGING)
    assert_schema_valid(element)
    assert codec.parse_imaging_request(element) == IMAGING
    assert [
        (d.series_instance_uid, d.document.document_unique_id) for d in IMAGING.documents()
    ] == [
        ("1.1.1", "1.1.1.1"),
        ("1.1.1", "1.1.1.2"),
    ]
    [series] = element.iter(ns.qname(ns.IHERAD, "SeriesRequest"))
    assert local_names(series[0]) == ["HomeCommunityId", "RepositoryUniqueId", "DocumentUniqueId"]
    assert local_names(series[1]) == ["RepositoryUniqueId", "DocumentUniqueId"]


def instance(uid: str, study: str = "1.2.3", series: str = "1.2.3.1") -> ImagingDocumentRequest:
    return ImagingDocumentRequest(
        study_instance_uid=study,
        series_instance_uid=series,
        document=DocumentRequest(repository_unique_id="9.9", document_unique_id=uid),
    )


def test_imaging_request_groups_instances_by_study_and_series_in_order() -> None:
    items = [
        instance("1", series="s1"),
        instance("2", series="s2"),
        instance("3", series="s1"),
        instance("4", study="other", series="s9"),
    ]
    request = RetrieveImagingDocumentSetRequest.of(items, ["1.2.840.10008.1.2.1"])
    assert [s.study_instance_uid for s in request.studies] == ["1.2.3", "other"]
    assert [s.series_instance_uid for s in request.studies[0].series] == ["s1", "s2"]
    assert [d.document_unique_id for d in request.studies[0].series[0].documents] == ["1", "3"]
    assert sorted(request.documents(), key=lambda d: d.document.document_unique_id) == items
    body = codec.build_imaging_request(request)
    assert body[-1].tag == ns.qname(ns.IHERAD, "TransferSyntaxUIDList")
    assert_schema_valid(body)


def test_imaging_request_writer_refuses_what_the_schema_refuses() -> None:
    with pytest.raises(ValueError):
        codec.build_imaging_request(RetrieveImagingDocumentSetRequest.of([instance("1")], []))
    with pytest.raises(ValueError):
        codec.build_imaging_request(RetrieveImagingDocumentSetRequest.of([], ["1.2"]))
    empty_series = StudyRequest(
        study_instance_uid="1", series=(SeriesRequest(series_instance_uid="2", documents=()),)
    )
    with pytest.raises(ValueError):
        codec.build_imaging_request(
            RetrieveImagingDocumentSetRequest(studies=(empty_series,), transfer_syntaxes=("1.2",))
        )


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
            parsed = codec.parse_imaging_request(element)
            assert parsed.studies and parsed.transfer_syntaxes, path
            assert codec.parse_imaging_request(codec.build_imaging_request(parsed)) == parsed
            continue
        with pytest.raises(XDSErrorList) as caught:
            codec.parse_imaging_request(element)
        assert [e.code for e in caught.value] == expected, path


def test_nist_home_community_id_is_read() -> None:
    path = NIST_TESTS / "ids_2018-4820" / "case-01_With_HomeCommunityID" / "rad69-request.xml"
    if not path.is_file():
        pytest.skip("NIST testkit absent")
    [item] = codec.parse_imaging_request(parse_bytes(path.read_bytes())).documents()
    assert item.document.home_community_id == "urn:oid:1.3.6.1.4.1.21367.13.70.200"


_R, _X = 'xmlns:r="urn:ihe:rad:xdsi-b:2009"', 'xmlns:x="urn:ihe:iti:xds-b:2007"'
_SYNTAXES = (
    "<r:TransferSyntaxUIDList><r:TransferSyntaxUID>1.2</r:TransferSyntaxUID>"
    "</r:TransferSyntaxUIDList>"
)
_DOC = "<x:DocumentRequest><x:RepositoryUniqueId>9</x:RepositoryUniqueId>{uid}</x:DocumentRequest>"


@pytest.mark.parametrize(
    ("inner", "codes"),
    [
        (_SYNTAXES, ["XDSIRequestError"]),
        ("<r:StudyRequest studyInstanceUID='1'/>" + _SYNTAXES, ["XDSIRequestError"]),
        (
            "<r:StudyRequest studyInstanceUID='1'><r:SeriesRequest seriesInstanceUID='2'/>"
            "</r:StudyRequest>" + _SYNTAXES,
            ["XDSIRequestError"],
        ),
        (
            "<r:StudyRequest studyInstanceUID='1'><r:SeriesRequest seriesInstanceUID='2'>"
            + _DOC.format(uid="")
            + "</r:SeriesRequest></r:StudyRequest>"
            + _SYNTAXES,
            ["XDSIRequestError"],
        ),
        (
            "<r:StudyRequest studyInstanceUID='1'><r:SeriesRequest seriesInstanceUID='2'>"
            + _DOC.format(uid="<x:DocumentUniqueId>3</x:DocumentUniqueId>")
            + "</r:SeriesRequest></r:StudyRequest>",
            ["XDSIRequestError"],
        ),
        (
            "<r:StudyRequest studyInstanceUID='1'><r:SeriesRequest seriesInstanceUID='2'>"
            + _DOC.format(uid="<x:DocumentUniqueId>3</x:DocumentUniqueId>")
            + "</r:SeriesRequest></r:StudyRequest><r:TransferSyntaxUIDList>"
            "<r:TransferSyntaxUID> </r:TransferSyntaxUID></r:TransferSyntaxUIDList>",
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
def test_malformed_imaging_requests(inner: str, codes: list[str]) -> None:
    tag = "r:RetrieveImagingDocumentSetRequest"
    xml = f"<{tag} {_R} {_X}>{inner}</{tag}>"
    with pytest.raises(XDSErrorList) as caught:
        codec.parse_imaging_request(parse_bytes(xml.encode()))
    assert [e.code for e in caught.value] == codes


def test_wrong_body_element_is_an_imaging_request_error() -> None:
    with pytest.raises(Exception) as caught:
        codec.parse_imaging_request(etree.Element(ns.RETRIEVE_DOCUMENT_SET_REQUEST))
    assert getattr(caught.value, "code", None) == "XDSIRequestError"


# -- RetrieveDocumentSetResponse -------------------------------------------------------------------


def documents(*contents: bytes, home: str | None = None) -> list[DocumentResponse]:
    return [
        DocumentResponse(
            repository_unique_id="9.9",
            document_unique_id=f"1.1.1.{index}",
            mime_type="application/dicom",
            attachment=Attachment.from_bytes(data, content_type="application/dicom"),
            home_community_id=home if index == 1 else None,
        )
        for index, data in enumerate(contents, start=1)
    ]


def parts(response: RetrieveDocumentSetResponse) -> dict[str, Attachment]:
    return {d.attachment.content_id: d.attachment for d in response.documents}


def test_partial_success_round_trip_with_errors_warnings_and_home() -> None:
    found = documents(b"DICM-1", b"DICM-2", home=HOME)
    raised = [
        XDSUnknownRepositoryId("unknown", location="1.1.1.3"),
        XDSExtraMetadataNotSaved("warned", location="1.1.1.1"),
    ]
    response = RetrieveDocumentSetResponse.answer(found, raised)
    assert response.status is Status.PARTIAL_SUCCESS
    element = codec.build_retrieve_response(response)
    registry = element.find(ns.REGISTRY_RESPONSE)
    assert (
        registry is not None
        and registry.get("status") == "urn:ihe:iti:2007:ResponseStatusType:PartialSuccess"
    )
    assert_schema_valid(xop_infoset(element, parts(response)))
    first, second = element.findall(ns.qname(ns.XDSB, "DocumentResponse"))
    assert local_names(first)[0] == "HomeCommunityId" and "HomeCommunityId" not in local_names(
        second
    )
    parsed = codec.parse_retrieve_response(element, parts(response))
    assert parsed == response
    assert [(e.code, e.location, e.is_warning) for e in parsed.errors] == [
        ("XDSUnknownRepositoryId", "1.1.1.3", False),
        ("XDSExtraMetadataNotSaved", "1.1.1.1", True),
    ]
    assert parsed.documents[1].attachment.read_bytes() == b"DICM-2"


@pytest.mark.parametrize(
    ("found", "errors", "status"),
    [
        (1, [], Status.SUCCESS),
        (1, [XDSDocumentUniqueIdError("gone")], Status.PARTIAL_SUCCESS),
        (0, [XDSDocumentUniqueIdError("gone")], Status.FAILURE),
        (0, [], Status.SUCCESS),
    ],
)
def test_answer_status(found: int, errors: list[XDSDocumentUniqueIdError], status: Status) -> None:
    answer = RetrieveDocumentSetResponse.answer(documents(*[b"x"] * found), errors)
    assert answer.status is status
    assert_schema_valid(xop_infoset(codec.build_retrieve_response(answer), parts(answer)))


def on_demand_response() -> RetrieveDocumentSetResponse:
    [document] = documents(b"generated")
    document.new_repository_unique_id = "7.7"
    document.new_document_unique_id = "7.7.1"
    return RetrieveDocumentSetResponse(status=Status.SUCCESS, documents=[document])


def test_on_demand_identifiers_round_trip_in_schema_order() -> None:
    response = on_demand_response()
    element = codec.build_retrieve_response(response)
    assert_schema_valid(xop_infoset(element, parts(response)))
    [item] = element.findall(ns.qname(ns.XDSB, "DocumentResponse"))
    assert local_names(item) == [
        "RepositoryUniqueId",
        "DocumentUniqueId",
        "NewRepositoryUniqueId",
        "NewDocumentUniqueId",
        "mimeType",
        "Document",
    ]
    assert codec.parse_retrieve_response(element, parts(response)) == response


def inline(element: etree._Element, response: RetrieveDocumentSetResponse) -> etree._Element:
    """The same answer from a peer that did not use MTOM: base64 text, short status form."""
    plain = xop_infoset(element, parts(response))
    registry = plain.find(ns.REGISTRY_RESPONSE)
    assert registry is not None
    registry.set("status", Status(registry.get("status")).short)
    for document in plain.iter(ns.qname(ns.XDSB, "Document")):
        text = document.text or ""
        document.text = "\n".join(text[i : i + 8] for i in range(0, len(text), 8))  # folded
    return plain


@pytest.mark.parametrize("short", list(SHORT))
def test_inline_documents_and_short_status_read_like_mtom(short: str) -> None:
    response = RetrieveDocumentSetResponse(
        status=SHORT[short], documents=documents(b"\r\nDICM\x00\xff", b"")
    )
    mtom = codec.build_retrieve_response(response)
    from_inline = codec.parse_retrieve_response(inline(mtom, response), {})
    from_mtom = codec.parse_retrieve_response(mtom, parts(response))
    assert from_inline.status is from_mtom.status is SHORT[short]
    for a, b in zip(from_inline.documents, from_mtom.documents, strict=True):
        assert isinstance(a.attachment, Attachment)
        assert a.attachment.read_bytes() == b.attachment.read_bytes()
        assert (
            a.attachment.content_type == "application/dicom"
            and a.attachment.size == b.attachment.size
        )
        assert (a.document_unique_id, a.mime_type) == (b.document_unique_id, b.mime_type)
    # Written again, an inline answer becomes the standard MTOM form with full URNs.
    again = codec.build_retrieve_response(from_inline)
    assert again.find(ns.REGISTRY_RESPONSE).get("status") == SHORT[short].value
    assert codec.parse_retrieve_response(again, parts(from_inline)) == from_inline


def _body(status: str, document: str | None) -> etree._Element:
    item = (
        "<x:DocumentResponse><x:RepositoryUniqueId>9</x:RepositoryUniqueId>"
        f"<x:DocumentUniqueId>1</x:DocumentUniqueId><x:mimeType>text/plain</x:mimeType>{document}"
        "</x:DocumentResponse>"
        if document is not None
        else ""
    )
    return etree.fromstring(
        f'<x:RetrieveDocumentSetResponse xmlns:x="{ns.XDSB}" xmlns:rs="{ns.RS}" '
        f'xmlns:xop="{ns.XOP}"><rs:RegistryResponse status="{status}"/>{item}'
        "</x:RetrieveDocumentSetResponse>"
    )


@pytest.mark.parametrize(
    "body",
    [
        etree.Element(ns.qname(ns.XDSB, "Other")),
        etree.Element(ns.RETRIEVE_DOCUMENT_SET_RESPONSE),
        _body("Finished", None),
        _body("Success", ""),
        _body("Success", '<x:Document><xop:Include href="cid:missing@x"/></x:Document>'),
        _body("Success", "<x:Document>!!not base64!!</x:Document>"),
    ],
    ids=[
        "wrong-body",
        "no-registry-response",
        "bad-status",
        "no-document",
        "unknown-part",
        "bad-base64",
    ],
)
def test_malformed_responses_are_refused(body: etree._Element) -> None:
    with pytest.raises(ResponseFormatError):
        codec.parse_retrieve_response(body, {})


def test_response_discard_removes_owned_files(tmp_path: Path) -> None:
    spooled = tmp_path / "part"
    spooled.write_bytes(b"x")
    [document] = documents(b"x")
    document.attachment = Attachment.from_file(spooled, owned=True)
    RetrieveDocumentSetResponse(status=Status.SUCCESS, documents=[document]).discard()
    assert not spooled.exists()


# -- samples of other implementations -------------------------------------------------------------


@needs_conformance
def test_ihe_samples_are_read() -> None:
    folder = SAMPLES / "ihe-xds.b"
    request = parse_bytes((folder / "RetrieveDocumentSetRequest.xml").read_bytes())
    assert [r.document_unique_id for r in codec.parse_retrieve_request(request)]
    response = parse_bytes((folder / "RetrieveDocumentSetResponse.xml").read_bytes())
    parsed = codec.parse_retrieve_response(response, {})
    assert parsed.status is Status.SUCCESS
    assert [d.mime_type for d in parsed.documents] == ["text/xml", "text/xml"]
    assert parsed.documents[0].attachment.read_bytes().startswith(b"R0lGODlh")  # inline base64


def _soap_body(path: Path) -> etree._Element:
    envelope = parse_bytes(path.read_bytes())
    body = envelope.find(ns.qname(ns.SOAP12, "Body"))
    assert body is not None
    return body[0]


@needs_conformance
def test_nist_cross_gateway_samples_are_read() -> None:
    folder = SAMPLES / "nist-messagevalidator"
    failed = codec.parse_retrieve_response(_soap_body(folder / "soap-xret-resp-error.xml"), {})
    assert failed.status is Status.FAILURE
    assert failed.errors == [
        RegistryError(code="MyBigError", context="My Prog", location="urn:oid:1.2.3")
    ]
    assert {d.home_community_id for d in failed.documents} == {"urn:oid:1.2.3"}
    request = codec.parse_retrieve_request(_soap_body(folder / "soap-xcr-req.xml"))
    assert {r.home_community_id for r in request} == {"urn:oid:1.2.3.5"}
    registry = codec.read_registry_response(
        parse_bytes((folder / "regresp-suc-err.xml").read_bytes())
    )
    assert registry.status is Status.SUCCESS and [e.code for e in registry.errors] == [
        "XDSUnknownPatientId"
    ]
