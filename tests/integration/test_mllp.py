"""A real MLLPServer on 127.0.0.1:0 with the ITI-8 handler and an in-memory sink.

Standard: HL7 v2.5 Appendix C §C.4 (MLLP), ITI TF-2 §3.8 (Patient Identity Feed).
"""

from __future__ import annotations

import datetime
import ipaddress
import itertools
import socket
import ssl
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from io import StringIO
from pathlib import Path

import pytest

from gateway.hl7.ack import AckSummary, parse_ack
from gateway.hl7.adt import Demographics
from gateway.hl7.feed import PatientFeedHandler, run_feed
from gateway.hl7.mllp import (
    FrameReader,
    MLLPClient,
    MLLPError,
    MLLPServer,
    frame,
    send_messages,
)

DOMAIN = "1.3.6.1.4.1.21367.13.20.1000"
TIMEOUT = 10.0


@dataclass
class MemorySink:
    registered: list[str] = field(default_factory=list)
    merged: list[tuple[str, str]] = field(default_factory=list)

    def register(self, pid: str, demographics: Demographics, *, other_ids: Sequence[str]) -> None:
        self.registered.append(pid)

    def merge(self, surviving: str, subsumed: str) -> None:
        self.merged.append((surviving, subsumed))


def adt(control_id: str, pid: str = "P1", *, trigger: str = "A01", domain: str = DOMAIN) -> bytes:
    return (
        f"MSH|^~\\&|ADT|HOSP|XDS|REG|20240101120000||ADT^{trigger}^ADT_A01|{control_id}|P|2.3.1\r"
        f"EVN|{trigger}|20240101120000\r"
        f"PID|1||{pid}^^^&{domain}&ISO||DOE^JOHN||19800101|M\r"
    ).encode()


@pytest.fixture
def sink() -> MemorySink:
    return MemorySink()


@pytest.fixture
def server(sink: MemorySink) -> Iterator[MLLPServer]:
    mllp = MLLPServer(
        PatientFeedHandler(sink, DOMAIN), port=0, max_message_bytes=16 * 1024, idle_timeout=5
    )
    mllp.start()
    try:
        yield mllp
    finally:
        mllp.stop(timeout=5)


def address(server: MLLPServer) -> tuple[str, int]:
    assert server.address is not None
    return server.address


def connect(server: MLLPServer) -> socket.socket:
    sock = socket.create_connection(address(server), timeout=TIMEOUT)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def receive(sock: socket.socket, count: int) -> list[AckSummary]:
    """Read ``count`` answer frames (failing on EOF or timeout)."""
    reader = FrameReader()
    got: list[bytes] = []
    while len(got) < count:
        data = sock.recv(65536)
        assert data, f"connection closed after {len(got)} of {count} answers"
        got += [f.payload for f in reader.feed(data)]
    assert len(got) == count
    return [parse_ack(raw) for raw in got]


def test_start_returns_bound_ephemeral_port(server: MLLPServer) -> None:
    host, port = address(server)
    assert host == "127.0.0.1" and port > 0


def test_thousand_messages_on_one_connection(server: MLLPServer, sink: MemorySink) -> None:
    messages: list[bytes] = []
    expected: list[tuple[str, str]] = []
    for n in range(1000):
        if n % 100 == 7:
            messages.append(b"this is no HL7 message %d" % n)
            expected.append(("AR", ""))
        elif n % 100 == 42:
            messages.append(adt(f"M{n}", domain="1.2.3.4"))  # not the affinity domain
            expected.append(("AE", f"M{n}"))
        else:
            messages.append(adt(f"M{n}", pid=f"P{n}"))
            expected.append(("AA", f"M{n}"))
    started = time.perf_counter()
    answers = send_messages(*address(server), messages, timeout=TIMEOUT)
    elapsed = time.perf_counter() - started
    assert len(answers) == 1000
    assert [(a.code, a.control_id) for a in map(parse_ack, answers)] == expected
    assert len(sink.registered) == 980
    assert sink.registered[:2] == [f"P0^^^&{DOMAIN}&ISO", f"P1^^^&{DOMAIN}&ISO"]
    assert elapsed < 30, f"1000 messages took {elapsed:.1f}s"


