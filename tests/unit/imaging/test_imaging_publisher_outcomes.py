"""Publication outcomes that do not settle at once (gateway.imaging.publisher, rad68): an answer
lost after the repository registered the manifest, or before; a repository whose registry did not
answer; refusals. The study is never lost and its manifest never registered twice: the same
submission is sent again until its fate is known, and a replacement follows when instances came
in meanwhile."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
import pytest
from lxml import etree

from gateway.errors import (
    XDSDuplicateUniqueIdInRegistry,
    XDSError,
    XDSRegistryMetadataError,
    XDSRegistryNotAvailable,
    XDSRepositoryBusy,
    XDSUnknownPatientId,
)
from gateway.imaging import pending, synthetic
from gateway.imaging.index import HELD, RECEIVING
from gateway.imaging.publisher import FAILED_OUTCOME, HELD_OUTCOME, PUBLISHED_OUTCOME
from gateway.imaging.rad68 import PublishError, PublishOutcomeUnknown
from gateway.imaging.source import ImagingSource
from gateway.metadata.ebrim import parse_submit_objects_request
from gateway.metadata.retrieve import Status, build_registry_response
from gateway.soap.message import Attachment
from tests.unit.imaging.support import encoded_study, make_source, study_spec


@dataclass
class Sent:
    request: bytes  # exclusive c14n of the ITI-41 body
    kos: bytes
    manifest_uid: str
    submission_set_uid: str


@dataclass
class ScriptedRepository:
    """A repository and its registry in one: each ITI-41 is handled as the next step says.

    ``register``: register the submission unless its SubmissionSet uniqueId is registered
    already (then XDSDuplicateUniqueIdInRegistry, as a registry answers), and answer;
    ``register-lose``: register, then lose the answer; ``lose``: lose the request's answer
    without registering; ``unavailable``: register, but answer XDSRegistryNotAvailable;
    ``busy``: XDSRepositoryBusy; ``refuse``: a metadata refusal; ``unreachable``: not delivered;
    ``unknown-patient``: XDSUnknownPatientId (the registry was never fed the patient).
    """

    steps: list[str]
    sent: list[Sent] = field(default_factory=list)
    registered: dict[str, str] = field(default_factory=dict)  # SubmissionSet uid -> manifest uid

    def provide_and_register(
        self, request: etree._Element, attachments: Sequence[Attachment]
    ) -> etree._Element:
        step = self.steps.pop(0)
        submission = parse_submit_objects_request(request, repository=True)
        assert submission.submission_set is not None and submission.submission_set.unique_id
        [entry] = submission.document_entries
        assert entry.unique_id is not None
        self.sent.append(
            Sent(
                request=etree.tostring(request, method="c14n", exclusive=True),
                kos=attachments[0].read_bytes(),
                manifest_uid=entry.unique_id,
                submission_set_uid=submission.submission_set.unique_id,
            )
        )
        if step == "unreachable":
            raise PublishError("repository http://127.0.0.1:9: connection refused")
        if step == "lose":
            raise PublishOutcomeUnknown("the answer was cut off")
        if step == "busy":
            return _failure(XDSRepositoryBusy("not settled yet"))
        if step == "refuse":
            return _failure(XDSRegistryMetadataError("refused for its content"))
        if step == "unknown-patient":
            return _failure(XDSUnknownPatientId(f"{entry.patient_id} is not known"))
        set_uid = submission.submission_set.unique_id
        if set_uid in self.registered:
            return _failure(XDSDuplicateUniqueIdInRegistry(f"SubmissionSet {set_uid}"))
        self.registered[set_uid] = entry.unique_id
        if step == "register-lose":
            raise PublishOutcomeUnknown("the answer was cut off")
        if step == "unavailable":
            return _failure(XDSRegistryNotAvailable("no answer from the registry"))
        assert step == "register", step
        return build_registry_response(Status.SUCCESS)


def _failure(error: XDSError) -> etree._Element:
    return build_registry_response(Status.FAILURE, [error])


def _source(tmp_path: Path, repository: ScriptedRepository) -> ImagingSource:
    return make_source(tmp_path, repository, idle=0, retry_seconds=0, held_retry_seconds=0)


def _ingest(source: ImagingSource, spec: synthetic.StudySpec) -> None:
    for data in encoded_study(spec):
        source.ingest.store_encoded(data)


@pytest.mark.parametrize("first", ["register-lose", "lose", "unavailable"])
def test_unsettled_manifest_is_sent_again_unchanged_and_registered_once(
    tmp_path: Path, first: str
) -> None:
    repository = ScriptedRepository([first, "busy", "register"])
    source = _source(tmp_path, repository)
    spec = study_spec()
    _ingest(source, spec)

    [failed] = source.publish_due()
    assert failed.outcome == FAILED_OUTCOME
    study = source.index.study(spec.study_uid)
    assert study is not None and study.state == RECEIVING and study.last_error
    pending = source.index.pending(spec.study_uid)
    assert pending is not None and pending.sop_instance_uid == repository.sent[0].manifest_uid

    [busy] = source.publish_due()  # no news about the first send: still pending
    assert busy.outcome == FAILED_OUTCOME and source.index.pending(spec.study_uid) is not None

    [published] = source.publish_due()
    assert published.outcome == PUBLISHED_OUTCOME
    first_send, *again = repository.sent
    assert all(s.request == first_send.request and s.kos == first_send.kos for s in again)
    assert published.manifest_uid == first_send.manifest_uid
    assert list(repository.registered.values()) == [first_send.manifest_uid]  # once
    assert source.index.pending(spec.study_uid) is None
    assert source.publish_due() == []  # settled: nothing more to send


def test_instances_that_arrive_meanwhile_get_a_replacement(tmp_path: Path) -> None:
    repository = ScriptedRepository(["register-lose", "register", "register"])
    source = _source(tmp_path, repository)
    spec = study_spec()
    _ingest(source, spec)
    [failed] = source.publish_due()
    assert failed.outcome == FAILED_OUTCOME
    late = synthetic.make_study(spec)[0].copy()
    late.SOPInstanceUID = synthetic.generate_uid()
    source.ingest.store_encoded(synthetic.encode(late))

    [settled] = source.publish_due()  # the pending manifest first: it lists 5 instances
    assert settled.outcome == PUBLISHED_OUTCOME and settled.instances == 5
    study = source.index.study(spec.study_uid)
    assert study is not None and study.state == RECEIVING  # a replacement must follow
    [replacement] = source.publish_due()
    assert replacement.outcome == PUBLISHED_OUTCOME and replacement.instances == 6
    assert replacement.replaced_entry_uuid == settled.entry_uuid
    assert len(repository.registered) == 2  # the first manifest once, then its replacement
    kos = pydicom.dcmread(io.BytesIO(repository.sent[-1].kos))
    listed = {
        str(item.ReferencedSOPInstanceUID)
        for series in kos.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence
        for item in series.ReferencedSOPSequence
    }
    assert str(late.SOPInstanceUID) in listed


def test_refused_resend_is_forgotten_and_a_new_manifest_follows(tmp_path: Path) -> None:
    repository = ScriptedRepository(["lose", "refuse", "register"])
    source = _source(tmp_path, repository)
    spec = study_spec()
    _ingest(source, spec)
    assert source.publish_due()[0].outcome == FAILED_OUTCOME
    [refused] = source.publish_due()
    assert refused.outcome == FAILED_OUTCOME and "XDSRegistryMetadataError" in refused.detail
    assert source.index.pending(spec.study_uid) is None  # refused for its content: rebuilt
    [published] = source.publish_due()
    assert published.outcome == PUBLISHED_OUTCOME
    assert published.manifest_uid != repository.sent[0].manifest_uid
    assert list(repository.registered.values()) == [published.manifest_uid]


def test_not_delivered_first_send_is_rebuilt_but_an_unreachable_resend_keeps_it(
    tmp_path: Path,
) -> None:
    repository = ScriptedRepository(["unreachable", "lose", "unreachable", "register"])
    source = _source(tmp_path, repository)
    spec = study_spec()
    _ingest(source, spec)
    assert source.publish_due()[0].outcome == FAILED_OUTCOME
    assert source.index.pending(spec.study_uid) is None  # it never left: nothing to settle
    assert source.publish_due()[0].outcome == FAILED_OUTCOME  # a new manifest, answer lost
    second = repository.sent[1].manifest_uid
    assert second != repository.sent[0].manifest_uid
    assert source.publish_due()[0].outcome == FAILED_OUTCOME  # resend not delivered: kept
    pending = source.index.pending(spec.study_uid)
    assert pending is not None and pending.sop_instance_uid == second
    [published] = source.publish_due()
    assert published.outcome == PUBLISHED_OUTCOME and published.manifest_uid == second
    assert [s.manifest_uid for s in repository.sent[1:]] == [second] * 3


def test_pending_manifest_survives_a_restart(tmp_path: Path) -> None:
    repository = ScriptedRepository(["register-lose"])
    source = _source(tmp_path, repository)
    spec = study_spec()
    _ingest(source, spec)
    source.publish_due()
    source.publisher.close()
    source.index.close()  # the process ends: its lease goes, its pending manifest is free
    again = ScriptedRepository(["register"], registered=dict(repository.registered))
    restarted = _source(tmp_path, again)  # the same database and folder, a new process
    [published] = restarted.publish_due()
    assert published.outcome == PUBLISHED_OUTCOME
    assert published.manifest_uid == repository.sent[0].manifest_uid
    assert again.sent[0].request == repository.sent[0].request
    assert len(again.registered) == 1


def test_a_study_whose_patient_the_registry_does_not_know_is_held_and_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    repository = ScriptedRepository(["unknown-patient", "unknown-patient", "register"])
    source = _source(tmp_path, repository)
    spec = study_spec()
    _ingest(source, spec)
    with caplog.at_level("DEBUG", logger="gateway.imaging"):
        [held] = source.publish_due()
        [still] = source.publish_due()  # retried quietly: the patient is still not fed
    assert held.outcome == still.outcome == HELD_OUTCOME
    assert "XDSUnknownPatientId" in held.detail and "ITI-8" in held.detail
    warnings = [r for r in caplog.records if r.levelname == "WARNING" and "held" in r.message]
    assert len(warnings) == 1, [r.message for r in caplog.records]
    assert "feed the patient" in warnings[0].message
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
    study = source.index.study(spec.study_uid)
    assert study is not None and study.state == HELD
    assert source.index.pending(spec.study_uid) is None  # the refused manifest is forgotten
    assert repository.sent[0].manifest_uid != repository.sent[1].manifest_uid

    assert source.health() == {"held_studies": 1}
    [listed] = pending.pending_studies(source.index.engine)
    assert (listed.state, listed.patient_id, listed.instances) == ("held", "PAT-0042", 5)
    assert listed.reason.startswith("the registry does not know patient PAT-0042^^^&")
    assert "xdsi-gateway feed" in listed.todo

    [published] = source.publish_due()  # fed meanwhile: published without anyone's help
    assert published.outcome == PUBLISHED_OUTCOME
    assert source.health() == {"held_studies": 0}
    assert pending.pending_studies(source.index.engine) == []
