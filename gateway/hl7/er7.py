"""HL7 v2 ER7 ("pipe and hat") wire helpers: the MSH header, character sets, segments, escapes.

Everything here works on raw bytes or plain strings and never fails on garbage: the acknowledgement
builder needs the header of any message it answers, including messages that are not HL7 at all.
The data-carrying segments (PID, MRG) are decoded by hl7apy in :mod:`gateway.hl7.adt`.

Standard: HL7 v2.5 Ch. 2 §2.5 (message construction: delimiters; each segment ends with CR),
§2.7 (escape sequences in text fields), §2.15.9 (MSH fields; MSH-18 character set, table 0211).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

log = logging.getLogger(__name__)

DEFAULT_ENCODING_CHARACTERS = "^~\\&"
SEGMENT_TERMINATOR = "\r"

# HL7 table 0211 (alternate character sets, v2.5) mapped to Python codecs. "UNICODE" is the
# v2.3.1 spelling (ISO/IEC 10646 without an encoding form); on an 8-bit MLLP stream it can only
# mean UTF-8. Values not listed fall back to the tolerant default.
CHARSET_CODECS: dict[str, str] = {
    "ASCII": "ascii",
    "ISO IR6": "ascii",
    "8859/1": "latin-1",
    "8859/2": "iso8859-2",
    "8859/3": "iso8859-3",
    "8859/4": "iso8859-4",
    "8859/5": "iso8859-5",
    "8859/6": "iso8859-6",
    "8859/7": "iso8859-7",
    "8859/8": "iso8859-8",
    "8859/9": "iso8859-9",
    "8859/15": "iso8859-15",
    "ISO IR87": "iso2022_jp",
    "ISO IR159": "iso2022_jp_2",
    "GB 18030-2000": "gb18030",
    "KS X 1001": "euc_kr",
    "BIG-5": "big5",
    "UNICODE": "utf-8",
    "UNICODE UTF-8": "utf-8",
}


@dataclass(slots=True, frozen=True)
class Delimiters:
    """The five ER7 delimiters of one message (MSH-1 and MSH-2)."""

    field: str = "|"
    component: str = "^"
    repetition: str = "~"
    escape: str = "\\"
    subcomponent: str = "&"

    @property
    def encoding_characters(self) -> str:
        """MSH-2 as it is written back (component, repetition, escape, subcomponent)."""
        return f"{self.component}{self.repetition}{self.escape}{self.subcomponent}"


STANDARD_DELIMITERS = Delimiters()


@dataclass(slots=True, kw_only=True, frozen=True)
class MessageHeader:
    """The MSH fields an ACK needs, as ER7 text (still escaped) in the message's own delimiters.

    ``codec`` is the Python codec the message was (or will be) decoded with: MSH-18 when it
    names a known character set, else the tolerant default (UTF-8 if the bytes are valid UTF-8,
    otherwise ISO 8859-1).
    """

    delimiters: Delimiters = STANDARD_DELIMITERS
    sending_application: str = ""  # MSH-3
    sending_facility: str = ""  # MSH-4
    receiving_application: str = ""  # MSH-5
    receiving_facility: str = ""  # MSH-6
    message_type: str = ""  # MSH-9.1 (e.g. ADT)
    trigger_event: str = ""  # MSH-9.2 (e.g. A01)
    message_structure: str = ""  # MSH-9.3 (e.g. ADT_A01)
    control_id: str = ""  # MSH-10
    processing_id: str = ""  # MSH-11
    version: str = ""  # MSH-12 first component (e.g. 2.3.1)
    accept_ack_type: str = ""  # MSH-15
    application_ack_type: str = ""  # MSH-16
    charset: str = ""  # MSH-18 first repetition
    codec: str = "ascii"


def version_tuple(version: str) -> tuple[int, ...]:
    """``"2.3.1"`` -> ``(2, 3, 1)``; anything unreadable -> ``()``."""
    parts = []
    for part in version.strip().split("."):
        if not part.isdigit():
            return ()
        parts.append(int(part))
    return tuple(parts)


def resolve_codec(charset: str, raw: bytes) -> str:
    """Pick the codec for a message: MSH-18 if it is a known HL7 table 0211 value, else tolerant.

    The tolerant default covers ASCII (HL7's default when MSH-18 is empty, v2.5 §2.15.9.18) and
    the two encodings real senders use without saying so: UTF-8 and ISO 8859-1. A message
    declared ASCII that carries 8-bit bytes is read the same tolerant way.
    """
    codec = CHARSET_CODECS.get(" ".join(charset.upper().split()))
    if codec is not None and codec != "ascii":
        return codec
    if charset and codec is None:
        log.warning("unknown MSH-18 character set %r; decoding tolerantly", charset)
    if raw.isascii():
        return "ascii"
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return "latin-1"
    return "utf-8"


def decode(raw: bytes, codec: str) -> str:
    """Decode message bytes; bytes invalid in the declared codec become U+FFFD (lenient reading)."""
    try:
        return raw.decode(codec)
    except UnicodeDecodeError:
        log.warning("message bytes are not valid %s; undecodable bytes replaced", codec)
        return raw.decode(codec, errors="replace")
    except LookupError:  # pragma: no cover - CHARSET_CODECS names only codecs Python has
        return raw.decode("latin-1")


def _strip_leading(raw: bytes) -> bytes:
    # Leniency: stray framing bytes or blank lines before MSH are not part of the message.
    return raw.lstrip(b"\x0b\x1c\r\n\t ")


def _delimiters(field_sep: str, msh2: str) -> Delimiters:
    """MSH-1/MSH-2, missing encoding characters filled from the defaults (lenient reading)."""
    chars = list(msh2[:4])
    for spare in DEFAULT_ENCODING_CHARACTERS + "#!$%*":
        if len(chars) == 4:
            break
        if spare not in chars and spare != field_sep:
            chars.append(spare)
    return Delimiters(
        field=field_sep,
        component=chars[0],
        repetition=chars[1],
        escape=chars[2],
        subcomponent=chars[3],
    )


def parse_header(raw: bytes) -> MessageHeader | None:
    """Read the MSH segment of a raw message; ``None`` when the bytes do not start with MSH.

    Standard: HL7 v2.5 §2.15.9 (MSH-1 field separator, MSH-2 encoding characters, MSH-9 message
    type, MSH-10 control id, MSH-11 processing id, MSH-12 version, MSH-18 character set).
    """
    data = _strip_leading(raw)
    if len(data) < 8 or not data.startswith(b"MSH"):
        return None
    sep = data[3:4]
    if sep.isalnum() or sep in b"\r\n \x0b\x1c" or not sep.isascii():
        return None
    end = min((i for i in (data.find(b"\r"), data.find(b"\n")) if i >= 0), default=len(data))
    fields_b = data[:end].split(sep)
    msh2 = fields_b[1].decode("latin-1")
    if len(set(msh2[:4])) < len(msh2[:4]):  # a delimiter used twice: nothing can be read
        return None
    delimiters = _delimiters(sep.decode(), msh2)
    charset_field = fields_b[17].decode("latin-1") if len(fields_b) > 17 else ""
    charset = charset_field.split(delimiters.repetition)[0].strip()
    codec = resolve_codec(charset, raw)
    fields = decode(data[:end], codec).split(delimiters.field)
    fields = [*fields, *[""] * (20 - len(fields))]

    def msh(n: int) -> str:  # MSH-n; MSH-1 is the separator itself, so MSH-n is fields[n - 1]
        return fields[n - 1].strip()

    msg_type = [*msh(9).split(delimiters.component), "", "", ""]
    return MessageHeader(
        delimiters=delimiters,
        sending_application=msh(3),
        sending_facility=msh(4),
        receiving_application=msh(5),
        receiving_facility=msh(6),
        message_type=msg_type[0].strip(),
        trigger_event=msg_type[1].strip(),
        message_structure=msg_type[2].strip(),
        control_id=msh(10),
        processing_id=msh(11),
        version=msh(12).split(delimiters.component)[0].strip(),
        accept_ack_type=msh(15),
        application_ack_type=msh(16),
        charset=charset,
        codec=codec,
    )


def split_segments(text: str) -> list[str]:
    """Split message text into segments: CR per HL7, LF and CRLF accepted (lenient reading).

    Standard: HL7 v2.5 §2.5 (the segment terminator is always CR, hex 0D).
    """
    return [seg for seg in re.split(r"\r\n|\r|\n", text) if seg.strip(" \t\x0b\x1c")]


def escape(value: str, delimiters: Delimiters = STANDARD_DELIMITERS) -> str:
    """Escape delimiter characters (and CR/LF) in a text value.

    Standard: HL7 v2.5 §2.7 (\\F\\ \\S\\ \\T\\ \\R\\ \\E\\, \\Xhh\\ for other characters).
    """
    esc = delimiters.escape
    table = {
        esc: f"{esc}E{esc}",
        delimiters.field: f"{esc}F{esc}",
        delimiters.component: f"{esc}S{esc}",
        delimiters.subcomponent: f"{esc}T{esc}",
        delimiters.repetition: f"{esc}R{esc}",
        "\r": f"{esc}X0D{esc}",
        "\n": f"{esc}X0A{esc}",
    }
    return "".join(table.get(ch, ch) for ch in value)


def unescape(value: str, delimiters: Delimiters = STANDARD_DELIMITERS) -> str:
    """Replace escape sequences by the characters they stand for; drop formatting escapes.

    Standard: HL7 v2.5 §2.7 (delimiter escapes, \\Xhh\\ hexadecimal data, \\H\\/\\N\\
    highlighting and \\Cxxyy\\/\\Mxxyyzz\\ character-set switches, which carry no text).
    """
    esc = delimiters.escape
    if not esc or esc not in value:
        return value
    simple = {
        "F": delimiters.field,
        "S": delimiters.component,
        "T": delimiters.subcomponent,
        "R": delimiters.repetition,
        "E": esc,
        "H": "",
        "N": "",
        ".br": "\n",
    }
    pattern = re.compile(re.escape(esc) + r"([^" + re.escape(esc) + r"]{1,64})" + re.escape(esc))

    def replace(match: re.Match[str]) -> str:
        body = match.group(1)
        if body in simple:
            return simple[body]
        if body[0] == "X" and len(body) % 2 == 1:
            try:
                data = bytes.fromhex(body[1:])
            except ValueError:
                return match.group(0)
            return data.decode("utf-8") if _is_utf8(data) else data.decode("latin-1")
        if body[0] in "CMZ" or body.startswith("."):
            return ""
        return match.group(0)

    return pattern.sub(replace, value)


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
