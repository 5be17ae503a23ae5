"""RFC 5424 messages, RFC 5425 octet counting, file lines."""

from __future__ import annotations

import datetime
import re

from gateway.audit import syslog

MOMENT = datetime.datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=datetime.UTC)
# RFC 5424 §6: <PRI>VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID SP SD SP MSG
HEADER = re.compile(
    rb"^<(\d{1,3})>1 (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) ([\x21-\x7e]{1,255}) "
    rb"([\x21-\x7e]{1,48}) ([\x21-\x7e]{1,128}) ([\x21-\x7e]{1,32}) - \xef\xbb\xbf"
)


def test_audit_message_header() -> None:
    message = syslog.format_message(
        b"<AuditMessage/>",
        hostname="gw.example",
        app_name="xdsi-gateway",
        procid="42",
        moment=MOMENT,
    )
    match = HEADER.match(message)
    assert match is not None, message
    assert match.groups() == (
        b"85",  # facility 10 (security/authorization) * 8 + severity 5 (notice)
        b"2024-01-02T03:04:05.678Z",
        b"gw.example",
        b"xdsi-gateway",
        b"42",
        b"IHE+RFC-3881",
    )
    assert message.endswith(b"\xef\xbb\xbf<AuditMessage/>")


def test_header_fields_are_printable_and_bounded() -> None:
    assert syslog.header_field("my host", 255) == "my_host"
    assert syslog.header_field("", 48) == "-"
    assert syslog.header_field(None, 48) == "-"
    assert syslog.header_field("x" * 60, 48) == "x" * 48
    assert syslog.header_field("h\u00e9", 10) == "h_"


def test_timestamp_is_utc() -> None:
    local = datetime.datetime(
        2024, 1, 2, 5, 4, 5, tzinfo=datetime.timezone(datetime.timedelta(hours=2))
    )
    assert syslog.timestamp(local) == "2024-01-02T03:04:05.000Z"


def test_octet_counting() -> None:
    message = "<85>1 - - - - - - \xef\xbb\xbf<é/>".encode()
    framed = syslog.octet_counted(message)
    length, _sep, rest = framed.partition(b" ")
    assert int(length) == len(message) == len(rest)  # octets, not characters


def test_file_line_and_split() -> None:
    message = syslog.format_message(b"<A/>", hostname="h", app_name="a", procid="1", moment=MOMENT)
    line = syslog.file_line(message)
    assert line.endswith(b" <A/>\n") and syslog.BOM not in line
    head, xml = syslog.split_message(message)
    assert head.startswith("<85>1 ") and xml == b"<A/>"
