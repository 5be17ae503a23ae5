"""The ITI-41 / RAD-68 request body (``gateway.metadata.provide``): written, read back, schemas.

Standard: ITI TF-2 §3.41.4.1.2 (rev. 19.0), XOP 1.0 §2.1. (The schema check of the whole body
needs the content inline, as on a non-MTOM wire: the repository's NIST tests do it.)
"""

from __future__ import annotations

import pytest
from lxml import etree

from gateway.errors import XDSError
from gateway.metadata.ebrim import parse_submit_objects_request
from gateway.metadata.provide import DOCUMENT, REQUEST, build_provide_request, read_documents
from gateway.soap import ns
from gateway.soap.message import Attachment
from tests.factories import make_submission


def test_request_round_trips_metadata_and_parts() -> None:
    submission = make_submission(entries=2)
    parts = [Attachment.from_bytes(b"one"), Attachment.from_bytes(b"two")]
    ids = [entry.entry_uuid for entry in submission.document_entries]
    body = build_provide_request(
        submission, [(i, part.content_id) for i, part in zip(ids, parts, strict=True)]
    )
    assert body.tag == REQUEST
    wire = etree.fromstring(etree.tostring(body))
    read = parse_submit_objects_request(wire, repository=True)
    assert [e.unique_id for e in read.document_entries] == [
        e.unique_id for e in submission.document_entries
    ]
    by_cid = {part.content_id: part for part in parts}
    documents = read_documents(wire, by_cid)
    assert [(i, a.read_bytes()) for i, a in documents] == [(ids[0], b"one"), (ids[1], b"two")]


def test_a_document_without_its_part_is_a_metadata_error() -> None:
    body = build_provide_request(make_submission(), [("Document01", "gone@x")])
    with pytest.raises(XDSError) as raised:
        read_documents(body, {})
    assert raised.value.code == "XDSRepositoryMetadataError"
    assert raised.value.location == "Document01"
    # Inline base64 is no part: the SOAP boundary turns it into one before a codec reads it.
    for document in body.findall(DOCUMENT):
        body.remove(document)
    etree.SubElement(body, ns.qname(ns.XDSB, "Document"), id="Inline").text = "eA=="
    with pytest.raises(XDSError, match="'Inline' carries no content"):
        read_documents(body, {})
