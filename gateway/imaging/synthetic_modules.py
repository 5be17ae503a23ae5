"""The modality-specific modules of a synthetic instance, so that every instance
:mod:`gateway.imaging.synthetic` makes is a valid instance of its IOD (David Clunie's
``dciodvfy`` reports no error; tests/unit/imaging/test_imaging_dicom_validity.py runs it).

Values are plausible and constant (a head-first supine patient, 0.5 mm pixels, an original
primary image); they describe no real acquisition.

Standard: DICOM PS3.3 §A.3 (CT Image IOD), §A.4 (MR Image), §A.2 (CR Image), §A.26 (Digital
X-Ray Image, For Presentation), §A.6 (US Image), §A.8.1 (Secondary Capture Image); the modules
§C.7.3.1 (General Series), §C.7.4.1 (Frame of Reference), §C.7.5.1 (General Equipment), §C.7.6.1
(General Image), §C.7.6.2 (Image Plane), §C.8.2.1 (CT Image), §C.8.3.1 (MR Image), §C.8.1 (CR),
§C.8.11 (DX), §C.8.5.6 (US Image), §C.8.6.1 (SC Equipment).
"""

from __future__ import annotations

from collections.abc import Callable

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence

MANUFACTURER = "xdsi-gateway synthetic"

# Modalities whose Image module requires 16-bit samples (PS3.3 §C.8.2.1.1.4 CT, §C.8.3.1.1.4
# MR: Bits Allocated 16, Bits Stored 12 to 16): JPEG Baseline (8-bit, PS3.5 §8.2.1) cannot
# carry them.
SIXTEEN_BIT_ONLY = frozenset({"CT", "MR"})
# Modalities whose Image module requires 8-bit samples for a MONOCHROME2 image (PS3.3
# §C.8.5.6.1, US Image: Bits Allocated 8).
EIGHT_BIT_ONLY = frozenset({"US"})


def add_modules(
    ds: Dataset, *, frame_of_reference_uid: str, instance_number: int, pixel_spacing: float = 0.5
) -> None:
    """Add General Equipment, General Image and the modality's own modules to ``ds`` (which
    has its Modality, SOP Class and pixel description already)."""
    ds.Manufacturer = MANUFACTURER
    ds.ContentDate, ds.ContentTime = ds.StudyDate, ds.StudyTime
    _BY_MODALITY.get(str(ds.Modality), _secondary_capture)(
        ds, frame_of_reference_uid, instance_number, pixel_spacing
    )


def _cross_section(ds: Dataset, frame_of_reference_uid: str, number: int, spacing: float) -> None:
    """General Series Patient Position, Frame of Reference and Image Plane (CT, MR)."""
    ds.PatientPosition = "HFS"
    ds.FrameOfReferenceUID = frame_of_reference_uid
    ds.PositionReferenceIndicator = ""
    ds.PixelSpacing = [spacing, spacing]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.ImagePositionPatient = [0, 0, float(number)]
    ds.SliceThickness = 1.0
    ds.SliceLocation = float(number)
    ds.AcquisitionNumber = 1


def _ct(ds: Dataset, frame_of_reference_uid: str, number: int, spacing: float) -> None:
    _cross_section(ds, frame_of_reference_uid, number, spacing)
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = -1024, 1, "HU"
    ds.KVP = 120


def _mr(ds: Dataset, frame_of_reference_uid: str, number: int, spacing: float) -> None:
    _cross_section(ds, frame_of_reference_uid, number, spacing)
    ds.ImageType = ["ORIGINAL", "PRIMARY", "OTHER"]
    ds.ScanningSequence, ds.SequenceVariant, ds.ScanOptions = "SE", "NONE", ""
    ds.MRAcquisitionType = "2D"
    ds.RepetitionTime, ds.EchoTime, ds.EchoTrainLength = 500, 20, 1
    ds.MagneticFieldStrength = 1.5


def _projection(ds: Dataset) -> None:
    # General Image Patient Orientation (2C, required without Image Orientation (Patient)):
    # rows toward the patient's left, columns toward the feet (a PA chest film as displayed).
    ds.PatientOrientation = ["L", "F"]


def _cr(ds: Dataset, frame_of_reference_uid: str, number: int, spacing: float) -> None:
    _projection(ds)
    ds.ViewPosition = "PA"
    ds.ImageType = ["ORIGINAL", "PRIMARY"]


def _dx(ds: Dataset, frame_of_reference_uid: str, number: int, spacing: float) -> None:
    _projection(ds)
    ds.PresentationIntentType = "FOR PRESENTATION"
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.ImageLaterality = "U"
    ds.PositionerType = ""  # DX Positioning, type 2 (unknown)
    region = Dataset()
    region.CodeValue, region.CodingSchemeDesignator, region.CodeMeaning = "43799004", "SCT", "Chest"
    ds.AnatomicRegionSequence = DicomSequence([region])
    ds.PixelIntensityRelationship, ds.PixelIntensityRelationshipSign = "LIN", 1
    ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = 0, 1, "US"
    ds.PresentationLUTShape = "IDENTITY"
    # VOI LUT (1C, required For Presentation): a window over the whole stored range.
    levels = 1 << int(ds.BitsStored)
    ds.WindowCenter, ds.WindowWidth = levels // 2, levels
    ds.LossyImageCompression = ds.get("LossyImageCompression", "00")
    ds.BurnedInAnnotation = "NO"
    ds.DetectorType = "DIRECT"
    ds.ImagerPixelSpacing = [spacing, spacing]
    ds.AcquisitionContextSequence = DicomSequence()


def _us(ds: Dataset, frame_of_reference_uid: str, number: int, spacing: float) -> None:
    _projection(ds)
    ds.ImageType = ["ORIGINAL", "PRIMARY"]


def _secondary_capture(
    ds: Dataset, frame_of_reference_uid: str, number: int, spacing: float
) -> None:
    _projection(ds)
    ds.ConversionType = "WSD"  # workstation (PS3.3 §C.8.6.1, defined terms)


_BY_MODALITY: dict[str, Callable[[Dataset, str, int, float], None]] = {
    "CT": _ct,
    "MR": _mr,
    "CR": _cr,
    "DX": _dx,
    "US": _us,
}
