"""What an ImagingStudy needs from a published KOS manifest (pydicom; no network, no pixels).

The instances are those of the Current Requested Procedure Evidence Sequence (0040,A375), the
Hierarchical SOP Instance Reference Macro (DICOM PS3.3 Table C.17-3): study > Referenced Series
Sequence (0008,1115) > Referenced SOP Sequence (0008,1199), each series naming the source that
holds it by Retrieve Location UID (0040,E011), RAD TF-3 §4.68.4.1.2.2. The UID is read at the
instance level first, then the series, then the study.
"""

from __future__ import annotations

import io
from collections import OrderedDict
from dataclasses import dataclass, field
from threading import Lock

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

KOS_SOP_CLASS_UID = "1.2.840.10008.5.1.4.1.1.88.59"  # Key Object Selection Document Storage


class ManifestError(ValueError):
    """The bytes are not a readable KOS manifest (the message says why)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class InstanceRef:
    sop_instance_uid: str
    sop_class_uid: str


@dataclass(slots=True, kw_only=True)
class SeriesRef:
    series_instance_uid: str
    retrieve_location_uid: str | None
    instances: list[InstanceRef] = field(default_factory=list)


@dataclass(slots=True, kw_only=True)
class StudyManifest:
    """One KOS: the study it documents and its series in manifest order."""

    study_instance_uid: str
    study_date: str = ""
    study_time: str = ""
    study_description: str = ""
    accession_number: str = ""
    series: list[SeriesRef] = field(default_factory=list)

    @property
    def instance_count(self) -> int:
        return sum(len(s.instances) for s in self.series)


def _text(item: Dataset, keyword: str) -> str:
    return str(item.get(keyword, "") or "").strip()


def read_manifest(data: bytes) -> StudyManifest:
    """Read a KOS manifest (Part 10 bytes). Raises: ManifestError.

    Standard: PS3.3 §C.17.6.2.1, Table C.17-3; RAD TF-3 §4.68.4.1.2.2.
    """
    try:
        ds = dcmread(io.BytesIO(data))
    except (InvalidDicomError, OSError, ValueError, EOFError, AttributeError) as exc:
        raise ManifestError(f"not a readable DICOM file: {exc}") from exc
    if _text(ds, "SOPClassUID") != KOS_SOP_CLASS_UID:
        raise ManifestError(f"SOP Class {_text(ds, 'SOPClassUID') or '?'} is not a KOS")
    manifest = StudyManifest(
        study_instance_uid=_text(ds, "StudyInstanceUID"),
        study_date=_text(ds, "StudyDate"),
        study_time=_text(ds, "StudyTime"),
        study_description=_text(ds, "StudyDescription"),
        accession_number=_text(ds, "AccessionNumber"),
    )
    by_uid: dict[str, SeriesRef] = {}
    for study in ds.get("CurrentRequestedProcedureEvidenceSequence") or []:
        study_location = _text(study, "RetrieveLocationUID")
        for series in study.get("ReferencedSeriesSequence") or []:
            uid = _text(series, "SeriesInstanceUID")
            location = _text(series, "RetrieveLocationUID") or study_location
            ref = by_uid.get(uid)
            if ref is None:
                ref = by_uid[uid] = SeriesRef(series_instance_uid=uid, retrieve_location_uid=None)
                manifest.series.append(ref)
            for sop in series.get("ReferencedSOPSequence") or []:
                ref.retrieve_location_uid = (
                    ref.retrieve_location_uid
                    or _text(sop, "RetrieveLocationUID")
                    or location
                    or None
                )
                ref.instances.append(
                    InstanceRef(
                        sop_instance_uid=_text(sop, "ReferencedSOPInstanceUID"),
                        sop_class_uid=_text(sop, "ReferencedSOPClassUID"),
                    )
                )
    if not manifest.instance_count:
        raise ManifestError("the manifest lists no instance in its evidence sequence")
    return manifest


class ManifestCache:
    """Read manifests, keyed by document uniqueId: a registered document never changes (a
    replacement is a new document with a new uniqueId, ITI TF-3 §4.1.7), so entries need no
    invalidation; the cache is bounded and per process."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._items: OrderedDict[str, StudyManifest] = OrderedDict()
        self._lock = Lock()

    def get(self, key: str) -> StudyManifest | None:
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
            return found

    def put(self, key: str, manifest: StudyManifest) -> None:
        with self._lock:
            self._items[key] = manifest
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