def test_message_split_across_tcp_sends(server: MLLPServer, sink: MemorySink) -> None:
    data = frame(adt("SPLIT", pid="S1"))
    cuts = [0, 1, 20, 77, len(data) - 2, len(data) - 1, len(data)]
    with connect(server) as sock:
        for start, end in itertools.pairwise(cuts):
            sock.sendall(data[start:end])
            time.sleep(0.02)  # pacing, so that each piece leaves as its own segment (TCP_NODELAY)
        (ack,) = receive(sock, 1)
    assert (ack.code, ack.control_id) == ("AA", "SPLIT")
    assert sink.registered == [f"S1^^^&{DOMAIN}&ISO"]


def test_two_messages_in_one_send(server: MLLPServer, sink: MemorySink) -> None:
    with connect(server) as sock:
        sock.sendall(frame(adt("FIRST", pid="F1")) + frame(adt("SECOND", pid="F2")))
        acks = receive(sock, 2)
        sock.sendall(frame(adt("THIRD", pid="F3")))  # and the connection stays usable
        acks += receive(sock, 1)
    assert [(a.code, a.control_id) for a in acks] == [
        ("AA", "FIRST"),
        ("AA", "SECOND"),
        ("AA", "THIRD"),
    ]
    assert len(sink.registered) == 3


def test_oversize_message_refused_connection_kept(server: MLLPServer, sink: MemorySink) -> None:
    big = adt("BIG") + b"NTE|1||" + b"x" * 100_000 + b"\r"
    with MLLPClient(*address(server), timeout=TIMEOUT) as client:
        refused = parse_ack(client.send(big))
        accepted = parse_ack(client.send(adt("SMALL", pid="SM")))
    assert (refused.code, refused.control_id, refused.error_code) == ("AR", "BIG", "207")
    assert (
        refused.error_text is not None and "exceeds the limit of 16384 bytes" in refused.error_text
    )
    assert (accepted.code, accepted.control_id) == ("AA", "SMALL")
    assert sink.registered == [f"SM^^^&{DOMAIN}&ISO"]


def test_idle_connection_is_closed(sink: MemorySink) -> None:
    with MLLPServer(PatientFeedHandler(sink, DOMAIN), port=0, idle_timeout=0.3) as mllp:
        with connect(mllp) as idle:
            started = time.monotonic()
            assert idle.recv(1) == b""  # closed by the server, not by our timeout
            assert time.monotonic() - started < TIMEOUT / 2
        with connect(mllp) as partial:
            partial.sendall(frame(adt("HALF"))[:30])
            assert partial.recv(1024) == b""  # a partial frame is dropped, not answered
        with connect(mllp) as busy:  # traffic resets the idle timer
            for n in range(4):
                busy.sendall(frame(adt(f"K{n}")))
                assert receive(busy, 1)[0].code == "AA"
                time.sleep(0.15)
    assert len(sink.registered) == 4


def test_stop_with_idle_client_connected(sink: MemorySink) -> None:
    mllp = MLLPServer(PatientFeedHandler(sink, DOMAIN), port=0, idle_timeout=60)
    mllp.start()
    with connect(mllp) as sock:
        sock.sendall(frame(adt("BEFORE")))
        assert receive(sock, 1)[0].code == "AA"
        started = time.monotonic()
        mllp.stop(timeout=10)
        assert time.monotonic() - started < 5
        assert sock.recv(1) == b""
    with pytest.raises(OSError):
        socket.create_connection(address(mllp), timeout=1).close()


def test_stop_finishes_message_in_flight() -> None:
    entered, release = threading.Event(), threading.Event()

    def slow_handler(raw: bytes) -> bytes:
        entered.set()
        assert release.wait(TIMEOUT)
        return PatientFeedHandler(MemorySink(), DOMAIN)(raw)

    mllp = MLLPServer(slow_handler, port=0)
    mllp.start()
    with connect(mllp) as sock:
        sock.sendall(frame(adt("INFLIGHT")))
        assert entered.wait(TIMEOUT)
        stopper = threading.Thread(target=mllp.stop, kwargs={"timeout": 10})
        stopper.start()
        # stop() must wait for the handler; give it a moment to prove it does not return early
        stopper.join(0.2)
        assert stopper.is_alive()
        release.set()
        (ack,) = receive(sock, 1)
        assert (ack.code, ack.control_id) == ("AA", "INFLIGHT")
        assert sock.recv(1) == b""
        stopper.join(TIMEOUT)
        assert not stopper.is_alive()


def test_stop_gives_up_on_a_stuck_handler_after_timeout() -> None:
    entered, release = threading.Event(), threading.Event()

    def stuck_handler(raw: bytes) -> bytes:
        entered.set()
        release.wait(TIMEOUT)
        return raw

    mllp = MLLPServer(stuck_handler, port=0)
    mllp.start()
    try:
        with connect(mllp) as sock:
            sock.sendall(frame(adt("STUCK")))
            assert entered.wait(TIMEOUT)
            started = time.monotonic()
            mllp.stop(timeout=0.3)
            assert time.monotonic() - started < 5
            assert sock.recv(1) == b""  # closed without an answer: the sender will resend
    finally:
        release.set()


