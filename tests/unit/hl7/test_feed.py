"""ITI-8 registry-side rules (ITI TF-2 §3.8.4.1.3, §3.8.4.2.3) and ADT file reading, no sockets."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from gateway import errors
from gateway.hl7.ack import AckSummary, parse_ack
from gateway.hl7.adt import Demographics
from gateway.hl7.feed import PatientFeedHandler, read_messages

DOMAIN = "1.3.6.1.4.1.21367.13.20.1000"
OTHER = "1.2.840.99999.1"


@dataclass
class MemorySink:
    registered: list[tuple[str, Demographics, list[str]]] = field(default_factory=list)
    merged: list[tuple[str, str]] = field(default_factory=list)
    fail: Exception | None = None

    def register(self, pid: str, demographics: Demographics, *, other_ids: Sequence[str]) -> None:
        if self.fail:
            raise self.fail
        self.registered.append((pid, demographics, list(other_ids)))

    def merge(self, surviving: str, subsumed: str) -> None:
        if self.fail:
            raise self.fail
        self.merged.append((surviving, subsumed))


def adt(trigger: str, pid3: str | None, mrg1: str | None = None, msh9: str = "") -> bytes:
    segments = [
        f"MSH|^~\\&|ADT|HOSP|XDS|REG|20240101120000||{msh9 or 'ADT^' + trigger}|C{trigger}|P|2.3.1",
        f"EVN|{trigger}|20240101120000",
    ]
    if pid3 is not None:
        segments.append(f"PID|1||{pid3}||DOE^JOHN||19800101|M")
    if mrg1 is not None:
        segments.append(f"MRG|{mrg1}")
    return ("\r".join(segments) + "\r").encode()


@pytest.fixture
def sink() -> MemorySink:
    return MemorySink()


@pytest.fixture
def handler(sink: MemorySink) -> PatientFeedHandler:
    return PatientFeedHandler(sink, DOMAIN)


def answer(handler: PatientFeedHandler, raw: bytes) -> AckSummary:
    return parse_ack(handler(raw))


@pytest.mark.parametrize("trigger", ["A01", "A04", "A05", "A08"])
def test_register_domain_id_with_other_ids(
    handler: PatientFeedHandler, sink: MemorySink, trigger: str
) -> None:
    pid3 = f"LOC1^^^HOSP^MR~P1^^^XAD&{DOMAIN}&ISO^PI~O7^^^&{OTHER}&ISO"
    ack = answer(handler, adt(trigger, pid3))
    assert (ack.code, ack.control_id, ack.error_code) == ("AA", f"C{trigger}", None)
    assert len(sink.registered) == 1
    pid, demographics, others = sink.registered[0]
    assert pid == f"P1^^^&{DOMAIN}&ISO"
    assert others == ["LOC1^^^HOSP^MR", f"O7^^^&{OTHER}&ISO"]
    assert demographics.family_name == "DOE" and demographics.birth_date == "19800101"
    assert sink.merged == []


def test_every_domain_id_is_registered(handler: PatientFeedHandler, sink: MemorySink) -> None:
    ack = answer(handler, adt("A01", f"P1^^^&{DOMAIN}&ISO~P2^^^&{DOMAIN}&ISO"))
    assert ack.code == "AA"
    assert [(pid, others) for pid, _, others in sink.registered] == [
        (f"P1^^^&{DOMAIN}&ISO", [f"P2^^^&{DOMAIN}&ISO"]),
        (f"P2^^^&{DOMAIN}&ISO", [f"P1^^^&{DOMAIN}&ISO"]),
    ]


@pytest.mark.parametrize(
    "pid3",
    [
        "LOC1^^^HOSP^MR",
        f"P1^^^&{OTHER}&ISO",
        f"P1^^^&{DOMAIN}",  # universal id type missing
        f"P1^^^&{DOMAIN}&DNS",
        f"P1^^^{DOMAIN}",  # the OID as namespace id is not CX-4.2
    ],
)
def test_no_domain_id_is_ae_204(handler: PatientFeedHandler, sink: MemorySink, pid3: str) -> None:
    ack = answer(handler, adt("A04", pid3))
    assert (ack.code, ack.control_id, ack.error_code) == ("AE", "CA04", "204")
    assert ack.error_text is not None and DOMAIN in ack.error_text
    assert "PID-3 holds no identifier of the affinity domain" in ack.error_text
    assert sink.registered == []


def test_merge(handler: PatientFeedHandler, sink: MemorySink) -> None:
    raw = adt("A40", f"NEW^^^&{DOMAIN}&ISO~L9^^^HOSP", f"L8^^^HOSP~OLD^^^&{DOMAIN}&ISO")
    ack = answer(handler, raw)
    assert (ack.code, ack.control_id) == ("AA", "CA40")
    assert sink.merged == [(f"NEW^^^&{DOMAIN}&ISO", f"OLD^^^&{DOMAIN}&ISO")]
    assert sink.registered == []


@pytest.mark.parametrize(
    ("pid3", "mrg1", "where"),
    [
        ("NEW^^^HOSP", f"OLD^^^&{DOMAIN}&ISO", "PID-3"),
        (f"NEW^^^&{DOMAIN}&ISO", "OLD^^^HOSP", "MRG-1"),
    ],
)
def test_merge_needs_domain_ids(
    handler: PatientFeedHandler, sink: MemorySink, pid3: str, mrg1: str, where: str
) -> None:
    ack = answer(handler, adt("A40", pid3, mrg1))
    assert (ack.code, ack.error_code) == ("AE", "204")
    assert ack.error_text is not None and ack.error_text.startswith(where)
    assert sink.merged == []


def test_merge_with_two_surviving_ids_is_refused(
    handler: PatientFeedHandler, sink: MemorySink
) -> None:
    raw = adt("A40", f"A^^^&{DOMAIN}&ISO~B^^^&{DOMAIN}&ISO", f"C^^^&{DOMAIN}&ISO")
    assert answer(handler, raw).error_code == "205"
    assert sink.merged == []


def test_merge_into_itself_is_a_no_op(handler: PatientFeedHandler, sink: MemorySink) -> None:
    raw = adt("A40", f"A^^^&{DOMAIN}&ISO", f"A^^^&{DOMAIN}&ISO")
    assert answer(handler, raw).code == "AA"
    assert sink.merged == []


@pytest.mark.parametrize(
    ("raw", "code", "error_code"),
    [
        (adt("A02", f"P^^^&{DOMAIN}&ISO"), "AR", "201"),
        (adt("R01", f"P^^^&{DOMAIN}&ISO", msh9="ORU^R01"), "AR", "200"),
        (adt("A01", None), "AE", "100"),
        (adt("A01", ""), "AE", "101"),
        (adt("A40", f"P^^^&{DOMAIN}&ISO"), "AE", "100"),
        (b"complete garbage", "AR", "100"),
        (b"", "AR", "100"),
    ],
)
def test_refusals(
    handler: PatientFeedHandler, sink: MemorySink, raw: bytes, code: str, error_code: str
) -> None:
    ack = answer(handler, raw)
    assert (ack.code, ack.error_code) == (code, error_code)
    assert ack.error_text
    assert sink.registered == [] and sink.merged == []


def test_sink_failure_is_ae_207(handler: PatientFeedHandler, sink: MemorySink) -> None:
    sink.fail = RuntimeError("database is down: password=secret")
    ack = answer(handler, adt("A01", f"P^^^&{DOMAIN}&ISO"))
    assert (ack.code, ack.control_id, ack.error_code) == ("AE", "CA01", "207")
    assert ack.error_text == "could not store the patient identity"  # no internals leak


def test_sink_xds_error_text_is_passed_on(handler: PatientFeedHandler, sink: MemorySink) -> None:
    sink.fail = errors.XDSUnknownPatientId("subsumed id OLD is not known")
    ack = answer(handler, adt("A40", f"NEW^^^&{DOMAIN}&ISO", f"OLD^^^&{DOMAIN}&ISO"))
    assert (ack.code, ack.error_code) == ("AE", "207")
    assert ack.error_text == "XDSUnknownPatientId: subsumed id OLD is not known"


# -- files ----------------------------------------------------------------------------------------


def test_read_messages_normalises_line_ends_and_splits() -> None:
    data = (
        b"junk before\r\n"
        b"MSH|^~\\&|A|||||x||ADT^A01|1|P|2.3.1\r\nPID|1||X\r\n\r\n"
        b"MSH|^~\\&|A|||||x||ADT^A04|2|P|2.3.1\nPID|1||Y\n"
        b"\x0bMSH|^~\\&|A|||||x||ADT^A08|3|P|2.3.1\rPID|1||Z\r\x1c\r"
    )
    assert read_messages(data) == [
        b"MSH|^~\\&|A|||||x||ADT^A01|1|P|2.3.1\rPID|1||X\r",
        b"MSH|^~\\&|A|||||x||ADT^A04|2|P|2.3.1\rPID|1||Y\r",
        b"MSH|^~\\&|A|||||x||ADT^A08|3|P|2.3.1\rPID|1||Z\r",
    ]


def test_read_messages_joins_wrapped_lines() -> None:
    data = b"MSH|^~\\&|A|||||x||ADT^A01|1|P|2.3.1\nPID|1||X||DOE||2001\n1212|M\nPV1||I\n"
    assert read_messages(data) == [
        b"MSH|^~\\&|A|||||x||ADT^A01|1|P|2.3.1\rPID|1||X||DOE||20011212|M\rPV1||I\r"
    ]


def test_read_messages_without_msh() -> None:
    assert read_messages(b"PID|1||X\r\n") == []
    assert read_messages(b"") == []
