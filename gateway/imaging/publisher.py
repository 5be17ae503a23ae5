"""Study completion and publication (RAD-68): claim a study, build its manifest, send it.

A study is published when no instance has arrived for ``study_idle_seconds`` (the idle worker of
``gateway.imaging.source`` calls :meth:`Publisher.publish_due`) or on demand
(:meth:`Publisher.publish`). Each publication lists every instance of the study known at that
moment. When the study was published before, the new manifest replaces the old one: new KOS SOP
Instance UID (same manifest series, next Instance Number) and an RPLC association to the previous
DocumentEntry (RAD TF-3 §4.68.4.1.1 "the contents of a previously submitted manifest changes";
ITI TF-3 §4.2.2.2), which the registry then deprecates.

A study whose patient has no affinity-domain identifier yet is *held* (logged at WARNING with
what is missing) and retried until an ITI-8 feed makes the mapping known.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from gateway.imaging import rad68
from gateway.imaging.codes import KOS_MIME_TYPE, ManifestCodes
from gateway.imaging.entry import ManifestDocument, build_document_entry, build_submission
from gateway.imaging.index import (
    HELD,
    PUBLISHED,
    RECEIVING,
    ImagingIndex,
    InstanceRecord,
    Manifest,
    StudyRecord,
)
from gateway.imaging.ingest import read_header
from gateway.imaging.kos import ManifestIds, Reference, build_manifest, encode_part10
from gateway.imaging.kos import referenced_requests as kos_requests
from gateway.imaging.patient import DicomPatient, DomainLookup, PatientMapping, map_patient
from gateway.imaging.storage import InstanceStore
from gateway.metadata.datatypes import new_uuid_urn
from gateway.soap.message import Attachment, Element

log = logging.getLogger("gateway.imaging")

PUBLISHED_OUTCOME = "published"
HELD_OUTCOME = "held"
FAILED_OUTCOME = "failed"
UNCHANGED_OUTCOME = "unchanged"  # on demand: already published, nothing new
BUSY_OUTCOME = "busy"  # another worker (or process) is publishing it
UNKNOWN_OUTCOME = "unknown"  # no instance of this study was ever received


@dataclass(frozen=True, slots=True, kw_only=True)
class PublishResult:
    """What happened to one study."""

    study_instance_uid: str
    outcome: str
    manifest_uid: str | None = None  # KOS SOP Instance UID = DocumentEntry.uniqueId
    entry_uuid: str | None = None
    replaced_entry_uuid: str | None = None
    patient_id: str | None = None
    instances: int = 0
    detail: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class _Prepared:
    """A manifest ready to send and what to record once it is registered."""

    request: Element
    attachment: Attachment
    manifest: Manifest
    replaces: str | None


def _uid() -> str:
    return str(generate_uid(prefix=None))  # 2.25.<UUID> (PS3.5 §B.2)


@dataclass(slots=True, kw_only=True)
class PublisherConfig:
    """The identity and policy of the publishing imaging document source."""

    unique_id: str  # repositoryUniqueId of the source = Retrieve Location UID
    retrieve_ae_title: str
    domain_oid: str  # registry.patient_id_domain
    source_id: str  # SubmissionSet.sourceId
    codes: ManifestCodes
    retry_seconds: float = 60.0  # after a failed publication
    held_retry_seconds: float = 10.0  # how often a held study's patient is looked up again
    stale_claim_seconds: float = 600.0  # a claim older than this was left by a crashed worker


class Publisher:
    """Publishes studies of an :class:`ImagingIndex` through a repository client."""

    def __init__(
        self,
        *,
        index: ImagingIndex,
        store: InstanceStore,
        repository: rad68.RepositoryClient,
        config: PublisherConfig,
        domain_lookup: DomainLookup | None = None,
        observers: Sequence[Callable[[PublishResult], None]] = (),
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.index, self.store, self.repository = index, store, repository
        self.config = config
        self.domain_lookup = domain_lookup
        self.observers = list(observers)
        self.now = now

    def publish(self, study_uid: str, *, force: bool = False) -> PublishResult:
        """Publish a study now (on demand). A published study without news is left alone unless
        ``force``; a study another worker is publishing gives ``busy``."""
        study = self.index.study(study_uid)
        if study is None:
            return PublishResult(study_instance_uid=study_uid, outcome=UNKNOWN_OUTCOME)
        if study.state == PUBLISHED and not force:
            return PublishResult(
                study_instance_uid=study_uid,
                outcome=UNCHANGED_OUTCOME,
                manifest_uid=study.manifest_sop_instance_uid,
                entry_uuid=study.manifest_entry_uuid,
                patient_id=study.patient_id,
            )
        claim = self.index.claim(study_uid, (RECEIVING, HELD, PUBLISHED))
        if claim is None:
            return PublishResult(study_instance_uid=study_uid, outcome=BUSY_OUTCOME)
        return self._run(claim)

    def publish_due(self, idle_seconds: float) -> list[PublishResult]:
        """One idle-worker cycle: publish quiet studies, retry held ones whose time has come."""
        released = self.index.release_stale_claims(self.config.stale_claim_seconds)
        if released:
            log.warning("released %d study claim(s) left by a stopped worker", released)
        results: dict[str, PublishResult] = {}
        for state in (RECEIVING, HELD):
            for uid in self.index.due_studies(state, idle_seconds):
                if uid in results:  # just held in this cycle: its retry comes later
                    continue
                claim = self.index.claim(uid, (state,), idle_seconds=idle_seconds)
                if claim is not None:
                    results[uid] = self._run(claim)
        return list(results.values())

    def _run(self, claim: StudyRecord) -> PublishResult:
        uid = claim.study_instance_uid
        try:
            result = self._publish_claimed(claim)
        except rad68.PublishError as exc:
            log.error("study %s: publication failed, retrying later: %s", uid, exc)
            self.index.mark_failed(uid, str(exc), retry_seconds=self.config.retry_seconds)
            result = PublishResult(study_instance_uid=uid, outcome=FAILED_OUTCOME, detail=str(exc))
        except Exception as exc:  # never lose a study to a bug: log, give it back, retry
            log.exception("study %s: publication failed", uid)
            self.index.mark_failed(uid, repr(exc), retry_seconds=self.config.retry_seconds)
            result = PublishResult(study_instance_uid=uid, outcome=FAILED_OUTCOME, detail=repr(exc))
        for observer in self.observers:
            try:
                observer(result)
            except Exception:
                log.exception("publication observer failed")
        return result

    def _publish_claimed(self, claim: StudyRecord) -> PublishResult:
        uid = claim.study_instance_uid
        instances = self.index.instances_of_study(uid)
        if not instances:
            raise rad68.PublishError(f"study {uid} has no stored instance")
        headers = self._series_headers(instances)
        mapping = map_patient(
            DicomPatient.from_header(headers[0]), self.config.domain_oid, self.domain_lookup
        )
        if mapping.patient_id is None:
            log.warning("study %s held: %s", uid, mapping.reason)
            self.index.mark_held(uid, mapping.reason, retry_seconds=self.config.held_retry_seconds)
            return PublishResult(
                study_instance_uid=uid, outcome=HELD_OUTCOME, detail=mapping.reason
            )
        started = time.monotonic()
        prepared = self._prepare(claim, instances, headers, mapping)
        rad68.send(self.repository, prepared.request, prepared.attachment)
        self.index.mark_published(uid, prepared.manifest)
        replaces = prepared.replaces
        log.info(
            "study %s published: manifest %s (%d instances, %s, %.0f ms)%s",
            uid,
            prepared.manifest.sop_instance_uid,
            len(instances),
            mapping.patient_id,
            (time.monotonic() - started) * 1000,
            f", replaces {replaces}" if replaces else "",
        )
        return PublishResult(
            study_instance_uid=uid,
            outcome=PUBLISHED_OUTCOME,
            manifest_uid=prepared.manifest.sop_instance_uid,
            entry_uuid=prepared.manifest.entry_uuid,
            replaced_entry_uuid=replaces,
            patient_id=mapping.patient_id,
            instances=len(instances),
        )

    def _prepare(
        self,
        claim: StudyRecord,
        instances: Sequence[InstanceRecord],
        headers: Sequence[Dataset],
        mapping: PatientMapping,
    ) -> _Prepared:
        """Build the KOS, its metadata and the ITI-41 request (RAD TF-3 §4.68.4.1.2)."""
        uid, study, moment = claim.study_instance_uid, headers[0], self.now()
        ids = ManifestIds(
            sop_instance_uid=_uid(),
            series_instance_uid=claim.manifest_series_instance_uid or _uid(),
            instance_number=claim.publish_count + 1,
        )
        kos = build_manifest(
            study,
            [_reference(record) for record in instances],
            ids,
            retrieve_location_uid=self.config.unique_id,
            retrieve_ae_title=self.config.retrieve_ae_title,
            requests=kos_requests(uid, headers),
            now=moment,
        )
        attachment = Attachment.from_bytes(encode_part10(kos), content_type=KOS_MIME_TYPE)
        document = ManifestDocument(
            unique_id=ids.sop_instance_uid,
            entry_uuid=new_uuid_urn(),
            replaces=claim.manifest_entry_uuid,
        )
        codes = self.config.codes
        entry = build_document_entry(study, headers, mapping, document, codes, now=moment)
        submission = build_submission(
            entry,
            codes,
            source_id=self.config.source_id,
            submission_set_unique_id=_uid(),
            now=moment,
            replaces=document.replaces,
        )
        assert mapping.patient_id is not None
        return _Prepared(
            request=rad68.build_request(submission, entry.entry_uuid, attachment),
            attachment=attachment,
            manifest=Manifest(
                sop_instance_uid=ids.sop_instance_uid,
                series_instance_uid=ids.series_instance_uid,
                entry_uuid=document.entry_uuid,
                patient_id=mapping.patient_id,
            ),
            replaces=document.replaces,
        )

    def _series_headers(self, instances: Sequence[InstanceRecord]) -> list[Dataset]:
        """The header of the first instance of each series, in study order."""
        seen: dict[str, Dataset] = {}
        for record in instances:
            if record.series_instance_uid not in seen:
                seen[record.series_instance_uid] = read_header(self.store.path(record.path))
        return list(seen.values())


def _reference(record: InstanceRecord) -> Reference:
    return Reference(
        sop_class_uid=record.sop_class_uid,
        sop_instance_uid=record.sop_instance_uid,
        series_instance_uid=record.series_instance_uid,
    )
