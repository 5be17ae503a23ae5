"""The imaging source inside a whole gateway: DICOM in, KOS registered, found, retrieved, replaced.

One `Gateway` with every actor (real registry, repository and imaging source, as `serve` builds
it): a patient is fed over MLLP (ITI-8), a 120-instance CT/MR study arrives by dcmtk storescu and
pynetdicom, it is published after the idle time (RAD-68 = ITI-41 into the repository, ITI-42 into
the registry), ITI-18 finds exactly one manifest, ITI-43 returns it, it lists the 120 instances
with our Retrieve Location UID, RAD-69 returns them; a late instance replaces the manifest (RPLC).
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from lxml import etree

from gateway import dicomscu
from gateway.app import Gateway
from gateway.config import load_settings
from gateway.hl7.mllp import send_messages
from gateway.imaging import synthetic
from gateway.metadata import vocabulary as v
from gateway.metadata.ebrim import parse_registry_object_list
from gateway.metadata.model import Association, DocumentEntry
from gateway.soap import ns
from gateway.soap import transactions as tx
from gateway.soap.client import SoapClient
from tests.integration.imaging.conftest import associate, run_storescu, storescu
from tests.integration.imaging.test_imaging_dicom import big_study, retrieve, whole_study
from tests.support.waiting import wait_for

DOMAIN = "1.3.6.1.4.1.21367.13.20.1000"
SOURCE_UID = "1.3.6.1.4.1.21367.13.80.100"
KOS_FORMAT = ("1.2.840.10008.5.1.4.1.1.88.59", "1.2.840.10008.2.6.1")
FIND_DOCUMENTS = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"
GET_ASSOCIATIONS = "urn:uuid:a7ae438b-4bc2-4642-93e9-be891f7bb155"
APPROVED = "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"
DEPRECATED = "urn:oasis:names:tc:ebxml-regrep:StatusType:Deprecated"


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Gateway]:
    settings = load_settings(
        environ={
            "XDSI_GATEWAY_DATA_DIR": str(tmp_path / "data"),
            "XDSI_HTTP_PORT": "0",
            "XDSI_HL7_MLLP_PORT": "0",
            "XDSI_IMAGING_SOURCE_DICOM_PORT": "0",
            "XDSI_IMAGING_SOURCE_STUDY_IDLE_SECONDS": "1",
        }
    )
    gw = Gateway(settings)
    gw.start()
    try:
        yield gw
    finally:
        gw.stop()


def _feed(gw: Gateway, patient: str) -> None:
    adt = (
        "MSH|^~\\&|ADT|HOSP|XDS|REGION|20240102101500||ADT^A01^ADT_A01|MSG-1|P|2.3.1\r"
        "EVN|A01|20240102101500\r"
        f"PID|||{patient}^^^&{DOMAIN}&ISO||Synthetic^Patient||19700101|O\r"
        "PV1||O\r"
    ).encode()
    host, port = gw.mllp_address
    [ack] = send_messages(host, port, [adt])
    assert b"MSA|AA|MSG-1" in ack


def _query(gw: Gateway, query_id: str, slots: dict[str, str], return_type: str = "LeafClass"):
    body = etree.Element(ns.qname(ns.QUERY, "AdhocQueryRequest"), nsmap={"query": ns.QUERY})
    etree.SubElement(
        body,
        ns.qname(ns.QUERY, "ResponseOption"),
        returnComposedObjects="true",
        returnType=return_type,
    )
    adhoc = etree.SubElement(
        body, ns.qname(ns.RIM, "AdhocQuery"), nsmap={"rim": ns.RIM}, id=query_id
    )
    for name, value in slots.items():
        slot = etree.SubElement(adhoc, ns.qname(ns.RIM, "Slot"), name=name)
        values = etree.SubElement(slot, ns.qname(ns.RIM, "ValueList"))
        etree.SubElement(values, ns.qname(ns.RIM, "Value")).text = value
    response = SoapClient(gw.base_url + tx.REGISTRY_PATH).call(tx.ITI_18, body)
    assert response.body.get("status", "").endswith(":Success"), etree.tostring(response.body)
    object_list = response.body.find(ns.qname(ns.RIM, "RegistryObjectList"))
    return parse_registry_object_list(object_list)


def _manifests(gw: Gateway, patient: str, status: str) -> list[DocumentEntry]:
    objects = _query(
        gw,
        FIND_DOCUMENTS,
        {
            "$XDSDocumentEntryPatientId": f"'{patient}^^^&{DOMAIN}&ISO'",
            "$XDSDocumentEntryStatus": f"('{status}')",
            "$XDSDocumentEntryFormatCode": f"('{KOS_FORMAT[0]}^^{KOS_FORMAT[1]}')",
        },
    )
    return [o for o in objects if isinstance(o, DocumentEntry)]


def _retrieve_document(gw: Gateway, entry: DocumentEntry) -> bytes:
    body = etree.Element(ns.qname(ns.XDSB, "RetrieveDocumentSetRequest"), nsmap={"xdsb": ns.XDSB})
    request = etree.SubElement(body, ns.qname(ns.XDSB, "DocumentRequest"))
    etree.SubElement(
        request, ns.qname(ns.XDSB, "RepositoryUniqueId")
    ).text = entry.repository_unique_id
    etree.SubElement(request, ns.qname(ns.XDSB, "DocumentUniqueId")).text = entry.unique_id
    response = SoapClient(gw.base_url + tx.REPOSITORY_PATH).call(tx.ITI_43, body)
    [document] = response.body.findall(ns.qname(ns.XDSB, "DocumentResponse"))
    assert document.findtext(ns.qname(ns.XDSB, "mimeType")) == "application/dicom"
    data = response.attachment_for(document.find(ns.qname(ns.XDSB, "Document"))).read_bytes()
    response.discard_attachments()
    return data


def _evidence(kos: pydicom.Dataset) -> dict[str, str]:
    return {
        str(item.ReferencedSOPInstanceUID): str(series.RetrieveLocationUID)
        for study in kos.CurrentRequestedProcedureEvidenceSequence
        for series in study.ReferencedSeriesSequence
        for item in series.ReferencedSOPSequence
    }


def test_study_is_published_found_retrieved_and_replaced(gateway: Gateway, tmp_path: Path) -> None:
    spec, instances, paths = big_study(tmp_path)
    _feed(gateway, spec.patient_id)
    host, port = gateway.imaging.address
    series = {
        n: [p for p, ds in zip(paths, instances, strict=True) if ds.SeriesNumber == n]
        for n in (1, 2, 3)
    }
    by_pynetdicom = series[2]  # implicit and deflated: dcmtk would convert them
    if storescu_available():
        run_storescu(host, port, series[1])
        run_storescu(host, port, series[3], "-xy")
    else:
        by_pynetdicom = paths
    assoc = associate(host, port, [synthetic.SOP_CLASSES["CT"], synthetic.SOP_CLASSES["MR"]])
    try:
        for path in by_pynetdicom:
            assert dicomscu.send_c_store(assoc, path).Status == 0x0000
    finally:
        assoc.release()

    # ITI-18: exactly one manifest, with the metadata of RAD TF-3 §4.68.4.1.2.
    [entry] = wait_for(lambda: _manifests(gateway, spec.patient_id, APPROVED))
    assert entry.mime_type == "application/dicom"
    assert (entry.format_code.code, entry.format_code.scheme) == KOS_FORMAT
    assert entry.patient_id == f"{spec.patient_id}^^^&{DOMAIN}&ISO"
    assert entry.repository_unique_id == "1.3.6.1.4.1.21367.13.40.100"
    assert {c.code for c in entry.event_code_list} >= {"CT", "MR"}
    assert any(
        r.startswith(spec.study_uid) and "studyInstanceUID" in r for r in entry.reference_id_list
    )
    assert any(
        r.startswith(spec.accession_number) and "accession" in r for r in entry.reference_id_list
    )
    assert entry.source_patient_id and entry.source_patient_id.startswith(spec.patient_id)

    # ITI-43: the KOS, listing exactly the 120 instances at our Retrieve Location UID.
    kos = pydicom.dcmread(io.BytesIO(_retrieve_document(gateway, entry)))
    assert str(kos.SOPInstanceUID) == entry.unique_id
    evidence = _evidence(kos)
    assert set(evidence) == {str(ds.SOPInstanceUID) for ds in instances}
    assert set(evidence.values()) == {SOURCE_UID}

    # RAD-69: 120 parts, each the data set exactly as sent.
    response = retrieve(gateway.base_url + tx.IMAGING_SOURCE_PATH, whole_study(instances))
    assert len(response.documents) == 120
    sent = {str(ds.SOPInstanceUID): p.read_bytes() for ds, p in zip(instances, paths, strict=True)}
    for document in response.documents:
        assert synthetic.dataset_bytes(document.attachment.read_bytes()) == (
            synthetic.dataset_bytes(sent[document.document_unique_id])
        )
        document.attachment.discard()

    # A late instance: a replacing manifest (RPLC), the old one Deprecated.
    late_spec = dataclasses.replace(
        spec, series=(synthetic.SeriesSpec(modality="CT", count=1, body_part="CHEST"),)
    )
    [late] = synthetic.make_study(late_spec)
    late.SeriesInstanceUID = instances[0].SeriesInstanceUID
    [late_path] = synthetic.write_study([late], tmp_path / "late")
    assoc = associate(host, port, [synthetic.SOP_CLASSES["CT"]])
    try:
        assert dicomscu.send_c_store(assoc, late_path).Status == 0x0000
    finally:
        assoc.release()
    [new] = wait_for(
        lambda: [
            e
            for e in _manifests(gateway, spec.patient_id, APPROVED)
            if e.unique_id != entry.unique_id
        ]
    )
    [old] = _manifests(gateway, spec.patient_id, DEPRECATED)
    assert old.unique_id == entry.unique_id
    associations = [
        o
        for o in _query(gateway, GET_ASSOCIATIONS, {"$uuid": f"('{new.entry_uuid}')"})
        if isinstance(o, Association)
    ]
    assert any(
        a.association_type == v.RPLC and a.target_object == old.entry_uuid for a in associations
    )
    replaced = pydicom.dcmread(io.BytesIO(_retrieve_document(gateway, new)))
    assert len(_evidence(replaced)) == 121


def storescu_available() -> bool:
    try:
        storescu()
    except BaseException:  # the helper skips when dcmtk is absent; here we fall back instead
        return False
    return True