def test_failing_handler_still_answers() -> None:
    def broken(raw: bytes) -> bytes:
        raise RuntimeError("boom")

    with MLLPServer(broken, port=0) as mllp:
        answers = send_messages(*address(mllp), [adt("X1"), adt("X2")], timeout=TIMEOUT)
    assert [(a.code, a.control_id, a.error_code) for a in map(parse_ack, answers)] == [
        ("AE", "X1", "207"),
        ("AE", "X2", "207"),
    ]


def test_restart_after_stop(sink: MemorySink) -> None:
    mllp = MLLPServer(PatientFeedHandler(sink, DOMAIN), port=0)
    for _ in range(2):
        mllp.start()
        assert parse_ack(send_messages(*address(mllp), [adt("R")], timeout=TIMEOUT)[0]).code == "AA"
        mllp.stop()
    assert len(sink.registered) == 2


def test_port_in_use_raises_on_start(server: MLLPServer) -> None:
    other = MLLPServer(lambda raw: raw, port=address(server)[1])
    with pytest.raises(OSError):
        other.start()
    other.stop()  # harmless after a failed start


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def test_tls(sink: MemorySink, tmp_path: Path) -> None:
    cert_file, key_file = _self_signed(tmp_path)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert_file, key_file)
    client_context = ssl.create_default_context(cafile=str(cert_file))
    handler = PatientFeedHandler(sink, DOMAIN)
    with MLLPServer(handler, port=0, ssl_context=server_context) as mllp:
        host, port = address(mllp)
        answers = send_messages(
            host, port, [adt("T1"), adt("T2")], TIMEOUT, ssl_context=client_context
        )
        with pytest.raises(MLLPError):  # a plain-TCP peer gets no answer, and no harm is done
            send_messages(host, port, [adt("PLAIN")], 2.0)
    assert [parse_ack(a).control_id for a in answers] == ["T1", "T2"]
    assert len(sink.registered) == 2


# -- the `xdsi-gateway feed` command logic ---------------------------------------------------------


def test_run_feed_all_accepted(server: MLLPServer, sink: MemorySink, tmp_path: Path) -> None:
    crlf = tmp_path / "two.hl7"
    crlf.write_bytes((adt("F1", pid="A") + adt("F2", pid="B")).replace(b"\r", b"\r\n"))
    lf = tmp_path / "one.hl7"
    lf.write_bytes(adt("F3", pid="C", trigger="A08").replace(b"\r", b"\n"))
    out = StringIO()
    assert run_feed([crlf, lf], *address(server), TIMEOUT, out) == 0
    assert out.getvalue().splitlines() == [
        f"{crlf}#1 AA F1",
        f"{crlf}#2 AA F2",
        f"{lf}#1 AA F3",
    ]
    assert len(sink.registered) == 3


def test_run_feed_reports_errors(server: MLLPServer, tmp_path: Path) -> None:
    good = tmp_path / "good.hl7"
    good.write_bytes(adt("G1"))
    foreign = tmp_path / "foreign.hl7"
    foreign.write_bytes(adt("B1", domain="9.9.9"))
    empty = tmp_path / "empty.hl7"
    empty.write_bytes(b"nothing here\n")
    out = StringIO()
    assert run_feed([good, foreign, empty], *address(server), TIMEOUT, out) == 1
    lines = out.getvalue().splitlines()
    assert f"{empty}: no HL7 message (no MSH segment) found" in lines
    assert f"{good}#1 AA G1" in lines
    (refused,) = [line for line in lines if line.startswith(f"{foreign}#1 ")]
    assert refused.startswith(f"{foreign}#1 AE B1 ERR 204: PID-3 holds no identifier")


def test_run_feed_without_listener(tmp_path: Path) -> None:
    with socket.socket() as placeholder:  # a port that nobody listens on
        placeholder.bind(("127.0.0.1", 0))
        port = placeholder.getsockname()[1]
    message = tmp_path / "m.hl7"
    message.write_bytes(adt("N1"))
    out = StringIO()
    assert run_feed([message], "127.0.0.1", port, 2.0, out) == 1
    assert out.getvalue().startswith(f"MLLP 127.0.0.1:{port}: connection refused: is an ITI-8")
