"""Import reconciliation: whose images these are in the affinity domain, and the coercion of the
patient attributes that says so (IHE RAD Import Reconciliation Workflow, IRWF.b, Importer).

Who: ``--patient`` names the domain identifier (``ID^^^&OID&ISO`` of ``registry.patient_id_domain``)
and is used as given. Without it, the patients an ITI-8 feed made known (their PID-5 name, PID-7
birth date, PID-8 sex) are searched for the medium's family name, given name, birth date and sex;
exactly one match is proposed, and used only when the operator confirms it (``--yes``). None, or
several, stop the import with the candidates listed: nothing is stored.

Coercion (:func:`coerce`) changes only the patient's identifier and its issuer, as IRWF.b asks for
imported evidence, and records what was there:

- Patient ID (0010,0020) becomes the domain identifier; Issuer of Patient ID Qualifiers Sequence
  (0010,0024) names the domain (Universal Entity ID = its OID, type ISO); Issuer of Patient ID
  (0010,0021), a namespace of the medium's issuer, is removed (PS3.3 C.7.1.1).
- Other Patient IDs Sequence (0010,1002) gains an Item with the medium's Patient ID and its issuer
  (Type of Patient ID ``TEXT``), so the instance is still found by the identifier it came with.
- Original Attributes Sequence (0400,0561) gains an Item (PS3.3 C.12.1.1.9): the prior values of
  every attribute changed (an absent one with a zero-length value), Attribute Modification
  DateTime, Modifying System, Reason ``COERCE`` and Source of Previous Values (the medium's issuer).

Everything else, the pixel data included, is left as it was.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence

from gateway.media.inventory import MediaPatient
from gateway.metadata.datatypes import DataTypeError, parse_cx

MODIFYING_SYSTEM = "xdsi-gateway"
_CHANGED = ("PatientID", "IssuerOfPatientID", "IssuerOfPatientIDQualifiersSequence")


class ReconciliationError(Exception):
    """The medium's patient cannot be reconciled; the message says why and what to do."""


class FedPatient(Protocol):
    """A patient known from ITI-8 feeds (what the registry's patient store answers)."""

    @property
    def patient_id(self) -> str: ...  # the domain identifier, CX
    @property
    def family_name(self) -> str | None: ...
    @property
    def given_name(self) -> str | None: ...
    @property
    def birth_date(self) -> str | None: ...
    @property
    def sex(self) -> str | None: ...


