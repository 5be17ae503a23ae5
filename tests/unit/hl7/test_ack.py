"""ACK building and reading (HL7 v2.5 §2.9, §2.15.5 ERR, §2.15.8 MSA; v2.3.1 ERR-1)."""

from __future__ import annotations

import pytest

from gateway.hl7.ack import build_ack, new_control_id, parse_ack
from gateway.hl7.adt import parse_adt
from gateway.hl7.er7 import parse_header

DOMAIN = "1.3.6.1.4.1.21367.13.20.1000"


def message(version: str = "2.3.1", charset: str = "", sender: str = "SEND") -> bytes:
    text = (
        f"MSH|^~\\&|{sender}|SFAC|RECV|RFAC|20240101120000||ADT^A04^ADT_A01|CTRL-9|T|{version}"
        f"||||||{charset}\r"
        f"EVN|A04\rPID|1||P1^^^&{DOMAIN}&ISO||DOE^JOHN\r"
    )
    return text.encode("utf-8" if "UTF" in charset else "latin-1")


def fields(ack: bytes, segment: str, encoding: str = "latin-1") -> list[str]:
    for line in ack.decode(encoding).split("\r"):
        if line.startswith(segment + "|"):
            return line.split("|")
    raise AssertionError(f"no {segment} in {ack!r}")


def test_accept_ack_header_and_msa() -> None:
    ack = build_ack(message(), "AA")
    assert ack.endswith(b"\r") and ack.count(b"\r") == 2  # MSH and MSA, each CR-terminated
    msh = fields(ack, "MSH")
    assert msh[1] == "^~\\&"
    assert msh[2:6] == ["RECV", "RFAC", "SEND", "SFAC"]  # MSH-3..6 swapped
    assert msh[6][:8].isdigit()  # MSH-7
    assert msh[8] == "ACK^A04^ACK"
    assert msh[9] and msh[9] != "CTRL-9" and len(msh[9]) <= 20  # new MSH-10
    assert msh[10] == "T"  # processing id kept
    assert msh[11] == "2.3.1"  # version kept
    assert fields(ack, "MSA") == ["MSA", "AA", "CTRL-9"]
    assert b"ERR" not in ack


def test_control_ids_are_fresh() -> None:
    assert len({new_control_id() for _ in range(100)}) == 100
    assert fields(build_ack(message(), "AA", control_id="ACK1"), "MSH")[9] == "ACK1"


def test_error_ack_v25_uses_err3_err4_err8() -> None:
    ack = build_ack(
        message("2.5"),
        "AE",
        error_code="101",
        error_text="PID-3 is empty | nothing^to&do",
        error_location="PID^1^3",
    )
    assert fields(ack, "MSA") == ["MSA", "AE", "CTRL-9"]
    err = fields(ack, "ERR")
    assert err[1] == ""  # ERR-1 is backward-compatible only in v2.5
    assert err[2] == "PID^1^3"  # ERR-2 error location
    assert err[3] == "101^Required field missing^HL70357"  # ERR-3 HL7 error code
    assert err[4] == "E"  # ERR-4 severity
    # ERR-8 user message, with the delimiters escaped
    assert err[8] == "PID-3 is empty \\F\\ nothing\\S\\to\\T\\do"


def test_error_ack_v231_uses_err1_and_msa3() -> None:
    ack = build_ack(
        message("2.3.1"),
        "AR",
        error_code="201",
        error_text="event A02 not supported",
        error_location="MSH^1^9",
    )
    assert fields(ack, "MSA") == ["MSA", "AR", "CTRL-9", "event A02 not supported"]
    assert fields(ack, "ERR") == ["ERR", "MSH^1^9^201&Unsupported event code&HL70357"]


def test_garbage_gets_minimal_reject() -> None:
    ack = build_ack(b"\x00\x01 this is not HL7", "AA")
    msh = fields(ack, "MSH")
    assert msh[8] == "ACK^^ACK" and msh[11] == "2.5"  # structure ACK, no trigger to echo
    assert fields(ack, "MSA") == ["MSA", "AR", '""']  # HL7 null: no control id to echo
    assert fields(ack, "ERR")[3] == "100^Segment sequence error^HL70357"
    summary = parse_ack(ack)
    assert (summary.code, summary.error_code) == ("AR", "100")


def test_charset_kept_and_used_for_encoding() -> None:
    ack = build_ack(message("2.5", "8859/1", sender="Zürich"), "AA")
    assert fields(ack, "MSH")[17] == "8859/1"
    assert "Zürich".encode("latin-1") in ack

    ack = build_ack(message("2.5", "UNICODE UTF-8", sender="Zürich"), "AA")
    assert fields(ack, "MSH", "utf-8")[17] == "UNICODE UTF-8"
    assert "Zürich".encode() in ack


def test_no_charset_field_when_message_has_none() -> None:
    assert len(fields(build_ack(message(), "AA"), "MSH")) == 12


def test_other_delimiters_are_kept() -> None:
    raw = b"MSH#*!$%#APP#FAC#ME#MYFAC#20240101##ADT*A08#77#P#2.5\rPID#1##X\r"
    ack = build_ack(raw, "AE", error_code="207", error_text="a*b", error_location="PID^1")
    lines = ack.decode().split("\r")
    assert lines[0].startswith("MSH#*!$%#ME#MYFAC#APP#FAC#")
    assert "#ACK*A08*ACK#" in lines[0]
    assert lines[1] == "MSA#AE#77"
    assert lines[2] == "ERR##PID*1#207*Application internal error*HL70357#E####a$S$b"


def test_msh9_before_v231_has_no_structure() -> None:
    ack = build_ack(message("2.3"), "AA")
    assert fields(ack, "MSH")[8] == "ACK^A04"


def test_from_event_equals_from_raw() -> None:
    raw = message()
    from_event = build_ack(parse_adt(raw), "AA", control_id="X")
    from_raw = build_ack(raw, "AA", control_id="X")
    from_header = build_ack(parse_header(raw), "AA", control_id="X")
    strip_time = lambda ack: [f for i, f in enumerate(fields(ack, "MSH")) if i != 6]  # noqa: E731
    assert strip_time(from_event) == strip_time(from_raw) == strip_time(from_header)
    assert fields(from_event, "MSA") == fields(from_raw, "MSA")


def test_builder_never_raises() -> None:
    ack = build_ack(object(), "AA")  # type: ignore[arg-type]
    assert parse_ack(ack).code == "AR"


@pytest.mark.parametrize("version", ["2.3.1", "2.5"])
def test_parse_ack_reads_both_err_forms(version: str) -> None:
    ack = build_ack(
        message(version), "AE", error_code="204", error_text="unknown domain", error_location="PID"
    )
    summary = parse_ack(ack)
    assert (summary.code, summary.control_id) == ("AE", "CTRL-9")
    assert summary.error_code == "204"
    assert summary.error_text == "unknown domain"
    assert not summary.accepted


def test_parse_ack_of_non_ack() -> None:
    assert parse_ack(b"hello").code == "AR"
    no_msa = parse_ack(b"MSH|^~\\&|a|b|c|d|1||ACK|1|P|2.5\r")
    assert (no_msa.code, no_msa.error_text) == ("AR", "answer has no MSA segment")
    accepted = parse_ack(build_ack(message(), "AA"))
    assert accepted.accepted and accepted.error_text is None
