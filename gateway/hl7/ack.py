"""HL7 v2 general acknowledgement (ACK) messages: building the answer, reading one back.

Every message the gateway receives gets exactly one ACK, garbage included: when no MSH can be
read, a minimal ACK with MSA-1 = AR and an ERR segment goes back. IHE uses only the HL7 original
acknowledgement mode (ITI TF-2x Appendix C / C.2.3; the Gazelle HL7 profiles say "IHE uses only
the HL7 original acknowledgement mode"), so the answer is always the application acknowledgement
AA / AE / AR on the same connection, whatever MSH-15/MSH-16 ask for.

The ERR segment follows the version of the message answered:

* v2.5 and later: ERR-1 (retained for backward compatibility only) stays empty; ERR-2 error
  location (ERL, 18), ERR-3 HL7 error code (CWE, table 0357), ERR-4 severity (table 0516, ``E``),
  ERR-8 user message (TX, 250) and, when the text is longer than ERR-8 allows, the whole text in
  ERR-7 diagnostic information (TX, 2048). MSA-3 (backward compatible only) stays empty.
  Standard: HL7 v2.5 §2.15.5.1-§2.15.5.8, §2.15.8.3.
* earlier versions (ITI-8 is HL7 v2.3.1, ITI TF-2 §3.8.3): MSA-3 text message (ST, 80) and ERR-1
  "error code and location" (CM, 80: segment ID^sequence^field position^code identifying error,
  the code a CE written with subcomponents: code&text&HL70357), the only fields those versions
  have. Standard: HL7 v2.3.1 §2.24.2.3 (MSA-3), §2.24.3.1 (ERR-1).

Texts are cut to the field's length as sent (escape sequences count), ending with ``...``: a
receiver validating lengths (hl7apy STRICT, HAPI, the Gazelle validator) accepts the ACK, and the
full text is in the gateway's log. The ACK's MSH-12 is the version of the message answered when
it is an HL7 v2 version (table 0104); anything else (empty, unreadable, unknown) is answered in
the v2.5 form with MSH-12 = 2.5, the version this builder's structure then follows.

Standard: HL7 v2.5 §2.9 (acknowledgement modes, MSA-1 codes of table 0008), §2.15.8 (MSA),
§2.15.5 (ERR), table 0357 (message error condition codes), table 0104 (version ID).
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from gateway.hl7.er7 import (
    SEGMENT_TERMINATOR,
    Delimiters,
    MessageHeader,
    decode,
    escape,
    parse_header,
    split_segments,
    unescape,
    version_tuple,
)

log = logging.getLogger(__name__)

AckCode = Literal["AA", "AE", "AR"]


class HasHeader(Protocol):
    """Anything that carries the MSH of a received message, e.g. a parsed ADT event
    (:class:`gateway.hl7.adt.PatientFeedEvent`, one layer up: this module does not import it)."""

    @property
    def header(self) -> MessageHeader: ...


DEFAULT_VERSION = "2.5"
# HL7 table 0104 versions an ACK answers in kind (MSH-12 echoed, ERR in that version's form).
KNOWN_VERSIONS = frozenset(
    {"2.1", "2.2", "2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6", "2.7", "2.7.1", "2.8"}
    | {"2.8.1", "2.8.2", "2.9"}
)

# Field lengths in characters as sent (HL7 v2.3.1 §2.24.2-§2.24.3, v2.5 §2.15.5 and §2.15.8).
MSA3_LENGTH = 80  # MSA-3 text message, ST
ERR1_LENGTH = 80  # ERR-1 error code and location before v2.5, CM
ERR7_LENGTH = 2048  # ERR-7 diagnostic information, TX (v2.5)
ERR8_LENGTH = 250  # ERR-8 user message, TX (v2.5)
_CUT = "..."

# HL7 table 0357, message error condition codes (v2.5 names).
ERROR_CODES: dict[str, str] = {
    "0": "Message accepted",
    "100": "Segment sequence error",
    "101": "Required field missing",
    "102": "Data type error",
    "103": "Table value not found",
    "200": "Unsupported message type",
    "201": "Unsupported event code",
    "202": "Unsupported processing id",
    "203": "Unsupported version id",
    "204": "Unknown key identifier",
    "205": "Duplicate key identifier",
    "206": "Application record locked",
    "207": "Application internal error",
}

# HL7's explicit null (v2.5 §2.5.3): MSA-2 of an answer to a message without a control id.
NULL = '""'

# The answer for the impossible case of the builder failing: only a timestamp is formatted.
_LAST_RESORT = (
    "MSH|^~\\&|||||{time}||ACK^^ACK|{control_id}|P|2.5\r"
    'MSA|AR|""\rERR|||207^Application internal error^HL70357|E\r'
)


def new_control_id() -> str:
    """A fresh MSH-10 value: 20 random hex characters (MSH-10 is ST, at most 20 long in v2.5)."""
    return secrets.token_hex(10)


def _timestamp() -> str:
    # MSH-7 (TS): local time with its UTC offset, YYYYMMDDHHMMSS+ZZZZ (HL7 v2.5 TS data type).
    return datetime.now().astimezone().strftime("%Y%m%d%H%M%S%z")


def _header_of(source: bytes | MessageHeader | HasHeader | None) -> MessageHeader | None:
    if source is None or isinstance(source, MessageHeader):
        return source
    if isinstance(source, bytes | bytearray | memoryview):
        return parse_header(bytes(source))
    return source.header


def build_ack(
    source: bytes | MessageHeader | HasHeader | None,
    code: AckCode,
    *,
    error_code: str | None = None,
    error_text: str | None = None,
    error_location: str | None = None,
    control_id: str | None = None,
) -> bytes:
    """Build the ACK for a received message (raw bytes, its header or its parsed event).

    MSH swaps sender and receiver, gets a new control id and MSH-9 ``ACK^<trigger>^ACK``, and
    keeps the version, processing id and character set (MSH-18) of the message; the ACK is
    encoded in that character set. ``error_location`` is an ERL value written with ``^``
    (segment^sequence^field[^repetition^component], e.g. ``PID^1^3``).
    Never raises: an unreadable message gets a minimal ACK with MSA-1 = AR.

    Standard: HL7 v2.5 §2.9.2 (original mode), §2.15.9 (MSH), §2.15.8 (MSA), §2.15.5 (ERR);
    HL7 v2.3.1 Ch. 2 (ERR-1 ELD, MSA-3) for messages of versions before 2.5.
    """
    try:
        header = _header_of(source)
        if header is None and code == "AA":
            code = "AR"
            error_code = error_code or "100"
            error_text = error_text or "no MSH segment: not an HL7 v2 message"
        return _build(header, code, error_code, error_text, error_location, control_id)
    except Exception:  # the boundary must answer whatever happens (see module docstring)
        log.exception("could not build an ACK; sending the last-resort answer")
        return _LAST_RESORT.format(time=_timestamp(), control_id=new_control_id()).encode()


def _build(
    header: MessageHeader | None,
    code: str,
    error_code: str | None,
    error_text: str | None,
    error_location: str | None,
    control_id: str | None,
) -> bytes:
    h = header or MessageHeader()
    d = h.delimiters
    version = h.version if h.version in KNOWN_VERSIONS else DEFAULT_VERSION
    number = version_tuple(version)
    modern = number >= (2, 5)
    if number < (2, 3, 1):  # MSH-9.3 (message structure) exists from v2.3.1
        msh9 = d.component.join(["ACK", h.trigger_event]).rstrip(d.component)
    else:  # the structure ACK is what a reader needs, trigger known or not
        msh9 = d.component.join(["ACK", h.trigger_event, "ACK"])
    msh = [
        "MSH",
        d.encoding_characters,
        h.receiving_application,
        h.receiving_facility,
        h.sending_application,
        h.sending_facility,
        _timestamp(),
        "",
        msh9,
        escape(control_id or new_control_id(), d),
        h.processing_id or "P",
        version,
    ]
    if h.charset:
        msh += ["", "", "", "", "", h.charset]
    msa = ["MSA", code, h.control_id or NULL]  # MSA-2 is required (v2.5 §2.15.8.2)
    segments = [msh, msa]
    if error_code is not None:
        if modern:
            segments.append(_err_v25(d, error_code, error_text, error_location))
        else:
            if error_text:
                msa.append(_fit(error_text, MSA3_LENGTH, d))  # MSA-3 text message
            segments.append(_err_v231(d, error_code, error_location))
    text = "".join(d.field.join(fields) + SEGMENT_TERMINATOR for fields in segments)
    return text.encode(h.codec, errors="replace")


def _fit(text: str, length: int, d: Delimiters) -> str:
    """``text`` escaped for a field of at most ``length`` characters as sent; a text too long is
    cut (never inside an escape sequence) and ends with ``...``.

    Standard: HL7 v2.5 §2.5.3.2 (a field's maximum length), §2.7 (escape sequences).
    """
    escaped = escape(text, d)
    if len(escaped) <= length:
        return escaped
    kept: list[str] = []
    room = length - len(_CUT)
    for char in text:
        piece = escape(char, d)
        if len(piece) > room:
            break
        kept.append(piece)
        room -= len(piece)
    return "".join(kept).rstrip() + _CUT


def _err_v25(
    d: Delimiters, error_code: str, error_text: str | None, location: str | None
) -> list[str]:
    """ERR of v2.5 and later: ERR-2 location, ERR-3 code, ERR-4 severity, ERR-7/ERR-8 text.

    Standard: HL7 v2.5 §2.15.5.2 (ERL), §2.15.5.3 (CWE, table 0357), §2.15.5.4 (table 0516),
    §2.15.5.7 (TX 2048), §2.15.5.8 (TX 250).
    """
    name = ERROR_CODES.get(error_code, "")
    where = d.component.join(_location(location, d))
    cwe = d.component.join([escape(error_code, d), escape(name, d), "HL70357"])
    user_message = _fit(error_text or "", ERR8_LENGTH, d)
    diagnostic = ""
    if user_message.endswith(_CUT) and error_text:  # cut: the whole text as diagnostic
        diagnostic = _fit(error_text, ERR7_LENGTH, d)
    fields = ["ERR", "", where, cwe, "E", "", "", diagnostic, user_message]
    while fields[-1] == "":
        fields.pop()
    return fields


def _location(location: str | None, d: Delimiters) -> list[str]:
    """The components of an ERL (``^``-separated) escaped; a bare segment ID gets sequence 1,
    ERL-2 being required with ERL-1 (HL7 v2.5 §2.15.5.2; v2.3.1 ERR-1 names both too)."""
    parts = [escape(part, d) for part in (location or "").split("^")]
    if len(parts) == 1 and parts[0]:
        parts.append("1")
    return parts


def _err_v231(d: Delimiters, error_code: str, location: str | None) -> list[str]:
    """ERR before v2.5: ERR-1 segment ID^sequence^field position^code&text&HL70357 (the text
    MSA-3 carries). The table 0357 name is left out if ERR-1 would exceed its 80 characters.

    Standard: HL7 v2.3.1 §2.24.3.1 (CM, 80; the CE's components become subcomponents).
    """
    where = _location(location, d)[:3]
    where += [""] * (3 - len(where))
    name = ERROR_CODES.get(error_code, "")
    for ce in ([error_code, name, "HL70357"], [error_code, "", "HL70357"]):
        value = d.component.join([*where, d.subcomponent.join(escape(c, d) for c in ce)])
        if len(value) <= ERR1_LENGTH:
            break
    return ["ERR", value]


@dataclass(slots=True, kw_only=True)
class AckSummary:
    """What a sender needs from an ACK: MSA-1, MSA-2 and the error text, if any."""

    code: str  # MSA-1 (AA, AE, AR; CA, CE, CR in enhanced mode)
    control_id: str  # MSA-2: the control id of the acknowledged message
    error_code: str | None = None  # ERR-3.1 (v2.5) or ERR-1.4.1 (v2.3.1)
    error_text: str | None = None  # ERR-8, else the ERR code text, else MSA-3

    @property
    def accepted(self) -> bool:
        return self.code in {"AA", "CA"}


def parse_ack(raw: bytes) -> AckSummary:
    """Read MSA and ERR of an ACK; an answer without MSA reads as code ``AR`` with a reason.

    The error text is the user message (ERR-8, or MSA-3 in v2.3.1 style), else the name of the
    error code (ERR-3.2 or ERR-1.4.2).

    Standard: HL7 v2.5 §2.15.8 (MSA-1, MSA-2, MSA-3), §2.15.5 (ERR-1, ERR-3, ERR-8).
    """
    header = parse_header(raw)
    if header is None:
        return AckSummary(code="AR", control_id="", error_text="answer is not an HL7 message")
    d = header.delimiters
    segments = [s.split(d.field) for s in split_segments(decode(raw, header.codec))]
    msa = next((s for s in segments if s[0] == "MSA"), None)
    if msa is None:
        return AckSummary(code="AR", control_id="", error_text="answer has no MSA segment")
    msa += [""] * (4 - len(msa))
    control_id = "" if msa[2] == NULL else unescape(msa[2], d)
    summary = AckSummary(code=msa[1].strip(), control_id=control_id)
    messages: list[str] = []
    names: list[str] = []
    for err in (s for s in segments if s[0] == "ERR"):
        err += [""] * (9 - len(err))
        cwe = [*err[3].split(d.component), ""]  # ERR-3 code^text^system
        eld = [*err[1].split(d.component), "", "", "", ""]  # ERR-1 seg^seq^field^code&text&sys
        ce = [*eld[3].split(d.subcomponent), ""]
        summary.error_code = summary.error_code or cwe[0] or ce[0] or None
        messages.append(err[8])
        names.append(cwe[1] or ce[1])
    messages.append(msa[3])
    texts = [unescape(t, d) for t in messages if t] or [unescape(t, d) for t in names if t]
    summary.error_text = "; ".join(dict.fromkeys(texts)) or None
    return summary
