"""ADT messages of the Patient Identity Feed (ITI-8) decoded into plain dataclasses.

The MSH segment and the segment boundaries are read by :mod:`gateway.hl7.er7` (it must work on
anything, garbage included); the data-carrying segments PID and MRG are decoded by hl7apy with the
reference structures of the message's own HL7 version, at the tolerant validation level: real
senders add components, omit required ones and mix versions, and a feed must not be refused for
that (lenient reading). hl7apy keeps escape sequences in values; they are resolved here.

Standard: ITI TF-2 §3.8.4.1.2 (A01/A04/A05/A08: PID-3 patient identifier list, PID-5, PID-7,
PID-8, PID-11), §3.8.4.2.2 (A40: PID-3 surviving id, MRG-1 prior patient identifier list);
HL7 v2.3.1/v2.5 Ch. 2 data types CX, HD, XPN, XAD; ITI TF-3 §4.2.3.2.14 (the XDS
patientId form ``ID^^^&OID&ISO``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from hl7apy import SUPPORTED_LIBRARIES
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.core import Element, Segment
from hl7apy.exceptions import HL7apyException
from hl7apy.parser import parse_segment

from gateway.hl7.ack import AckCode
from gateway.hl7.er7 import (
    STANDARD_DELIMITERS,
    Delimiters,
    MessageHeader,
    decode,
    escape,
    parse_header,
    split_segments,
    unescape,
)

log = logging.getLogger(__name__)

# ITI TF-2 §3.8.4.1.1 (A01 admit, A04 register, A05 pre-admit, A08 update) and §3.8.4.2.1 (A40).
REGISTER_TRIGGERS = frozenset({"A01", "A04", "A05", "A08"})
MERGE_TRIGGER = "A40"
ITI8_TRIGGERS = REGISTER_TRIGGERS | {MERGE_TRIGGER}

# hl7apy reads with the structures of the message's version; unknown versions are read as v2.5.
_FALLBACK_HL7APY_VERSION = "2.5"

# AR (reject) for errors in the message header per HL7 v2.5 §2.9.2 / table 0357 2xx; AE for
# errors found while processing the content.
_REJECT_CODES = frozenset({"200", "201", "202", "203"})


class AdtError(Exception):
    """An ADT message the feed cannot accept, with the HL7 table 0357 code to put in ERR.

    ``ack_code`` is AR for header-level rejections (unsupported message type, event, processing
    id, version; a message without MSH) and AE for content errors, per HL7 v2.5 §2.9.2.
    ``location`` is an ERL value such as ``PID^1^3``.
    """

    def __init__(
        self, code: str, text: str, *, location: str | None = None, ack_code: AckCode | None = None
    ) -> None:
        super().__init__(f"{code}: {text}")
        self.code = code
        self.text = text
        self.location = location
        self.ack_code: AckCode = ack_code or ("AR" if code in _REJECT_CODES else "AE")


@dataclass(slots=True, kw_only=True)
class PatientIdentifier:
    """One CX value: CX-1 id, CX-4 assigning authority (HD-1, HD-2, HD-3), CX-5 type code."""

    id: str
    assigning_authority_oid: str | None = None  # CX-4.2 universal id
    namespace_id: str | None = None  # CX-4.1
    type_code: str | None = None  # CX-5 identifier type code (e.g. PI, MR)
    universal_id_type: str | None = None  # CX-4.3 (ISO for an OID)

    def in_domain(self, domain_oid: str) -> bool:
        """True when the assigning authority is ``&<domain_oid>&ISO`` (ITI TF-2 §3.8.4.1.3)."""
        return (
            self.assigning_authority_oid == domain_oid
            and (self.universal_id_type or "").upper() == "ISO"
        )


@dataclass(slots=True, kw_only=True)
class Demographics:
    """Corroborating demographics, for display and sourcePatientInfo.

    ``name`` and ``address`` are the first repetitions of PID-5 (XPN) and PID-11 (XAD) in ER7 with
    the standard delimiters ``^~\\&`` (escapes kept, so the value is a valid HL7 field).
    """

    name: str | None = None  # PID-5
    family_name: str | None = None  # PID-5.1 (XPN-1, first component of FN in v2.5)
    given_name: str | None = None  # PID-5.2
    birth_date: str | None = None  # PID-7 (TS, first component)
    sex: str | None = None  # PID-8 (HL7 table 0001)
    address: str | None = None  # PID-11
    mothers_maiden_name: str | None = None  # PID-6

    @property
    def display_name(self) -> str:
        """``GIVEN FAMILY``, or whatever part of the name is known."""
        return " ".join(part for part in (self.given_name, self.family_name) if part)


@dataclass(slots=True, kw_only=True)
class PatientFeedEvent:
    """One decoded Patient Identity Feed message (ITI-8)."""

    header: MessageHeader
    trigger: str  # MSH-9.2, else EVN-1 (e.g. "A01")
    identifiers: list[PatientIdentifier] = field(default_factory=list)  # PID-3, all of them
    demographics: Demographics = field(default_factory=Demographics)
    merge_prior: list[PatientIdentifier] = field(default_factory=list)  # MRG-1 (A40)

    @property
    def message_control_id(self) -> str:
        return self.header.control_id  # MSH-10

    @property
    def sending_application(self) -> str:
        return self.header.sending_application  # MSH-3

    @property
    def sending_facility(self) -> str:
        return self.header.sending_facility  # MSH-4


def to_cx(identifier: PatientIdentifier) -> str:
    """The identifier as an HL7 CX string, ``ID^^^&OID&ISO`` for an OID-assigned id.

    An id whose assigning authority is an ISO OID takes exactly the XDS form (ITI TF-3
    §4.2.3.2.14: no namespace id, no other components). Other ids keep CX-4.1/4.2/4.3 and CX-5 so
    that a local id stays recognisable (e.g. ``12345^^^HOSP^MR``).
    """
    cx1 = escape(identifier.id)
    oid = identifier.assigning_authority_oid
    if oid and (identifier.universal_id_type or "").upper() == "ISO":
        return f"{cx1}^^^&{escape(oid)}&ISO"
    hd = "&".join(
        escape(part or "") for part in (identifier.namespace_id, oid, identifier.universal_id_type)
    ).rstrip("&")
    return "^".join([cx1, "", "", hd, escape(identifier.type_code or "")]).rstrip("^")


def parse_adt(raw: bytes, *, triggers: frozenset[str] = ITI8_TRIGGERS) -> PatientFeedEvent:
    """Decode one ADT message (bytes as received, without MLLP framing) into a feed event.

    The bytes are decoded with the character set of MSH-18 (ASCII, 8859/n, UNICODE UTF-8, ...;
    UTF-8 or ISO 8859-1 when MSH-18 is empty). A40 requires MRG; every trigger requires PID
    with a non-empty PID-3.

    Standard: ITI TF-2 §3.8.4.1.2, §3.8.4.2.2; HL7 v2.5 §2.15.9.18 (MSH-18), table 0357.
    Raises: AdtError with 100 (no MSH, missing PID/MRG), 101 (empty PID-3/MRG-1), 102 (unreadable
    field), 200 (not ADT), 201 (trigger not in ``triggers``).
    """
    header = parse_header(raw)
    if header is None:
        raise AdtError("100", "no MSH segment: not an HL7 v2 message", ack_code="AR")
    if header.message_type != "ADT":
        text = f"unsupported message type {header.message_type!r}; expected ADT"
        raise AdtError("200", text, location="MSH^1^9")
    segments = _segments(decode(raw, header.codec), header.delimiters)
    trigger = header.trigger_event or _evn_trigger(segments.get("EVN"), header.delimiters)
    if trigger not in triggers:
        raise AdtError(
            "201",
            f"unsupported event {trigger or '(none)'!r}; accepted: {', '.join(sorted(triggers))}",
            location="MSH^1^9^1^2",
        )
    version = _hl7apy_version(header.version)
    pid = _hl7apy_segment(segments, "PID", version, header.delimiters)
    event = PatientFeedEvent(
        header=header,
        trigger=trigger,
        identifiers=_identifiers(pid, "PID_3", header.delimiters),
        demographics=_demographics(pid, header.delimiters),
    )
    if not event.identifiers:
        raise AdtError("101", "PID-3 patient identifier list is empty", location="PID^1^3")
    if trigger == MERGE_TRIGGER:
        mrg = _hl7apy_segment(segments, "MRG", version, header.delimiters)
        event.merge_prior = _identifiers(mrg, "MRG_1", header.delimiters)
        if not event.merge_prior:
            text = "MRG-1 prior patient identifier list is empty"
            raise AdtError("101", text, location="MRG^1^1")
    return event


def _segments(text: str, delimiters: Delimiters) -> dict[str, str]:
    """First occurrence of each segment id (an ITI-8 message has one PID and one MRG)."""
    found: dict[str, str] = {}
    for segment in split_segments(text):
        found.setdefault(segment.split(delimiters.field, 1)[0].strip(), segment)
    return found


def _evn_trigger(evn: str | None, delimiters: Delimiters) -> str:
    # EVN-1 (event type code) names the trigger when MSH-9.2 is empty (HL7 v2.3.1 Ch. 3, EVN).
    if evn is None:
        return ""
    fields = evn.split(delimiters.field)
    return fields[1].strip() if len(fields) > 1 else ""


def _hl7apy_version(version: str) -> str:
    if version in SUPPORTED_LIBRARIES:
        return version
    log.debug("HL7 version %r unknown to hl7apy; read as %s", version, _FALLBACK_HL7APY_VERSION)
    return _FALLBACK_HL7APY_VERSION


# The fields the feed reads. Only these are handed to hl7apy: it builds a full element tree for
# every value (about 0.1-1 ms each), and PIDs of real senders carry twenty fields or more.
_FIELDS_READ = {"PID": frozenset({3, 5, 6, 7, 8, 11}), "MRG": frozenset({1})}


def _only_fields_read(name: str, text: str, delimiters: Delimiters) -> str:
    keep = _FIELDS_READ[name]
    fields = text.split(delimiters.field)[: max(keep) + 1]
    kept = [value if n == 0 or n in keep else "" for n, value in enumerate(fields)]
    return delimiters.field.join(kept).rstrip(delimiters.field)


def _hl7apy_segment(
    segments: dict[str, str], name: str, version: str, delimiters: Delimiters
) -> Segment:
    text = segments.get(name)
    if text is None:
        raise AdtError("100", f"required segment {name} is missing", location=name)
    text = _only_fields_read(name, text, delimiters)
    encoding_chars = {
        "FIELD": delimiters.field,
        "COMPONENT": delimiters.component,
        "SUBCOMPONENT": delimiters.subcomponent,
        "REPETITION": delimiters.repetition,
        "ESCAPE": delimiters.escape,
        "SEGMENT": "\r",
        "GROUP": "\r",
    }
    try:
        return parse_segment(
            text,
            version=version,
            encoding_chars=encoding_chars,
            validation_level=VALIDATION_LEVEL.TOLERANT,
        )
    except (HL7apyException, ValueError, KeyError, IndexError) as exc:
        text = f"{name} segment cannot be read: {exc}"
        raise AdtError("102", text, location=f"{name}^1") from exc


def _child(element: Element | None, name: str) -> Element | None:
    """The first child called ``name`` (e.g. ``CX_4``), without creating it when absent."""
    if element is None:
        return None
    found = element.children.indexes.get(name)
    return found[0] if found else None


def _text(element: Element | None, delimiters: Delimiters) -> str | None:
    """The unescaped text of a leaf (component or subcomponent); ``None`` if empty."""
    if element is None:
        return None
    value = unescape(element.to_er7().strip(), delimiters)
    return value or None


def _repetitions(segment: Segment, field_name: str) -> list[Element]:
    return list(segment.children.indexes.get(field_name, []))


def _identifiers(segment: Segment, field_name: str, d: Delimiters) -> list[PatientIdentifier]:
    """All CX repetitions of a field; empty ids and the HL7 null ``""`` are skipped."""
    found = []
    for cx in _repetitions(segment, field_name):
        ident = _text(_child(cx, "CX_1"), d)
        if not ident or ident == '""':
            continue
        hd = _child(cx, "CX_4")
        found.append(
            PatientIdentifier(
                id=ident,
                namespace_id=_text(_child(hd, "HD_1"), d),
                assigning_authority_oid=_text(_child(hd, "HD_2"), d),
                universal_id_type=_text(_child(hd, "HD_3"), d),
                type_code=_text(_child(cx, "CX_5"), d),
            )
        )
    return found


def _standard_er7(element: Element | None) -> str | None:
    """A field repetition in ER7 with the standard delimiters (escapes kept)."""
    if element is None:
        return None
    chars = {
        "FIELD": STANDARD_DELIMITERS.field,
        "COMPONENT": STANDARD_DELIMITERS.component,
        "SUBCOMPONENT": STANDARD_DELIMITERS.subcomponent,
        "REPETITION": STANDARD_DELIMITERS.repetition,
        "ESCAPE": STANDARD_DELIMITERS.escape,
        "SEGMENT": "\r",
        "GROUP": "\r",
    }
    value = element.to_er7(encoding_chars=chars).strip()
    return value or None


def _first(segment: Segment, field_name: str) -> Element | None:
    reps = _repetitions(segment, field_name)
    return reps[0] if reps else None


def _demographics(pid: Segment, d: Delimiters) -> Demographics:
    """PID-5, -6, -7, -8, -11 (ITI TF-2 Table 3.8-2 lists these as the corroborating data)."""
    name = _first(pid, "PID_5")
    family = _child(name, "XPN_1")
    # v2.5 XPN-1 is FN (family name = FN-1 surname); v2.3.1 XPN-1 is ST or FN by version.
    surname = _child(family, "FN_1")
    birth = _first(pid, "PID_7")
    birth_time = _child(birth, "TS_1")
    return Demographics(
        name=_standard_er7(name),
        family_name=_text(surname if surname is not None else family, d),
        given_name=_text(_child(name, "XPN_2"), d),
        mothers_maiden_name=_standard_er7(_first(pid, "PID_6")),
        birth_date=_text(birth_time if birth_time is not None else birth, d),
        sex=_text(_first(pid, "PID_8"), d),
        address=_standard_er7(_first(pid, "PID_11")),
    )
