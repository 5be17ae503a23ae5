"""Synthetic DICOM studies for tests, benchmarks and demonstrations (no real patient data).

:func:`make_study` builds a study of several series (CT, MR, ...) with small native pixel data,
in any transfer syntax pydicom can write; :func:`write_study` saves it as Part 10 files. A series
may use an encapsulated (JPEG) transfer syntax: its pixel data is a valid encapsulation of a
minimal JPEG stream (never decoded by the gateway, which stores what it receives).

Every instance is a valid instance of its IOD (the modality's modules come from
:mod:`gateway.imaging.synthetic_modules`; ``dciodvfy`` reports no error). JPEG Baseline carries
8-bit samples only, so a JPEG Baseline series is refused for CT and MR, whose images are 12 to
16 bits (use CR, DX, US or OT).

:func:`write_multiframe` writes one large multi-frame instance (a gigabyte if asked) without
holding its pixel data in memory.
"""

from __future__ import annotations

import io
import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydicom import dcmwrite
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGBaseline8Bit,
    generate_uid,
)

from gateway.imaging.synthetic_modules import EIGHT_BIT_ONLY, SIXTEEN_BIT_ONLY, add_modules

SOP_CLASSES = {
    "CT": "1.2.840.10008.5.1.4.1.1.2",  # CT Image Storage
    "MR": "1.2.840.10008.5.1.4.1.1.4",  # MR Image Storage
    "CR": "1.2.840.10008.5.1.4.1.1.1",  # Computed Radiography Image Storage
    "DX": "1.2.840.10008.5.1.4.1.1.1.1",  # Digital X-Ray Image Storage - For Presentation
    "US": "1.2.840.10008.5.1.4.1.1.6.1",  # Ultrasound Image Storage
    "OT": "1.2.840.10008.5.1.4.1.1.7",  # Secondary Capture Image Storage
}
# Multi-frame Grayscale Word Secondary Capture Image Storage (PS3.4 Annex B, PS3.3 A.8.4).
MULTIFRAME_GRAYSCALE_WORD_SC = "1.2.840.10008.5.1.4.1.1.7.3"
# Smallest JPEG-looking stream (SOI ... EOI): encapsulated data the gateway never decodes.
_FAKE_JPEG = bytes.fromhex("ffd8ffe000104a46494600010100000100010000ffd9")


@dataclass(frozen=True, slots=True, kw_only=True)
class SeriesSpec:
    """One series: modality, instance count, transfer syntax, body part."""

    modality: str
    count: int
    transfer_syntax: str = ExplicitVRLittleEndian
    body_part: str = "CHEST"
    rows: int = 16
    columns: int = 16

    def __post_init__(self) -> None:
        if self.transfer_syntax == JPEGBaseline8Bit and self.modality in SIXTEEN_BIT_ONLY:
            raise ValueError(
                f"a {self.modality} series cannot be JPEG Baseline: its images are 12 to 16 bit, "
                "JPEG Baseline 8 bit (PS3.3 C.8.2.1.1.4, PS3.5 8.2.1); use CR, DX, US or OT"
            )


@dataclass(slots=True, kw_only=True)
class StudySpec:
    """Patient, study and series of a synthetic study."""

    patient_id: str = "PAT-0001"
    patient_name: str = "Synthetic^Patient"
    issuer_of_patient_id: str = ""
    issuer_oid: str = ""  # Universal Entity ID (ISO) in Issuer of Patient ID Qualifiers Sequence
    birth_date: str = "19700101"
    sex: str = "O"
    accession_number: str = "ACC-0001"
    accession_issuer_oid: str = ""
    study_uid: str = field(default_factory=lambda: str(generate_uid(prefix=None)))
    study_date: str = "20240102"
    study_time: str = "101500"
    study_description: str = "Synthetic imaging study"
    procedure_code: tuple[str, str, str] | None = None  # (value, designator, meaning)
    requested_procedure_id: str = ""
    series: Sequence[SeriesSpec] = (SeriesSpec(modality="CT", count=3),)


