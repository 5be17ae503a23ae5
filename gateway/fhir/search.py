"""FHIR search parameters as ITI-18 stored-query slots (MHD "XDS on FHIR" option).

Parameter types follow FHIR R4 search.html: a token ``[system]|[code]`` (a list of values
separated by ``,`` is OR, a repeated parameter is AND: exactly the AND/OR semantics ITI-18 gives
code parameters, ITI TF-2 §3.18.4.1.2.3.5), a date with a prefix (``ge`` maps to the inclusive
``...From``, ``lt`` to the exclusive ``...To`` of the stored query, ITI-67 Table
2:3.67.4.1.3.1-1 Notes 1 and 2; ``gt``, ``le`` and ``eq`` are mapped to the same bounds at the
value's precision), a string (name parts become an ``authorPerson`` LIKE pattern, ITI-66
"Translation of Name Components"), a reference (``patient``).

Code values need a system (XDS codes carry their codingScheme, ITI TF-2x Appendix Z.2); patient
tokens a ``urn:oid:`` system (``code^^^&system&ISO``, ITI-66 "Translation of Token Parameter").
A parameter this server does not know is ignored, as FHIR allows (search.html#errors); a known
one with a value that cannot be mapped is a 400.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from gateway.fhir.datatypes import (
    URN_OID,
    DataTypeError,
    dtm_of_datetime,
    next_period,
    patient_cx_of_resource_id,
    scheme_of,
)
from gateway.fhir.wire import FhirError
from gateway.metadata.datatypes import Code, format_code_param, format_cx, is_oid
from gateway.metadata.query_values import quote, quote_list

MAX_PARAMETERS = 100
CONTROL = frozenset({"_format", "_count", "_offset", "_summary", "_elements", "_pretty"})


@dataclass(slots=True)
class Params:
    """The parameters of one search, in order, names with their modifier removed."""

    items: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def parse(cls, *query_strings: str) -> Params:
        """Read one or more ``application/x-www-form-urlencoded`` strings (URL and POST body).

        Raises: FhirError 400 for more than :data:`MAX_PARAMETERS` parameters.
        """
        items: list[tuple[str, str]] = []
        try:
            for text in query_strings:
                if text:
                    items += parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_PARAMETERS)
        except ValueError as exc:  # more fields than max_num_fields
            raise FhirError.of(400, f"more than {MAX_PARAMETERS} search parameters") from exc
        if len(items) > MAX_PARAMETERS:
            raise FhirError.of(400, f"more than {MAX_PARAMETERS} search parameters")
        return cls([(name.split(":", 1)[0], value) for name, value in items])

    def all(self, name: str) -> list[str]:
        """Every value of ``name`` (each a comma-separated OR list as sent)."""
        return [value for key, value in self.items if key == name]

    def one(self, name: str) -> str | None:
        """The single value of ``name``. Raises: FhirError 400 when repeated."""
        values = self.all(name)
        if len(values) > 1:
            raise FhirError.of(400, f"{name} may be given once", expression=name)
        return values[0] if values else None

    def names(self) -> set[str]:
        return {name for name, _ in self.items}


def _bad(name: str, message: str) -> FhirError:
    return FhirError.of(400, f"{name}: {message}", code="value", expression=name)


def split_or(value: str) -> list[str]:
    """The OR-ed values of one parameter (``a,b``; ``\\,`` is a literal comma)."""
    parts, current, escaped = [], "", False
    for char in value:
        if escaped:
            current += char
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ",":
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [part for part in parts if part != ""]


def token(value: str) -> tuple[str | None, str]:
    """``system|code`` -> (system, code); ``code`` -> (None, code); ``|code`` -> ("", code)."""
    if "|" in value:
        system, code = value.split("|", 1)
        return system, code
    return None, value


# -- patients ------------------------------------------------------------------------------------
def patient_ids(params: Params, domain_oid: str) -> list[str]:
    """The CX patient ids of ``patient`` / ``patient.identifier`` (one of them is required).

    Standard: ITI-67 §2:3.67.4.1.2.1 ("shall include patient or patient.identifier").
    Raises: FhirError 400.
    """
    found: list[str] = []
    for value in params.all("patient"):
        for item in split_or(value):
            resource_id = item.rstrip("/").rsplit("/", 1)[-1]
            cx = patient_cx_of_resource_id(resource_id, domain_oid)
            if cx is None:
                raise _bad("patient", f"{item!r} is not a Patient id of this server")
            found.append(cx)
    for value in params.all("patient.identifier"):
        for item in split_or(value):
            system, code = token(item)
            oid = system[len(URN_OID) :] if system and system.startswith(URN_OID) else ""
            if not is_oid(oid) or not code:
                raise _bad("patient.identifier", f"{item!r} is not urn:oid:<OID>|<id>")
            found.append(format_cx(code, oid))
    unique = list(dict.fromkeys(found))
    if not unique:
        raise FhirError.of(
            400, "patient or patient.identifier is required", code="required", expression="patient"
        )
    if len(unique) > 1:
        raise _bad("patient", "one patient per search (XDS queries are single-patient)")
    return unique


# -- slot values ---------------------------------------------------------------------------------
def code_slots(params: Params, name: str) -> list[str]:
    """One slot value (an OR list of ``'code^^scheme'``) per occurrence of a token parameter."""
    slots = []
    for value in params.all(name):
        codes = []
        for item in split_or(value):
            system, code = token(item)
            if not system or not code:
                raise _bad(name, f"{item!r}: give system|code (XDS codes have a coding scheme)")
            codes.append(format_code_param(Code(code, scheme_of(system))))
        if codes:
            slots.append(quote_list(codes))
    return slots


def status_slot(params: Params, name: str, mapping: Mapping[str, str], *, default: str) -> str:
    """The availabilityStatus list of a ``status`` token (no system, ITI-67 Table
    2:3.67.4.1.3.1-2). Absent: ``default`` (the FHIR code whose status is searched)."""
    values = [item for value in params.all(name) for item in split_or(value)] or [default]
    statuses = []
    for item in values:
        _system, code = token(item)
        if code not in mapping:
            raise _bad(name, f"{code!r} is not one of {', '.join(sorted(mapping))}")
        statuses.append(mapping[code])
    return quote_list(list(dict.fromkeys(statuses)))


@dataclass(frozen=True, slots=True)
class Bounds:
    """The inclusive lower and exclusive upper DTM bounds of a date parameter (None: open)."""

    start: str | None = None
    end: str | None = None


def date_bounds(params: Params, name: str) -> Bounds:
    """The bounds the ``ge``/``gt``/``lt``/``le``/``eq`` values of a date parameter give.

    Raises: FhirError 400 for another prefix (``ne``, ``sa``, ``eb``, ``ap``) or a bad date.
    """
    start: str | None = None
    end: str | None = None
    for value in params.all(name):
        for item in split_or(value):
            prefix, text = (item[:2], item[2:]) if item[:2].isalpha() else ("eq", item)
            try:
                dtm = dtm_of_datetime(text, name)
            except DataTypeError as exc:
                raise _bad(name, str(exc)) from exc
            low = {"ge": dtm, "gt": next_period(dtm), "eq": dtm}
            high = {"lt": dtm, "le": next_period(dtm), "eq": next_period(dtm)}
            if prefix not in low and prefix not in high:
                raise _bad(name, f"prefix {prefix!r} is not supported (use ge, gt, lt, le, eq)")
            if prefix in low:
                start = max(start or "", low[prefix]) or None
            if prefix in high:
                end = min(end or high[prefix], high[prefix])
    return Bounds(start, end)


def person_pattern(given: Sequence[str], family: Sequence[str]) -> str | None:
    """An authorPerson LIKE pattern of name parts (XCN: id^family^given^...), or None.

    FHIR string search matches the start of a name part (search.html#string); ``%`` after each
    part keeps that. Standard: ITI TF-2 §3.18.4.1.2.3.7.1 ($XDSDocumentEntryAuthorPerson);
    ITI-66 "Translation of Name Components".
    """
    family_part = family[0] if family else ""
    given_part = given[0] if given else ""
    if not family_part and not given_part:
        return None
    if family_part and given_part:
        return f"%^{family_part}%^{given_part}%"
    if family_part:
        return f"%^{family_part}%"
    return f"%^%^{given_part}%"


def string_values(params: Params, name: str) -> list[str]:
    return [item for value in params.all(name) for item in split_or(value)]


def quoted(value: str) -> str:
    return quote(value)
