"""The repository's ITI-41 rules: document matching, size/hash/media type, computed values."""

from __future__ import annotations

import hashlib

import pytest

from gateway.errors import XDSError
from gateway.metadata.model import DocumentEntry
from gateway.repository.checks import (
    Match,
    apply_computed,
    check_document,
    match_documents,
    media_type,
)
from gateway.repository.model import ProvidedDocument
from gateway.soap.message import Attachment
from tests.factories import make_document_entry

DATA = b"some bytes\r\n"
SHA1 = hashlib.sha1(DATA).hexdigest()


def provided(id_: str, data: bytes = DATA, content_type: str = "text/plain") -> ProvidedDocument:
    return ProvidedDocument(
        id=id_, attachment=Attachment.from_bytes(data, content_type=content_type)
    )


def entry(id_: str = "Document01", **overrides: object) -> DocumentEntry:
    values = {"entry_uuid": id_, "mime_type": "text/plain", "hash": None, "size": None}
    values.update(overrides)
    return make_document_entry(**values)


def codes(errors: list[XDSError]) -> list[str]:
    return [e.code for e in errors]


def test_documents_pair_with_entries_by_id() -> None:
    entries = [entry("Document01"), entry("Document02")]
    matches, errors = match_documents(entries, [provided("Document02"), provided("Document01")])
    assert errors == []
    assert [(m.entry.entry_uuid, m.document.id) for m in matches] == [
        ("Document01", "Document01"),
        ("Document02", "Document02"),
    ]


def test_missing_document_and_missing_metadata_are_all_reported() -> None:
    entries = [entry("Document01"), entry("Document02")]
    _matches, errors = match_documents(entries, [provided("Document01"), provided("Stray")])
    assert codes(errors) == ["XDSMissingDocumentMetadata", "XDSMissingDocument"]
    assert errors[0].location == "Stray" and errors[1].location == "Document02"


def test_two_documents_with_one_id() -> None:
    _m, errors = match_documents([entry()], [provided("Document01"), provided("Document01")])
    assert codes(errors) == ["XDSRepositoryMetadataError"]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, []),
        ({"size": len(DATA), "hash": SHA1}, []),
        ({"hash": SHA1.upper()}, []),  # hash compared ignoring case (NIST 11981)
        ({"size": len(DATA) + 1}, ["XDSRepositoryMetadataError"]),
        ({"hash": "0" * 40}, ["XDSRepositoryMetadataError"]),
        ({"size": 0, "hash": "0" * 40}, ["XDSRepositoryMetadataError"] * 2),
    ],
)
def test_size_and_hash(overrides: dict[str, object], expected: list[str]) -> None:
    match = Match(entry=entry(**overrides), document=provided("Document01"))
    assert codes(check_document(match)) == expected


@pytest.mark.parametrize(
    ("part", "mime", "expected"),
    [
        ("text/plain", "text/plain", []),
        ("TEXT/Plain; charset=UTF-8", "text/plain", []),
        ("application/octet-stream", "application/dicom", []),  # untyped part: says nothing
        ("", "application/pdf", []),
        ("image/png", "text/plain", ["InvalidDocumentContent"]),
    ],
)
def test_media_type(part: str, mime: str, expected: list[str]) -> None:
    match = Match(entry=entry(mime_type=mime), document=provided("Document01", content_type=part))
    errors = check_document(match)
    assert codes(errors) == expected
    if errors:
        assert match.entry.unique_id in errors[0].context  # TF-3: codeContext names the uniqueId


def test_media_type_strips_parameters() -> None:
    assert media_type(" Application/DICOM ; x=1") == "application/dicom"
    assert media_type(None) == ""


def test_computed_values_replace_submitted_ones() -> None:
    match = Match(
        entry=entry(hash=SHA1.upper(), size=None, repository_unique_id="9.9.9"),
        document=provided("Document01"),
    )
    apply_computed(match, "1.2.3")
    assert (match.entry.hash, match.entry.size, match.entry.repository_unique_id) == (
        SHA1,
        len(DATA),
        "1.2.3",
    )
