"""FHIR data types <-> XDS data types: codes, times, identifiers, hashes and resource ids.

- Codes: an XDS Code (code, codingScheme, display name) is a FHIR Coding; the codingScheme, an
  OID in XDS, is written as the FHIR URI of that code system where FHIR names one (LOINC,
  SNOMED CT, DICOM DCM, HL7 v3 Confidentiality, the IHE formatCode code system) and as
  ``urn:oid:`` otherwise; read back the same way (FHIR R4 §4.1 "Using Codes", terminologies-
  systems.html; MHD ITI TF-3 §4.5.1: "the FHIR notation of OIDs ... uses urn:oid:").
- Times: an XDS DTM (UTC, ``YYYY[MM[DD[hh[mm[ss]]]]]``, ITI TF-3 Table 4.2.3.1.7-2) is a FHIR
  dateTime of the same precision; a FHIR dateTime with a time zone is converted to UTC.
- Identifiers: a uniqueId or entryUUID is ``{"system": "urn:ietf:rfc:3986", "value":
  "urn:oid:..." | "urn:uuid:..."}`` (ITI TF-2 Appendix E.3, MHD identifier profiles); a patient
  CX ``id^^^&OID&ISO`` is ``{"system": "urn:oid:OID", "value": "id"}``.
- Hashes: XDS keeps the SHA-1 in hex, DocumentReference.content.attachment.hash in base64
  (MHD ITI TF-3 §4.5.1.2).
- Resource ids (FHIR R4 §2.1.0.5 ``[A-Za-z0-9\\-\\.]{1,64}``): a DocumentReference or List is
  named by its entryUUID without ``urn:uuid:``; a Patient by its affinity-domain CX.1, escaped
  (:func:`patient_resource_id`) when it does not fit the id syntax.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.metadata.datatypes import CX, Code, format_cx, is_oid, parse_cx

RFC3986 = "urn:ietf:rfc:3986"
URN_OID = "urn:oid:"
URN_UUID = "urn:uuid:"

# codingScheme OID <-> FHIR code system URI (FHIR R4 terminologies-systems.html; IHE formatcode
# FHIR IG 1.x for the IHE format codes; DICOM PS3.16 §8 for DCM).
SYSTEMS: dict[str, str] = {
    "2.16.840.1.113883.6.1": "http://loinc.org",
    "2.16.840.1.113883.6.96": "http://snomed.info/sct",
    "1.2.840.10008.2.16.4": "http://dicom.nema.org/resources/ontology/DCM",
    "2.16.840.1.113883.5.25": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality",
    "1.3.6.1.4.1.19376.1.2.3": "http://ihe.net/fhir/ihe.formatcode.fhir/CodeSystem/formatcode",
    "2.16.840.1.113883.6.3": "http://hl7.org/fhir/sid/icd-10",
    "2.16.840.1.113883.6.8": "http://unitsofmeasure.org",
}
SCHEMES = {uri: oid for oid, uri in SYSTEMS.items()}

_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_DATETIME = re.compile(
    r"^(?P<y>[0-9]{4})(-(?P<m>[0-9]{2})(-(?P<d>[0-9]{2})"
    r"(T(?P<H>[0-9]{2}):(?P<M>[0-9]{2})(:(?P<S>[0-9]{2})(?P<frac>\.[0-9]+)?)?"
    r"(?P<tz>Z|[+-][0-9]{2}:[0-9]{2})?)?)?)?$"
)
_ESCAPED_PATIENT = (
    "x."  # prefix of a Patient id that is the hex of a CX.1 (see patient_resource_id)
)


class DataTypeError(ValueError):
    """A FHIR value cannot be mapped to XDS (the message says which and why)."""


# -- codes ---------------------------------------------------------------------------------------
def system_of(scheme: str) -> str:
    """The FHIR code system URI of an XDS codingScheme."""
    if scheme in SYSTEMS:
        return SYSTEMS[scheme]
    return URN_OID + scheme if is_oid(scheme) else scheme


def scheme_of(system: str) -> str:
    """The XDS codingScheme of a FHIR code system URI (inverse of :func:`system_of`)."""
    if system in SCHEMES:
        return SCHEMES[system]
    if system.startswith(URN_OID):
        return system[len(URN_OID) :]
    return system


def coding(code: Code) -> dict[str, Any]:
    """A FHIR Coding of an XDS code."""
    value: dict[str, Any] = {"system": system_of(code.scheme), "code": code.code}
    if code.display_name:
        value["display"] = code.display_name
    return value


def concept(code: Code) -> dict[str, Any]:
    """A FHIR CodeableConcept of one XDS code."""
    return {"coding": [coding(code)]}


def code_of_coding(value: Any, where: str) -> Code:
    """An XDS code from a FHIR Coding (system and code required: XDS codes carry a scheme).

    Raises: DataTypeError.
    """
    if not isinstance(value, dict):
        raise DataTypeError(f"{where}: expected a Coding object")
    system, code = value.get("system"), value.get("code")
    if not isinstance(system, str) or not system or not isinstance(code, str) or not code:
        raise DataTypeError(f"{where}: a code needs both system and code (XDS codingScheme)")
    display = value.get("display")
    return Code(code, scheme_of(system), display if isinstance(display, str) else None)


def code_of_concept(value: Any, where: str) -> Code:
    """The XDS code of a CodeableConcept: its first coding (further codings are not kept).

    Raises: DataTypeError.
    """
    if not isinstance(value, dict) or not isinstance(value.get("coding"), list):
        raise DataTypeError(f"{where}: expected a CodeableConcept with a coding")
    codings = value["coding"]
    if not codings:
        raise DataTypeError(f"{where}: the CodeableConcept has no coding")
    return code_of_coding(codings[0], f"{where}.coding[0]")


# -- times ---------------------------------------------------------------------------------------
def datetime_of_dtm(value: str | None) -> str | None:
    """The FHIR dateTime of an XDS DTM, same precision; a time is in UTC (``Z``).

    FHIR requires seconds once hours are given (R4 datatypes.html#dateTime), so ``hh`` and
    ``hhmm`` precisions are padded with zeros.
    """
    if not value or not value.isdigit() or len(value) not in (4, 6, 8, 10, 12, 14):
        return None
    text = value[:4]
    if len(value) >= 6:
        text += "-" + value[4:6]
    if len(value) >= 8:
        text += "-" + value[6:8]
    if len(value) >= 10:
        padded = value[8:].ljust(6, "0")
        text += f"T{padded[0:2]}:{padded[2:4]}:{padded[4:6]}Z"
    return text


def dtm_of_datetime(value: Any, where: str) -> str:
    """The XDS DTM (UTC) of a FHIR date, dateTime or instant; fractions of seconds dropped.

    Raises: DataTypeError (not a FHIR dateTime, or a time without time zone).
    """
    if not isinstance(value, str):
        raise DataTypeError(f"{where}: expected a dateTime string")
    found = _DATETIME.match(value.strip())
    if found is None:
        raise DataTypeError(f"{where}: {value!r} is not a FHIR dateTime")
    parts = found.groupdict()
    if parts["H"] is None:
        return "".join(p for p in (parts["y"], parts["m"], parts["d"]) if p)
    if parts["tz"] is None:
        raise DataTypeError(f"{where}: {value!r} has a time but no time zone")
    try:
        moment = datetime.fromisoformat(
            f"{parts['y']}-{parts['m']}-{parts['d']}T{parts['H']}:{parts['M']}:"
            f"{parts['S'] or '00'}{'+00:00' if parts['tz'] == 'Z' else parts['tz']}"
        )
    except ValueError as exc:
        raise DataTypeError(f"{where}: {value!r} is not a valid date/time: {exc}") from exc
    digits = moment.astimezone(UTC).strftime("%Y%m%d%H%M%S")
    return digits if parts["S"] is not None else digits[:12]


def next_period(dtm: str) -> str:
    """The DTM just after the period ``dtm`` names (``2024`` -> ``2025``, ``20240131`` ->
    ``20240201``), for the exclusive ``...To`` bounds of stored queries (ITI TF-2
    §3.18.4.1.2.3.6: From is inclusive, To exclusive)."""
    if len(dtm) == 4:
        return f"{int(dtm) + 1:04d}"
    if len(dtm) == 6:
        year, month = int(dtm[:4]), int(dtm[4:6])
        return f"{year + month // 12:04d}{month % 12 + 1:02d}"
    layout = {8: "%Y%m%d", 10: "%Y%m%d%H", 12: "%Y%m%d%H%M", 14: "%Y%m%d%H%M%S"}[len(dtm)]
    step = {8: timedelta(days=1), 10: timedelta(hours=1), 12: timedelta(minutes=1)}.get(
        len(dtm), timedelta(seconds=1)
    )
    return (datetime.strptime(dtm, layout) + step).strftime(layout)


# -- identifiers ---------------------------------------------------------------------------------
def uri_identifier(value: str, *, use: str | None = None) -> dict[str, Any]:
    """``{"system": "urn:ietf:rfc:3986", "value": ...}``; an OID becomes ``urn:oid:OID``."""
    if is_oid(value.partition("^")[0]) and not value.startswith(("urn:", "http")):
        value = URN_OID + value
    identifier: dict[str, Any] = {"system": RFC3986, "value": value}
    if use:
        identifier["use"] = use
    return identifier


def unique_id_of(value: Any) -> str:
    """The XDS uniqueId of an identifier value: ``urn:oid:`` removed, anything else kept."""
    text = value.strip() if isinstance(value, str) else ""
    return text[len(URN_OID) :] if text.startswith(URN_OID) else text


def patient_identifier(cx: str) -> dict[str, Any]:
    """The FHIR Identifier of an XDS patient id (CX ``id^^^&OID&ISO``)."""
    parsed = parse_cx(cx)
    return {"system": URN_OID + parsed.assigning_authority, "value": parsed.id}


def cx_of_identifier(value: Any, where: str) -> str:
    """The XDS patient id (CX) of a FHIR Identifier whose system is ``urn:oid:``.

    Raises: DataTypeError.
    """
    if not isinstance(value, dict):
        raise DataTypeError(f"{where}: expected an Identifier")
    system, text = value.get("system"), value.get("value")
    if not isinstance(system, str) or not system.startswith(URN_OID):
        raise DataTypeError(f"{where}: the patient identifier needs a urn:oid: system")
    if not isinstance(text, str) or not text:
        raise DataTypeError(f"{where}: the patient identifier has no value")
    authority = system[len(URN_OID) :]
    if not is_oid(authority):
        raise DataTypeError(f"{where}: {system!r} does not name an OID")
    return format_cx(text, authority)


# -- hashes --------------------------------------------------------------------------------------
def base64_of_hex(digest: str | None) -> str | None:
    """DocumentEntry.hash (hex) as DocumentReference.content.attachment.hash (base64)."""
    if not digest:
        return None
    try:
        return base64.b64encode(bytes.fromhex(digest)).decode("ascii")
    except ValueError:
        return None


def hex_of_base64(value: Any, where: str) -> str:
    """attachment.hash (base64 of the SHA-1) as the XDS hex hash. Raises: DataTypeError."""
    if not isinstance(value, str):
        raise DataTypeError(f"{where}: expected base64 text")
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise DataTypeError(f"{where}: not base64: {exc}") from exc
    if len(raw) != 20:
        raise DataTypeError(f"{where}: a SHA-1 hash has 20 bytes, this one {len(raw)}")
    return raw.hex()


# -- resource ids --------------------------------------------------------------------------------
def resource_id_of_uuid(entry_uuid: str) -> str:
    """The resource id of a registry object: its entryUUID without ``urn:uuid:``."""
    return entry_uuid[len(URN_UUID) :] if entry_uuid.startswith(URN_UUID) else entry_uuid


def uuid_of_resource_id(resource_id: str) -> str | None:
    """The entryUUID a resource id names, or None when it is not a UUID."""
    return URN_UUID + resource_id.lower() if _UUID.match(resource_id) else None


def is_resource_id(value: str) -> bool:
    """True for a FHIR id (R4 §2.1.0.5)."""
    return bool(_ID.match(value))


def patient_resource_id(cx: CX) -> str | None:
    """The Patient id of an affinity-domain patient: CX.1 when it is a FHIR id not starting with
    ``x.``, else ``x.`` and the hex of its UTF-8 (None when that exceeds 64 characters)."""
    if is_resource_id(cx.id) and not cx.id.startswith(_ESCAPED_PATIENT):
        return cx.id
    escaped = _ESCAPED_PATIENT + cx.id.encode("utf-8").hex()
    return escaped if len(escaped) <= 64 else None


def patient_cx_of_resource_id(resource_id: str, domain_oid: str) -> str | None:
    """The CX a Patient id names in the affinity domain (inverse of patient_resource_id)."""
    if not is_resource_id(resource_id):
        return None
    if resource_id.startswith(_ESCAPED_PATIENT):
        try:
            value = bytes.fromhex(resource_id[len(_ESCAPED_PATIENT) :]).decode("utf-8")
        except ValueError:
            return None
        return format_cx(value, domain_oid) if value else None
    return format_cx(resource_id, domain_oid)


def patient_id_in_domain(cx: str | None, domain_oid: str) -> str | None:
    """The Patient resource id of a CX of the affinity domain (None for another domain)."""
    if not cx:
        return None
    try:
        parsed = parse_cx(cx)
    except ValueError:
        return None
    return patient_resource_id(parsed) if parsed.assigning_authority == domain_oid else None
