"""Registry operations against a whole in-process gateway (registry + repository) over real
sockets: ITI-57 Update Document Set moves a published manifest to another patient (new version,
old Deprecated, both found by logicalID with $MetadataLevel 2), ITI-62 removes a test
submission, ITI-86 removes its document (gone from queries and from the storage folder), and
what the TF refuses is refused with its error and changes nothing. Also the operator's
``xdsi-gateway registry remove``.

Standard: ITI TF-2b §3.57, §3.62, §3.86; ITI TF-2 §3.18.4.1.2.3.5.1 ($MetadataLevel).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import etree

from gateway.app import Gateway
from gateway.cli import main
from gateway.config import load_settings
from gateway.hl7.adt import Demographics
from gateway.metadata import ebrim
from gateway.metadata import vocabulary as v
from gateway.metadata.model import DocumentEntry, ObjectRef, Submission
from gateway.metadata.query import AdhocQuery, build_query_request, parse_query_response
from gateway.metadata.removal import build_remove_documents_request, build_remove_objects_request
from gateway.metadata.retrieve import DocumentRequest, build_retrieve_request
from gateway.repository.index import RepositoryIndex
from gateway.soap import ns
from gateway.soap.client import SoapClient
from gateway.soap.transactions import ITI_18, ITI_41, ITI_43, ITI_57, ITI_62, ITI_86
from tests.factories import PATIENT_ID, UID_ROOT, make_has_member, make_submission_set
from tests.integration.repository.repo_support import (
    error_codes,
    provide_body,
    status_of,
    stored_files,
    submission_with,
)

OTHER_PATIENT = "PAT-43^^^&1.3.6.1.4.1.21367.13.20.1000&ISO"
GET_DOCUMENTS = "urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4"
GET_SS_AND_CONTENTS = "urn:uuid:e8e3cb2c-e39c-46b9-99e4-c12f57260b83"
MANIFEST = b"DICM-like manifest bytes for the test\n"


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Gateway]:
    settings = load_settings(
        environ={
            "XDSI_GATEWAY_DATA_DIR": str(tmp_path / "data"),
            "XDSI_HTTP_PORT": "0",
            "XDSI_HL7_ENABLED": "false",
            "XDSI_IMAGING_SOURCE_ENABLED": "false",
        }
    )
    gw = Gateway(settings)
    gw.start()
    assert gw.registry is not None
    for pid in (PATIENT_ID, OTHER_PATIENT):
        gw.registry.patients.register(pid, Demographics(), other_ids=[])
    try:
        yield gw
    finally:
        gw.stop()


def _client(gw: Gateway, path: str) -> SoapClient:
    host, port = gw.http.address
    return SoapClient(f"http://{host}:{port}{path}", timeout=30)


def _call(gw: Gateway, transaction: object, body: etree._Element) -> etree._Element:
    return _client(gw, transaction.path).call(transaction, body).body  # type: ignore[attr-defined]


def _provide(gw: Gateway, prefix: str) -> Submission:
    submission = submission_with([MANIFEST], prefix=prefix, mime_type="application/dicom")
    body, attachments = provide_body(submission, [MANIFEST])
    answer = _client(gw, ITI_41.path).call(ITI_41, body, attachments).body
    assert status_of(answer) == "Success", error_codes(answer)
    return submission


def _query(gw: Gateway, query: AdhocQuery) -> tuple[str, list[object], list[str]]:
    answer = parse_query_response(_call(gw, ITI_18, build_query_request(query)))
    return answer.status, list(answer.objects), [e.code for e in answer.errors]


def _by_unique_id(gw: Gateway, uid: str) -> list[DocumentEntry]:
    query = AdhocQuery(query_id=GET_DOCUMENTS).add("$XDSDocumentEntryUniqueId", f"('{uid}')")
    status, objects, _ = _query(gw, query)
    assert status == "Success"
    return [o for o in objects if isinstance(o, DocumentEntry)]


def _by_logical_id(gw: Gateway, lid: str, *, level: int, leaf: bool) -> tuple[str, list[object]]:
    query = AdhocQuery(query_id=GET_DOCUMENTS, return_type="LeafClass" if leaf else "ObjectRef")
    query.add("$XDSDocumentEntryLogicalID", f"('{lid}')").add("$MetadataLevel", str(level))
    status, objects, _ = _query(gw, query)
    return status, objects


def _update_patient(original: DocumentEntry, *, patient: str, previous: str) -> Submission:
    """An ITI-57 request: a new version of ``original`` for ``patient``."""
    entry = copy.deepcopy(original)
    entry.entry_uuid = "Document01"  # new id, symbolic: the registry assigns the UUID
    entry.logical_id = original.logical_id or original.entry_uuid
    entry.version = None
    entry.availability_status = None
    entry.patient_id = patient
    submission_set = make_submission_set(
        patient_id=patient, unique_id=f"{UID_ROOT}.57.{previous}.{len(patient)}"
    )
    member = make_has_member(submission_set.entry_uuid, entry.entry_uuid, previous_version=previous)
    return Submission(
        submission_set=submission_set, document_entries=[entry], associations=[member]
    )


def _repository_request(gw: Gateway, uid: str) -> DocumentRequest:
    return DocumentRequest(
        repository_unique_id=gw.settings.repository.unique_id, document_unique_id=uid
    )


def test_iti57_moves_a_manifest_to_another_patient(gateway: Gateway) -> None:
    uid = _provide(gateway, "57").document_entries[0].unique_id or ""
    (original,) = _by_unique_id(gateway, uid)
    assert original.patient_id == PATIENT_ID and original.version == "1"

    answer = _call(gateway, ITI_57, ebrim.build_submit_objects_request(
        _update_patient(original, patient=OTHER_PATIENT, previous="1")
    ))  # fmt: skip
    assert status_of(answer) == "Success", error_codes(answer)

    lid = original.entry_uuid
    # Level 2, by logicalID: both versions (two patients, so ObjectRefs: a LeafClass answer
    # would span two patients, XDSResultNotSinglePatient).
    status, refs = _by_logical_id(gateway, lid, level=2, leaf=False)
    assert status == "Success"
    ids = [r.entry_uuid for r in refs if isinstance(r, ObjectRef)]
    assert len(ids) == 2 and original.entry_uuid in ids
    (new_id,) = [i for i in ids if i != original.entry_uuid]
    by_id = {}
    for object_id in ids:
        query = AdhocQuery(query_id=GET_DOCUMENTS).add(
            "$XDSDocumentEntryEntryUUID", f"('{object_id}')"
        )
        query.add("$MetadataLevel", "2")
        _, (entry,), _ = _query(gateway, query)
        by_id[object_id] = entry
    old, new = by_id[original.entry_uuid], by_id[new_id]
    assert (old.version, old.availability_status, old.patient_id) == (
        "1",
        v.STATUS_DEPRECATED,
        PATIENT_ID,
    )
    assert (new.version, new.availability_status, new.patient_id) == (
        "2",
        v.STATUS_APPROVED,
        OTHER_PATIENT,
    )
    assert old.logical_id == new.logical_id == lid and new.unique_id == uid
    # Level 1 (the default): only the latest version.
    status, leaves = _by_logical_id(gateway, lid, level=1, leaf=True)
    assert status == "Success" and [e.entry_uuid for e in leaves] == [new_id]  # type: ignore[attr-defined]

    # The same update again: version 1 is not the latest any more; nothing changes.
    stale = _call(gateway, ITI_57, ebrim.build_submit_objects_request(
        _update_patient(original, patient=PATIENT_ID, previous="1")
    ))  # fmt: skip
    assert status_of(stale) == "Failure" and "XDSMetadataVersionError" in error_codes(stale)
    _, refs_after, _ = _query(
        gateway,
        AdhocQuery(query_id=GET_DOCUMENTS, return_type="ObjectRef")
        .add("$XDSDocumentEntryLogicalID", f"('{lid}')")
        .add("$MetadataLevel", "2"),
    )
    assert len(refs_after) == 2


def _contents(gw: Gateway, ss_uid: str) -> list[object]:
    query = AdhocQuery(query_id=GET_SS_AND_CONTENTS).add("$XDSSubmissionSetUniqueId", f"'{ss_uid}'")
    status, objects, codes = _query(gw, query)
    assert status == "Success", codes
    return objects


def test_iti62_and_iti86_remove_a_test_submission_and_its_document(gateway: Gateway) -> None:
    submission = _provide(gateway, "62")
    ss_uid = submission.submission_set.unique_id or ""  # type: ignore[union-attr]
    doc_uid = submission.document_entries[0].unique_id or ""
    objects = _contents(gateway, ss_uid)
    ids = {type(o).__name__: o.entry_uuid for o in objects}  # type: ignore[attr-defined]
    assert set(ids) == {"SubmissionSet", "DocumentEntry", "Association"}
    files_before = stored_files(gateway.settings.repository_storage_dir)
    assert len(files_before) == 1

    # A referenced object alone: the SubmissionSet's HasMember still points at it.
    refused = _call(gateway, ITI_62, build_remove_objects_request([ids["DocumentEntry"]]))
    assert status_of(refused) == "Failure"
    assert error_codes(refused) == ["ReferencesExistException"]
    unknown = _call(gateway, ITI_62, build_remove_objects_request(
        [*ids.values(), "urn:uuid:00000000-0000-4000-8000-000000000062"]
    ))  # fmt: skip
    assert error_codes(unknown) == ["UnresolvedReferenceException"]
    assert len(_contents(gateway, ss_uid)) == 3  # nothing changed

    removed = _call(gateway, ITI_62, build_remove_objects_request(list(ids.values())))
    assert status_of(removed) == "Success", error_codes(removed)
    assert _contents(gateway, ss_uid) == [] and _by_unique_id(gateway, doc_uid) == []

    # ITI-86, all or nothing: one unknown document refuses the whole request.
    mixed = _call(gateway, ITI_86, build_remove_documents_request(
        [_repository_request(gateway, doc_uid), _repository_request(gateway, "1.2.3.4456")]
    ))  # fmt: skip
    assert status_of(mixed) == "Failure" and error_codes(mixed) == ["XDSDocumentUniqueIdError"]
    assert stored_files(gateway.settings.repository_storage_dir) == files_before

    done = _call(gateway, ITI_86, build_remove_documents_request(
        [_repository_request(gateway, doc_uid)]
    ))  # fmt: skip
    assert status_of(done) == "Success", error_codes(done)
    assert stored_files(gateway.settings.repository_storage_dir) == []
    assert RepositoryIndex(gateway.database.engine).storage_keys() == set()
    retrieved = _call(
        gateway, ITI_43, build_retrieve_request([_repository_request(gateway, doc_uid)])
    )
    assert error_codes(retrieved) == ["XDSDocumentUniqueIdError"]
    again = _call(gateway, ITI_86, build_remove_documents_request(
        [_repository_request(gateway, doc_uid)]
    ))  # fmt: skip
    assert error_codes(again) == ["XDSDocumentUniqueIdError"]


def test_registry_remove_command_removes_a_submission_and_its_bytes(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    submission = _provide(gateway, "99")
    ss_uid = submission.submission_set.unique_id or ""  # type: ignore[union-attr]
    doc_uid = submission.document_entries[0].unique_id or ""
    monkeypatch.setenv("XDSI_GATEWAY_DATA_DIR", str(gateway.settings.data_dir))
    assert main(["registry", "remove", "--submission-set", ss_uid, "--dry-run"]) == 0
    assert len(capsys.readouterr().out.split()) == 3
    assert len(_contents(gateway, ss_uid)) == 3  # a dry run changes nothing

    assert main(["registry", "remove", "--submission-set", ss_uid, "--documents"]) == 0
    out = capsys.readouterr().out
    assert "removed 3 object(s)" in out and "removed 1 document(s)" in out
    assert _contents(gateway, ss_uid) == []
    assert stored_files(gateway.settings.repository_storage_dir) == []
    retrieved = _call(
        gateway, ITI_43, build_retrieve_request([_repository_request(gateway, doc_uid)])
    )
    assert error_codes(retrieved) == ["XDSDocumentUniqueIdError"]
    assert main(["registry", "remove", "--submission-set", ss_uid]) == 1  # gone


def test_remove_objects_request_is_the_lcm_element() -> None:
    body = build_remove_objects_request(["urn:uuid:1b4f2f2e-0000-4000-8000-000000000001"])
    assert body.tag == ns.qname(ns.LCM, "RemoveObjectsRequest")
    assert ITI_62.request_qname == body.tag
