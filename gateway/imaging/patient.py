"""From a DICOM Patient ID to the affinity-domain patientId of the manifest's metadata.

Rule (RAD TF-3 §4.68.4.1.2.3.2 and ITI TF-3 §4.2.3.2.16/§4.2.3.2.19: DocumentEntry.patientId is
the affinity-domain identifier, sourcePatientId the identifier the source knows):

- The instance names no issuer (no Issuer of Patient ID (0010,0021), no Issuer of Patient ID
  Qualifiers Sequence (0010,0024)), or names the affinity domain's OID as its Universal Entity ID
  (0040,0032): the Patient ID *is* the domain identifier, ``ID^^^&<domain OID>&ISO``.
- It names another (local) issuer: the domain identifier is the one an ITI-8 feed sent together
  with this local identifier in PID-3 (``domain_id_for_local``). Unknown: the study is held.

Local identifiers are written as HL7 CX the way the feed writes them (``gateway.hl7.adt.to_cx``):
``ID^^^&OID&ISO`` when the issuer is an ISO OID, else ``ID^^^Namespace&UniversalID&Type`` with the
empty trailing parts dropped. DICOM carries no CX.5 identifier type code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pydicom.dataset import Dataset

from gateway.metadata.datatypes import format_cx

DomainLookup = Callable[[str], str | None]


@dataclass(frozen=True, slots=True, kw_only=True)
class DicomPatient:
    """The patient identification of a DICOM header (PS3.3 §C.7.1.1 Patient Module)."""

    patient_id: str
    issuer: str = ""  # (0010,0021) Issuer of Patient ID (a namespace)
    universal_entity_id: str = ""  # (0010,0024) > (0040,0032)
    universal_entity_id_type: str = ""  # (0010,0024) > (0040,0033), e.g. ISO

    @classmethod
    def from_header(cls, header: Dataset) -> DicomPatient:
        """Read Patient ID and its issuer from a data set."""
        qualifiers = header.get("IssuerOfPatientIDQualifiersSequence") or []
        first = qualifiers[0] if len(qualifiers) else Dataset()
        return cls(
            patient_id=str(header.get("PatientID", "") or "").strip(),
            issuer=str(header.get("IssuerOfPatientID", "") or "").strip(),
            universal_entity_id=str(first.get("UniversalEntityID", "") or "").strip(),
            universal_entity_id_type=str(first.get("UniversalEntityIDType", "") or "").strip(),
        )

    @property
    def has_issuer(self) -> bool:
        return bool(self.issuer or self.universal_entity_id)

    def local_cx(self) -> str | None:
        """The identifier as HL7 CX with its local assigning authority (None without issuer)."""
        if not self.has_issuer:
            return None
        if self.universal_entity_id and self.universal_entity_id_type.upper() == "ISO":
            return format_cx(escape_hl7(self.patient_id), self.universal_entity_id)
        parts = (self.issuer, self.universal_entity_id, self.universal_entity_id_type)
        authority = "&".join(escape_hl7(p) for p in parts).rstrip("&")
        return f"{escape_hl7(self.patient_id)}^^^{authority}"


@dataclass(frozen=True, slots=True, kw_only=True)
class PatientMapping:
    """The outcome: ``patient_id`` (None when unknown) and the sourcePatientId to send."""

    patient_id: str | None
    source_patient_id: str
    reason: str = ""  # why there is no patient_id
    todo: str = ""  # and what a person does about it


def map_patient(
    patient: DicomPatient, domain_oid: str, lookup: DomainLookup | None
) -> PatientMapping:
    """Apply the rule of this module. ``lookup`` maps a local CX to a domain id (ITI-8 feeds)."""
    if not patient.patient_id:
        return PatientMapping(
            patient_id=None,
            source_patient_id="",
            reason="the study has no Patient ID (0010,0020)",
            todo="correct the Patient ID at the modality or PACS and send the study again",
        )
    domain_cx = format_cx(escape_hl7(patient.patient_id), domain_oid)
    local = patient.local_cx()
    if local is None or patient.universal_entity_id == domain_oid:
        return PatientMapping(patient_id=domain_cx, source_patient_id=domain_cx)
    found = lookup(local) if lookup is not None else None
    if found:
        return PatientMapping(patient_id=found, source_patient_id=local)
    return PatientMapping(
        patient_id=None,
        source_patient_id=local,
        reason=(
            f"local patient identifier {local} has no identifier in the affinity domain "
            f"{domain_oid}"
        ),
        todo=(
            f"send an ITI-8 feed (ADT A01/A04/A08) whose PID-3 carries both {local} and the "
            "patient's affinity-domain identifier (xdsi-gateway feed FILE); the study is then "
            "published by itself"
        ),
    )


def escape_hl7(value: str) -> str:
    """HL7 v2 escaping of the separators a DICOM value may contain (HL7 v2.5 §2.7.4)."""
    out = value.replace("\\", "\\E\\")
    for char, code in (("|", "F"), ("^", "S"), ("&", "T"), ("~", "R")):
        out = out.replace(char, f"\\{code}\\")
    return out
