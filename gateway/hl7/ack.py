"""HL7 v2 general acknowledgement (ACK) messages: building the answer, reading one back.

Every message the gateway receives gets exactly one ACK, garbage included: when no MSH can be
read, a minimal ACK with MSA-1 = AR and an ERR segment goes back. IHE uses only the HL7 original
acknowledgement mode (ITI TF-2x Appendix C / C.2.3; the Gazelle HL7 profiles say "IHE uses only
the HL7 original acknowledgement mode"), so the answer is always the application acknowledgement
AA / AE / AR on the same connection, whatever MSH-15/MSH-16 ask for.

The ERR segment follows the version of the message answered:

* v2.5 and later: ERR-2 error location (ERL), ERR-3 HL7 error code (CWE, table 0357), ERR-4
  severity (table 0516, ``E``), ERR-8 user message (HL7 v2.5 §2.15.5).
* earlier versions (ITI-8 is HL7 v2.3.1, ITI TF-2 §3.8.3): ERR-1 "error code and location"
  (ELD: segment^sequence^field^code&text&HL70357) and MSA-3 text message, the only fields those
  versions define (HL7 v2.3.1 Ch. 2, ERR and MSA segments).

Standard: HL7 v2.5 §2.9 (acknowledgement modes, MSA-1 codes of table 0008), §2.15.8 (MSA),
§2.15.5 (ERR), table 0357 (message error condition codes).
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

# An answer that needs no formatting at all, for the impossible case of the builder failing.
_LAST_RESORT = (
    b"MSH|^~\\&|||||||ACK|0|P|2.5\rMSA|AR|\rERR|||207^Application internal error^HL70357|E\r"
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
        return _LAST_RESORT


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
    version = h.version or DEFAULT_VERSION
    number = version_tuple(version)
    modern = not number or number >= (2, 5)  # unreadable versions are answered as v2.5
    if not h.trigger_event:
        msh9 = "ACK"
    elif number and number < (2, 3, 1):  # MSH-9.3 (message structure) exists from v2.3.1
        msh9 = f"ACK{d.component}{h.trigger_event}"
    else:
        msh9 = f"ACK{d.component}{h.trigger_event}{d.component}ACK"
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
    msa = ["MSA", code, h.control_id]
    segments = [msh, msa]
    if error_code is not None:
        if not modern and error_text:
            msa.append(escape(error_text, d))  # MSA-3 text message (v2.3.1)
        segments.append(_err(d, modern, error_code, error_text, error_location))
    text = "".join(d.field.join(fields) + SEGMENT_TERMINATOR for fields in segments)
    return text.encode(h.codec, errors="replace")


def _err(
    d: Delimiters, modern: bool, error_code: str, error_text: str | None, location: str | None
) -> list[str]:
    """The ERR fields in the form of the answered message's version (see module docstring)."""
    name = ERROR_CODES.get(error_code, "")
    where = [escape(part, d) for part in (location or "").split("^")]
    if modern:
        cwe = d.component.join([escape(error_code, d), escape(name, d), "HL70357"])
        user_message = escape(error_text or "", d)
        fields = ["ERR", "", d.component.join(where), cwe, "E", "", "", "", user_message]
        while fields[-1] == "":
            fields.pop()
        return fields
    code_ce = d.subcomponent.join([escape(error_code, d), escape(name, d), "HL70357"])
    where = [*where[:3], *[""] * (3 - len(where[:3]))]
    return ["ERR", d.component.join([*where, code_ce])]


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
    summary = AckSummary(code=msa[1].strip(), control_id=unescape(msa[2], d))
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
