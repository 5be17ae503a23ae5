"""The imaging document source over real sockets: C-ECHO, C-STORE from pynetdicom and dcmtk
storescu, TCP_NODELAY, refusals, the idle publication of a 120-instance CT/MR study, RAD-69 over
HTTP returning every instance byte for byte, and a replacing manifest for a late instance."""

from __future__ import annotations

import socket
from pathlib import Path

import pydicom
import pytest

from gateway import dicomscu
from gateway.imaging import synthetic
from gateway.imaging.index import PUBLISHED
from gateway.metadata import retrieve as codec
from gateway.metadata import vocabulary as v
from gateway.metadata.retrieve import Status
from gateway.soap import transactions as tx
from gateway.soap.client import SoapClient
from tests.integration.imaging.conftest import Running, associate, run_storescu, storescu
from tests.unit.imaging.support import SOURCE_UID, evidence_instances, study_spec

VERIFICATION = "1.2.840.10008.1.1"
CT = synthetic.SOP_CLASSES["CT"]
MR = synthetic.SOP_CLASSES["MR"]
US = synthetic.SOP_CLASSES["US"]
ALL_SYNTAXES = (
    "1.2.840.10008.1.2.1",
    "1.2.840.10008.1.2",
    "1.2.840.10008.1.2.1.99",
    "1.2.840.10008.1.2.4.50",
)


def big_study(tmp_path: Path) -> tuple[synthetic.StudySpec, list[pydicom.Dataset], list[Path]]:
    """3 series, 120 instances: CT explicit, MR implicit (half deflated), US JPEG."""
    spec = study_spec(
        series=(
            synthetic.SeriesSpec(modality="CT", count=40, body_part="CHEST"),
            synthetic.SeriesSpec(
                modality="MR",
                count=40,
                body_part="HEAD",
                transfer_syntax=synthetic.ImplicitVRLittleEndian,
            ),
            synthetic.SeriesSpec(
                modality="US",
                count=40,
                body_part="ABDOMEN",
                transfer_syntax=synthetic.JPEGBaseline8Bit,
            ),
        )
    )
    instances = synthetic.make_study(spec)
    for ds in instances[40:80:2]:  # every other MR instance deflated
        ds.file_meta.TransferSyntaxUID = synthetic.DeflatedExplicitVRLittleEndian
    return spec, instances, synthetic.write_study(instances, tmp_path / "study")


def retrieve(
    url: str, request: codec.RetrieveImagingDocumentSetRequest
) -> codec.RetrieveDocumentSetResponse:
    response = SoapClient(url, timeout=60).call(tx.RAD_69, codec.build_imaging_request(request))
    return codec.parse_retrieve_response(response.body, response.attachments)


def whole_study(
    instances: list[pydicom.Dataset], syntaxes: tuple[str, ...] = ALL_SYNTAXES
) -> codec.RetrieveImagingDocumentSetRequest:
    series: dict[str, list[codec.DocumentRequest]] = {}
    for ds in instances:
        series.setdefault(str(ds.SeriesInstanceUID), []).append(
            codec.DocumentRequest(
                repository_unique_id=SOURCE_UID, document_unique_id=str(ds.SOPInstanceUID)
            )
        )
    study = codec.StudyRequest(
        study_instance_uid=str(instances[0].StudyInstanceUID),
        series=tuple(
            codec.SeriesRequest(series_instance_uid=uid, documents=tuple(docs))
            for uid, docs in series.items()
        ),
    )
    return codec.RetrieveImagingDocumentSetRequest(studies=(study,), transfer_syntaxes=syntaxes)


def test_echo_and_tcp_nodelay(running: Running) -> None:
    assoc = associate(running.host, running.port, [VERIFICATION, CT])
    try:
        assert assoc.is_established
        assert assoc.send_c_echo().Status == 0x0000
        server = running.source.scp.server
        assert server is not None
        [accepted] = server.associations
        assert accepted.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        assert accepted.calling_ae == "TEST_SCU"
    finally:
        assoc.release()


def test_wrong_called_ae_title_is_rejected(running: Running) -> None:
    assoc = associate(running.host, running.port, [CT], called="SOMEONE_ELSE")
    assert not assoc.is_established and assoc.is_rejected


