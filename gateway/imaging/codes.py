"""Coded values of the imaging manifest's metadata: defaults and DICOM-to-XDS mappings.

- :class:`ManifestCodes`: the affinity-domain codes an imaging document source is configured with
  (classCode, typeCode fallback, confidentialityCode, healthcareFacilityTypeCode,
  practiceSettingCode, contentTypeCode, languageCode). Defaults are the usual imaging choices of the
  IHE Connectathon code set (NIST XDS Toolkit ``codes.xml``), which ids_2018-4800 also uses.
- Acquisition modalities (DICOM PS3.16 CID 29) and anatomic regions (CID 4, with the Body Part
  Examined mapping of PS3.16 Annex L) for DocumentEntry.eventCodeList (RAD TF-3
  §4.68.4.1.2.3.2), coded in DCM and SNOMED CT.
- Coding scheme designators (PS3.16 §8) to the OIDs XDS uses as codingScheme.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

from gateway.metadata.datatypes import Code

DCM = "1.2.840.10008.2.16.4"  # DICOM Controlled Terminology
SCT = "2.16.840.1.113883.6.96"  # SNOMED CT
LOINC = "2.16.840.1.113883.6.1"
DICOM_UID_REGISTRY = "1.2.840.10008.2.6.1"  # coding scheme of formatCode (RAD TF-3 §4.68.4.1.2.3.2)

KOS_FORMAT_CODE = Code(
    "1.2.840.10008.5.1.4.1.1.88.59", DICOM_UID_REGISTRY, "Key Object Selection Document"
)
KOS_MIME_TYPE = "application/dicom"


DEFAULT_CLASS_CODE = Code("IMAGES", "1.3.6.1.4.1.19376.1.2.6.1", "Images")
DEFAULT_TYPE_CODE = Code("18748-4", LOINC, "Diagnostic imaging study")
DEFAULT_CONFIDENTIALITY_CODE = Code("N", "2.16.840.1.113883.5.25", "normal")
DEFAULT_FACILITY_TYPE_CODE = Code("22232009", SCT, "Hospital")
DEFAULT_PRACTICE_SETTING_CODE = Code("309964003", SCT, "Radiology department (environment)")
DEFAULT_CONTENT_TYPE_CODE = Code("22232009", SCT, "Hospital")


@dataclass(frozen=True, slots=True, kw_only=True)
class ManifestCodes:
    """Affinity-domain codes of the manifest's DocumentEntry and SubmissionSet.

    ``type_code`` is used only when the study has no Procedure Code Sequence (0008,1032), from
    which RAD TF-3 §4.68.4.1.2.3.2 takes it. ``accession_issuer`` is the assigning-authority
    OID of accession numbers whose instances name none (Issuer of Accession Number Sequence).
    """

    class_code: Code = DEFAULT_CLASS_CODE
    type_code: Code = DEFAULT_TYPE_CODE
    confidentiality_codes: tuple[Code, ...] = (DEFAULT_CONFIDENTIALITY_CODE,)
    healthcare_facility_type_code: Code = DEFAULT_FACILITY_TYPE_CODE
    practice_setting_code: Code = DEFAULT_PRACTICE_SETTING_CODE
    content_type_code: Code = DEFAULT_CONTENT_TYPE_CODE
    language_code: str = "en-US"
    accession_issuer: str = ""


# PS3.16 §8 coding scheme designators -> OIDs (HL7 OID registry).
SCHEME_OIDS = MappingProxyType(
    {
        "DCM": DCM,
        "SCT": SCT,
        "SRT": SCT,  # SNOMED-RT identifiers, same OID in the Connectathon code set
        "LN": LOINC,
        "RADLEX": "2.16.840.1.113883.6.256",
        "RADLX": "2.16.840.1.113883.6.256",
        "I10P": "2.16.840.1.113883.6.4",
        "C4": "2.16.840.1.113883.6.12",
        "CPT": "2.16.840.1.113883.6.12",
    }
)


def scheme_oid(designator: str, scheme_uid: str = "") -> str:
    """The XDS codingScheme of a DICOM code: its Coding Scheme UID, the OID of a known
    designator, or the designator itself."""
    return scheme_uid or SCHEME_OIDS.get(designator.upper(), designator)


# CID 29 "Acquisition Modality" (PS3.16): code value -> code meaning.
MODALITIES = MappingProxyType(
    {
        "AR": "Autorefraction",
        "BI": "Biomagnetic Imaging",
        "BMD": "Bone Mineral Densitometry",
        "CR": "Computed Radiography",
        "CT": "Computed Tomography",
        "DG": "Diaphanography",
        "DMS": "Dermoscopy",
        "DX": "Digital Radiography",
        "ECG": "Electrocardiography",
        "EPS": "Cardiac Electrophysiology",
        "ES": "Endoscopy",
        "GM": "General Microscopy",
        "HD": "Hemodynamic Waveform",
        "IO": "Intra-oral Radiography",
        "IVOCT": "Intravascular Optical Coherence Tomography",
        "IVUS": "Intravascular Ultrasound",
        "KER": "Keratometry",
        "LEN": "Lensometry",
        "LS": "Laser Scan",
        "MG": "Mammography",
        "MR": "Magnetic Resonance",
        "NM": "Nuclear Medicine",
        "OAM": "Ophthalmic Axial Measurements",
        "OCT": "Optical Coherence Tomography",
        "OP": "Ophthalmic Photography",
        "OPM": "Ophthalmic Mapping",
        "OPT": "Ophthalmic Tomography",
        "OPV": "Ophthalmic Visual Field",
        "OSS": "Optical Surface Scanner",
        "PT": "Positron emission tomography",
        "PX": "Panoramic X-Ray",
        "RF": "Radiofluoroscopy",
        "RG": "Radiographic imaging",
        "RTIMAGE": "RT Image",
        "SM": "Slide Microscopy",
        "SRF": "Subjective Refraction",
        "TG": "Thermography",
        "US": "Ultrasound",
        "VA": "Visual Acuity",
        "XA": "X-Ray Angiography",
        "XC": "External-camera Photography",
    }
)

# Body Part Examined (0018,0015) -> CID 4 "Anatomic Region" (PS3.16 Annex L), SNOMED CT.
BODY_PARTS = MappingProxyType(
    {
        "ABDOMEN": ("818981001", "Abdomen"),
        "ABDOMENPELVIS": ("818982008", "Abdomen and Pelvis"),
        "ANKLE": ("70258002", "Ankle joint"),
        "BRAIN": ("12738006", "Brain"),
        "BREAST": ("76752008", "Breast"),
        "CHEST": ("43799004", "Chest"),
        "CHESTABDOMEN": ("416550000", "Chest and Abdomen"),
        "CHESTABDPELVIS": ("416775004", "Chest, Abdomen and Pelvis"),
        "CSPINE": ("122494005", "Cervical spine"),
        "ELBOW": ("16953009", "Elbow joint"),
        "EXTREMITY": ("66019005", "Extremity"),
        "FOOT": ("56459004", "Foot"),
        "HAND": ("85562004", "Hand"),
        "HEAD": ("69536005", "Head"),
        "HEADNECK": ("774007", "Head and Neck"),
        "HEART": ("80891009", "Heart"),
        "HIP": ("24136001", "Hip joint"),
        "KIDNEY": ("64033007", "Kidney"),
        "KNEE": ("72696002", "Knee"),
        "LIVER": ("10200004", "Liver"),
        "LSPINE": ("122496007", "Lumbar spine"),
        "NECK": ("45048000", "Neck"),
        "PELVIS": ("816092008", "Pelvis"),
        "SHOULDER": ("16982005", "Shoulder"),
        "SKULL": ("89546000", "Skull"),
        "SPINE": ("421060004", "Spine"),
        "TSPINE": ("122495006", "Thoracic spine"),
        "WHOLEBODY": ("38266002", "Entire body"),
    }
)


def modality_code(modality: str) -> Code | None:
    """The CID 29 code of an acquisition modality (None for KO, PR, SR and other non-acquisition
    modalities, which RAD TF-3 §4.68.4.1.2.3.2 does not list)."""
    meaning = MODALITIES.get(modality.strip().upper())
    return Code(modality.strip().upper(), DCM, meaning) if meaning else None


def body_part_code(body_part: str) -> Code | None:
    """The CID 4 anatomic region of a Body Part Examined value (None when not mapped)."""
    found = BODY_PARTS.get(body_part.strip().upper().replace(" ", ""))
    return Code(found[0], SCT, found[1]) if found else None
