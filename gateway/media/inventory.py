"""What a CD, DVD, USB stick or folder holds: its DICOM instances by patient, study and series.

A medium with a ``DICOMDIR`` (PS3.10 §8, Basic Directory IOD PS3.3 F) is read through it: every
IMAGE (or other instance) record's Referenced File ID names a file, and only those files are
imported (a PDI medium also carries README.TXT, INDEX.HTM, a viewer ...; PS3.10 §8.1 makes the
DICOMDIR the index of the File-set). File IDs are resolved without regard to case, since a CD
mounted without Rock Ridge shows ISO 9660 names in lower case on Linux. A medium without a
DICOMDIR (a folder someone copied) is walked, and every file is tried.

Only headers are read (up to the Pixel Data). A file that cannot be read, is not DICOM, or lacks
a UID the exchange needs (SOP Class, SOP Instance, Study Instance, Series Instance) is *refused*,
with the reason; the others are listed.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

log = logging.getLogger("gateway.media")

_UID = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")
_REQUIRED = ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID")


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaPatient:
    """The patient as a medium names it (PS3.3 C.7.1.1 Patient Module)."""

    patient_id: str
    issuer: str = ""  # Issuer of Patient ID (0010,0021)
    universal_entity_id: str = ""  # (0010,0024) > (0040,0032)
    name: str = ""  # Patient's Name, PN as encoded (FAMILY^GIVEN^...)
    birth_date: str = ""  # Patient's Birth Date, DA
    sex: str = ""  # Patient's Sex, M/F/O

    @classmethod
    def from_header(cls, header: Dataset) -> MediaPatient:
        """Read the patient attributes of a data set."""
        qualifiers = header.get("IssuerOfPatientIDQualifiersSequence") or []
        first = qualifiers[0] if len(qualifiers) else Dataset()
        return cls(
            patient_id=_text(header.get("PatientID")),
            issuer=_text(header.get("IssuerOfPatientID")),
            universal_entity_id=_text(first.get("UniversalEntityID")),
            name=_text(header.get("PatientName")),
            birth_date=_text(header.get("PatientBirthDate")),
            sex=_text(header.get("PatientSex")).upper(),
        )

    @property
    def family_name(self) -> str:
        return self.name.split("=")[0].split("^")[0].strip()

    @property
    def given_name(self) -> str:
        components = self.name.split("=")[0].split("^")
        return components[1].strip() if len(components) > 1 else ""

    def describe(self) -> str:
        """``NAME (ID, issuer; born DATE, sex S)`` for messages."""
        issuer = self.universal_entity_id or self.issuer or "no issuer"
        return (
            f"{self.name or '(no name)'} (ID {self.patient_id or '(none)'}, {issuer}; "
            f"born {self.birth_date or '?'}, sex {self.sex or '?'})"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaInstance:
    """One instance found on the medium."""

    path: Path
    patient: MediaPatient
    study_instance_uid: str
    series_instance_uid: str
    sop_instance_uid: str
    modality: str = ""
    study_date: str = ""
    study_description: str = ""


@dataclass(slots=True, kw_only=True)
class Inventory:
    """The instances of a medium and the files refused, with how it was read."""

    root: Path
    through_dicomdir: bool
    instances: list[MediaInstance] = field(default_factory=list)
    refused: list[tuple[Path, str]] = field(default_factory=list)

    def patients(self) -> list[MediaPatient]:
        """The distinct patients, in first-seen order."""
        return list(dict.fromkeys(instance.patient for instance in self.instances))

    def studies(self) -> dict[str, list[MediaInstance]]:
        """Instances by Study Instance UID, in first-seen order."""
        found: dict[str, list[MediaInstance]] = {}
        for instance in self.instances:
            found.setdefault(instance.study_instance_uid, []).append(instance)
        return found

    def lines(self) -> Iterator[str]:
        """The content as text: patients, their studies, series and instance counts."""
        how = "its DICOMDIR" if self.through_dicomdir else "its files (no DICOMDIR)"
        yield f"{self.root}, read through {how}:"
        for patient in self.patients():
            yield f"  patient {patient.describe()}"
            for uid, members in self.studies().items():
                if members[0].patient != patient:
                    continue
                first = members[0]
                yield (
                    f"    study {uid} {first.study_date or '(no date)'} "
                    f"{first.study_description or ''}".rstrip()
                )
                series: dict[str, list[MediaInstance]] = {}
                for instance in members:
                    series.setdefault(instance.series_instance_uid, []).append(instance)
                for series_uid, items in series.items():
                    yield f"      series {series_uid} {items[0].modality}: {len(items)} instance(s)"
        if self.refused:
            yield f"  {len(self.refused)} file(s) refused"


def _text(value: object) -> str:
    return str(value).strip() if value is not None else ""


def read_media(path: str | os.PathLike[str]) -> Inventory:
    """List what ``path`` (a mounted medium or a folder) holds. Raises: FileNotFoundError,
    NotADirectoryError."""
    root = Path(path)
    if not root.exists():
        raise FileNotFoundError(f"{root} does not exist")
    if not root.is_dir():
        raise NotADirectoryError(f"{root} is not a folder (a mounted CD, DVD, USB stick)")
    dicomdir = _child(root, "DICOMDIR")
    if dicomdir is not None:
        files = _through_dicomdir(root, dicomdir)
        if files is not None:
            return _read(root, True, files)
    return _read(root, False, [(file, None) for file in _walk(root)])


def _read(root: Path, through: bool, files: Sequence[tuple[Path, str | None]]) -> Inventory:
    inventory = Inventory(root=root, through_dicomdir=through)
    for file, problem in files:
        if problem is not None:
            inventory.refused.append((file, problem))
            continue
        try:
            inventory.instances.append(_instance(file))
        except ValueError as exc:
            inventory.refused.append((file, str(exc)))
    return inventory


def _instance(path: Path) -> MediaInstance:
    """Read one file's header. Raises: ValueError saying why it is refused."""
    try:
        header = dcmread(path, stop_before_pixels=True)
    except InvalidDicomError as exc:
        raise ValueError(f"not a DICOM file ({exc})") from exc
    except OSError as exc:
        raise ValueError(f"unreadable ({exc.strerror or exc})") from exc
    except Exception as exc:  # pydicom raises many kinds on garbled input
        raise ValueError(f"unreadable data set ({exc})") from exc
    try:
        values = {keyword: _text(header.get(keyword)) for keyword in _REQUIRED}
        missing = [k for k, v in values.items() if len(v) > 64 or not _UID.match(v)]
        if missing:
            raise ValueError(f"missing or invalid {', '.join(missing)}")
        return MediaInstance(
            path=path,
            patient=MediaPatient.from_header(header),
            study_instance_uid=values["StudyInstanceUID"],
            series_instance_uid=values["SeriesInstanceUID"],
            sop_instance_uid=values["SOPInstanceUID"],
            modality=_text(header.get("Modality")),
            study_date=_text(header.get("StudyDate")),
            study_description=_text(header.get("StudyDescription")),
        )
    except ValueError:
        raise
    except Exception as exc:  # a garbled element only fails when its value is read
        raise ValueError(f"unreadable data set ({exc})") from exc


