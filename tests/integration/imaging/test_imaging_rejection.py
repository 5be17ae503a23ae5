"""IHE RAD IOCM at the source: Rejection Notes by C-STORE and STOW-RS, and `imaging reject`.

A whole gateway (registry, repository, imaging source, DICOMweb) publishes a 20-instance study;
a Rejection Note for 3 instances arrives by C-STORE: the manifest is replaced (RPLC) by one that
lists 17, the old one Deprecated; RAD-69, WADO-RS and QIDO-RS no longer give the 3. A second note,
by STOW-RS, rejects the 17 others: the manifest is deprecated by ITI-57 (an
UpdateAvailabilityStatus association the registry keeps) and ITI-18 finds no Approved one; with
$MetadataLevel 2 its logicalID gives it Deprecated. The same with the registry and repository in
another ``serve`` process (``imaging_source.registry_url``: ITI-57 over SOAP).
A rejected instance sent again never reaches a manifest.
The notes are valid KOS (dciodvfy). On SQLite and PostgreSQL.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
import requests

from gateway import dicomscu
from gateway.app import Gateway
from gateway.imaging import synthetic
from gateway.imaging.kos import KOS_SOP_CLASS_UID, Reference
from gateway.imaging.rejection import REJECTION_TITLES, build_note, encode_note, read_note
from gateway.metadata import vocabulary as v
from gateway.metadata.model import Association, DocumentEntry
from gateway.metadata.query import AdhocQuery, build_query_request, parse_query_response
from gateway.soap import transactions as tx
from gateway.soap.client import SoapClient
from tests.integration.dicomweb.conftest import feed, start_gateway, wait_for
from tests.integration.imaging.conftest import associate
from tests.integration.imaging.test_imaging_dicom import retrieve, whole_study
from tests.integration.imaging.test_imaging_through_registry import (
    APPROVED,
    DEPRECATED,
    _evidence,
    _manifests,
    _retrieve_document,
)
from tests.integration.repository.serve_process import ServeProcess, feed_patient
from tests.support.dciodvfy import validate
from tests.unit.imaging.support import study_spec

SOURCE_UID = "1.3.6.1.4.1.21367.13.80.100"
GET_DOCUMENTS = "urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4"  # ITI TF-2 §3.18.4.1.2.3.7.5
GET_ASSOCIATIONS = "urn:uuid:a7ae438b-4bc2-4642-93e9-be891f7bb155"  # §3.18.4.1.2.3.7.6


@pytest.fixture
def gateway(db_url: str, tmp_path: Path) -> Iterator[Gateway]:
    """A whole gateway on SQLite or PostgreSQL (``db_url``)."""
    gw = start_gateway(tmp_path, XDSI_GATEWAY_DATABASE_URL=db_url)
    try:
        yield gw
    finally:
        gw.stop()


def _study(tmp_path: Path) -> tuple[synthetic.StudySpec, list[pydicom.Dataset], list[Path]]:
    spec = study_spec(
        patient_id=f"REJ-{uuid.uuid4().hex[:8]}",
        series=(
            synthetic.SeriesSpec(modality="CT", count=12, body_part="CHEST"),
            synthetic.SeriesSpec(modality="CT", count=8, body_part="CHEST"),
        ),
    )
    instances = synthetic.make_study(spec)
    return spec, instances, synthetic.write_study(instances, tmp_path / "study")


def _note(instances: list[pydicom.Dataset], reason: str) -> bytes:
    ds = build_note(
        instances[0],
        [
            Reference(
                sop_class_uid=str(i.SOPClassUID),
                sop_instance_uid=str(i.SOPInstanceUID),
                series_instance_uid=str(i.SeriesInstanceUID),
            )
            for i in instances
        ],
        reason,
        retrieve_location_uid=SOURCE_UID,
        retrieve_ae_title="XDSI_SOURCE",
    )
    return encode_note(ds)


def _qido_instances(gw: Gateway, study_uid: str) -> set[str]:
    answer = requests.get(
        f"{gw.base_url}/dicomweb/studies/{study_uid}/instances",
        headers={"Accept": "application/dicom+json"},
        timeout=30,
    )
    if answer.status_code == 204:
        return set()
    assert answer.status_code == 200, answer.text
    return {item["00080018"]["Value"][0] for item in answer.json()}


def _registry_query(registry_url: str, query: AdhocQuery) -> list[object]:
    body = SoapClient(registry_url, timeout=30).call(tx.ITI_18, build_query_request(query)).body
    answer = parse_query_response(body)
    assert answer.status == "Success", answer.errors
    return list(answer.objects)


def assert_deprecated_by_iti57(registry_url: str, entry_uuid: str) -> None:
    """ITI-18 GetDocuments by logicalID with $MetadataLevel 2: the manifest is Deprecated, still
    version 1; GetAssociations: the ITI-57 UpdateAvailabilityStatus association (Approved ->
    Deprecated) that did it (ITI TF-2b §3.57.4.1.3.3.3)."""
    query = AdhocQuery(query_id=GET_DOCUMENTS)
    query.add("$XDSDocumentEntryLogicalID", f"('{entry_uuid}')").add("$MetadataLevel", "2")
    [entry] = [o for o in _registry_query(registry_url, query) if isinstance(o, DocumentEntry)]
    assert entry.entry_uuid == entry_uuid and entry.logical_id == entry_uuid
    assert entry.availability_status == DEPRECATED and entry.version == "1"
    query = AdhocQuery(query_id=GET_ASSOCIATIONS).add("$uuid", f"('{entry_uuid}')")
    changes = [
        o
        for o in _registry_query(registry_url, query)
        if isinstance(o, Association) and o.association_type == v.UPDATE_AVAILABILITY_STATUS
    ]
    assert [c.target_object for c in changes] == [entry_uuid]


def test_rejection_notes_replace_then_deprecate_the_manifest(
    gateway: Gateway, tmp_path: Path
) -> None:
    spec, instances, paths = _study(tmp_path)
    feed(gateway, spec.patient_id)
    assert gateway.imaging is not None
    host, port = gateway.imaging.address
    assoc = associate(host, port, [synthetic.SOP_CLASSES["CT"], KOS_SOP_CLASS_UID])
    try:
        for path in paths:
            assert dicomscu.send_c_store(assoc, path).Status == 0x0000
    finally:
        assoc.release()
    [first] = wait_for(lambda: _manifests(gateway, spec.patient_id, APPROVED))
    assert len(_evidence(pydicom.dcmread(io.BytesIO(_retrieve_document(gateway, first))))) == 20
    assert len(_qido_instances(gateway, spec.study_uid)) == 20

    # A Rejection Note for 3 of the 20, by C-STORE.
    rejected, kept = instances[:3], instances[3:]
    note = _note(rejected, "113001")
    report = validate(note)
    assert not report.errors, report.text
    parsed = read_note(pydicom.dcmread(io.BytesIO(note)))
    assert parsed is not None and parsed.reason == "113001"
    assert {r.sop_instance_uid for r in parsed.rejected} == {
        str(i.SOPInstanceUID) for i in rejected
    }
    note_path = tmp_path / "note.dcm"
    note_path.write_bytes(note)
    assoc = associate(host, port, [KOS_SOP_CLASS_UID])
    try:
        assert dicomscu.send_c_store(assoc, note_path).Status == 0x0000
    finally:
        assoc.release()

    [second] = wait_for(
        lambda: [
            e
            for e in _manifests(gateway, spec.patient_id, APPROVED)
            if e.unique_id != first.unique_id
        ]
    )
    [old] = _manifests(gateway, spec.patient_id, DEPRECATED)
    assert old.unique_id == first.unique_id
    listed = _evidence(pydicom.dcmread(io.BytesIO(_retrieve_document(gateway, second))))
    assert set(listed) == {str(i.SOPInstanceUID) for i in kept}  # 17, not the note itself

    # RAD-69: the 17 come back, the 3 are refused.
    response = retrieve(gateway.base_url + tx.IMAGING_SOURCE_PATH, whole_study(instances))
    assert {d.document_unique_id for d in response.documents} == set(listed)
    for document in response.documents:
        document.attachment.discard()
    refused = {e.location for e in response.errors}
    assert refused == {str(i.SOPInstanceUID) for i in rejected}
    assert {e.code for e in response.errors} == {"XDSDocumentUniqueIdError"}
    # WADO-RS and QIDO-RS forget them too.
    gone = rejected[0]
    answer = requests.get(
        f"{gateway.base_url}/dicomweb/studies/{spec.study_uid}/series/"
        f"{gone.SeriesInstanceUID}/instances/{gone.SOPInstanceUID}",
        headers={"Accept": 'multipart/related; type="application/dicom"'},
        timeout=30,
    )
    assert answer.status_code == 404
    found = _qido_instances(gateway, spec.study_uid)
    assert not found & {str(i.SOPInstanceUID) for i in rejected}
    assert set(listed) <= found

    # A rejected instance sent again is taken out before the next manifest.
    assoc = associate(host, port, [synthetic.SOP_CLASSES["CT"]])
    try:
        assert dicomscu.send_c_store(assoc, paths[0]).Status == 0x0000
    finally:
        assoc.release()
    [third] = wait_for(
        lambda: [
            e
            for e in _manifests(gateway, spec.patient_id, APPROVED)
            if e.unique_id != second.unique_id
        ]
    )
    relisted = _evidence(pydicom.dcmread(io.BytesIO(_retrieve_document(gateway, third))))
    assert set(relisted) == set(listed)
    response = retrieve(gateway.base_url + tx.IMAGING_SOURCE_PATH, whole_study(rejected[:1]))
    assert not response.documents and len(response.errors) == 1

    # A second note, by STOW-RS, rejects the 17 others: the manifest is deprecated.
    boundary = uuid.uuid4().hex
    body = (
        f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
        + _note(kept, "113039")
        + f"\r\n--{boundary}--\r\n".encode()
    )
    answer = requests.post(
        f"{gateway.base_url}/dicomweb/studies",
        data=body,
        headers={
            "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
            "Accept": "application/dicom+json",
        },
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    wait_for(lambda: not _manifests(gateway, spec.patient_id, APPROVED))
    deprecated = {e.unique_id for e in _manifests(gateway, spec.patient_id, DEPRECATED)}
    assert deprecated == {first.unique_id, second.unique_id, third.unique_id}
    assert_deprecated_by_iti57(gateway.base_url + tx.REGISTRY_PATH, third.entry_uuid)
    response = retrieve(gateway.base_url + tx.IMAGING_SOURCE_PATH, whole_study(instances))
    assert not response.documents
    assert len(response.errors) == 20
    assert REJECTION_TITLES["113039"] == "Data Retention Policy Expired"


def test_imaging_reject_command_makes_a_valid_note_and_republishes(
    gateway: Gateway, tmp_path: Path
) -> None:
    import argparse

    from gateway.imaging import reject_command

    spec, instances, paths = _study(tmp_path)
    feed(gateway, spec.patient_id)
    assert gateway.imaging is not None
    report = gateway.imaging.load_files(paths, tmp_path)
    assert not report.rejected
    [first] = wait_for(lambda: _manifests(gateway, spec.patient_id, APPROVED))
    series = str(instances[12].SeriesInstanceUID)  # the second series: 8 instances
    out, err = io.StringIO(), io.StringIO()
    args = argparse.Namespace(
        study=spec.study_uid, series=series, instance=[], reason="113037", config=None
    )
    assert reject_command.run(args, gateway.imaging, out=out, err=err) == 0, err.getvalue()
    assert "rejected 8 instance(s)" in out.getvalue()
    note = gateway.imaging.index.instance(out.getvalue().split("Rejection Note ")[1].split()[0])
    assert note is not None
    assert not validate(gateway.imaging.store.path(note.path)).errors
    [second] = _manifests(gateway, spec.patient_id, APPROVED)
    assert second.unique_id != first.unique_id
    listed = _evidence(pydicom.dcmread(io.BytesIO(_retrieve_document(gateway, second))))
    assert set(listed) == {str(i.SOPInstanceUID) for i in instances[:12]}
    # Unknown instance: nothing done, exit 2.
    args.instance, args.series = ["1.2.3.4"], None
    assert reject_command.run(args, gateway.imaging, out=out, err=err) == 2


def test_deprecation_reaches_a_registry_in_another_process(tmp_path: Path) -> None:
    """Registry and repository in a ``serve`` process; the imaging source in this one publishes
    there (``imaging_source.repository_url``) and deprecates there by ITI-57 over SOAP
    (``imaging_source.registry_url``) when a note rejects every instance."""
    server = ServeProcess(tmp_path / "server")
    try:
        gw = start_gateway(
            tmp_path,
            XDSI_REGISTRY_ENABLED="false",
            XDSI_REPOSITORY_ENABLED="false",
            XDSI_HL7_ENABLED="false",
            XDSI_IMAGING_SOURCE_REPOSITORY_URL=server.repository_url,
            XDSI_IMAGING_SOURCE_REGISTRY_URL=server.registry_url,
        )
        try:
            spec, instances, paths = _study(tmp_path)
            feed_patient(server, spec.patient_id)
            assert gw.imaging is not None
            assert not gw.imaging.load_files(paths, tmp_path).rejected
            index = gw.imaging.index
            entry_uuid = wait_for(
                lambda: getattr(index.study(spec.study_uid), "manifest_entry_uuid", None)
            )
            query = AdhocQuery(query_id=GET_DOCUMENTS)
            query.add("$XDSDocumentEntryEntryUUID", f"('{entry_uuid}')")
            [entry] = _registry_query(server.registry_url, query)
            assert isinstance(entry, DocumentEntry) and entry.availability_status == APPROVED

            note_path = tmp_path / "note.dcm"
            note_path.write_bytes(_note(instances, "113039"))
            assert not gw.imaging.load_files([note_path], tmp_path).rejected
            wait_for(
                lambda: [
                    o
                    for o in _registry_query(server.registry_url, query)
                    if isinstance(o, DocumentEntry) and o.availability_status == DEPRECATED
                ]
            )
            assert_deprecated_by_iti57(server.registry_url, entry_uuid)
        finally:
            gw.stop()
    finally:
        server.stop()