def test_study_from_pynetdicom_and_storescu_is_published_and_retrieved_byte_for_byte(
    running: Running, tmp_path: Path
) -> None:
    spec, instances, paths = big_study(tmp_path)
    series = {
        n: [p for p, ds in zip(paths, instances, strict=True) if ds.SeriesNumber == n]
        for n in (1, 2, 3)
    }
    by_pynetdicom = series[2]  # implicit and deflated: dcmtk would convert them
    if has_storescu():
        run_storescu(running.host, running.port, series[1])
        run_storescu(running.host, running.port, series[3], "-xy")  # propose JPEG Baseline
    else:  # still the whole study, from pynetdicom only (the dcmtk part is skipped)
        by_pynetdicom = paths
    assoc = associate(running.host, running.port, [CT, MR, US])
    try:
        for path in by_pynetdicom:
            assert dicomscu.send_c_store(assoc, path).Status == 0x0000
    finally:
        assoc.release()
    assert len(running.source.index.instances_of_study(spec.study_uid)) == 120

    result = running.published.wait_for(lambda r: r.instances == 120)
    assert result.outcome == "published"
    [published] = [
        p for p in running.repository.received if p.kos.SOPInstanceUID == result.manifest_uid
    ]
    [entry] = published.submission.document_entries
    assert entry.mime_type == "application/dicom"
    assert entry.unique_id == published.kos.SOPInstanceUID
    assert [c.code for c in entry.event_code_list[:2]] == ["CT", "MR"]
    listed = evidence_instances(published.kos)
    assert set(listed) == {str(ds.SOPInstanceUID) for ds in instances}
    assert {value[2] for value in listed.values()} == {SOURCE_UID}
    study = running.source.index.study(spec.study_uid)
    assert study is not None and study.state == PUBLISHED

    response = retrieve(running.rad69_url, whole_study(instances))
    assert response.status is Status.SUCCESS and response.errors == []
    assert len(response.documents) == 120
    sent = {
        str(ds.SOPInstanceUID): path.read_bytes() for ds, path in zip(instances, paths, strict=True)
    }
    for document in response.documents:
        part = document.attachment.read_bytes()
        # The data set exactly as the sender encoded it; the File Meta Information in front is
        # the receiver's (a C-STORE carries no file meta, PS3.7 §9.3.1).
        assert synthetic.dataset_bytes(part) == synthetic.dataset_bytes(
            sent[document.document_unique_id]
        )
        assert document.repository_unique_id == SOURCE_UID
        document.attachment.discard()


def has_storescu() -> bool:
    try:
        storescu()
    except pytest.skip.Exception:
        return False
    return True


def test_storescu_alone(running: Running, tmp_path: Path) -> None:
    """dcmtk's storescu as the modality (skipped with a reason when dcmtk is absent)."""
    storescu()
    instances = synthetic.make_study(
        study_spec(series=(synthetic.SeriesSpec(modality="CT", count=5),))
    )
    paths = synthetic.write_study(instances, tmp_path / "dcmtk")
    run_storescu(running.host, running.port, paths)
    stored = running.source.index.instances_of_study(str(instances[0].StudyInstanceUID))
    assert sorted(r.sop_instance_uid for r in stored) == sorted(
        str(ds.SOPInstanceUID) for ds in instances
    )


def test_duplicates_are_idempotent_and_bad_data_sets_are_refused(
    running: Running, tmp_path: Path
) -> None:
    instances = synthetic.make_study(
        study_spec(series=(synthetic.SeriesSpec(modality="CT", count=2),))
    )
    paths = synthetic.write_study(instances, tmp_path / "dup")
    assoc = associate(running.host, running.port, [CT])
    try:
        for path in paths + paths:
            assert dicomscu.send_c_store(assoc, path).Status == 0x0000
        broken = synthetic.make_study(
            study_spec(series=(synthetic.SeriesSpec(modality="CT", count=1),))
        )[0]
        del broken.SeriesInstanceUID
        assert dicomscu.send_c_store(assoc, broken).Status == 0xC001
    finally:
        assoc.release()
    assert len(running.source.index.instances_of_study(str(instances[0].StudyInstanceUID))) == 2
    assert running.source.index.study(str(broken.StudyInstanceUID)) is None
    assert len(list(running.source.store.root.rglob("*.dcm"))) == 2


def test_late_instance_after_publication_replaces_the_manifest(
    running: Running, tmp_path: Path
) -> None:
    spec = study_spec(series=(synthetic.SeriesSpec(modality="CT", count=3),))
    instances = synthetic.make_study(spec)
    paths = synthetic.write_study(instances, tmp_path / "first")
    assoc = associate(running.host, running.port, [CT])
    try:
        for path in paths:
            assert dicomscu.send_c_store(assoc, path).Status == 0x0000
    finally:
        assoc.release()
    done = running.published.wait_for(lambda r: r.instances == 3)
    [first] = [p for p in running.repository.received if p.kos.SOPInstanceUID == done.manifest_uid]
    study = running.source.index.study(spec.study_uid)
    assert study is not None and study.state == PUBLISHED
    # a resend of a published instance changes nothing
    assoc = associate(running.host, running.port, [CT])
    try:
        assert dicomscu.send_c_store(assoc, paths[0]).Status == 0x0000
        study = running.source.index.study(spec.study_uid)
        assert study is not None and study.state == PUBLISHED
        late = synthetic.make_study(
            synthetic.StudySpec(
                **{
                    **{name: getattr(spec, name) for name in spec.__dataclass_fields__},
                    "series": (synthetic.SeriesSpec(modality="CT", count=1),),
                }
            )
        )[0]
        assert dicomscu.send_c_store(assoc, late).Status == 0x0000
    finally:
        assoc.release()
    first_entry = first.submission.document_entries[0]
    result = running.published.wait_for(lambda r: r.replaced_entry_uuid == first_entry.entry_uuid)
    assert result.instances == 4
    [second] = [
        p for p in running.repository.received if p.kos.SOPInstanceUID == result.manifest_uid
    ]
    rplc = [a for a in second.submission.associations if a.association_type == v.RPLC]
    assert [a.target_object for a in rplc] == [first_entry.entry_uuid]
    assert len(evidence_instances(second.kos)) == 4
    assert str(late.SOPInstanceUID) in evidence_instances(second.kos)