def make_study(spec: StudySpec) -> list[Dataset]:
    """Build every instance of a study (each with its File Meta Information)."""
    instances = []
    for number, series in enumerate(spec.series, start=1):
        series_uid = str(generate_uid(prefix=None))
        frame_of_reference_uid = str(generate_uid(prefix=None))
        for index in range(series.count):
            ds = _instance(spec, series, series_uid, number, index + 1)
            add_modules(
                ds, frame_of_reference_uid=frame_of_reference_uid, instance_number=index + 1
            )
            instances.append(ds)
    return instances


def _instance(
    spec: StudySpec, series: SeriesSpec, series_uid: str, series_number: int, number: int
) -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = SOP_CLASSES.get(series.modality, SOP_CLASSES["OT"])
    ds.SOPInstanceUID = str(generate_uid(prefix=None))
    ds.StudyDate, ds.StudyTime = spec.study_date, spec.study_time
    ds.AccessionNumber = spec.accession_number
    if spec.accession_issuer_oid:
        issuer = Dataset()
        issuer.UniversalEntityID, issuer.UniversalEntityIDType = spec.accession_issuer_oid, "ISO"
        ds.IssuerOfAccessionNumberSequence = DicomSequence([issuer])
    ds.Modality = series.modality
    ds.ReferringPhysicianName = "Referring^Doctor"
    ds.StudyDescription = spec.study_description
    if spec.procedure_code:
        ds.ProcedureCodeSequence = DicomSequence([_code(*spec.procedure_code)])
    _patient(ds, spec)
    ds.BodyPartExamined = series.body_part
    ds.StudyInstanceUID, ds.SeriesInstanceUID = spec.study_uid, series_uid
    ds.StudyID = "1"
    ds.SeriesNumber, ds.InstanceNumber = series_number, number
    if spec.requested_procedure_id:
        request = Dataset()
        request.RequestedProcedureID = spec.requested_procedure_id
        request.AccessionNumber = spec.accession_number
        ds.RequestAttributesSequence = DicomSequence([request])
    _pixels(ds, series, number)
    ds.file_meta = _meta(ds, series.transfer_syntax)
    return ds


