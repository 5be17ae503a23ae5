"""Delivering a manifest and settling its fate (RAD-68): registered once, never lost.

A manifest is recorded as pending (``ImagingIndex.save_pending``) before it leaves the process.
:meth:`Delivery.send` sends it and settles it in the index:

- Success: published; the pending record is forgotten in the same transaction. When the study
  holds other instances than the manifest lists (they came while its fate was unknown), the
  study is reopened so that a replacement (RPLC) follows.
- No answer that settles it (``rad68.PublishOutcomeUnknown``: the answer was lost, or the
  repository's registry did not answer): the study is given back for a retry and the manifest
  stays pending; :meth:`Delivery.send_again` then sends *the same* submission, byte for byte.
  Its uniqueIds make that idempotent: the repository stores an identical document once (ITI TF-2
  §3.41.4.1.3), and a registry that has it already answers XDSDuplicateUniqueIdInRegistry for
  the SubmissionSet uniqueId (ITI TF-3 Table 4.2.4.1-2), which means the earlier send was
  registered: published.
- Refused (a definite answer): the manifest is forgotten and the next attempt builds a new one.
  Refused because the registry does not know the patient (XDSUnknownPatientId): the study is
  *held* (logged once, with what to do) and tried again quietly until the patient is fed.
  To a manifest sent again, answers that say nothing about the earlier send (busy, not
  available, internal errors, not delivered) keep it pending.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from gateway.imaging import rad68, rejection
from gateway.imaging.codes import KOS_MIME_TYPE
from gateway.imaging.index import ImagingIndex, InstanceRecord, PendingManifest
from gateway.imaging.outcomes import (
    FAILED_OUTCOME,
    HELD_OUTCOME,
    PUBLISHED_OUTCOME,
    HoldReason,
    PublishResult,
    log_hold,
)
from gateway.metadata.provide import parse_provide_request
from gateway.soap.message import Attachment, Element

log = logging.getLogger("gateway.imaging")

# Answers to a manifest sent again that say nothing about whether the earlier send was
# registered (ITI TF-3 Table 4.2.4.1-2): the pending manifest is kept and sent again later.
_NO_NEWS_CODES = frozenset(
    {
        "XDSRegistryNotAvailable",
        "XDSRegistryBusy",
        "XDSRepositoryBusy",
        "XDSRegistryOutOfResources",
        "XDSRepositoryOutOfResources",
        "XDSRegistryError",
        "XDSRepositoryError",
    }
)
# A SubmissionSet uniqueId is registered already: ours, from the earlier send of this manifest.
_ALREADY_REGISTERED = "XDSDuplicateUniqueIdInRegistry"
# The registry does not know the manifest's patient (ITI TF-3 Table 4.2.4.1-2): nothing is wrong
# with the study; it waits (held) until an ITI-8 feed makes the patient known.
_UNKNOWN_PATIENT = "XDSUnknownPatientId"


@dataclass(frozen=True, slots=True, kw_only=True)
class Prepared:
    """A manifest ready to send and what to record once it is registered."""

    request: Element
    attachment: Attachment
    pending: PendingManifest


class Delivery:
    """Sends pending manifests through a repository client and settles them in the index."""

    def __init__(
        self, *, index: ImagingIndex, repository: rad68.RepositoryClient, retry_seconds: float
    ) -> None:
        self.index = index
        self.repository = repository
        self.retry_seconds = retry_seconds  # a failed study is due again after this

    def send_again(self, pending: PendingManifest) -> PublishResult:
        """Send a pending manifest unchanged (its earlier send has no settled outcome)."""
        log.info(
            "study %s: sending manifest %s again (its registration was not confirmed)",
            pending.study_instance_uid,
            pending.sop_instance_uid,
        )
        prepared = Prepared(
            request=parse_provide_request(pending.request),
            attachment=Attachment.from_bytes(
                pending.kos, content_type=KOS_MIME_TYPE, content_id=pending.content_id
            ),
            pending=pending,
        )
        return self.send(prepared, again=True)

    def send(self, prepared: Prepared, *, again: bool) -> PublishResult:
        """Send a pending manifest and settle it in the index (RAD TF-3 §4.68.4.1.3)."""
        pending = prepared.pending
        uid = pending.study_instance_uid
        started = time.monotonic()
        try:
            rad68.send(self.repository, prepared.request, prepared.attachment)
        except rad68.PublishError as exc:
            if not (again and _ALREADY_REGISTERED in exc.codes):
                return self._failed(pending, exc, again=again)
            log.info(
                "study %s: manifest %s was registered by its earlier send",
                uid,
                pending.sop_instance_uid,
            )
        listed = rejection.manifest_instances(self.index, uid)  # never the Rejection Notes
        reopen = instances_digest(listed) != pending.instances_digest
        self.index.mark_published(uid, pending.manifest, reopen=reopen)
        log.info(
            "study %s published: manifest %s (%d instances, %s, %.0f ms)%s%s",
            uid,
            pending.sop_instance_uid,
            pending.instance_count,
            pending.patient_id,
            (time.monotonic() - started) * 1000,
            f", replaces {pending.replaces}" if pending.replaces else "",
            "; instances arrived since: a replacement follows" if reopen else "",
        )
        return PublishResult(
            study_instance_uid=uid,
            outcome=PUBLISHED_OUTCOME,
            manifest_uid=pending.sop_instance_uid,
            entry_uuid=pending.entry_uuid,
            replaced_entry_uuid=pending.replaces,
            patient_id=pending.patient_id,
            instances=pending.instance_count,
        )

    def _held(self, pending: PendingManifest) -> PublishResult:
        """The registry refused the manifest's patient: hold the study (logged once), forget
        the refused manifest, and try again after ``retry_seconds``."""
        uid = pending.study_instance_uid
        hold = _unknown_patient(pending.patient_id, self.retry_seconds)
        study = self.index.study(uid)
        log_hold(uid, hold, study.held_reason if study is not None else None)
        self.index.mark_held(
            uid, hold.encode(), retry_seconds=self.retry_seconds, forget_pending=True
        )
        return PublishResult(
            study_instance_uid=uid,
            outcome=HELD_OUTCOME,
            patient_id=pending.patient_id,
            detail=str(hold),
        )

    def _failed(
        self, pending: PendingManifest, exc: rad68.PublishError, *, again: bool
    ) -> PublishResult:
        """Give the study back for a retry; keep the manifest pending unless it is settled as
        not registered (refused for its content, or never delivered on its first send)."""
        uid = pending.study_instance_uid
        unknown = isinstance(exc, rad68.PublishOutcomeUnknown)
        if not unknown and _UNKNOWN_PATIENT in exc.codes:
            return self._held(pending)
        no_news = again and (not exc.codes or bool(_NO_NEWS_CODES.intersection(exc.codes)))
        keep = unknown or no_news
        if keep:
            log.warning(
                "study %s: manifest %s not confirmed, sent again later: %s",
                uid,
                pending.sop_instance_uid,
                exc,
            )
        else:
            log.error("study %s: publication failed, retrying later: %s", uid, exc)
        self.index.mark_failed(
            uid, str(exc), retry_seconds=self.retry_seconds, forget_pending=not keep
        )
        return PublishResult(study_instance_uid=uid, outcome=FAILED_OUTCOME, detail=str(exc))


def _unknown_patient(patient_id: str, retry_seconds: float) -> HoldReason:
    return HoldReason(
        reason=f"the registry does not know patient {patient_id} (XDSUnknownPatientId)",
        todo=(
            f"feed the patient to the registry: ITI-8 ADT A01/A04 with {patient_id} in PID-3 "
            f"(xdsi-gateway feed FILE); the study is published by itself within "
            f"{retry_seconds:.0f} s after"
        ),
    )


def instances_digest(instances: Sequence[InstanceRecord]) -> str:
    """What a manifest lists about a study's instances, as one value to compare."""
    identities = sorted(
        (r.sop_instance_uid, r.series_instance_uid, r.sop_class_uid) for r in instances
    )
    return hashlib.sha256(repr(identities).encode()).hexdigest()
