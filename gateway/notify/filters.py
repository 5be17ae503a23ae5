"""Which published documents a subscriber wants: the FindDocuments-style filter of DSUB.

ITI-52's subscription filter is an ``rim:AdhocQuery`` with the FindDocuments parameters
(ITI TF-2b §3.52.4.1.2.1, "Document Metadata Subscribe": ``$XDSDocumentEntryPatientId`` required,
then ``$XDSDocumentEntryClassCode``, ``TypeCode``, ``PracticeSettingCode``,
``HealthcareFacilityTypeCode``, ``EventCodeList``, ``ConfidentialityCode``, ``FormatCode``,
``AuthorPerson``); webhooks use the same filter in TOML. Within one parameter any value matches
(OR); all given parameters must match (AND). A coded value matches by code alone or as
``code^^scheme`` (ITI TF-2a §3.18.4.1.2.3.7.2 coded parameters).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from gateway.metadata.datatypes import Code
from gateway.metadata.model import DocumentEntry

# Query parameter (ITI-18 FindDocuments) -> filter field; the TOML keys are the field names.
PARAMETERS = {
    "$XDSDocumentEntryPatientId": "patient_id",
    "$XDSDocumentEntryClassCode": "class_code",
    "$XDSDocumentEntryTypeCode": "type_code",
    "$XDSDocumentEntryPracticeSettingCode": "practice_setting_code",
    "$XDSDocumentEntryHealthcareFacilityTypeCode": "healthcare_facility_type_code",
    "$XDSDocumentEntryEventCodeList": "event_code",
    "$XDSDocumentEntryConfidentialityCode": "confidentiality_code",
    "$XDSDocumentEntryFormatCode": "format_code",
    "$XDSDocumentEntryAuthorPerson": "author_person",
}


@dataclass(frozen=True, slots=True)
class DocumentFilter:
    """Values per FindDocuments parameter; an empty tuple does not restrict."""

    patient_id: tuple[str, ...] = ()
    class_code: tuple[str, ...] = ()
    type_code: tuple[str, ...] = ()
    practice_setting_code: tuple[str, ...] = ()
    healthcare_facility_type_code: tuple[str, ...] = ()
    event_code: tuple[str, ...] = ()
    confidentiality_code: tuple[str, ...] = ()
    format_code: tuple[str, ...] = ()
    author_person: tuple[str, ...] = field(default=())

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> DocumentFilter:
        """From ``{field: value or [values]}`` (TOML, JSON); unknown names raise ValueError."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"unknown filter key {unknown[0]!r} (known: {', '.join(sorted(known))})"
            )
        given: dict[str, tuple[str, ...]] = {}
        for name, raw in values.items():
            items = [raw] if isinstance(raw, str) else list(raw)
            given[name] = tuple(str(v) for v in items if str(v))
        return cls(**given)

    def as_dict(self) -> dict[str, list[str]]:
        """The non-empty parameters as JSON-ready lists."""
        return {k: list(v) for k, v in asdict(self).items() if v}

    def matches(self, entry: DocumentEntry) -> bool:
        """True when ``entry`` satisfies every given parameter."""
        if self.patient_id and entry.patient_id not in self.patient_id:
            return False
        single = {
            "class_code": entry.class_code,
            "type_code": entry.type_code,
            "practice_setting_code": entry.practice_setting_code,
            "healthcare_facility_type_code": entry.healthcare_facility_type_code,
            "format_code": entry.format_code,
        }
        for name, code in single.items():
            wanted = getattr(self, name)
            if wanted and not _any_code([code] if code is not None else [], wanted):
                return False
        if self.event_code and not _any_code(entry.event_code_list, self.event_code):
            return False
        if self.confidentiality_code and not _any_code(
            entry.confidentiality_code, self.confidentiality_code
        ):
            return False
        if self.author_person:
            people = [a.person for a in entry.author if getattr(a, "person", None)]
            if not any(
                fnmatch.fnmatchcase(p or "", w.replace("%", "*").replace("_", "?"))
                for p in people
                for w in self.author_person
            ):
                return False
        return True


def _any_code(codes: Iterable[Code], wanted: Iterable[str]) -> bool:
    forms = set(wanted)
    return any(c.code in forms or f"{c.code}^^{c.scheme}" in forms for c in codes)
