"""HL7 v2.5 data types as XDS metadata profiles them, plus OID, UUID and coded values.

Parse functions return a small frozen dataclass or raise :class:`DataTypeError` (a ``ValueError``)
saying which rule broke; ``format_*`` functions and ``str()`` give the wire form back. Turning a
``DataTypeError`` into an XDS error code is the caller's job (``gateway.metadata.validate``).

Standard: ITI TF-3 §4.2.3.1.7, Table 4.2.3.1.7-2 "Data Types" (rev. 19.0): CX, CXi, DTM, OID,
UUID, XCN, XON, XTN, Code; HL7 v2.5 Ch. 2A (component ``^`` and subcomponent ``&`` separators,
HD, CX, XCN, XON, XTN, DTM). DocumentEntry.uniqueId and homeCommunityId: ITI TF-3 §4.2.3.2
(attribute definitions).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

COMPONENT = "^"
SUBCOMPONENT = "&"
ISO = "ISO"

OID_MAX_LENGTH = 64  # ITI TF-3 Table 4.2.3.1.7-2, OID; also DICOM PS3.5 §9.1 for UIDs
UNIQUE_ID_EXTENSION_MAX_LENGTH = 16  # ITI TF-3 §4.2.3.2 DocumentEntry.uniqueId
UNIQUE_ID_MAX_LENGTH = 128  # ITI TF-3 §4.2.3.2 DocumentEntry.uniqueId

# One arc is 0 or a number without leading zeros. The X.660 root arcs are 0..2, but published IHE
# and NIST samples use "3.4.5"-style test OIDs for local identifiers, so only the syntax is checked.
_OID = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")
_UUID_URN = re.compile(
    r"^urn:uuid:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
_DTM = re.compile(r"^[0-9]{4}(?:[0-9]{2}){0,5}$")
_UNIQUE_ID_EXTENSION = re.compile(r"^[0-9A-Za-z.\-_]+$")


class DataTypeError(ValueError):
    """A value does not follow the XDS profile of its data type."""


# --- coded values -------------------------------------------------------------------------------
@dataclass(slots=True, frozen=True)
class Code:
    """A coded value: ``nodeRepresentation`` (code), ``codingScheme`` slot and Name (display name).

    ``lang``/``charset`` are those of the display name's LocalizedString, kept for round trips.
    Standard: ITI TF-3 §4.2.3.1.2 (coded vocabularies), Table 4.2.3.1.7-2 "Code".
    """

    code: str
    scheme: str
    display_name: str | None = None
    lang: str | None = None
    charset: str | None = None

    def matches(self, other: Code) -> bool:
        """True when both name the same concept (code and scheme; display name ignored)."""
        return self.code == other.code and self.scheme == other.scheme


def parse_code_param(value: str) -> Code:
    """Parse the ``code^^codingScheme`` form stored queries use for coded parameters.

    Standard: ITI TF-2 §3.18.4.1.2.3 (stored query parameter values; codes as HL7 CE
    ``code^^scheme``). Read leniently, written strictly: ``code^^^scheme`` (the scheme one
    component further, as some consumers send it) is read as the same code.
    Raises: DataTypeError.
    """
    parts = value.split(COMPONENT)
    if len(parts) == 4 and not parts[1] and not parts[2]:
        parts = [parts[0], "", parts[3]]
    if len(parts) != 3 or parts[1] or not parts[0] or not parts[2]:
        raise DataTypeError(f"coded value {value!r} is not of the form code^^codingScheme")
    return Code(parts[0], parts[2])


def format_code_param(code: Code) -> str:
    """Return the ``code^^codingScheme`` form of a code (stored query parameters)."""
    return f"{code.code}^^{code.scheme}"


# --- identifiers --------------------------------------------------------------------------------
def is_oid(value: str) -> bool:
    """True for a dotted-decimal OID of at most 64 characters (ITI TF-3 Table 4.2.3.1.7-2 "OID")."""
    return len(value) <= OID_MAX_LENGTH and bool(_OID.match(value))


def is_uuid_urn(value: str) -> bool:
    """True for ``urn:uuid:`` followed by an RFC 4122 UUID (ITI TF-3 Table 4.2.3.1.7-2 "UUID")."""
    return bool(_UUID_URN.match(value))


def new_uuid_urn() -> str:
    """Return a fresh random ``urn:uuid:`` (RFC 4122 version 4, lower case)."""
    return f"urn:uuid:{uuid.uuid4()}"


def is_home_community_id(value: str) -> bool:
    """True for ``urn:oid:`` followed by an OID (ITI TF-3 §4.2.3.2 homeCommunityId)."""
    return value.startswith("urn:oid:") and is_oid(value[len("urn:oid:") :])


def check_document_unique_id(value: str) -> None:
    """Check a DocumentEntry.uniqueId: an OID, or ``OID^extension`` (extension ≤ 16 characters).

    Standard: ITI TF-3 §4.2.3.2 (DocumentEntry.uniqueId). Raises: DataTypeError.
    """
    if len(value) > UNIQUE_ID_MAX_LENGTH:
        raise DataTypeError(f"uniqueId longer than {UNIQUE_ID_MAX_LENGTH} characters")
    root, sep, extension = value.partition(COMPONENT)
    if not is_oid(root):
        raise DataTypeError(f"uniqueId root {root!r} is not an OID of at most 64 characters")
    if sep and (
        len(extension) > UNIQUE_ID_EXTENSION_MAX_LENGTH or not _UNIQUE_ID_EXTENSION.match(extension)
    ):
        raise DataTypeError(f"uniqueId extension {extension!r} is not 1-16 plain characters")


# --- HD, CX, CXi ---------------------------------------------------------------------------------
@dataclass(slots=True, frozen=True, kw_only=True)
class HD:
    """HL7 v2.5 HD: namespace id & universal id & universal id type."""

    namespace_id: str = ""
    universal_id: str = ""
    universal_id_type: str = ""

    def __str__(self) -> str:
        return _join((self.namespace_id, self.universal_id, self.universal_id_type), SUBCOMPONENT)


def parse_hd(value: str) -> HD:
    """Split an HD component into its subcomponents (no rule checked)."""
    parts = [*value.split(SUBCOMPONENT), "", "", ""][:3]
    if value.count(SUBCOMPONENT) > 2:
        raise DataTypeError(f"HD {value!r} has more than three subcomponents")
    return HD(namespace_id=parts[0], universal_id=parts[1], universal_id_type=parts[2])


def parse_iso_authority(value: str, *, what: str) -> str:
    """Parse an assigning authority that XDS requires as ``&OID&ISO``; return the OID.

    Standard: ITI TF-3 Table 4.2.3.1.7-2 (CX.4, XCN.9, XON.6: namespace id empty, universal id an
    OID, universal id type ``ISO``). Raises: DataTypeError.
    """
    hd = parse_hd(value)
    if hd.namespace_id:
        raise DataTypeError(f"{what} {value!r} must not carry a namespace id (form &OID&ISO)")
    if hd.universal_id_type != ISO or not is_oid(hd.universal_id):
        raise DataTypeError(f"{what} {value!r} is not of the form &OID&ISO")
    return hd.universal_id


@dataclass(slots=True, frozen=True, kw_only=True)
class CX:
    """A patient identifier as XDS profiles HL7 CX: ``ID^^^&OID&ISO``."""

    id: str
    assigning_authority: str  # the OID of CX.4.2

    def __str__(self) -> str:
        return format_cx(self.id, self.assigning_authority)


def format_cx(id_: str, assigning_authority: str) -> str:
    """Return ``ID^^^&OID&ISO`` (ITI TF-3 Table 4.2.3.1.7-2 "CX")."""
    return f"{id_}^^^&{assigning_authority}&ISO"


def parse_cx(value: str) -> CX:
    """Parse a patient id: only CX.1 and CX.4 present, CX.4 ``&OID&ISO``.

    Standard: ITI TF-3 Table 4.2.3.1.7-2 "CX" (patientId, sourcePatientId). Raises: DataTypeError.
    """
    parts = value.split(COMPONENT)
    if not parts[0]:
        raise DataTypeError(f"CX {value!r} has no ID (CX.1)")
    if len(parts) < 4 or not parts[3]:
        raise DataTypeError(f"CX {value!r} has no assigning authority (CX.4)")
    if any(parts[1:3]) or any(parts[4:]):
        raise DataTypeError(f"CX {value!r} carries components other than CX.1 and CX.4")
    return CX(id=parts[0], assigning_authority=parse_iso_authority(parts[3], what="CX.4"))


@dataclass(slots=True, frozen=True, kw_only=True)
class CXi:
    """A reference id (referenceIdList entry): CX.1, CX.4, CX.5 type code, CX.6 facility."""

    id: str
    assigning_authority: HD | None
    id_type: str
    assigning_facility: HD | None

    def __str__(self) -> str:
        aa = str(self.assigning_authority) if self.assigning_authority else ""
        af = str(self.assigning_facility) if self.assigning_facility else ""
        return _join((self.id, "", "", aa, self.id_type, af), COMPONENT)


def parse_cxi(value: str) -> CXi:
    """Parse a referenceIdList value: CXi.1 and CXi.5 required, only components 1, 4, 5, 6.

    Standard: ITI TF-3 Table 4.2.3.1.7-2 "CXi", §4.2.3.2 referenceIdList. Raises: DataTypeError.
    """
    parts = value.split(COMPONENT) + [""] * 6
    if not parts[0]:
        raise DataTypeError(f"CXi {value!r} has no ID (CXi.1)")
    if not parts[4]:
        raise DataTypeError(f"CXi {value!r} has no identifier type code (CXi.5)")
    if any(parts[1:3]) or any(parts[6:]):
        raise DataTypeError(f"CXi {value!r} carries components other than 1, 4, 5 and 6")
    return CXi(
        id=parts[0],
        assigning_authority=parse_hd(parts[3]) if parts[3] else None,
        id_type=parts[4],
        assigning_facility=parse_hd(parts[5]) if parts[5] else None,
    )


# --- XCN, XON, XTN -------------------------------------------------------------------------------
@dataclass(slots=True, frozen=True, kw_only=True)
class XCN:
    """A person (author, legalAuthenticator): ID, family, given, further given, suffix, prefix."""

    id: str = ""
    family_name: str = ""
    given_name: str = ""
    second_names: str = ""
    suffix: str = ""
    prefix: str = ""
    assigning_authority: str = ""  # XCN.9 OID when present

    def __str__(self) -> str:
        aa = f"&{self.assigning_authority}&ISO" if self.assigning_authority else ""
        fields = (self.id, self.family_name, self.given_name, self.second_names, self.suffix)
        return _join((*fields, self.prefix, "", "", aa), COMPONENT)


def parse_xcn(value: str) -> XCN:
    """Parse a person: an ID (XCN.1) or a name (XCN.2/XCN.3) is required; XCN.9 ``&OID&ISO``.

    Standard: ITI TF-3 Table 4.2.3.1.7-2 "XCN". Raises: DataTypeError.
    """
    parts = value.split(COMPONENT) + [""] * 9
    if not (parts[0] or parts[1] or parts[2]):
        raise DataTypeError(f"XCN {value!r} has neither an ID (XCN.1) nor a name (XCN.2/XCN.3)")
    authority = parse_iso_authority(parts[8], what="XCN.9") if parts[8] else ""
    return XCN(
        id=parts[0],
        family_name=parts[1],
        given_name=parts[2],
        second_names=parts[3],
        suffix=parts[4],
        prefix=parts[5],
        assigning_authority=authority,
    )


@dataclass(slots=True, frozen=True, kw_only=True)
class XON:
    """An organization: name (XON.1), assigning authority OID (XON.6), identifier (XON.10)."""

    name: str
    assigning_authority: str = ""
    identifier: str = ""

    def __str__(self) -> str:
        if not (self.assigning_authority or self.identifier):
            return self.name
        aa = f"&{self.assigning_authority}&ISO" if self.assigning_authority else ""
        return _join((self.name, "", "", "", "", aa, "", "", "", self.identifier), COMPONENT)


def parse_xon(value: str) -> XON:
    """Parse an organization: XON.1 required, only XON.1, XON.6 and XON.10 allowed; XON.6 is
    required (``&OID&ISO``) when XON.10 is present and not an OID.

    Standard: ITI TF-3 Table 4.2.3.1.7-2 "XON". Raises: DataTypeError.
    """
    parts = value.split(COMPONENT) + [""] * 10
    if not parts[0]:
        raise DataTypeError(f"XON {value!r} has no organization name (XON.1)")
    if any(parts[1:5]) or any(parts[6:9]) or any(parts[10:]):
        raise DataTypeError(f"XON {value!r} carries components other than XON.1, XON.6, XON.10")
    authority = parse_iso_authority(parts[5], what="XON.6") if parts[5] else ""
    if parts[9] and not authority and not is_oid(parts[9]):
        raise DataTypeError(f"XON {value!r}: XON.10 is not an OID, so XON.6 is required")
    return XON(name=parts[0], assigning_authority=authority, identifier=parts[9])


@dataclass(slots=True, frozen=True, kw_only=True)
class XTN:
    """A telecommunication address: use code (2), equipment type (3), email (4), phone parts."""

    use_code: str = ""
    equipment_type: str = ""
    email: str = ""
    country_code: str = ""
    area_code: str = ""
    local_number: str = ""
    unformatted: str = ""  # XTN.12


def parse_xtn(value: str) -> XTN:
    """Parse a telecom address: XTN.3 required; ``Internet`` needs XTN.4, others a phone number.

    Standard: ITI TF-3 Table 4.2.3.1.7-2 "XTN" (authorTelecommunication, intendedRecipient).
    Raises: DataTypeError.
    """
    parts = value.split(COMPONENT) + [""] * 12
    xtn = XTN(
        use_code=parts[1],
        equipment_type=parts[2],
        email=parts[3],
        country_code=parts[4],
        area_code=parts[5],
        local_number=parts[6],
        unformatted=parts[11],
    )
    if not xtn.equipment_type:
        raise DataTypeError(f"XTN {value!r} has no telecommunication equipment type (XTN.3)")
    if xtn.equipment_type == "Internet":
        if "@" not in xtn.email:
            raise DataTypeError(f"XTN {value!r} of type Internet has no email address (XTN.4)")
    elif not (xtn.local_number or xtn.unformatted):
        raise DataTypeError(f"XTN {value!r} has no telephone number (XTN.7 or XTN.12)")
    return xtn


# --- DTM -----------------------------------------------------------------------------------------
def parse_dtm(value: str) -> datetime:
    """Parse an XDS DTM ``YYYY[MM[DD[hh[mm[ss]]]]]`` (UTC, no offset) to the start of its period.

    Standard: ITI TF-3 Table 4.2.3.1.7-2 "DTM" (times are UTC; precision may be truncated).
    Raises: DataTypeError.
    """
    if not _DTM.match(value):
        raise DataTypeError(f"DTM {value!r} is not YYYY[MM[DD[hh[mm[ss]]]]] in UTC")
    digits = value + "0101000000"[len(value) - 4 :]
    try:
        return datetime.strptime(digits, "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    except ValueError as exc:
        raise DataTypeError(f"DTM {value!r} is not a valid date/time: {exc}") from exc


def format_dtm(moment: datetime, *, precision: int = 14) -> str:
    """Format a datetime as an XDS DTM in UTC, truncated to ``precision`` digits (4..14, even).

    Naive datetimes are taken as UTC. Standard: ITI TF-3 Table 4.2.3.1.7-2 "DTM".
    """
    if precision not in (4, 6, 8, 10, 12, 14):
        raise ValueError(f"DTM precision must be 4, 6, 8, 10, 12 or 14, not {precision}")
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y%m%d%H%M%S")[:precision]


# --- sourcePatientInfo ---------------------------------------------------------------------------
def parse_source_patient_info(values: list[str]) -> list[tuple[str, str]]:
    """Split sourcePatientInfo values ``PID-n|value`` into ``(field, value)`` pairs.

    Standard: ITI TF-3 §4.2.3.2 sourcePatientInfo (PID-3, -5, -7, -8, -11 as ``PID-x|value``).
    Raises: DataTypeError.
    """
    pairs = []
    for value in values:
        name, sep, content = value.partition("|")
        if not sep or not re.fullmatch(r"PID-[0-9]+", name):
            raise DataTypeError(f"sourcePatientInfo value {value!r} is not of the form PID-n|value")
        pairs.append((name, content))
    return pairs


def _join(parts: tuple[str, ...], separator: str) -> str:
    """Join components, dropping trailing empty ones as HL7 encoding does."""
    items = list(parts)
    while items and not items[-1]:
        items.pop()
    return separator.join(items)
