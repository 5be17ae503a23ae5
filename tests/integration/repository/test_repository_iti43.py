"""ITI-43 against an in-process gateway: one or many documents, mimeType from the metadata,
homeCommunityId echoed, XDSDocumentUniqueIdError, XDSUnknownRepositoryId, PartialSuccess, and
the response streamed as MTOM parts."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest
from lxml import etree
from requests_toolbelt.multipart.decoder import MultipartDecoder

from gateway.metadata.retrieve import (
    DocumentRequest,
    RetrieveDocumentSetResponse,
    Status,
    build_retrieve_request,
    parse_retrieve_response,
)
from gateway.repository.index import StoredDocument
from gateway.repository.storage import storage_key
from gateway.soap.client import ClientResponse
from gateway.soap.transactions import ITI_41, ITI_43
from tests.integration.repository.repo_support import (
    REPOSITORY_UID,
    RepositorySystem,
    provide_body,
    status_of,
    submission_with,
)
from tests.support import rawsoap

SCHEMA_DIR = Path(__file__).resolve().parents[4] / "shared/conformance/spec/iti/schema/IHE"
HOME = "urn:oid:1.2.3.4.5"


def stored(system: RepositorySystem, contents: list[bytes], **entry: object) -> list[str]:
    """Provide the contents; return their uniqueIds."""
    submission = submission_with(contents, **entry)
    body, attachments = provide_body(submission, contents)
    assert status_of(system.client().call(ITI_41, body, attachments).body) == "Success"
    return [e.unique_id or "" for e in submission.document_entries]


def retrieve(system: RepositorySystem, *requests: DocumentRequest) -> ClientResponse:
    return system.client().call(ITI_43, build_retrieve_request(requests))


def parse_response(answer: ClientResponse) -> RetrieveDocumentSetResponse:
    return parse_retrieve_response(answer.body, answer.attachments)


def request(uid: str, repository: str = REPOSITORY_UID, home: str | None = None) -> DocumentRequest:
    return DocumentRequest(
        repository_unique_id=repository, document_unique_id=uid, home_community_id=home
    )


def test_two_documents_with_their_mime_types(system: RepositorySystem) -> None:
    pdf, text = b"%PDF-1.4 fake\r\n\x00\xff", b"plain text\n"
    [uid_pdf] = stored(system, [pdf], prefix="1", mime_type="application/pdf")
    [uid_text] = stored(system, [text], prefix="2", mime_type="text/plain")
    answer = retrieve(system, request(uid_text), request(uid_pdf))
    parsed = parse_response(answer)
    assert parsed.status is Status.SUCCESS and parsed.errors == []
    got = [(d.document_unique_id, d.mime_type, d.attachment.read_bytes()) for d in parsed.documents]
    assert got == [(uid_text, "text/plain", text), (uid_pdf, "application/pdf", pdf)]
    assert all(d.repository_unique_id == REPOSITORY_UID for d in parsed.documents)
    assert all(d.home_community_id is None for d in parsed.documents)
    answer.discard_attachments()


def test_home_community_id_is_echoed(system: RepositorySystem) -> None:
    [uid] = stored(system, [b"x"])
    answer = retrieve(system, request(uid, home=HOME))
    [document] = parse_response(answer).documents
    assert document.home_community_id == HOME
    answer.discard_attachments()


def test_unknown_document_and_other_repository_give_partial_success(
    system: RepositorySystem,
) -> None:
    [uid] = stored(system, [b"known"])
    answer = retrieve(
        system,
        request("1.2.3.404"),
        request(uid),
        request(uid, repository="1.2.3.999"),
    )
    parsed = parse_response(answer)
    assert parsed.status is Status.PARTIAL_SUCCESS
    assert [(e.code, e.is_warning, e.location) for e in parsed.errors] == [
        ("XDSDocumentUniqueIdError", False, "1.2.3.404"),
        ("XDSUnknownRepositoryId", False, uid),
    ]
    assert [d.document_unique_id for d in parsed.documents] == [uid]
    answer.discard_attachments()


def test_nothing_found_is_a_failure(system: RepositorySystem) -> None:
    parsed = parse_response(retrieve(system, request("1.2.3.404")))
    assert parsed.status is Status.FAILURE
    assert [e.code for e in parsed.errors] == ["XDSDocumentUniqueIdError"]
    assert parsed.documents == []


def test_unsettled_documents_are_not_served(system: RepositorySystem) -> None:
    [uid] = stored(system, [b"soon gone"])
    system.repository.index.mark_unresolved(
        [uid], owner=system.repository.owner
    )  # never downgraded
    assert system.repository.index.get(uid).state == "confirmed"
    pending = StoredDocument(
        unique_id="1.2.3.5",
        storage_key=storage_key("1.2.3.5"),
        hash="0" * 40,
        size=1,
        mime_type="text/plain",
    )
    system.repository.index.reserve([pending], owner="x", now=0, accept=lambda a, b: False)
    parsed = parse_response(retrieve(system, request("1.2.3.5")))
    assert [e.code for e in parsed.errors] == ["XDSDocumentUniqueIdError"]


def test_response_is_mtom_and_schema_valid(system: RepositorySystem) -> None:
    [uid] = stored(system, [b"abc" * 1000])
    host, port = system.gateway.http.address
    xml = etree.tostring(build_retrieve_request([request(uid, home=HOME)])).decode()
    raw = rawsoap.post(host, port, "/xds/repository", rawsoap.envelope(xml, action=ITI_43.action))
    assert raw.status == 200
    assert raw.content_type.startswith("multipart/related")
    assert b"abc" * 1000 in raw.body
    if not SCHEMA_DIR.is_dir():
        pytest.skip(f"{SCHEMA_DIR} is absent")
    schema = etree.XMLSchema(etree.parse(str(SCHEMA_DIR / "XDS.b_DocumentRepository.xsd")))
    # XOP 1.0 §3.2: validate the reconstituted infoset, each xop:Include replaced by its part.
    parts = {
        part.headers[b"Content-ID"].decode().strip("<>"): part.content
        for part in MultipartDecoder(raw.body, raw.content_type).parts
    }
    body = raw.envelope().find("{http://www.w3.org/2003/05/soap-envelope}Body")[0]
    for include in list(body.iter("{http://www.w3.org/2004/08/xop/include}Include")):
        parent = include.getparent()
        parent.remove(include)
        parent.text = base64.b64encode(parts[include.get("href")[4:]]).decode()
    schema.assertValid(body)


def test_empty_request_is_an_error(system: RepositorySystem) -> None:
    # The codec does not write a request the schema refuses; a peer might send one.
    empty = etree.Element(ITI_43.request_qname)
    parsed = parse_response(system.client().call(ITI_43, empty))
    assert parsed.status is Status.FAILURE
    assert [e.code for e in parsed.errors] == ["XDSRepositoryError"]


def test_large_document_round_trip(system: RepositorySystem) -> None:
    data = hashlib.sha256(b"seed").digest() * (3 * 1024 * 1024 // 32)  # 3 MiB, above thresholds
    [uid] = stored(system, [data], mime_type="application/octet-stream")
    answer = retrieve(system, request(uid))
    [document] = parse_response(answer).documents
    attachment = document.attachment
    assert attachment.path is not None  # spooled to a file by the client, not kept in memory
    assert attachment.digest() == hashlib.sha1(data).hexdigest()
    answer.discard_attachments()