def _through_dicomdir(root: Path, dicomdir: Path) -> list[tuple[Path, str | None]] | None:
    """Every file a directory record of the DICOMDIR references (Referenced File ID (0004,1500),
    PS3.3 F.3.2.2), with a reason when it is missing; None when the DICOMDIR itself cannot be
    read (the medium is then walked)."""
    try:
        records = dcmread(dicomdir).get("DirectoryRecordSequence") or []
    except Exception as exc:  # pydicom raises many kinds on a broken DICOMDIR
        log.warning("cannot read %s (%s): reading every file instead", dicomdir, exc)
        return None
    files: list[tuple[Path, str | None]] = []
    for record in records:
        file_id = record.get("ReferencedFileID")
        if not file_id:
            continue  # PATIENT, STUDY, SERIES records reference no file
        components = [str(file_id)] if isinstance(file_id, str) else [str(c) for c in file_id]
        found = _resolve(root, components)
        if found is None:
            listed = root.joinpath(*components)
            files.append((listed, "listed in the DICOMDIR but not on the medium"))
        else:
            files.append((found, None))
    return list(dict.fromkeys(files))


def _child(folder: Path, name: str) -> Path | None:
    """The entry of ``folder`` called ``name``, whatever its case (and without a ``;1``)."""
    exact = folder / name
    if exact.exists():
        return exact
    wanted = name.upper()
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name.upper().split(";")[0].rstrip(".") == wanted:
                    return Path(entry.path)
    except OSError:
        return None
    return None


def _resolve(root: Path, components: Sequence[str]) -> Path | None:
    current = root
    for component in components:
        found = _child(current, component)
        if found is None:
            return None
        current = found
    return current if current.is_file() else None


def _walk(root: Path) -> Iterator[Path]:
    """Every regular file below ``root`` (sorted; hidden files and folders skipped)."""
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith("."):
                yield Path(folder) / name