def _code(value: str, designator: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, designator, meaning
    return item


def _patient(ds: Dataset, spec: StudySpec) -> None:
    ds.PatientName, ds.PatientID = spec.patient_name, spec.patient_id
    if spec.issuer_of_patient_id:
        ds.IssuerOfPatientID = spec.issuer_of_patient_id
    if spec.issuer_oid:
        qualifier = Dataset()
        qualifier.UniversalEntityID, qualifier.UniversalEntityIDType = spec.issuer_oid, "ISO"
        ds.IssuerOfPatientIDQualifiersSequence = DicomSequence([qualifier])
    ds.PatientBirthDate, ds.PatientSex = spec.birth_date, spec.sex


def _pixels(ds: Dataset, series: SeriesSpec, number: int) -> None:
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows, ds.Columns = series.rows, series.columns
    if series.transfer_syntax == JPEGBaseline8Bit:
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
        ds.PixelData = encapsulate([_FAKE_JPEG + number.to_bytes(2, "big")])
        ds["PixelData"].VR = "OB"
        ds.LossyImageCompression = "01"
        ds.LossyImageCompressionMethod = "ISO_10918_1"
        return
    if series.modality in EIGHT_BIT_ONLY:
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
        count = series.rows * series.columns
        ds.PixelData = bytes((i * 7 + number * 13) % 256 for i in range(count))
        ds["PixelData"].VR = "OB"
        return
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    pixels = bytearray()
    for i in range(series.rows * series.columns):
        pixels += ((i * 7 + number * 13) % 4096).to_bytes(2, "little")
    ds.PixelData = bytes(pixels)
    ds["PixelData"].VR = "OW"


def _meta(ds: Dataset, syntax: str) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = UID(syntax)
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    return meta


def encode(ds: Dataset) -> bytes:
    """The Part 10 file of an instance, in the transfer syntax of its File Meta Information."""
    buffer = io.BytesIO()
    syntax = str(ds.file_meta.TransferSyntaxUID)
    dcmwrite(
        buffer,
        ds,
        implicit_vr=syntax == ImplicitVRLittleEndian,
        little_endian=True,
        enforce_file_format=True,
    )
    return buffer.getvalue()


def write_study(instances: Sequence[Dataset], folder: str | os.PathLike[str]) -> list[Path]:
    """Write instances as ``<folder>/<series number>/<instance number>.dcm``; return the paths."""
    paths = []
    for ds in instances:
        path = Path(folder) / f"{int(ds.SeriesNumber):03d}" / f"{int(ds.InstanceNumber):05d}.dcm"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(encode(ds))
        paths.append(path)
    return paths


def write_multiframe(
    spec: StudySpec,
    path: str | os.PathLike[str],
    *,
    frames: int,
    rows: int = 512,
    columns: int = 512,
) -> Dataset:
    """Write a multi-frame instance of ``frames`` 16-bit frames (Explicit VR Little Endian) to
    ``path``, one frame at a time; return its header (everything but the Pixel Data).

    512 x 512 frames are 512 KiB each: 2048 of them make a 1 GiB instance. Each frame holds a
    different pattern, so a transfer that mixed up frames would show.
    """
    series = SeriesSpec(modality="OT", count=1, rows=rows, columns=columns)
    ds = _instance(spec, series, str(generate_uid(prefix=None)), 1, 1)
    del ds.PixelData
    ds.SOPClassUID = MULTIFRAME_GRAYSCALE_WORD_SC
    ds.file_meta = _meta(ds, ExplicitVRLittleEndian)
    ds.NumberOfFrames = frames
    ds.FrameIncrementPointer = 0x00181063  # Frame Time
    ds.FrameTime = 40.0
    ds.ConversionType, ds.PatientOrientation, ds.BurnedInAnnotation = "WSD", "", "NO"
    ds.PresentationLUTShape = "IDENTITY"
    ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = 0, 1, "US"
    frame_size = rows * columns * 2
    length = frame_size * frames
    if length >= 0xFFFFFFFF:  # a defined length must fit in 32 bits (PS3.5 §7.1.2)
        raise ValueError(f"{frames} frames of {rows}x{columns} do not fit in one Pixel Data")
    pattern = bytes((i * 7 + i // 4096) & 0xFF for i in range(frame_size + 4096))
    with open(path, "wb") as out:
        dcmwrite(out, ds, implicit_vr=False, little_endian=True, enforce_file_format=True)
        # (7FE0,0010) Pixel Data, OW, explicit VR: tag, VR, 2 reserved bytes, 32-bit length.
        out.write(struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OW", 0, length))
        for index in range(frames):
            shift = (index * 2) % 4096
            out.write(pattern[shift : shift + frame_size])
    return ds


def dataset_offset(head: bytes) -> int:
    """Where the data set starts in a Part 10 file whose first bytes are ``head`` (>= 144)."""
    if head[128:132] != b"DICM":
        raise ValueError("not a DICOM Part 10 file")
    # (0002,0000) File Meta Information Group Length, explicit VR UL: tag 4, VR 2, length 2.
    return 144 + int.from_bytes(head[140:144], "little")


def dataset_bytes(part10: bytes) -> bytes:
    """The data set part of a Part 10 file (after the preamble and File Meta Information):
    the bytes a C-STORE transfers (PS3.10 §7.1, PS3.7 §9.3.1)."""
    return part10[dataset_offset(part10) :]


__all__ = [
    "DeflatedExplicitVRLittleEndian",
    "ExplicitVRLittleEndian",
    "ImplicitVRLittleEndian",
    "JPEGBaseline8Bit",
    "SeriesSpec",
    "StudySpec",
    "dataset_bytes",
    "dataset_offset",
    "encode",
    "make_study",
    "write_multiframe",
    "write_study",
]
