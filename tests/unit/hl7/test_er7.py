"""ER7 wire helpers: MSH header, MSH-18 character sets, segment splitting, escapes."""

from __future__ import annotations

import pytest

from gateway.hl7.er7 import (
    Delimiters,
    decode,
    escape,
    parse_header,
    resolve_codec,
    split_segments,
    unescape,
    version_tuple,
)

MSH = (
    b"MSH|^~\\&|SEND_APP|SEND_FAC|RECV_APP|RECV_FAC|20240101120000||ADT^A01^ADT_A01|CTRL1|P|2.3.1"
    b"|||AL|NE||8859/1\r"
)


def test_header_fields() -> None:
    header = parse_header(MSH + b"PID|1||X\r")
    assert header is not None
    assert header.sending_application == "SEND_APP"
    assert header.sending_facility == "SEND_FAC"
    assert header.receiving_application == "RECV_APP"
    assert header.receiving_facility == "RECV_FAC"
    assert (header.message_type, header.trigger_event, header.message_structure) == (
        "ADT",
        "A01",
        "ADT_A01",
    )
    assert header.control_id == "CTRL1"
    assert header.processing_id == "P"
    assert header.version == "2.3.1"
    assert (header.accept_ack_type, header.application_ack_type) == ("AL", "NE")
    assert header.charset == "8859/1"
    assert header.codec == "latin-1"
    assert header.delimiters == Delimiters()


def test_header_with_other_delimiters_and_short_msh() -> None:
    header = parse_header(b"MSH#*!$%#A#B###20240101##ADT*A08#7#T#2.5")
    assert header is not None
    assert header.delimiters == Delimiters(
        field="#", component="*", repetition="!", escape="$", subcomponent="%"
    )
    assert header.sending_application == "A"
    assert header.trigger_event == "A08"
    assert header.control_id == "7"
    assert header.version == "2.5"
    assert header.charset == ""


@pytest.mark.parametrize("msh2", ["", "^", "^~", "~"])
def test_missing_encoding_characters_filled_without_clash(msh2: str) -> None:
    header = parse_header(f"MSH|{msh2}|APP|||||x||ADT^A01|1|P|2.5".encode())
    assert header is not None and header.sending_application == "APP"
    d = header.delimiters
    chars = [d.field, d.component, d.repetition, d.escape, d.subcomponent]
    assert len(set(chars)) == 5
    assert d.encoding_characters.startswith(msh2)


def test_header_tolerates_leading_framing_and_lf() -> None:
    header = parse_header(b"\x0b\r\nMSH|^~\\&|A||||x||ADT^A04|9|P|2.5\nPID|1\n")
    assert header is not None
    assert (header.trigger_event, header.control_id) == ("A04", "9")


def test_header_version_takes_first_component() -> None:
    header = parse_header(b"MSH|^~\\&|||||||ADT^A01|1|P|2.5^DEU&&ISO3166\r")
    assert header is not None and header.version == "2.5"


@pytest.mark.parametrize(
    "raw",
    [b"", b"garbage", b"PID|1||X\r", b"MSH", b"MSHA^~\\&|x|y", b"MSH\r^~\\&|||", b"MSH|^^\\&|x"],
)
def test_header_of_garbage_is_none(raw: bytes) -> None:
    assert parse_header(raw) is None


@pytest.mark.parametrize(
    ("charset", "raw", "codec"),
    [
        ("", b"plain", "ascii"),
        ("ASCII", b"plain", "ascii"),
        ("8859/1", b"M\xfcller", "latin-1"),
        ("8859/15", b"\xa4", "iso8859-15"),
        ("UNICODE UTF-8", "Müller".encode(), "utf-8"),
        ("UNICODE", "Müller".encode(), "utf-8"),
        ("unicode  utf-8", "Müller".encode(), "utf-8"),
        ("", "Müller".encode(), "utf-8"),  # undeclared: valid UTF-8 wins
        ("", b"M\xfcller", "latin-1"),  # undeclared, not UTF-8: ISO 8859-1
        ("ASCII", b"M\xfcller", "latin-1"),  # declared ASCII with 8-bit bytes: tolerant
        ("NO-SUCH-SET", "Müller".encode(), "utf-8"),
    ],
)
def test_resolve_codec(charset: str, raw: bytes, codec: str) -> None:
    assert resolve_codec(charset, raw) == codec


def test_decode_replaces_invalid_bytes() -> None:
    assert decode(b"M\xfcller", "utf-8") == "M\ufffdller"


def test_header_decoded_with_declared_charset() -> None:
    raw = "MSH|^~\\&|Zürich||||x||ADT^A01|1|P|2.5||||||UNICODE UTF-8\r".encode()
    header = parse_header(raw)
    assert header is not None
    assert header.sending_application == "Zürich"
    assert header.codec == "utf-8"


def test_split_segments_accepts_cr_lf_crlf() -> None:
    assert split_segments("MSH|a\rEVN|b\nPID|c\r\nPV1|d\r\r\n") == [
        "MSH|a",
        "EVN|b",
        "PID|c",
        "PV1|d",
    ]


def test_escape_round_trip() -> None:
    text = "a|b^c&d~e\\f\rg"
    escaped = escape(text)
    assert escaped == "a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f\\X0D\\g"
    assert unescape(escaped) == text


def test_unescape_sequences() -> None:
    assert unescape("\\H\\bold\\N\\ x\\.br\\y") == "bold x\ny"
    assert unescape("M\\XC3BC\\ller") == "Müller"  # hex data, UTF-8 bytes
    assert unescape("M\\XFC\\ller") == "Müller"  # hex data, ISO 8859-1 byte
    assert unescape("\\C2842\\x") == "x"  # character-set switch carries no text
    assert unescape("a\\Q\\b") == "a\\Q\\b"  # unknown escape left alone
    assert unescape("no escapes") == "no escapes"


def test_unescape_with_other_escape_char() -> None:
    d = Delimiters(field="#", component="*", repetition="!", escape="$", subcomponent="%")
    assert unescape("a$S$b$F$c", d) == "a*b#c"
    assert escape("a*b#c", d) == "a$S$b$F$c"


def test_version_tuple() -> None:
    assert version_tuple("2.3.1") == (2, 3, 1)
    assert version_tuple("2.5") >= (2, 5)
    assert version_tuple("") == ()
    assert version_tuple("v2") == ()
