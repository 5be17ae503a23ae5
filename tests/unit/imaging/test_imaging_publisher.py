"""Publishing (gateway.imaging.publisher, rad68) through a recording in-process repository: the
ITI-41 request and its DocumentEntry, replacement (RPLC) for late instances, held studies,
failures and retries, on-demand publication and the ``publish`` command."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest
from lxml import etree

from gateway.config import load_settings
from gateway.imaging import synthetic
from gateway.imaging.codes import KOS_FORMAT_CODE
from gateway.imaging.commands import publish
from gateway.imaging.index import HELD, PUBLISHED, RECEIVING
from gateway.imaging.publisher import (
    BUSY_OUTCOME,
    FAILED_OUTCOME,
    HELD_OUTCOME,
    PUBLISHED_OUTCOME,
    UNCHANGED_OUTCOME,
    UNKNOWN_OUTCOME,
)
from gateway.imaging.rad68 import (
    InProcessRepositoryClient,
    PublishError,
    SoapRepositoryClient,
    send,
)
from gateway.imaging.source import ImagingSource, repository_client
from gateway.metadata import vocabulary as v
from gateway.metadata.retrieve import Status, build_registry_response
from gateway.metadata.validate import ITI_41, validate_submission
from gateway.soap import ns
from tests.unit.imaging.support import (
    AE_TITLE,
    DOMAIN_OID,
    LOCAL_ISSUER_OID,
    SOURCE_UID,
    RecordingRepository,
    encoded_study,
    evidence_instances,
    make_source,
    study_spec,
)


@pytest.fixture
def quick(tmp_path: Path, repository: RecordingRepository) -> ImagingSource:
    """A source whose studies are due at once (idle 0) and retried at once."""
    return make_source(tmp_path, repository, idle=0, retry_seconds=0, held_retry_seconds=0)


def ingest(source: ImagingSource, spec: synthetic.StudySpec) -> list[bytes]:
    data = encoded_study(spec)
    for item in data:
        source.ingest.store_encoded(item)
    return data


def test_quiet_study_is_published_with_the_manifest_metadata(
    quick: ImagingSource, repository: RecordingRepository
) -> None:
    spec = study_spec()
    ingest(quick, spec)
    [result] = quick.publish_due()
    assert result.outcome == PUBLISHED_OUTCOME and result.instances == 5
    [published] = repository.received
    request = published.request
    assert request.tag == ns.qname(ns.XDSB, "ProvideAndRegisterDocumentSetRequest")
    submission = published.submission
    validate_submission(submission, rules=ITI_41, repository=True)
    [entry] = submission.document_entries
    kos = published.kos
    assert published.document_id == entry.entry_uuid == result.entry_uuid
    assert entry.unique_id == kos.SOPInstanceUID == result.manifest_uid
    assert entry.mime_type == "application/dicom"
    assert entry.format_code is not None and entry.format_code.matches(KOS_FORMAT_CODE)
    assert entry.patient_id == f"PAT-0042^^^&{DOMAIN_OID}&ISO"
    assert entry.source_patient_id == entry.patient_id
    assert entry.reference_id_list == [
        f"{spec.study_uid}^^^^urn:ihe:iti:xds:2016:studyInstanceUID",
        "ACC-7^^^&1.3.6.1.4.1.21367.13.202.2000&ISO^urn:ihe:iti:xds:2013:accession",
    ]
    assert [c.code for c in entry.event_code_list] == [
        "CT",
        "MR",
        "43799004",
        "69536005",
        "818981001",
    ]
    assert entry.service_start_time == "20240315142530"
    assert entry.type_code is not None and entry.type_code.code == "18748-4"
    assert submission.submission_set is not None
    assert submission.submission_set.source_id == SOURCE_UID
    assert [a.association_type for a in submission.associations] == [v.HAS_MEMBER]
    listed = evidence_instances(kos)
    assert len(listed) == 5
    assert {value[2:] for value in listed.values()} == {(SOURCE_UID, AE_TITLE)}
    study = quick.index.study(spec.study_uid)
    assert study is not None and study.state == PUBLISHED
    assert (study.manifest_sop_instance_uid, study.manifest_entry_uuid) == (
        entry.unique_id,
        entry.entry_uuid,
    )


def test_study_is_not_published_before_it_is_quiet(
    tmp_path: Path, repository: RecordingRepository
) -> None:
    source = make_source(tmp_path, repository, idle=3600)
    ingest(source, study_spec())
    assert source.publish_due() == []
    assert repository.received == []


def test_late_instance_produces_a_replacing_manifest(
    quick: ImagingSource, repository: RecordingRepository
) -> None:
    spec = study_spec()
    ingest(quick, spec)
    [first] = quick.publish_due()
    assert quick.publish_due() == []  # nothing new: no second manifest
    late = synthetic.make_study(
        synthetic.StudySpec(
            **{**_fields(spec), "series": (synthetic.SeriesSpec(modality="CT", count=1),)}
        )
    )[0]
    quick.ingest.store_encoded(synthetic.encode(late))
    [second] = quick.publish_due()
    assert second.outcome == PUBLISHED_OUTCOME
    assert second.replaced_entry_uuid == first.entry_uuid
    old, new = repository.received
    rplc = [a for a in new.submission.associations if a.association_type == v.RPLC]
    assert [(a.source_object, a.target_object) for a in rplc] == [
        (new.submission.document_entries[0].entry_uuid, first.entry_uuid)
    ]
    assert len(evidence_instances(new.kos)) == 6
    assert late.SOPInstanceUID in evidence_instances(new.kos)
    assert new.kos.SOPInstanceUID != old.kos.SOPInstanceUID
    assert new.kos.SeriesInstanceUID == old.kos.SeriesInstanceUID  # the manifest series
    assert (old.kos.InstanceNumber, new.kos.InstanceNumber) == (1, 2)


def _fields(spec: synthetic.StudySpec) -> dict[str, object]:
    return {name: getattr(spec, name) for name in spec.__dataclass_fields__}


def test_local_patient_is_held_until_a_feed_maps_it(
    tmp_path: Path, repository: RecordingRepository, caplog: pytest.LogCaptureFixture
) -> None:
    known: dict[str, str] = {}
    source = make_source(tmp_path, repository, idle=0, held_retry_seconds=0, lookup=known.get)
    spec = study_spec(patient_id="MRN-5", issuer_of_patient_id="HOSP", issuer_oid=LOCAL_ISSUER_OID)
    ingest(source, spec)
    with caplog.at_level(logging.WARNING, logger="gateway.imaging"):
        [result] = source.publish_due()
    assert result.outcome == HELD_OUTCOME
    local = f"MRN-5^^^&{LOCAL_ISSUER_OID}&ISO"
    assert local in caplog.text and "held" in caplog.text
    study = source.index.study(spec.study_uid)
    assert study is not None and study.state == HELD and local in (study.held_reason or "")
    assert repository.received == []
    with caplog.at_level(logging.WARNING, logger="gateway.imaging"):
        [again] = source.publish_due()
    assert again.outcome == HELD_OUTCOME  # still unknown
    held = [r for r in caplog.records if "held" in r.message]
    assert len(held) == 1 and "ITI-8" in held[0].message  # logged once, with what to do
    known[local] = f"D-77^^^&{DOMAIN_OID}&ISO"  # an ITI-8 feed arrives
    [published] = source.publish_due()
    assert published.outcome == PUBLISHED_OUTCOME
    [entry] = repository.received[0].submission.document_entries
    assert entry.patient_id == f"D-77^^^&{DOMAIN_OID}&ISO"
    assert entry.source_patient_id == local
    assert repository.received[0].kos.PatientID == "MRN-5"  # the KOS keeps the DICOM id


def test_refused_publication_is_retried(
    quick: ImagingSource, repository: RecordingRepository
) -> None:
    spec = study_spec()
    ingest(quick, spec)
    repository.answer = Status.FAILURE
    [failed] = quick.publish_due()
    assert failed.outcome == FAILED_OUTCOME and "XDSRepositoryError" in failed.detail
    study = quick.index.study(spec.study_uid)
    assert study is not None and study.state == RECEIVING and study.last_error
    repository.answer = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"
    [published] = quick.publish_due()
    assert published.outcome == PUBLISHED_OUTCOME
    assert published.replaced_entry_uuid is None  # the refused one never existed


def test_unreachable_repository_and_bugs_are_failures_not_crashes(tmp_path: Path) -> None:
    def unreachable(*_args: object) -> object:
        raise ConnectionRefusedError("connection refused")

    source = make_source(tmp_path, unreachable, idle=0, retry_seconds=3600)
    ingest(source, study_spec())
    [result] = source.publish_due()
    assert result.outcome == FAILED_OUTCOME and "unreachable" in result.detail
    assert source.publish_due() == []  # waits for the retry time

    def broken(*_args: object) -> object:
        raise RuntimeError("bug")

    other = make_source(tmp_path / "b", broken, idle=0)
    ingest(other, study_spec())
    [result] = other.publish_due()
    assert result.outcome == FAILED_OUTCOME and "bug" in result.detail


def test_on_demand_publication(quick: ImagingSource, repository: RecordingRepository) -> None:
    assert quick.publish_study("2.25.1").outcome == UNKNOWN_OUTCOME
    spec = study_spec()
    ingest(quick, spec)
    first = quick.publish_study(spec.study_uid)
    assert first.outcome == PUBLISHED_OUTCOME
    unchanged = quick.publish_study(spec.study_uid)
    assert unchanged.outcome == UNCHANGED_OUTCOME
    assert unchanged.manifest_uid == first.manifest_uid
    forced = quick.publish_study(spec.study_uid, force=True)
    assert forced.outcome == PUBLISHED_OUTCOME and forced.replaced_entry_uuid == first.entry_uuid
    assert len(repository.received) == 2


def test_a_study_being_published_elsewhere_is_busy(
    quick: ImagingSource, repository: RecordingRepository
) -> None:
    spec = study_spec()
    ingest(quick, spec)
    assert quick.index.claim(spec.study_uid, (RECEIVING,)) is not None  # another worker
    assert quick.publish_study(spec.study_uid).outcome == BUSY_OUTCOME
    assert quick.publish_due() == []
    assert repository.received == []


def test_observers_hear_every_result(tmp_path: Path, repository: RecordingRepository) -> None:
    heard: list[str] = []

    def failing_observer(_result: object) -> None:
        raise RuntimeError("observer bug")

    source = make_source(
        tmp_path,
        repository,
        idle=0,
        observers=[failing_observer, lambda r: heard.append(r.outcome)],
    )
    ingest(source, study_spec())
    source.publish_due()
    assert heard == [PUBLISHED_OUTCOME]


def test_send_reads_the_registry_response_and_its_errors() -> None:
    from gateway.errors import XDSRepositoryError
    from gateway.soap.message import Attachment

    def answering(body: etree._Element) -> InProcessRepositoryClient:
        return InProcessRepositoryClient(lambda _request, _attachments: body)

    request, part = etree.Element("request"), Attachment.from_bytes(b"kos")
    send(answering(build_registry_response(Status.SUCCESS)), request, part)
    refused = build_registry_response(Status.FAILURE, [XDSRepositoryError("no")])
    with pytest.raises(PublishError, match=r"Failure \(XDSRepositoryError: no\)") as caught:
        send(answering(refused), request, part)
    assert caught.value.codes == ("XDSRepositoryError",)
    with pytest.raises(PublishError, match="not usable"):
        send(answering(etree.Element(ns.RETRIEVE_DOCUMENT_SET_RESPONSE)), request, part)


def test_repository_client_follows_the_configuration() -> None:
    local = load_settings(environ={})
    assert repository_client(local, lambda *a: None).__class__.__name__ == (
        "InProcessRepositoryClient"
    )
    with pytest.raises(ValueError):
        repository_client(local)
    remote = load_settings(
        environ={"XDSI_IMAGING_SOURCE_REPOSITORY_URL": "http://127.0.0.1:1/xds/repository"}
    )
    client = repository_client(remote)
    assert isinstance(client, SoapRepositoryClient) and client.url.endswith("/xds/repository")


# -- xdsi-gateway publish ------------------------------------------------------------------------


def test_publish_command_loads_a_folder_and_publishes(
    quick: ImagingSource, repository: RecordingRepository, tmp_path: Path
) -> None:
    folder = tmp_path / "incoming"
    instances = synthetic.make_study(study_spec())
    synthetic.write_study(instances, folder)
    (folder / "notes.txt").write_text("x")
    out = io.StringIO()
    assert publish([str(folder)], quick, out=out) == 0
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("skipped") and "notes.txt" in lines[0]
    assert lines[1].startswith(f"published {instances[0].StudyInstanceUID} manifest ")
    assert len(repository.received) == 1
    out = io.StringIO()
    assert publish([str(instances[0].StudyInstanceUID)], quick, out=out) == 0
    assert out.getvalue().startswith("unchanged")


def test_publish_command_exit_statuses(quick: ImagingSource, tmp_path: Path) -> None:
    out = io.StringIO()
    assert publish(["not-a-uid-or-folder"], quick, out=out) == 2
    assert publish(["2.25.999"], quick, out=out) == 1  # unknown study
    empty = tmp_path / "empty"
    empty.mkdir()
    assert publish([str(empty)], quick, out=out) == 1
    assert "no DICOM instance" in out.getvalue()
