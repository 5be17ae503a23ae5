"""Scripted raw MLLP peers (parrot style): odd framing, rude peers, and real senders' files.

Each test drives a plain socket byte by byte against a real MLLPServer running the ITI-8 handler
and checks that every complete frame gets exactly one answer, in order, and nothing else does.

Standard: HL7 v2.5 Appendix C §C.4 (MLLP block format), ITI TF-2 §3.8.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from gateway.hl7.ack import AckSummary, parse_ack
from gateway.hl7.adt import Demographics
from gateway.hl7.feed import PatientFeedHandler, read_messages
from gateway.hl7.mllp import FrameReader, MLLPServer, frame

DOMAIN = "1.3.6.1.4.1.21367.2005.1.1"  # HIMSS2005, the domain of several IPF samples
SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "conformance" / "samples" / "hl7v2-iti8"
TIMEOUT = 10.0


@dataclass
class MemorySink:
    registered: list[str] = field(default_factory=list)
    merged: list[tuple[str, str]] = field(default_factory=list)

    def register(self, pid: str, demographics: Demographics, *, other_ids: Sequence[str]) -> None:
        self.registered.append(pid)

    def merge(self, surviving: str, subsumed: str) -> None:
        self.merged.append((surviving, subsumed))


class Parrot:
    """A scripted peer: send exactly these bytes, then expect exactly these answers."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.sock = socket.create_connection(address, timeout=TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = FrameReader()
        self.pending: list[bytes] = []

    def send(self, *chunks: bytes, pause: float = 0.0) -> None:
        for chunk in chunks:
            self.sock.sendall(chunk)
            if pause:
                time.sleep(pause)  # pacing only: separate TCP segments

    def answers(self, count: int) -> list[AckSummary]:
        while len(self.pending) < count:
            data = self.sock.recv(65536)
            assert data, f"server closed after {len(self.pending)} of {count} answers"
            self.pending += [f.payload for f in self.reader.feed(data)]
        got, self.pending = self.pending[:count], self.pending[count:]
        return [parse_ack(raw) for raw in got]

    def no_more_answers(self, wait: float = 0.3) -> bool:
        """True when nothing (not even a byte) arrives within ``wait`` seconds."""
        self.sock.settimeout(wait)
        try:
            data = self.sock.recv(1)
        except TimeoutError:
            return not self.pending
        finally:
            self.sock.settimeout(TIMEOUT)
        return not data and not self.pending

    def close(self) -> None:
        self.sock.close()


def adt(control_id: str, pid: str = "P1") -> bytes:
    return (
        f"MSH|^~\\&|ADT|HOSP|XDS|REG|20240101120000||ADT^A04^ADT_A01|{control_id}|P|2.3.1\r"
        f"EVN|A04\rPID|1||{pid}^^^&{DOMAIN}&ISO||ROE^RICHARD\r"
    ).encode()


@pytest.fixture
def sink() -> MemorySink:
    return MemorySink()


@pytest.fixture
def server(sink: MemorySink) -> Iterator[MLLPServer]:
    with MLLPServer(PatientFeedHandler(sink, DOMAIN), port=0, idle_timeout=10) as mllp:
        yield mllp


@pytest.fixture
def parrot(server: MLLPServer) -> Iterator[Parrot]:
    assert server.address is not None
    peer = Parrot(server.address)
    yield peer
    peer.close()


def test_junk_around_frames_is_ignored(parrot: Parrot, sink: MemorySink) -> None:
    parrot.send(b"GET / HTTP/1.0\r\n\r\n", frame(adt("J1")), b"\r\n\r\n", b"\x00\xff")
    parrot.send(frame(adt("J2")) + b"trailing")
    assert [(a.code, a.control_id) for a in parrot.answers(2)] == [("AA", "J1"), ("AA", "J2")]
    assert parrot.no_more_answers()
    assert len(sink.registered) == 2


def test_end_block_without_carriage_return(parrot: Parrot) -> None:
    parrot.send(b"\x0b" + adt("NOCR") + b"\x1c")
    assert parrot.answers(1)[0].control_id == "NOCR"
    parrot.send(b"\x0d" + frame(adt("NEXT")))  # the late CR is swallowed, not answered
    assert parrot.answers(1)[0].control_id == "NEXT"
    assert parrot.no_more_answers()


def test_truncated_frame_then_new_frame(parrot: Parrot, sink: MemorySink) -> None:
    truncated = frame(adt("LOST"))[:40]
    parrot.send(truncated, pause=0.02)
    parrot.send(frame(adt("KEPT", pid="K")))
    (ack,) = parrot.answers(1)
    assert (ack.code, ack.control_id) == ("AA", "KEPT")
    assert parrot.no_more_answers()
    assert sink.registered == [f"K^^^&{DOMAIN}&ISO"]


