"""Reading an XDS-I.b manifest (DICOM KOS) on the consumer side, and planning its retrieval.

The instances to fetch are those of the Current Requested Procedure Evidence Sequence
(0040,A375) (Hierarchical SOP Instance Reference Macro, PS3.3 Table C.17-3): study > Referenced
Series Sequence (0008,1115) > Referenced SOP Sequence (0008,1199). Each series names the imaging
document source that holds it by Retrieve Location UID (0040,E011) and a Retrieve AE Title
(0008,0054) (RAD TF-3 §4.68.4.1.2.2). The UID is read at the instance level first, then the series,
then the study, so a manifest that puts it at another level of the macro still works.

RAD-69 requests are planned per Retrieve Location UID (one source per request, RAD TF-3
§4.69.4.1.2) in batches of at most ``batch_size`` instances, series kept together in order.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import BinaryIO

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from gateway.consumer.errors import ManifestError
from gateway.metadata.retrieve import DocumentRequest, ImagingDocumentRequest

KOS_SOP_CLASS_UID = "1.2.840.10008.5.1.4.1.1.88.59"  # Key Object Selection Document Storage


@dataclass(frozen=True, slots=True, kw_only=True)
class InstanceRef:
    """One instance a manifest lists, with where to retrieve it."""

    study_instance_uid: str
    series_instance_uid: str
    sop_instance_uid: str
    sop_class_uid: str
    retrieve_location_uid: str | None
    retrieve_ae_title: str | None = None
    home_community_id: str | None = None  # the community the manifest came from (XCA-I)
    retrieve_url: str | None = None  # (0008,1190) of the WADO-RS option, RAD TF-2 §4.107

    def imaging_request(self, home_community_id: str | None = None) -> ImagingDocumentRequest:
        """The RAD-69 request of this instance: the Retrieve Location UID as RepositoryUniqueId,
        the SOP Instance UID as DocumentUniqueId (RAD TF-3 §4.69.4.1.2)."""
        if not self.retrieve_location_uid:
            raise ValueError(f"instance {self.sop_instance_uid} has no Retrieve Location UID")
        return ImagingDocumentRequest(
            study_instance_uid=self.study_instance_uid,
            series_instance_uid=self.series_instance_uid,
            document=DocumentRequest(
                repository_unique_id=self.retrieve_location_uid,
                document_unique_id=self.sop_instance_uid,
                home_community_id=home_community_id,
            ),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Manifest:
    """What a consumer needs from a KOS manifest."""

    sop_instance_uid: str
    study_instance_uid: str
    patient_id: str
    patient_name: str
    accession_numbers: tuple[str, ...]
    instances: tuple[InstanceRef, ...]

    @property
    def study_uids(self) -> tuple[str, ...]:
        """The studies the evidence lists, in order (usually one: the manifest's own)."""
        return tuple(dict.fromkeys(ref.study_instance_uid for ref in self.instances))

    def from_community(self, home_community_id: str | None) -> Manifest:
        """This manifest with every instance marked as held in ``home_community_id`` (the
        community whose query returned it; its instances are retrieved there, RAD TF-3
        §4.75.4.1.2)."""
        if not home_community_id:
            return self
        marked = tuple(replace(r, home_community_id=home_community_id) for r in self.instances)
        return replace(self, instances=marked)


def _text(item: Dataset, keyword: str) -> str:
    return str(item.get(keyword, "") or "").strip()


def read_manifest(source: bytes | str | os.PathLike[str] | BinaryIO) -> Manifest:
    """Read a KOS manifest (Part 10 bytes, a path or a binary file) into a :class:`Manifest`.

    Standard: PS3.3 §C.17.6.2.1 (Current Requested Procedure Evidence Sequence), Table C.17-3;
    RAD TF-3 §4.68.4.1.2.2. Raises: ManifestError (not DICOM, not a KOS, no evidence).
    """
    handle: BinaryIO | str | os.PathLike[str]
    handle = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        ds = dcmread(handle)
    except (InvalidDicomError, OSError, ValueError, EOFError) as exc:
        raise ManifestError(f"the manifest is not a readable DICOM file: {exc}") from exc
    sop_class = _text(ds, "SOPClassUID")
    if sop_class != KOS_SOP_CLASS_UID:
        raise ManifestError(f"the manifest is SOP Class {sop_class or '?'}, not a KOS")
    instances = tuple(_evidence(ds))
    if not instances:
        raise ManifestError(
            f"manifest {_text(ds, 'SOPInstanceUID')} lists no instance in its Current "
            "Requested Procedure Evidence Sequence"
        )
    accessions = [_text(ds, "AccessionNumber")]
    accessions += [
        _text(item, "AccessionNumber") for item in ds.get("ReferencedRequestSequence") or []
    ]
    return Manifest(
        sop_instance_uid=_text(ds, "SOPInstanceUID"),
        study_instance_uid=_text(ds, "StudyInstanceUID"),
        patient_id=_text(ds, "PatientID"),
        patient_name=str(ds.get("PatientName", "") or ""),
        accession_numbers=tuple(dict.fromkeys(a for a in accessions if a)),
        instances=instances,
    )


def _evidence(ds: Dataset) -> Iterable[InstanceRef]:
    for study in ds.get("CurrentRequestedProcedureEvidenceSequence") or []:
        study_uid = _text(study, "StudyInstanceUID")
        for series in study.get("ReferencedSeriesSequence") or []:
            series_uid = _text(series, "SeriesInstanceUID")
            for sop in series.get("ReferencedSOPSequence") or []:
                location = (
                    _text(sop, "RetrieveLocationUID")
                    or _text(series, "RetrieveLocationUID")
                    or _text(study, "RetrieveLocationUID")
                )
                title = _text(sop, "RetrieveAETitle") or _text(series, "RetrieveAETitle")
                url = _text(sop, "RetrieveURL") or _text(series, "RetrieveURL")
                yield InstanceRef(
                    study_instance_uid=study_uid,
                    series_instance_uid=series_uid,
                    sop_instance_uid=_text(sop, "ReferencedSOPInstanceUID"),
                    sop_class_uid=_text(sop, "ReferencedSOPClassUID"),
                    retrieve_location_uid=location or None,
                    retrieve_ae_title=title or None,
                    retrieve_url=url or None,
                )


def merge_instances(manifests: Iterable[Manifest]) -> list[InstanceRef]:
    """Every instance of several manifests once (first listing wins), in manifest order."""
    seen: dict[str, InstanceRef] = {}
    for manifest in manifests:
        for ref in manifest.instances:
            seen.setdefault(ref.sop_instance_uid, ref)
    return list(seen.values())


Locate = Callable[[InstanceRef], "str | None"]


def by_location_uid(ref: InstanceRef) -> str | None:
    """Where RAD-69 asks for an instance: its Retrieve Location UID."""
    return ref.retrieve_location_uid


def group_by_location(
    instances: Iterable[InstanceRef], locate: Locate = by_location_uid
) -> dict[str | None, list[InstanceRef]]:
    """Instances by Retrieve Location UID (or what ``locate`` says; None: the manifest names
    none), order kept."""
    groups: dict[str | None, list[InstanceRef]] = {}
    for ref in instances:
        groups.setdefault(locate(ref), []).append(ref)
    return groups


def plan_batches(
    instances: Sequence[InstanceRef], batch_size: int, locate: Locate = by_location_uid
) -> list[tuple[str, list[InstanceRef]]]:
    """RAD-69 requests: ``(Retrieve Location UID, instances)`` of at most ``batch_size``
    instances, one location per request, series kept together and in manifest order.

    Instances without a Retrieve Location UID cannot be requested and are left out.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    planned: list[tuple[str, list[InstanceRef]]] = []
    for location, members in group_by_location(instances, locate).items():
        if location is None:
            continue
        ordered = sorted(members, key=_series_order(members))
        for start in range(0, len(ordered), batch_size):
            planned.append((location, ordered[start : start + batch_size]))
    return planned


def _series_order(members: Sequence[InstanceRef]) -> Callable[[InstanceRef], tuple[int, int]]:
    first: dict[tuple[str, str], int] = {}
    for index, ref in enumerate(members):
        first.setdefault((ref.study_instance_uid, ref.series_instance_uid), index)
    position = {ref.sop_instance_uid: i for i, ref in enumerate(members)}

    def key(ref: InstanceRef) -> tuple[int, int]:
        return first[(ref.study_instance_uid, ref.series_instance_uid)], position[
            ref.sop_instance_uid
        ]

    return key
