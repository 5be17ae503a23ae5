"""``media export``: a patient's studies from the exchange onto PDI media (a folder, an ISO image).

1. The consumer's fetch (``gateway.consumer.fetch``: ITI-18 for the KOS manifests, ITI-43 for
   them, RAD-69 for the instances they list) brings the studies, so a study of any source of the
   affinity domain, or of another community through an initiating gateway, can be exported. The
   instances are asked for in Explicit VR Little Endian, the one transfer syntax of the General
   Purpose CD-R and USB profiles (PS3.11 D.3.1 STD-GEN-CD; the imaging source decompresses).
2. They land in a DICOM File-set: the consumer's DICOMDIR destination (pydicom's FileSet) writes
   the ``DICOMDIR`` with PATIENT, STUDY, SERIES and IMAGE records (PS3.3 F.5) and File IDs of at
   most eight components of at most eight characters (PS3.10 §8.2), checked again here. With
   ``--deidentify`` each instance is de-identified on its way in (``deid_destination``).
3. Once every instance is there, README.TXT and INDEX.HTM are written (``pdi``), and with
   ``--iso`` an ISO 9660 image of the folder (``iso``). A run with anything missing writes neither:
   running the same command again fetches only what is missing, then finishes the medium.

Standard: IHE RAD TF-3 §4.47 (PDI); DICOM PS3.10 §8, PS3.11 Annex D, PS3.12 Annex F.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from pydicom import dcmread
from pydicom.uid import UID, ExplicitVRLittleEndian

from gateway.consumer.fetch import FetchReport, FetchRequest, StudyFetcher
from gateway.consumer.settings import ConsumerSettings
from gateway.consumer.store import PARTIAL, Destination, DicomdirDestination
from gateway.media.deid_destination import DeidentifyingDestination
from gateway.media.deidentify import Deidentifier
from gateway.media.iso import write_iso
from gateway.media.pdi import MediaFacts, check_file_ids, write_pdi_files

EXPORT_SYNTAX = str(ExplicitVRLittleEndian)  # PS3.11 D.3.1 (STD-GEN-CD), STD-GEN-USB


class ExportUsageError(ValueError):
    """The export cannot start as asked (a folder in use, an image inside the medium ...)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ExportRequest:
    """What to export, where, and how."""

    patient_id: str
    study_uids: Sequence[str] = ()
    out: Path
    iso: Path | None = None
    deidentifier: Deidentifier | None = None
    creator: str
    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def fileset_id(self) -> str:
        """File-set ID of a new medium (CS, 16 characters): also the ISO Volume Identifier."""
        return f"XDSI{self.now.strftime('%Y%m%d')}"


@dataclass(slots=True, kw_only=True)
class ExportReport:
    """What an export did: the fetch, and the medium when it was finished."""

    fetch: FetchReport
    instances: int = 0  # in the finished DICOMDIR
    iso_size: int | None = None

    @property
    def finished(self) -> bool:
        return self.instances > 0


def check_request(request: ExportRequest) -> None:
    """Refuse an export that would mix the medium with other files. Raises: ExportUsageError."""
    out = request.out
    if out.exists() and not out.is_dir():
        raise ExportUsageError(f"--out {out}: not a folder")
    if out.is_dir():
        entries = {path.name for path in out.iterdir()} - {PARTIAL}
        if entries and "DICOMDIR" not in entries:
            raise ExportUsageError(
                f"--out {out}: the folder holds other files; give an empty folder (or the "
                "folder of an earlier export of this patient to complete it)"
            )
    if request.iso is not None:
        iso = request.iso.resolve()
        if iso == out.resolve() or out.resolve() in iso.parents:
            raise ExportUsageError(f"--iso {request.iso}: the image cannot be inside --out")


def export_media(
    request: ExportRequest,
    consumer: ConsumerSettings,
    *,
    progress: TextIO | None = None,
    live: bool | None = None,
) -> ExportReport:
    """Fetch, write the File-set, then finish the medium when nothing is missing.

    Raises: ExportUsageError; MediaLayoutError, IsoError (the medium cannot be finished);
    KeyboardInterrupt passes (a re-run continues).
    """
    check_request(request)
    destination: Destination = DicomdirDestination(request.out, fileset_id=request.fileset_id)
    if request.deidentifier is not None:
        destination = DeidentifyingDestination(destination, request.deidentifier)
    merged = FetchReport()
    studies: Sequence[str | None] = list(request.study_uids) or [None]
    for study in studies:
        fetcher = StudyFetcher(consumer, destination, progress=progress, live=live)
        report = fetcher.run(
            FetchRequest(
                patient_id=request.patient_id,
                study_uid=study,
                transfer_syntaxes=(EXPORT_SYNTAX,),
            )
        )
        merged.studies.extend(report.studies)
        merged.problems.extend(report.problems)
        merged.notes.extend(report.notes)
    if merged.complete and not (request.out / "DICOMDIR").is_file():
        merged.problems.extend(merged.notes or ["no DICOMDIR was written"])
        merged.notes.clear()
    result = ExportReport(fetch=merged)
    if not merged.complete:
        return result
    result.instances = check_file_ids(request.out)
    fileset_id = str(dcmread(request.out / "DICOMDIR").get("FileSetID", "") or "")
    facts = MediaFacts(
        creator=request.creator,
        created=request.now,
        fileset_id=fileset_id,
        deidentified=request.deidentifier is not None,
        transfer_syntax=UID(EXPORT_SYNTAX).name,
    )
    write_pdi_files(request.out, facts)
    if request.iso is not None:
        result.iso_size = write_iso(request.out, request.iso, fileset_id or request.fileset_id)
    return result
