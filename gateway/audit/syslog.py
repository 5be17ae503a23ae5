"""Syslog framing of audit messages: RFC 5424 messages, RFC 5425 octet counting.

Every audit record travels as one RFC 5424 message: ``<85>1 TIMESTAMP HOSTNAME APP-NAME PROCID
IHE+RFC-3881 - BOM<AuditMessage .../>``. PRI 85 is facility 10 (security/authorization) and
severity 5 (notice); MSGID ``IHE+RFC-3881`` and the XML as MSG are what ITI-20 prescribes. Over
TLS each message is prefixed with its length (octet counting); over UDP one message is one
datagram; in a file, one message is one line (without the BOM).

Standards: ITI TF-2 §3.20.4.1.2 (syslog message: PRI, MSGID, XML MSG); RFC 5424 §6 (syntax:
HEADER fields are PRINTUSASCII of bounded length, MSG-UTF8 = BOM UTF-8-STRING); RFC 5425 §4.3
(octet-counting framing); RFC 5426 §3.1 (one message per datagram).
"""

from __future__ import annotations

import datetime
import re

PRI_AUDIT = 10 * 8 + 5  # facility 10 (security/authorization), severity 5 (notice)
MSGID_AUDIT = "IHE+RFC-3881"
BOM = b"\xef\xbb\xbf"
NILVALUE = "-"
_NOT_PRINTUSASCII = re.compile(r"[^\x21-\x7e]")


def header_field(value: str | None, limit: int) -> str:
    """A HEADER field: printable US-ASCII without spaces, at most ``limit`` characters.

    Standard: RFC 5424 §6.2 (HOSTNAME 255, APP-NAME 48, PROCID 128, MSGID 32; NILVALUE "-").
    """
    if not value:
        return NILVALUE
    cleaned = _NOT_PRINTUSASCII.sub("_", value)[:limit]
    return cleaned or NILVALUE


def timestamp(moment: datetime.datetime) -> str:
    """RFC 5424 §6.2.3 TIMESTAMP in UTC with millisecond precision."""
    utc = moment.astimezone(datetime.UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def format_message(
    xml: bytes,
    *,
    hostname: str,
    app_name: str,
    procid: str,
    moment: datetime.datetime,
    msgid: str = MSGID_AUDIT,
    pri: int = PRI_AUDIT,
) -> bytes:
    """One RFC 5424 SYSLOG-MSG carrying ``xml`` (UTF-8) as MSG, with the BOM.

    Standard: RFC 5424 §6 (HEADER SP STRUCTURED-DATA SP MSG); ITI TF-2 §3.20.4.1.2.
    """
    header = " ".join(
        (
            f"<{pri}>1",
            timestamp(moment),
            header_field(hostname, 255),
            header_field(app_name, 48),
            header_field(procid, 128),
            header_field(msgid, 32),
            NILVALUE,  # no STRUCTURED-DATA
        )
    )
    return header.encode("ascii") + b" " + BOM + xml


def octet_counted(message: bytes) -> bytes:
    """``MSG-LEN SP SYSLOG-MSG`` (RFC 5425 §4.3)."""
    return str(len(message)).encode("ascii") + b" " + message


def file_line(message: bytes) -> bytes:
    """The message as one line of a local audit file: the BOM dropped, a newline added."""
    return message.replace(b" " + BOM, b" ", 1) + b"\n"


def split_message(message: bytes) -> tuple[str, bytes]:
    """(HEADER + STRUCTURED-DATA, MSG without BOM) of a message made by :func:`format_message`."""
    head, _sep, rest = message.partition(b" " + BOM)
    if not _sep:
        raise ValueError("not an audit syslog message (no BOM before MSG)")
    return head.decode("ascii"), rest
