"""ITI-41 against an in-process gateway: MTOM and inline, every error code, what is registered,
what stays on disk."""

from __future__ import annotations

import base64

import pytest
from lxml import etree

from gateway.errors import XDSExtraMetadataNotSaved, XDSPatientIdDoesNotMatch
from gateway.metadata.ebrim import build_submit_objects_request, parse_submit_objects_request
from gateway.soap import ns
from gateway.soap.message import Attachment
from gateway.soap.transactions import ITI_41
from tests.integration.repository.repo_support import (
    REPOSITORY_UID,
    FakeRegistry,
    RepositorySystem,
    error_codes,
    failure,
    provide_body,
    sha1,
    status_of,
    stored_files,
    submission_with,
)
from tests.support import rawsoap

DOC = b"Four score and seven years ago\r\n"


def shape(element: etree._Element) -> list[tuple[str, dict[str, str]]]:
    """Every element's name and attributes, in document order (namespace prefixes aside)."""
    return [(e.tag, dict(e.attrib)) for e in element.iter()]


def provide(system: RepositorySystem, contents: list[bytes], **kwargs: object) -> etree._Element:
    submission = submission_with(contents, **kwargs)
    body, attachments = provide_body(submission, contents)
    return system.client().call(ITI_41, body, attachments).body


def test_mtom_provide_registers_hash_size_and_repository_id(system: RepositorySystem) -> None:
    contents = [DOC, b"\x00\x01binary\r\n" * 1000]
    response = provide(system, contents)
    assert status_of(response) == "Success"
    [request] = system.registry.requests
    assert request.tag == ns.qname(ns.LCM, "SubmitObjectsRequest")
    entries = parse_submit_objects_request(request).document_entries
    assert [(e.hash, e.size, e.repository_unique_id) for e in entries] == [
        (sha1(c), len(c), REPOSITORY_UID) for c in contents
    ]
    assert sorted(p.read_bytes() for p in stored_files(system.root)) == sorted(contents)
    assert system.repository.index.counts()["confirmed"] == 2


def test_inline_base64_provide(system: RepositorySystem) -> None:
    submission = submission_with([DOC])
    body = etree.Element(ITI_41.request_qname, nsmap={"xdsb": ns.XDSB})
    body.append(build_submit_objects_request(submission))
    document = etree.SubElement(body, ns.qname(ns.XDSB, "Document"), id="Document01")
    document.text = base64.b64encode(DOC).decode()
    xml = etree.tostring(body).decode()
    host, port = system.gateway.http.address
    response = rawsoap.post(
        host,
        port,
        "/xds/repository",
        rawsoap.envelope(xml, action=ITI_41.action),
    )
    answer = response.envelope().find(f"{{{ns.SOAP12}}}Body")[0]
    assert status_of(answer) == "Success", etree.tostring(answer)
    assert [p.read_bytes() for p in stored_files(system.root)] == [DOC]


def test_registry_errors_and_warnings_come_back_unchanged(
    system: RepositorySystem, registry: FakeRegistry
) -> None:
    registry.answer = failure(
        XDSPatientIdDoesNotMatch("patient mismatch", location="Document01"),
        XDSExtraMetadataNotSaved("extra slot ignored"),
    )
    response = provide(system, [DOC])
    expected = registry.answer(etree.Element("x"))
    assert shape(response) == shape(expected)
    assert stored_files(system.root) == []
    assert system.repository.index.counts() == {"pending": 0, "unresolved": 0, "confirmed": 0}


@pytest.mark.parametrize(
    ("entry", "code"),
    [
        ({"size": len(DOC) + 1}, "XDSRepositoryMetadataError"),
        ({"hash": "0" * 40}, "XDSRepositoryMetadataError"),
    ],
)
def test_wrong_size_or_hash_is_refused(
    system: RepositorySystem, entry: dict[str, object], code: str
) -> None:
    response = provide(system, [DOC], **entry)
    assert status_of(response) == "Failure"
    assert code in error_codes(response)
    assert system.registry.requests == []
    assert stored_files(system.root) == []


def test_upper_case_hash_is_accepted_and_sent_in_lower_case(system: RepositorySystem) -> None:
    response = provide(system, [DOC], hash=sha1(DOC).upper(), size=len(DOC))
    assert status_of(response) == "Success"
    [entry] = parse_submit_objects_request(system.registry.requests[0]).document_entries
    assert entry.hash == sha1(DOC)


def test_missing_document_and_missing_metadata(system: RepositorySystem) -> None:
    submission = submission_with([DOC, DOC])
    attachments = [Attachment.from_bytes(DOC), Attachment.from_bytes(DOC)]
    from gateway.metadata.provide import build_provide_request

    body = build_provide_request(
        submission,
        [("Document01", attachments[0].content_id), ("Orphan", attachments[1].content_id)],
    )
    response = system.client().call(ITI_41, body, attachments).body
    codes = error_codes(response)
    assert status_of(response) == "Failure"
    assert "XDSMissingDocument" in codes and "XDSMissingDocumentMetadata" in codes
    assert system.registry.requests == []


def test_mime_type_mismatch_is_refused(system: RepositorySystem) -> None:
    submission = submission_with([DOC])
    body, attachments = provide_body(submission, [DOC], content_type="image/png")
    response = system.client().call(ITI_41, body, attachments).body
    assert error_codes(response) == ["InvalidDocumentContent"]
    assert system.registry.requests == []


def test_unique_id_reused_with_other_bytes(system: RepositorySystem) -> None:
    assert status_of(provide(system, [DOC])) == "Success"
    again = provide(system, [DOC])  # identical resubmission: accepted, file reused
    assert status_of(again) == "Success"
    other = provide(system, [DOC + b"!"])
    assert status_of(other) == "Failure"
    assert "XDSNonIdenticalHash" in error_codes(other)
    assert [p.read_bytes() for p in stored_files(system.root)] == [DOC]
    assert len(system.registry.requests) == 2


def test_registry_raising_an_xds_error_is_a_failure(
    system: RepositorySystem, registry: FakeRegistry
) -> None:
    def refuse(_request: etree._Element) -> etree._Element:
        raise XDSPatientIdDoesNotMatch("mismatch")

    registry.answer = refuse
    response = provide(system, [DOC])
    assert error_codes(response) == ["XDSPatientIdDoesNotMatch"]
    assert stored_files(system.root) == []


def test_registry_without_answer(system: RepositorySystem, registry: FakeRegistry) -> None:
    def crash(_request: etree._Element) -> etree._Element:
        raise RuntimeError("connection reset")

    registry.answer = crash
    response = provide(system, [DOC])
    assert error_codes(response) == ["XDSRegistryNotAvailable"]
    # Outcome unknown: kept unserved until the registry says it lists nothing, then removed.
    system.repository.recovery.resolve()
    assert stored_files(system.root) == []
    assert system.repository.index.counts()["unresolved"] == 0
