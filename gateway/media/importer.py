"""``media import``: a medium's instances into the imaging source, reconciled, then published.

1. :func:`plan_import` decides the domain identity of every patient of the medium
   (``gateway.media.reconcile``); nothing is written before every patient is reconciled.
2. :class:`MediaImporter` takes each instance: one the imaging source already holds for the same
   domain patient is skipped (re-importing a medium changes nothing); one it holds for another
   patient is refused; the others are coerced into a temporary file (or taken byte for byte when
   the medium already names the domain patient) and handed to the imaging source, which checks,
   stores (atomically) and indexes it exactly as a C-STORE (``ImagingIntake.import_file``).
3. Every study of the medium is then published now (RAD-68, a KOS manifest; unchanged when it was
   published before and nothing is new), rather than after ``study_idle_seconds``: the command
   ends, and the operator sees the manifest.

The imaging source is reached through :class:`ImagingIntake`, which ``ImagingSource`` satisfies;
the assembly wires it (ARCHITECTURE.md: media uses imaging ingest's public interface).
Standard: IHE RAD IRWF.b (Importer); RAD TF-3 §4.68 (RAD-68).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol, TextIO

from pydicom import dcmread
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID

from gateway.media.inventory import Inventory, MediaInstance, MediaPatient
from gateway.media.reconcile import (
    DomainPatient,
    PatientDirectory,
    ReconciliationError,
    already_domain,
    coerce,
    match_fed,
    parse_domain_patient,
)
from gateway.progress import Progress

log = logging.getLogger("gateway.media")

PUBLISHED_OUTCOMES = ("published", "unchanged")  # gateway.imaging.outcomes


class PublishOutcome(Protocol):
    """What the imaging source says of one publication (``imaging.outcomes.PublishResult``)."""

    @property
    def outcome(self) -> str: ...
    @property
    def manifest_uid(self) -> str | None: ...
    @property
    def detail(self) -> str: ...


class ImagingIntake(Protocol):
    """The imaging source, as the importer needs it (``gateway.imaging.source.ImagingSource``)."""

    def stored_patient_id(self, sop_instance_uid: str) -> str | None:
        """The Patient ID of the stored copy of an instance, or None when it is not stored."""
        ...

    def import_file(self, path: Path) -> str:
        """Check, store and index a Part 10 file as a C-STORE would; return its Study Instance
        UID. Raises: ValueError saying why it is refused."""
        ...

    def publish_study(self, study_uid: str) -> PublishOutcome:
        """Publish a study now (RAD-68)."""
        ...


@dataclass(slots=True, kw_only=True)
class ImportPlan:
    """The medium and the domain identity of each of its patients."""

    inventory: Inventory
    targets: dict[MediaPatient, DomainPatient]


def plan_import(
    inventory: Inventory,
    *,
    patient_option: str | None,
    directory: PatientDirectory | None,
    domain_oid: str,
) -> ImportPlan:
    """Reconcile every patient of the medium. Raises: ReconciliationError (nothing to import,
    ``--patient`` for a medium of several patients, no or several candidates)."""
    patients = inventory.patients()
    if not patients:
        raise ReconciliationError(f"no DICOM instance to import in {inventory.root}")
    if patient_option:
        identities = {(p.patient_id, p.issuer, p.universal_entity_id) for p in patients}
        if len(identities) > 1:
            listed = "".join(f"\n  {p.describe()}" for p in patients)
            raise ReconciliationError(
                f"--patient names one patient but the medium holds {len(identities)}; import "
                f"them one at a time (a folder each) or without --patient:{listed}"
            )
        target = parse_domain_patient(patient_option, domain_oid)
        return ImportPlan(inventory=inventory, targets=dict.fromkeys(patients, target))
    targets = {p: match_fed(p, directory, domain_oid) for p in patients}
    return ImportPlan(inventory=inventory, targets=targets)


@dataclass(slots=True, kw_only=True)
class ImportReport:
    """What an import did."""

    stored: int = 0
    already: int = 0
    bytes: int = 0
    refused: list[tuple[Path, str]] = field(default_factory=list)
    published: dict[str, PublishOutcome] = field(default_factory=dict)
    interrupted: bool = False

    @property
    def failed_studies(self) -> list[str]:
        return [u for u, r in self.published.items() if r.outcome not in PUBLISHED_OUTCOMES]

    @property
    def complete(self) -> bool:
        return not (self.refused or self.failed_studies or self.interrupted)


class MediaImporter:
    """Runs an :class:`ImportPlan` against the imaging source."""

    def __init__(
        self,
        intake: ImagingIntake,
        *,
        work_dir: Path,
        progress: TextIO | None = None,
        live: bool | None = None,
        now: datetime | None = None,
    ) -> None:
        self.intake = intake
        self.work_dir = work_dir
        self.progress_stream = progress
        self.live = live
        self.now = now or datetime.now(UTC)

    def run(self, plan: ImportPlan) -> ImportReport:
        """Import every instance, then publish every study; refusals are in the report.
        KeyboardInterrupt passes (what was stored stays; a re-run continues)."""
        report = ImportReport(refused=list(plan.inventory.refused))
        instances = plan.inventory.instances
        progress = Progress(
            "importing",
            len(instances),
            unit="instances",
            stream=self.progress_stream,
            live=self.live,
            width=20,
        )
        studies: dict[str, None] = {}
        try:
            for instance in instances:
                size = self._one(instance, plan.targets[instance.patient], report, studies)
                progress.advance(1, size)
        except KeyboardInterrupt:
            report.interrupted = True
            raise
        finally:
            progress.close()
        for study_uid in studies:
            report.published[study_uid] = self.intake.publish_study(study_uid)
        return report

    def _one(
        self,
        instance: MediaInstance,
        target: DomainPatient,
        report: ImportReport,
        studies: dict[str, None],
    ) -> int:
        """Import one instance; return the bytes read."""
        stored = self.intake.stored_patient_id(instance.sop_instance_uid)
        if stored is not None:
            if stored == target.patient_id:
                report.already += 1
                studies[instance.study_instance_uid] = None
            else:
                report.refused.append(
                    (instance.path, f"already stored for Patient ID {stored}: not imported again")
                )
            return 0
        try:
            size = instance.path.stat().st_size
            if already_domain(instance.patient, target):
                study = self.intake.import_file(instance.path)
            else:
                study = self._coerced(instance.path, target)
        except (ValueError, OSError) as exc:
            report.refused.append((instance.path, str(exc)))
            return 0
        report.stored += 1
        report.bytes += size
        studies[study] = None
        return size

    def _coerced(self, path: Path, target: DomainPatient) -> str:
        """Coerce a copy of the file in ``work_dir`` and import it; the copy is removed."""
        self.work_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        temporary = self.work_dir / f"{secrets.token_hex(12)}.dcm"
        try:
            try:
                ds = dcmread(path)
            except Exception as exc:  # pydicom raises many kinds on garbled input
                raise ValueError(f"unreadable data set ({exc})") from exc
            coerce(ds, target, now=self.now)
            ds.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID  # we wrote it
            ds.save_as(temporary, enforce_file_format=True)
            return self.intake.import_file(temporary)
        finally:
            temporary.unlink(missing_ok=True)


def studies_line(report: ImportReport, study_uid: str) -> str:
    """One summary line for a study's publication."""
    result = report.published[study_uid]
    parts = [f"study {study_uid}: {result.outcome}"]
    if result.manifest_uid:
        parts.append(f"manifest {result.manifest_uid}")
    if result.detail:
        parts.append(f"({result.detail})")
    return " ".join(parts)


def listed(refused: Sequence[tuple[Path, str]], limit: int = 50) -> list[str]:
    """The refused files, one line each (at most ``limit``, then a count)."""
    lines = [f"  refused {path}: {reason}" for path, reason in refused[:limit]]
    if len(refused) > limit:
        lines.append(f"  ... and {len(refused) - limit} more")
    return lines
