"""Study completion and publication (RAD-68): claim a study, build its manifest, send it.

A study is published when no instance has arrived for ``study_idle_seconds`` (the idle worker of
``gateway.imaging.source`` calls :meth:`Publisher.publish_due`) or on demand
(:meth:`Publisher.publish`). Each publication lists every instance of the study known at that
moment. When the study was published before, the new manifest replaces the old one: new KOS SOP
Instance UID (same manifest series, next Instance Number) and an RPLC association to the previous
DocumentEntry (RAD TF-3 §4.68.4.1.1 "the contents of a previously submitted manifest changes";
ITI TF-3 §4.2.2.2), which the registry then deprecates.

A study whose patient has no affinity-domain identifier yet, or whose patient the registry does
not know (``gateway.imaging.delivery``), is *held*: logged once at WARNING with what to do, then
retried quietly until an ITI-8 feed makes the patient known (``xdsi-gateway imaging pending``
and ``/health`` list held studies).

Studies publish in parallel, at most ``PublisherConfig.parallel`` at once per process; a study is
only ever published under its claim in the index (one conditional UPDATE, shared by every process
on the database), so two manifests of one study are never on their way at the same time. A claim
belongs to its process's lease: it is given back when that process is gone, never while it lives.

Never lost, never published twice: a manifest is recorded as pending before it is sent, and
``gateway.imaging.delivery`` sends it and settles it; a manifest whose answer was lost is sent
again unchanged by the study's next publication.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from gateway.imaging import rad68, rejection
from gateway.imaging.codes import KOS_MIME_TYPE, ManifestCodes
from gateway.imaging.delivery import Delivery, Prepared, instances_digest
from gateway.imaging.entry import ManifestDocument, build_document_entry, build_submission
from gateway.imaging.index import (
    HELD,
    PUBLISHED,
    RECEIVING,
    ImagingIndex,
    InstanceRecord,
    ManifestInFlight,
    PendingManifest,
    StudyRecord,
)
from gateway.imaging.ingest import read_header
from gateway.imaging.kos import ManifestIds, Reference, build_manifest, encode_part10
from gateway.imaging.kos import referenced_requests as kos_requests
from gateway.imaging.outcomes import (
    BUSY_OUTCOME,
    DEPRECATED_OUTCOME,
    FAILED_OUTCOME,
    HELD_OUTCOME,
    PUBLISHED_OUTCOME,
    UNCHANGED_OUTCOME,
    UNKNOWN_OUTCOME,
    HoldReason,
    PublishResult,
    log_hold,
)
from gateway.imaging.patient import DicomPatient, DomainLookup, PatientMapping, map_patient
from gateway.imaging.storage import InstanceStore
from gateway.metadata.datatypes import new_uuid_urn
from gateway.metadata.provide import serialize_provide_request
from gateway.soap.message import Attachment

log = logging.getLogger("gateway.imaging")

__all__ = [
    "BUSY_OUTCOME",
    "DEPRECATED_OUTCOME",
    "FAILED_OUTCOME",
    "HELD_OUTCOME",
    "PUBLISHED_OUTCOME",
    "UNCHANGED_OUTCOME",
    "UNKNOWN_OUTCOME",
    "PublishResult",
    "Publisher",
    "PublisherConfig",
]


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
    busy_retry_seconds: float = 2.0  # when another process's manifest of the study is on its way
    parallel: int = (
        4  # manifests of different studies sent at once (imaging_source.publish_parallel)
    )
    wado_rs_root: str = ""  # DICOMweb service root written into the KOS (WADO-RS option)


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
        deprecate: Callable[[str, str], None] | None = None,
    ) -> None:
        if config.parallel < 1:
            raise ValueError("imaging_source.publish_parallel must be at least 1")
        self.index, self.store, self.repository = index, store, repository
        self.config = config
        self.domain_lookup = domain_lookup
        self.observers = list(observers)
        self.now = now
        # Sets a registered manifest (entryUUID, patient id) to Deprecated when every instance
        # of its study was rejected (IOCM: ITI-57 UpdateAvailabilityStatus,
        # gateway.imaging.withdrawal; raises PublishError when it could not). None: such a
        # study fails to publish, saying why, and is retried.
        self.deprecate = deprecate
        self.delivery = Delivery(
            index=index, repository=repository, retry_seconds=config.retry_seconds
        )
        self._slots = threading.BoundedSemaphore(config.parallel)
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

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
        with self._slots:  # counts against publish_parallel like the idle worker's
            claim = self.index.claim(study_uid, (RECEIVING, HELD, PUBLISHED))
            if claim is None:
                return PublishResult(study_instance_uid=study_uid, outcome=BUSY_OUTCOME)
            return self._run(claim)

    def publish_due(self, idle_seconds: float) -> list[PublishResult]:
        """One idle-worker cycle, waiting for every publication it starts: publish quiet
        studies, retry held and failed ones whose time has come."""
        futures = self.dispatch_due(idle_seconds, wait_for_slots=True)
        return [future.result() for future in futures]

    def dispatch_due(
        self, idle_seconds: float, *, wait_for_slots: bool = False
    ) -> list[Future[PublishResult]]:
        """Claim due studies and publish them in the background, at most ``config.parallel`` at
        once; return the publications started. A study is claimed only when a slot is free
        (``wait_for_slots``: wait for one; else stop claiming until the next cycle)."""
        released = self.index.release_orphaned_claims()
        if released:
            log.warning("took back %d study claim(s) of processes that are gone", released)
        started: dict[str, Future[PublishResult]] = {}
        for state in (RECEIVING, HELD):
            for uid in self.index.due_studies(state, idle_seconds):
                if uid in started:  # just held in this cycle: its retry comes later
                    continue
                if not self._slots.acquire(blocking=wait_for_slots):
                    return list(started.values())
                future = self._start(uid, state, idle_seconds)
                if future is not None:
                    started[uid] = future
        return list(started.values())

    def _start(self, uid: str, state: str, idle_seconds: float) -> Future[PublishResult] | None:
        """Claim a study with the slot just taken and publish it in the background; None (the
        slot given back) when another worker or process has it."""
        try:
            claim = self.index.claim(uid, (state,), idle_seconds=idle_seconds)
            if claim is not None:
                return self._executor().submit(self._run_in_slot, claim)
        except BaseException:
            self._slots.release()
            raise
        self._slots.release()
        return None

    def close(self) -> None:
        """Wait for the publications in progress, then stop the worker threads."""
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)

    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=self.config.parallel, thread_name_prefix="imaging-publish"
                )
            return self._pool

    def _run_in_slot(self, claim: StudyRecord) -> PublishResult:
        try:
            return self._run(claim)
        finally:
            self._slots.release()

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
            # a manifest that may have left keeps being pending: it is sent again, never a twin
            self.index.mark_failed(
                uid, repr(exc), retry_seconds=self.config.retry_seconds, forget_pending=False
            )
            result = PublishResult(study_instance_uid=uid, outcome=FAILED_OUTCOME, detail=repr(exc))
        for observer in self.observers:
            try:
                observer(result)
            except Exception:
                log.exception("publication observer failed")
        return result

    def _publish_claimed(self, claim: StudyRecord) -> PublishResult:
        uid = claim.study_instance_uid
        try:
            pending = self.index.take_pending(uid)
        except ManifestInFlight as exc:
            return self._busy(uid, str(exc))
        if pending is not None:
            return self.delivery.send_again(pending)
        rejection.sweep(self.index, self.store, uid)  # rejected instances stored again
        instances = rejection.manifest_instances(self.index, uid)  # never the Rejection Notes
        if not instances:
            if rejection.notes_of_study(self.index.engine, uid):  # every instance rejected
                return self._withdraw(claim)
            raise rad68.PublishError(f"study {uid} has no stored instance")
        headers = self._series_headers(instances)
        mapping = map_patient(
            DicomPatient.from_header(headers[0]), self.config.domain_oid, self.domain_lookup
        )
        if mapping.patient_id is None:
            hold = HoldReason(reason=mapping.reason, todo=mapping.todo)
            log_hold(uid, hold, claim.held_reason)
            self.index.mark_held(uid, hold.encode(), retry_seconds=self.config.held_retry_seconds)
            return PublishResult(study_instance_uid=uid, outcome=HELD_OUTCOME, detail=str(hold))
        prepared = self._prepare(claim, instances, headers, mapping)
        if not self.index.save_pending(prepared.pending):  # before the manifest leaves
            return self._busy(uid, "another process published the study or is publishing it")
        return self.delivery.send(prepared, again=False)

    def _withdraw(self, claim: StudyRecord) -> PublishResult:
        """Every instance of the study was rejected: deprecate its registered manifest instead
        of replacing it (IHE RAD IOCM; ITI TF-3 §4.1.x availabilityStatus Deprecated)."""
        uid, entry = claim.study_instance_uid, claim.manifest_entry_uuid
        if entry is not None:
            if self.deprecate is None:
                raise rad68.PublishError(
                    f"every instance of study {uid} was rejected, but this imaging source has "
                    "no registry to deprecate its manifest in (imaging_source.registry_url)"
                )
            self.deprecate(entry, claim.patient_id or "")
            log.info("study %s: every instance rejected, manifest %s deprecated", uid, entry)
        self.index.mark_withdrawn(uid)
        return PublishResult(
            study_instance_uid=uid,
            outcome=DEPRECATED_OUTCOME,
            manifest_uid=claim.manifest_sop_instance_uid,
            entry_uuid=entry,
            patient_id=claim.patient_id,
        )

    def _busy(self, uid: str, detail: str) -> PublishResult:
        """Give the claim back: another process's manifest of the study comes first."""
        log.info("study %s: %s; published later", uid, detail)
        self.index.give_back(uid, retry_seconds=self.config.busy_retry_seconds)
        return PublishResult(study_instance_uid=uid, outcome=BUSY_OUTCOME, detail=detail)

    def _prepare(
        self,
        claim: StudyRecord,
        instances: Sequence[InstanceRecord],
        headers: Sequence[Dataset],
        mapping: PatientMapping,
    ) -> Prepared:
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
            wado_rs_root=self.config.wado_rs_root,
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
        request = rad68.build_request(submission, entry.entry_uuid, attachment)
        return Prepared(
            request=request,
            attachment=attachment,
            pending=PendingManifest(
                study_instance_uid=uid,
                sop_instance_uid=ids.sop_instance_uid,
                series_instance_uid=ids.series_instance_uid,
                entry_uuid=document.entry_uuid,
                patient_id=mapping.patient_id,
                replaces=document.replaces,
                instance_count=len(instances),
                instances_digest=instances_digest(instances),
                content_id=attachment.content_id,
                request=serialize_provide_request(request),
                kos=attachment.read_bytes(),
            ),
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
