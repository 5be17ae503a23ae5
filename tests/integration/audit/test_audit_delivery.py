"""Audit records delivered for real: rsyslog over TLS, UDP datagrams, a crash, a dead receiver.

The records are produced through the trail's public paths (the SOAP observer for the answering
side, ``record_client_call`` for the calling side, the DICOM/HL7 helpers), exactly as the wired
gateway produces them, and every received message is checked against the project's schema.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

from lxml import etree

from gateway.audit import events, syslog
from gateway.audit.messages import AuditSource, load_schema
from gateway.audit.model import RESPONDER, StudyRef
from gateway.audit.queue import AuditQueue
from gateway.audit.trail import AuditTrail
from gateway.audit.transport import TlsSyslog, UdpSyslog
from gateway.security.certs import DomainFiles
from gateway.security.tls import client_context
from tests.integration.audit.rsyslog_receiver import RsyslogReceiver

SCHEMA = load_schema()
PATIENT = "PID-7^^^&1.3.6.1.4.1.21367.13.20.1000&ISO"
ROOT = Path(__file__).resolve().parents[3]


def wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def _trail(tmp_path: Path, destination, **kwargs) -> AuditTrail:
    options = {"settle_seconds": 0.2, "retry_min_seconds": 0.1, "retry_max_seconds": 0.5}
    options.update(kwargs)
    return AuditTrail(
        queue_dir=tmp_path / "audit-queue",
        destinations=[destination],
        source=AuditSource(source_id="xdsi-gateway@hospital-a", enterprise_site_id="Demo"),
        **options,
    )


def _tls(domain: DomainFiles, port: int, *, with_certificate: bool = True) -> TlsSyslog:
    node = domain.nodes["hospital-a"]
    if with_certificate:
        context = client_context(domain.ca_certificate, node.certificate, node.private_key)
    else:
        context = client_context(domain.ca_certificate)
    return TlsSyslog("127.0.0.1", port, context, connect_timeout=2.0, send_timeout=5.0)


def _completed(transaction: str, path: str, facts: dict) -> SimpleNamespace:
    return SimpleNamespace(
        path=path,
        transaction=transaction,
        outcome="Success",
        remote_addr="127.0.0.1",
        peer_subject="CN=hospital-a,O=XDS-I Demo Affinity Domain",
        error_codes=(),
        audit=facts,
    )


def _round_trip(trail: AuditTrail) -> int:
    """Record what a publish-query-retrieve round trip audits on both sides; return the count."""
    base = "https://localhost:8443"
    submission = {"patient_ids": [PATIENT], "submission_set_unique_id": "1.2.3.99"}
    query = {
        "patient_ids": [PATIENT],
        "query_id": "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d",
        "query_request": b"<query:AdhocQueryRequest/>",
    }
    retrieve = {
        "patient_ids": [PATIENT],
        "document_unique_ids": ["1.2.3.99.1"],
        "repository_unique_id": "1.3.6.1.4.1.21367.13.40.100",
    }
    imaging = {
        "patient_ids": [PATIENT],
        "studies": [{"study_uid": "1.2.840.5", "sop_instance_uids": ["1.2.840.5.1.1"]}],
        "repository_unique_id": "1.3.6.1.4.1.21367.13.80.100",
    }
    observe = trail.soap_observer(base)
    # Publish: imaging source -> repository (RAD-68 = ITI-41), repository -> registry (ITI-42).
    trail.record_client_call(
        "RAD-68", endpoint=f"{base}/xds/repository", outcome="Success", facts=submission
    )
    observe(_completed("ITI-41", "/xds/repository", submission))
    trail.record_client_call(
        "ITI-42", endpoint=f"{base}/xds/registry", outcome="Success", facts=submission
    )
    observe(_completed("ITI-42", "/xds/registry", submission))
    # Query, retrieve the manifest, retrieve the images.
    trail.record_client_call(
        "ITI-18", endpoint=f"{base}/xds/registry", outcome="Success", facts=query
    )
    observe(_completed("ITI-18", "/xds/registry", query))
    trail.record_client_call(
        "ITI-43", endpoint=f"{base}/xds/repository", outcome="Success", facts=retrieve
    )
    observe(_completed("ITI-43", "/xds/repository", retrieve))
    trail.record_client_call(
        "RAD-69", endpoint=f"{base}/xdsi/source", outcome="Success", facts=imaging
    )
    observe(_completed("RAD-69", "/xdsi/source", imaging))
    # The modality's C-STORE into the imaging source.
    trail.record(
        events.dicom_transfer(
            side=RESPONDER,
            calling_ae="MODALITY",
            called_ae="XDSI_SOURCE",
            calling_host="127.0.0.1",
            called_host="127.0.0.1",
            patient_id=PATIENT,
            studies=[StudyRef(study_uid="1.2.840.5", instances=((None, "1.2.840.5.1.1"),))],
        )
    )
    return 11


def _summary(xml: bytes) -> tuple[str, str, str]:
    message = etree.fromstring(xml)
    assert SCHEMA.validate(message), SCHEMA.error_log
    ident = message.find("EventIdentification")
    type_code = ident.find("EventTypeCode")
    return (
        ident.find("EventID").get("csd-code"),
        type_code.get("csd-code") if type_code is not None else "-",
        ident.get("EventActionCode"),
    )


EXPECTED_ROUND_TRIP = sorted(
    [
        ("110106", "RAD-68", "R"),  # imaging source exports the manifest
        ("110107", "ITI-41", "C"),  # repository imports it
        ("110106", "ITI-42", "R"),  # repository exports the metadata
        ("110107", "ITI-42", "C"),  # registry imports it
        ("110112", "ITI-18", "E"),  # consumer queries
        ("110112", "ITI-18", "E"),  # registry answers
        ("110107", "ITI-43", "C"),  # consumer imports the manifest
        ("110106", "ITI-43", "R"),  # repository exports it
        ("110104", "RAD-69", "C"),  # consumer receives the instances
        ("110104", "RAD-69", "R"),  # imaging source sends them
        ("110104", "-", "C"),  # imaging source received the C-STORE
    ]
)


def test_round_trip_reaches_rsyslog_over_tls(
    tmp_path: Path, domain: DomainFiles, receiver: RsyslogReceiver
) -> None:
    receiver.start()
    trail = _trail(tmp_path, _tls(domain, receiver.port))
    trail.start()
    count = _round_trip(trail)
    assert wait_until(lambda: trail.pending() == 0 and len(receiver.records()) >= count)
    trail.stop()
    received = receiver.wait_for(count)
    assert len(received) == count  # settled: nothing sent twice on a healthy connection
    for pri, msgid, app, _xml in received:
        assert (pri, msgid, app) == ("85", "IHE+RFC-3881", "xdsi-gateway")
    assert sorted(_summary(xml) for *_h, xml in received) == EXPECTED_ROUND_TRIP


def test_receiver_down_then_up_loses_nothing(
    tmp_path: Path, domain: DomainFiles, receiver: RsyslogReceiver
) -> None:
    trail = _trail(tmp_path, _tls(domain, receiver.port))
    trail.start()
    observe = trail.soap_observer("https://localhost:8443")
    started = time.perf_counter()
    for n in range(200):  # 200 ITI-18 transactions answered while the repository is down
        observe(
            _completed(
                "ITI-18", "/xds/registry", {"patient_ids": [f"P{n}^^^&1.2&ISO"], "query_id": "q"}
            )
        )
    elapsed = time.perf_counter() - started
    assert elapsed < 5.0, f"recording 200 events took {elapsed:.2f}s"  # generous; no I/O inside
    assert wait_until(lambda: trail.pending() == 200 and trail.senders[0].failures >= 1)
    assert trail.senders[0].delivered == 0
    receiver.start()  # the Audit Record Repository comes back
    assert wait_until(lambda: trail.pending() == 0, timeout=60)
    trail.stop()
    received = receiver.wait_for(200)
    patients = set()
    for *_head, xml in received:
        _summary(xml)
        patients.add(
            etree.fromstring(xml).find("ParticipantObjectIdentification").get("ParticipantObjectID")
        )
    assert patients == {f"P{n}^^^&1.2&ISO" for n in range(200)}  # none lost
    assert len(received) >= 200  # at least once; a reconnect may repeat a few


def test_receiver_restart_in_the_middle(
    tmp_path: Path, domain: DomainFiles, receiver: RsyslogReceiver
) -> None:
    receiver.start()
    trail = _trail(tmp_path, _tls(domain, receiver.port))
    trail.start()
    for n in range(20):
        trail.record(events.application_activity(start=True, launcher=f"user{n}"))
    assert wait_until(lambda: trail.pending() == 0)
    receiver.stop()
    for n in range(20, 40):
        trail.record(events.application_activity(start=True, launcher=f"user{n}"))
    receiver.start()
    assert wait_until(lambda: trail.pending() == 0, timeout=60)
    trail.stop()
    launchers = set()
    for *_head, xml in receiver.wait_for(40):
        message = etree.fromstring(xml)
        for participant in message.findall("ActiveParticipant"):
            if participant.find("RoleIDCode").get("csd-code") == "110151":
                launchers.add(participant.get("UserID"))
    assert launchers == {f"user{n}" for n in range(40)}


def test_repository_refuses_a_sender_without_certificate(
    tmp_path: Path, domain: DomainFiles, receiver: RsyslogReceiver
) -> None:
    receiver.start()
    trail = _trail(tmp_path, _tls(domain, receiver.port, with_certificate=False))
    trail.start()
    trail.record(events.application_activity(start=True))
    assert wait_until(lambda: trail.senders[0].failures >= 2)
    assert trail.pending() == 1  # kept for when the configuration is fixed
    trail.stop()
    assert receiver.records() == []


def test_udp_one_message_per_datagram(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind(("127.0.0.1", 0))
        sink.settimeout(10)
        trail = _trail(tmp_path, UdpSyslog("127.0.0.1", sink.getsockname()[1]))
        trail.start()
        count = _round_trip(trail)
        datagrams = [sink.recv(65535) for _ in range(count)]
        assert wait_until(lambda: trail.pending() == 0)
        trail.stop()
    summaries = []
    for datagram in datagrams:
        head, xml = syslog.split_message(datagram)
        assert head.startswith("<85>1 ") and " IHE+RFC-3881 - " in head + " "
        summaries.append(_summary(xml))
    assert sorted(summaries) == EXPECTED_ROUND_TRIP


def test_hanging_receiver_does_not_slow_transactions(tmp_path: Path, domain: DomainFiles) -> None:
    # Accepts TCP connections and never answers the TLS handshake.
    with socket.socket() as tarpit:
        tarpit.bind(("127.0.0.1", 0))
        tarpit.listen(16)
        port = tarpit.getsockname()[1]
        stop = threading.Event()
        held: list[socket.socket] = []

        def accept() -> None:
            tarpit.settimeout(0.2)
            while not stop.is_set():
                try:
                    held.append(tarpit.accept()[0])
                except TimeoutError:
                    continue

        acceptor = threading.Thread(target=accept, daemon=True)
        acceptor.start()
        trail = _trail(tmp_path, _tls(domain, port))
        trail.start()
        started = time.perf_counter()
        for _ in range(200):
            trail.record(events.application_activity(start=True))
        elapsed = time.perf_counter() - started
        assert elapsed < 5.0, f"recording took {elapsed:.2f}s behind a hanging receiver"
        assert wait_until(lambda: trail.pending() == 200)
        trail.stop()
        stop.set()
        acceptor.join(5)
        for connection in held:
            connection.close()


CHILD = textwrap.dedent(
    """
    import sys, time
    from gateway.audit import events
    from gateway.audit.messages import AuditSource
    from gateway.audit.trail import AuditTrail
    from gateway.audit.transport import UdpSyslog

    class Down(UdpSyslog):
        def write(self, messages):
            raise ConnectionRefusedError("down")

    trail = AuditTrail(queue_dir=sys.argv[1], destinations=[Down("127.0.0.1", 9)],
                       source=AuditSource(source_id="child"), retry_min_seconds=0.05)
    trail.start()
    for n in range(int(sys.argv[2])):
        trail.record(events.application_activity(start=True, launcher=f"u{n}"))
    while trail.pending() < int(sys.argv[2]):
        time.sleep(0.01)
    print("stored", flush=True)
    time.sleep(60)
    """
)


def test_queue_survives_a_crash(tmp_path: Path) -> None:
    queue_dir = tmp_path / "crash-queue"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(queue_dir), "50"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == b"stored"
        child.send_signal(signal.SIGKILL)  # no clean shutdown, no close
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
        if child.stdout is not None:
            child.stdout.close()
    queue = AuditQueue(queue_dir, ["udp://127.0.0.1:9"])
    try:
        rows = queue.peek("udp://127.0.0.1:9", limit=1000)
    finally:
        queue.close()
    assert len(rows) == 50
    launchers = {
        etree.fromstring(syslog.split_message(m)[1]).findall("ActiveParticipant")[1].get("UserID")
        for _i, m in rows
    }
    assert launchers == {f"u{n}" for n in range(50)}


def test_records_stored_before_a_restart_are_delivered_after_it(
    tmp_path: Path, domain: DomainFiles, receiver: RsyslogReceiver
) -> None:
    port = receiver.port
    first = _trail(tmp_path, _tls(domain, port))  # receiver not running yet
    first.start()
    for n in range(10):
        first.record(events.application_activity(start=True, launcher=f"before{n}"))
    assert wait_until(lambda: first.pending() == 10)
    first.stop()  # the gateway stops with records still waiting
    receiver.start()
    second = _trail(tmp_path, _tls(domain, port))
    second.start()
    assert wait_until(lambda: second.pending() == 0)
    second.stop()
    assert len(receiver.wait_for(10)) >= 10