class PatientDirectory(Protocol):
    """The narrow interface to the patients fed by ITI-8 (wired in the assembly)."""

    def find_by_demographics(
        self, *, family_name: str, given_name: str, birth_date: str, sex: str
    ) -> Sequence[FedPatient]:
        """Active patients whose fed family name, given name, birth date and sex are these."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class DomainPatient:
    """The affinity-domain identity an imported patient gets."""

    patient_id: str  # CX.1
    domain_oid: str  # CX.4.2, registry.patient_id_domain

    @property
    def cx(self) -> str:
        return f"{self.patient_id}^^^&{self.domain_oid}&ISO"


def parse_domain_patient(value: str, domain_oid: str) -> DomainPatient:
    """``--patient``: a CX of the affinity domain. Raises: ReconciliationError."""
    try:
        cx = parse_cx(value)
    except DataTypeError as exc:
        raise ReconciliationError(f"--patient {value!r}: {exc} (expected ID^^^&OID&ISO)") from exc
    if cx.assigning_authority != domain_oid:
        raise ReconciliationError(
            f"--patient {value!r}: its assigning authority {cx.assigning_authority} is not the "
            f"affinity domain {domain_oid} (registry.patient_id_domain)"
        )
    return DomainPatient(patient_id=cx.id, domain_oid=domain_oid)


def describe_fed(candidate: FedPatient) -> str:
    """``CX NAME, born DATE, sex S`` for messages."""
    name = " ".join(p for p in (candidate.given_name, candidate.family_name) if p) or "(no name)"
    return (
        f"{candidate.patient_id} {name}, born {candidate.birth_date or '?'}, "
        f"sex {candidate.sex or '?'}"
    )


def match_fed(
    patient: MediaPatient, directory: PatientDirectory | None, domain_oid: str
) -> DomainPatient:
    """The one fed patient whose demographics equal the medium's. Raises: ReconciliationError
    (no directory, incomplete demographics, no match, several), listing the candidates."""
    if directory is None:
        raise ReconciliationError(
            "this gateway has no registry (registry.enabled = false), so no patient known from "
            "ITI-8 can be proposed: give the domain identifier with --patient"
        )
    wanted = {
        "family_name": patient.family_name,
        "given_name": patient.given_name,
        "birth_date": patient.birth_date[:8],
        "sex": patient.sex,
    }
    absent = [name.replace("_", " ") for name, value in wanted.items() if not value]
    if absent:
        raise ReconciliationError(
            f"the medium's patient {patient.describe()} has no {', '.join(absent)}: no patient "
            "can be matched on demographics; give the domain identifier with --patient"
        )
    found = list(directory.find_by_demographics(**wanted))
    domain = [c for c in found if _domain_of(c.patient_id) == domain_oid]
    if len(domain) == 1:
        return DomainPatient(patient_id=parse_cx(domain[0].patient_id).id, domain_oid=domain_oid)
    if not domain:
        raise ReconciliationError(
            f"no patient fed by ITI-8 has the name, birth date and sex of {patient.describe()}: "
            "give the domain identifier with --patient (or feed the patient first)"
        )
    listed = "".join(f"\n  candidate {describe_fed(c)}" for c in domain)
    raise ReconciliationError(
        f"{len(domain)} patients fed by ITI-8 match {patient.describe()}; choose one with "
        f"--patient:{listed}"
    )


def _domain_of(cx: str) -> str | None:
    try:
        return parse_cx(cx).assigning_authority
    except DataTypeError:
        return None


def already_domain(patient: MediaPatient, target: DomainPatient) -> bool:
    """True when the medium already names the patient as the domain does (nothing to coerce)."""
    return patient.patient_id == target.patient_id and (
        patient.universal_entity_id == target.domain_oid
    )


def coerce(ds: Dataset, target: DomainPatient, *, now: datetime | None = None) -> None:
    """Give ``ds`` the domain identity, keeping the medium's (module docstring).

    Standard: IHE RAD IRWF.b (Importer, attribute coercion); PS3.3 C.7.1.1 (Patient Module),
    C.12.1.1.9 (Original Attributes Sequence).
    """
    prior = Dataset()
    for keyword in (*_CHANGED, "OtherPatientIDsSequence"):
        if keyword in ds:
            prior.add(copy.deepcopy(ds[keyword]))
        else:  # absent before: a zero-length value (C.12.1.1.9.1)
            setattr(prior, keyword, DicomSequence() if keyword.endswith("Sequence") else None)
    other = Dataset()
    other.PatientID = ds.get("PatientID", "")
    if ds.get("IssuerOfPatientID"):
        other.IssuerOfPatientID = ds.IssuerOfPatientID
    if ds.get("IssuerOfPatientIDQualifiersSequence"):
        other.IssuerOfPatientIDQualifiersSequence = copy.deepcopy(
            ds.IssuerOfPatientIDQualifiersSequence
        )
    other.TypeOfPatientID = "TEXT"
    others = list(ds.get("OtherPatientIDsSequence") or [])
    if not any(_same_id(item, other) for item in others):
        others.append(other)
    source = _issuer_text(ds)
    ds.PatientID = target.patient_id
    if "IssuerOfPatientID" in ds:
        del ds.IssuerOfPatientID
    qualifier = Dataset()
    qualifier.UniversalEntityID = target.domain_oid
    qualifier.UniversalEntityIDType = "ISO"
    ds.IssuerOfPatientIDQualifiersSequence = DicomSequence([qualifier])
    ds.OtherPatientIDsSequence = DicomSequence(others)
    _record(ds, prior, source, now or datetime.now(UTC))


def _same_id(item: Dataset, other: Dataset) -> bool:
    return str(item.get("PatientID", "")) == str(other.PatientID) and str(
        item.get("IssuerOfPatientID", "")
    ) == str(other.get("IssuerOfPatientID", ""))


def _issuer_text(ds: Dataset) -> str:
    qualifiers = ds.get("IssuerOfPatientIDQualifiersSequence") or []
    universal = str(qualifiers[0].get("UniversalEntityID", "")) if len(qualifiers) else ""
    return (universal or str(ds.get("IssuerOfPatientID", "") or ""))[:64]


def _record(ds: Dataset, prior: Dataset, source: str, now: datetime) -> None:
    item = Dataset()
    item.ModifiedAttributesSequence = DicomSequence([prior])
    item.SourceOfPreviousValues = source
    item.AttributeModificationDateTime = now.strftime("%Y%m%d%H%M%S%z")
    item.ModifyingSystem = MODIFYING_SYSTEM
    item.ReasonForTheAttributeModification = "COERCE"
    history = list(ds.get("OriginalAttributesSequence") or [])
    ds.OriginalAttributesSequence = DicomSequence([*history, item])