def test_byte_by_byte(parrot: Parrot) -> None:
    data = frame(adt("TRICKLE"))
    parrot.send(*[data[i : i + 1] for i in range(len(data))])
    assert parrot.answers(1)[0].control_id == "TRICKLE"


def test_pipelined_burst_answered_in_order(parrot: Parrot) -> None:
    burst = b"".join(frame(adt(f"B{n}", pid=f"B{n}")) for n in range(50))
    parrot.send(burst[:1000], burst[1000:])
    assert [a.control_id for a in parrot.answers(50)] == [f"B{n}" for n in range(50)]


def test_rude_peers_do_not_hurt_the_server(server: MLLPServer, sink: MemorySink) -> None:
    assert server.address is not None
    mid_frame = Parrot(server.address)
    mid_frame.send(frame(adt("HALF"))[:25])
    mid_frame.close()  # gone in the middle of a frame
    no_reader = Parrot(server.address)
    no_reader.send(frame(adt("UNREAD", pid="U")))
    no_reader.close()  # never reads its answer
    polite = Parrot(server.address)
    polite.send(frame(adt("POLITE", pid="OK")))
    assert polite.answers(1)[0].code == "AA"
    polite.close()
    assert f"OK^^^&{DOMAIN}&ISO" in sink.registered


# -- files of real senders (../shared/conformance/samples/hl7v2-iti8, see MANIFEST.md) ----------

needs_samples = pytest.mark.skipif(not SAMPLES.is_dir(), reason="../shared/conformance is absent")

# (file, MSA-1, ERR code) for a registry whose affinity domain is HIMSS2005.
EXPECTED = [
    ("ipf-PIX_FEED_REG_Maximal_A01.hl7", "AA", None),
    ("ipf-PIX_FEED_REV_Maximal_A08.hl7", "AA", None),
    ("ipf-PIX_FEED_MERGE_Maximal_A40.hl7", "AE", "204"),  # ids of other domains only
    ("ipf-camel-iti-8-A40.hl7", "AA", None),
    ("ipf-gazelle-iti-8-A40.hl7", "AA", None),
    ("ipf-gazelle-iti-8-feed-A01.hl7", "AA", None),
    ("ipf-mllp-iti8-A01-incomplete-noPID.hl7", "AE", "100"),
    ("ipf-mllp-iti8-A01.hl7", "AE", "204"),  # PID-3 without assigning authority
    ("ipf-mllp-iti8-A40.hl7", "AE", "204"),
    ("ipf-pixsource-A01.hl7", "AE", "204"),
    ("ipf-pixsource-A04.hl7", "AE", "204"),
    ("ipf-pixsource-A08.hl7", "AE", "204"),
    ("ipf-pixsource-A40.hl7", "AE", "204"),
    ("nist-A01Sender-template-as-sent.hl7", "AE", "204"),
    ("nist-xdstools2-adt-A01-2.hl7", "AE", "204"),
    ("nist-xdstools2-adt-A01-template.hl7", "AE", "204"),
]


@needs_samples
def test_sample_files_each_get_one_answer(parrot: Parrot, sink: MemorySink) -> None:
    sent: list[tuple[str, str, str | None, str]] = []
    for name, code, error in EXPECTED:
        (message,) = read_messages((SAMPLES / name).read_bytes())
        control_id = message.split(b"\r", 1)[0].split(b"|")[9].decode()
        parrot.send(frame(message))
        sent.append((name, code, error, control_id))
    answers = parrot.answers(len(sent))
    got = [(a.code, a.error_code, a.control_id) for a in answers]
    assert got == [(code, error, control_id) for _, code, error, control_id in sent]
    assert parrot.no_more_answers()
    assert f"PIX10515W3^^^&{DOMAIN}&ISO" in sink.registered
    assert (f"PDQ113XX35^^^&{DOMAIN}&ISO", f"PDQ113XX03^^^&{DOMAIN}&ISO") in sink.merged


@needs_samples
def test_framed_capture_sent_as_stored(sink: MemorySink) -> None:
    # The NIST capture holds its own MLLP bytes and CRLF line ends; sent untouched it must still
    # be read (segments split on CR LF, the LF after the end block ignored).
    nist_domain = "2.16.840.1.113883.3.72.5.9.1"
    with MLLPServer(PatientFeedHandler(sink, nist_domain), port=0) as mllp:
        assert mllp.address is not None
        peer = Parrot(mllp.address)
        peer.send((SAMPLES / "nist-V2FeedMessageWithWrapper-mllp-framed.hl7").read_bytes())
        (ack,) = peer.answers(1)
        assert peer.no_more_answers()
        peer.close()
    assert (ack.code, ack.control_id) == ("AA", "NIST-101129112036798")
    assert sink.registered == [f"bill128^^^&{nist_domain}&ISO"]
