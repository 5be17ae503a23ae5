"""Image rejection at the source (IHE RAD IOCM): Rejection Notes and what they take away.

A Rejection Note is a DICOM Key Object Selection Document (PS3.3 §A.35.4) whose document title
(Concept Name Code Sequence of the root CONTAINER, PS3.3 §C.17.6.2) is one of CID 7011 "Rejected
for ..." codes of DICOM PS3.16 (:data:`REJECTION_TITLES`); its Current Requested Procedure
Evidence Sequence lists the instances it rejects (IHE RAD TF-1 §37 IOCM; RAD TF-3 §4.66
"Rejection Note Stored"; RAD TF-2 §4.8.4.1.3.x "Instance Availability").

What the imaging document source does with one (:meth:`Rejections.apply`), in one database
transaction:

- records the note (``imaging_rejection_note``) and every instance it rejects
  (``imaging_rejected_instance``);
- takes the rejected instances out of the index: RAD-69, WADO-RS and (by the DICOMweb catalog's
  next sync, :func:`removed_since`) QIDO-RS no longer return them (IOCM: "shall not return
  rejected instances in response to query and retrieve requests"); their files are removed after
  the commit;
- marks the study changed, so the idle worker publishes it again: a manifest listing the instances
  left, replacing the previous one (RPLC, RAD-68; RAD TF-3 §4.68.4.1.1 "the contents of a
  previously submitted manifest changes"). The Rejection Note itself is kept (it is an instance
  of the study and can be retrieved) but no manifest lists it (:func:`notes_of_study`);
- when nothing of the study is left, the publisher deprecates the last manifest instead of
  replacing it (``gateway.imaging.publisher``; ITI TF-3 §4.1.x availabilityStatus Deprecated).

An instance stored again after its rejection (sent again, or received after its note) is accepted
by C-STORE but taken out again before the study's next publication (:func:`sweep`): no manifest
lists it. Not done: refusing it at C-STORE time (IOCM lets an Image Manager do so); "Rejected for
Quality Reasons" instances are deleted rather than hidden.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import generate_uid
from sqlalchemy import Engine, delete, select, update

from gateway.database.engine import write_transaction
from gateway.imaging.index import ImagingIndex, InstanceRecord
from gateway.imaging.kos import (
    KOS_SOP_CLASS_UID,
    ManifestIds,
    Reference,
    build_manifest,
    encode_part10,
)
from gateway.imaging.rejection_schema import imaging_rejected_instance, imaging_rejection_note
from gateway.imaging.schema import HELD, RECEIVING, imaging_instance, imaging_study
from gateway.imaging.storage import InstanceStore

log = logging.getLogger("gateway.imaging")

# DICOM PS3.16 CID 7011 "Rejected for Quality Reasons"... (scheme DCM): the titles of an IOCM
# Rejection Note (IHE RAD TF-3 §4.66.4.1.3.1).
REJECTION_TITLES: dict[str, str] = {
    "113001": "Rejected for Quality Reasons",
    "113037": "Rejected for Patient Safety Reasons",
    "113038": "Incorrect Modality Worklist Entry",
    "113039": "Data Retention Policy Expired",
}
REJECTION_SERIES_NUMBER = 998  # the manifest's series is 999 (gateway.imaging.kos)


@dataclass(frozen=True, slots=True, kw_only=True)
class RejectedInstance:
    """One instance a Rejection Note lists."""

    study_instance_uid: str
    series_instance_uid: str
    sop_instance_uid: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RejectionNote:
    """What a Rejection Note says: who rejects what, and why (a CID 7011 code value)."""

    sop_instance_uid: str
    study_instance_uid: str
    reason: str
    rejected: tuple[RejectedInstance, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Applied:
    """The outcome of one Rejection Note."""

    note: RejectionNote
    removed: tuple[str, ...]  # SOP Instance UIDs taken out of the index
    studies: tuple[str, ...]  # studies to publish again


def rejection_reason(ds: Dataset) -> str | None:
    """The CID 7011 code of a Rejection Note's title, or None when ``ds`` is not one.

    Standard: PS3.3 §A.35.4 (KOS IOD), §C.17.6.2 (Key Object Document), PS3.16 CID 7011.
    """
    if str(ds.get("SOPClassUID", "")) != KOS_SOP_CLASS_UID:
        return None
    for item in ds.get("ConceptNameCodeSequence") or []:
        scheme = str(item.get("CodingSchemeDesignator", "") or "")
        code = str(item.get("CodeValue", "") or "")
        if scheme == "DCM" and code in REJECTION_TITLES:
            return code
    return None


def read_note(ds: Dataset) -> RejectionNote | None:
    """The Rejection Note in a data set, or None when it is some other object.

    The rejected instances are those of its Current Requested Procedure Evidence Sequence
    (Hierarchical SOP Instance Reference Macro, PS3.3 Table C.17-3).
    """
    reason = rejection_reason(ds)
    if reason is None:
        return None
    rejected: list[RejectedInstance] = []
    for study in ds.get("CurrentRequestedProcedureEvidenceSequence") or []:
        study_uid = str(study.get("StudyInstanceUID", "") or "")
        for series in study.get("ReferencedSeriesSequence") or []:
            series_uid = str(series.get("SeriesInstanceUID", "") or "")
            for sop in series.get("ReferencedSOPSequence") or []:
                uid = str(sop.get("ReferencedSOPInstanceUID", "") or "")
                if uid and study_uid and series_uid:
                    rejected.append(
                        RejectedInstance(
                            study_instance_uid=study_uid,
                            series_instance_uid=series_uid,
                            sop_instance_uid=uid,
                        )
                    )
    return RejectionNote(
        sop_instance_uid=str(ds.SOPInstanceUID),
        study_instance_uid=str(ds.StudyInstanceUID),
        reason=reason,
        rejected=tuple(rejected),
    )


def build_note(
    study: Dataset,
    references: Sequence[Reference],
    reason: str,
    *,
    retrieve_location_uid: str,
    retrieve_ae_title: str,
    now: datetime | None = None,
) -> Dataset:
    """A Rejection Note (KOS titled with ``reason``, a CID 7011 code) rejecting ``references``.

    ``study`` is the header of one instance of the study (patient and study attributes are
    copied from it). The note is a new instance in a new series of that study (IOCM: "in a
    separate series"). Standard: PS3.3 §A.35.4, TID 2010, IHE RAD TF-3 §4.66.4.1.3.1.
    Raises: ValueError (unknown reason, nothing to reject).
    """
    if reason not in REJECTION_TITLES:
        raise ValueError(
            f"rejection reason {reason!r}: expected one of {', '.join(REJECTION_TITLES)}"
        )
    ids = ManifestIds(
        sop_instance_uid=str(generate_uid(prefix=None)),
        series_instance_uid=str(generate_uid(prefix=None)),
        instance_number=1,
        series_number=REJECTION_SERIES_NUMBER,
    )
    ds = build_manifest(
        study,
        references,
        ids,
        retrieve_location_uid=retrieve_location_uid,
        retrieve_ae_title=retrieve_ae_title,
        now=now or datetime.now(UTC),
    )
    title = Dataset()
    title.CodeValue, title.CodingSchemeDesignator = reason, "DCM"
    title.CodeMeaning = REJECTION_TITLES[reason]
    ds.ConceptNameCodeSequence = DicomSequence([title])
    ds.SeriesDescription = "Rejection Note"
    return ds


class Rejections:
    """Applies Rejection Notes to the index and store of one imaging document source."""

    def __init__(
        self,
        index: ImagingIndex,
        store: InstanceStore,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.index, self.store, self.clock = index, store, clock

    def received(self, record: InstanceRecord) -> Applied | None:
        """Called for every instance indexed: apply it when it is a Rejection Note (a KOS
        whose title is in CID 7011); None for anything else."""
        if record.sop_class_uid != KOS_SOP_CLASS_UID:
            return None
        ds = dcmread(self.store.path(record.path), stop_before_pixels=True)
        note = read_note(ds)
        if note is None:
            return None
        return self.apply(note)

    def apply(self, note: RejectionNote) -> Applied:
        """Record the note, take its instances out of the index (one transaction), mark their
        studies changed, then remove their files. Applying a note twice changes nothing more.

        Standard: IHE RAD TF-3 §4.66 (IOCM), RAD TF-3 §4.68.4.1.1 (a changed manifest is
        replaced).
        """
        now = self.clock()
        wanted = {r.sop_instance_uid: r for r in note.rejected}
        wanted.pop(note.sop_instance_uid, None)  # a note never rejects itself
        c = imaging_instance.c
        with write_transaction(self.index.engine) as conn:  # SQLite: no read-then-write upgrade
            known = conn.execute(
                select(imaging_rejection_note.c.sop_instance_uid).where(
                    imaging_rejection_note.c.sop_instance_uid == note.sop_instance_uid
                )
            ).first()
            if known is None:
                conn.execute(
                    imaging_rejection_note.insert().values(
                        sop_instance_uid=note.sop_instance_uid,
                        study_instance_uid=note.study_instance_uid,
                        reason=note.reason,
                        received_at=now,
                    )
                )
            already = set(
                conn.execute(
                    select(imaging_rejected_instance.c.sop_instance_uid).where(
                        imaging_rejected_instance.c.sop_instance_uid.in_(list(wanted))
                    )
                ).scalars()
            )
            new_rows = [
                {
                    "sop_instance_uid": uid,
                    "study_instance_uid": r.study_instance_uid,
                    "series_instance_uid": r.series_instance_uid,
                    "note_sop_instance_uid": note.sop_instance_uid,
                    "reason": note.reason,
                    "rejected_at": now,
                }
                for uid, r in wanted.items()
                if uid not in already
            ]
            if new_rows:
                conn.execute(imaging_rejected_instance.insert(), new_rows)
            held = conn.execute(
                select(c.sop_instance_uid, c.study_instance_uid, c.path).where(
                    c.sop_instance_uid.in_(list(wanted))
                )
            ).all()
            if held:
                conn.execute(
                    delete(imaging_instance).where(
                        c.sop_instance_uid.in_([row.sop_instance_uid for row in held])
                    )
                )
            studies = sorted({row.study_instance_uid for row in held})
            if studies:
                s = imaging_study.c
                conn.execute(
                    update(imaging_study)
                    .where(s.study_instance_uid.in_(studies), s.state != HELD)
                    .values(state=RECEIVING, last_received=now, retry_after=None)
                )
        for row in held:
            try:
                self.store.remove(row.path)
            except OSError as exc:  # the row is gone: the file is nobody's, say so
                log.warning("rejected instance %s: file not removed: %s", row[0], exc)
        log.info(
            "Rejection Note %s (%s, %s): %d instance(s) removed from study(ies) %s",
            note.sop_instance_uid,
            note.reason,
            REJECTION_TITLES[note.reason],
            len(held),
            ", ".join(studies) or "-",
        )
        return Applied(
            note=note,
            removed=tuple(row.sop_instance_uid for row in held),
            studies=tuple(studies),
        )


def sweep(index: ImagingIndex, store: InstanceStore, study_uid: str) -> int:
    """Take out of the index (and storage) the instances of a study that a Rejection Note
    rejected but that were stored again afterwards (sent again, or after their note): called
    before each publication, so no manifest lists a rejected instance. Their rejection time is
    renewed so that DICOMweb's catalog forgets them again. Returns how many were removed."""
    c, r = imaging_instance.c, imaging_rejected_instance.c
    with write_transaction(index.engine) as conn:
        rows = conn.execute(
            select(c.sop_instance_uid, c.path)
            .join(imaging_rejected_instance, r.sop_instance_uid == c.sop_instance_uid)
            .where(c.study_instance_uid == study_uid)
        ).all()
        if not rows:
            return 0
        uids = [row.sop_instance_uid for row in rows]
        conn.execute(delete(imaging_instance).where(c.sop_instance_uid.in_(uids)))
        conn.execute(
            update(imaging_rejected_instance)
            .where(r.sop_instance_uid.in_(uids))
            .values(rejected_at=time.time())
        )
    for row in rows:
        try:
            store.remove(row.path)
        except OSError as exc:
            log.warning("rejected instance %s: file not removed: %s", row.sop_instance_uid, exc)
    log.warning(
        "study %s: %d instance(s) stored again after their rejection were removed",
        study_uid,
        len(rows),
    )
    return len(rows)


def notes_of_study(engine: Engine, study_uid: str) -> set[str]:
    """The SOP Instance UIDs of the Rejection Notes received for a study (never listed in its
    manifest)."""
    n = imaging_rejection_note.c
    with engine.connect() as conn:
        return set(
            conn.execute(
                select(n.sop_instance_uid).where(n.study_instance_uid == study_uid)
            ).scalars()
        )


def manifest_instances(index: ImagingIndex, study_uid: str) -> list[InstanceRecord]:
    """What a manifest of the study lists: its instances but the Rejection Notes (IOCM)."""
    instances = index.instances_of_study(study_uid)
    notes = notes_of_study(index.engine, study_uid) if instances else set()
    return [r for r in instances if r.sop_instance_uid not in notes]


def removed_since(engine: Engine, after: float, *, limit: int = 1000) -> list[tuple[str, float]]:
    """Instances rejected after ``after`` (``(SOP Instance UID, when)``, oldest first): for
    services that keep derived tables of the index (the DICOMweb catalog)."""
    r = imaging_rejected_instance.c
    query = (
        select(r.sop_instance_uid, r.rejected_at)
        .where(r.rejected_at > after)
        .order_by(r.rejected_at, r.sop_instance_uid)
        .limit(limit)
    )
    with engine.connect() as conn:
        return [(row[0], row[1]) for row in conn.execute(query)]


def select_instances(
    instances: Iterable[InstanceRecord],
    *,
    series: str | None = None,
    sop_instances: Sequence[str] = (),
) -> list[InstanceRecord]:
    """The instances of a study an operator names: all, one series, or some instances."""
    chosen = [r for r in instances if series is None or r.series_instance_uid == series]
    if sop_instances:
        wanted = set(sop_instances)
        chosen = [r for r in chosen if r.sop_instance_uid in wanted]
    return chosen


def encode_note(ds: Dataset) -> bytes:
    """The note as a DICOM Part 10 file (Explicit VR Little Endian)."""
    return encode_part10(ds)
