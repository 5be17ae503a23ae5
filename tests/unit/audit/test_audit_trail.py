"""The audit trail with in-memory destinations: mapping, never failing, retry, at-least-once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import SimpleNamespace

import pytest
from lxml import etree

from gateway.audit import events, syslog
from gateway.audit.messages import ANONYMOUS, AuditSource
from gateway.audit.model import AuditEvent
from gateway.audit.trail import AuditTrail, NullAuditTrail


class MemoryDestination:
    """Collects written messages; can be told to fail, or to lose its 'connection'."""

    def __init__(self, name: str = "memory", *, settles: bool = False) -> None:
        self.name = name
        self.settles = settles
        self.messages: list[bytes] = []
        self.failing = threading.Event()
        self.connection_alive = True
        self.writes = 0

    def write(self, messages: Sequence[bytes]) -> None:
        if self.failing.is_set():
            raise ConnectionRefusedError("receiver down")
        self.writes += 1
        self.messages.extend(messages)

    def settled(self) -> bool:
        return self.connection_alive

    def close(self) -> None:
        self.connection_alive = True


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def _xml(message: bytes) -> etree._Element:
    return etree.fromstring(syslog.split_message(message)[1])


def _trail(tmp_path: Path, *destinations: MemoryDestination, **kwargs) -> AuditTrail:
    options = {"settle_seconds": 0.05, "retry_min_seconds": 0.02, "retry_max_seconds": 0.1}
    options.update(kwargs)
    return AuditTrail(
        queue_dir=tmp_path / "audit",
        destinations=list(destinations),
        source=AuditSource(source_id="gw@test"),
        hostname="gw.test",
        **options,
    )


def _completed(**overrides) -> SimpleNamespace:
    values = {
        "path": "/xds/registry",
        "transaction": "ITI-42",
        "outcome": "Success",
        "remote_addr": "10.0.0.5",
        "peer_subject": "CN=region,O=Demo",
        "error_codes": (),
        "audit": {
            "patient_ids": ["P^^^&1.2&ISO"],
            "submission_set_unique_id": "1.2.3",
            "reply_to": None,
        },
    }
    values.update(overrides)
    return SimpleNamespace(**values)


def test_soap_observer_maps_the_responder_side(tmp_path: Path) -> None:
    sink = MemoryDestination()
    trail = _trail(tmp_path, sink)
    trail.start()
    observer = trail.soap_observer(lambda: "https://region.example:8443")
    observer(_completed())
    assert wait_until(lambda: len(sink.messages) == 1)
    trail.stop()
    message = _xml(sink.messages[0])
    assert message.find("EventIdentification/EventID").get("csd-code") == "110107"  # Import
    source, destination = message.findall("ActiveParticipant")
    assert source.get("UserID") == ANONYMOUS
    assert source.get("NetworkAccessPointID") == "10.0.0.5"
    assert source.get("UserName") == "CN=region,O=Demo"
    assert destination.get("UserID") == "https://region.example:8443/xds/registry"
    assert destination.get("NetworkAccessPointID") == "region.example"
    ids = [o.get("ParticipantObjectID") for o in message.iter("ParticipantObjectIdentification")]
    assert ids == ["P^^^&1.2&ISO", "1.2.3"]


def test_soap_observer_failure_and_unknown(tmp_path: Path) -> None:
    sink = MemoryDestination()
    trail = _trail(tmp_path, sink)
    trail.start()
    observer = trail.soap_observer("https://r.example")
    observer(_completed(outcome="Failure", error_codes=("XDSRegistryMetadataError",)))
    observer(_completed(transaction=None))  # never reached a transaction: not audited here
    observer(SimpleNamespace())  # malformed notification: logged, never raised
    assert wait_until(lambda: len(sink.messages) == 1)
    trail.stop()
    ident = _xml(sink.messages[0]).find("EventIdentification")
    assert ident.get("EventOutcomeIndicator") == "8"
    assert ident.findtext("EventOutcomeDescription") == "XDSRegistryMetadataError"


def test_client_call_is_the_initiator_side(tmp_path: Path) -> None:
    sink = MemoryDestination()
    trail = _trail(tmp_path, sink)
    trail.start()
    trail.record_client_call(
        "ITI-43",
        endpoint="https://repo.example/xds/repository",
        outcome="Success",
        facts={"document_unique_ids": ["1.2.3"], "repository_unique_id": "1.9"},
    )
    assert wait_until(lambda: len(sink.messages) == 1)
    trail.stop()
    message = _xml(sink.messages[0])
    assert message.find("EventIdentification/EventID").get("csd-code") == "110107"  # consumer
    source = message.find("ActiveParticipant")
    assert source.get("UserID") == "https://repo.example/xds/repository"


def test_bad_event_never_raises_and_others_still_go(tmp_path: Path) -> None:
    sink = MemoryDestination()
    trail = _trail(tmp_path, sink)
    trail.start()
    trail.record(AuditEvent(transaction="NOT-A-TRANSACTION"))
    trail.record(events.application_activity(start=True))
    assert wait_until(lambda: len(sink.messages) == 1)
    trail.stop()


def test_record_does_no_io(tmp_path: Path) -> None:
    sink = MemoryDestination()
    trail = _trail(tmp_path, sink)  # not started: nothing consumes the hand-off
    started = time.perf_counter()
    for _ in range(200):
        trail.record(events.application_activity(start=True))
    elapsed = time.perf_counter() - started
    assert trail.pending() == 0 and sink.writes == 0  # nothing stored or sent by record()
    assert elapsed < 2.0  # generous: 200 hand-offs, no disk, no network
    trail.stop()  # stores what was handed over
    again = _stored_count(tmp_path)
    assert again == 200


def _stored_count(tmp_path: Path) -> int:
    from gateway.audit.queue import AuditQueue

    queue = AuditQueue(tmp_path / "audit", ["memory"])
    try:
        return queue.pending("memory")
    finally:
        queue.close()


def test_unreachable_destination_keeps_records_and_delivers_later(tmp_path: Path) -> None:
    sink = MemoryDestination()
    sink.failing.set()
    trail = _trail(tmp_path, sink)
    trail.start()
    for n in range(50):
        trail.record(events.patient_feed(
            side="responder", sending="A|B", receiving="C|D", sending_host=None,
            receiving_host=None, patient_ids=[f"P{n}"], message_control_id=str(n), trigger="A01",
        ))  # fmt: skip
    assert wait_until(lambda: trail.pending() == 50 and trail.senders[0].failures >= 1)
    assert not sink.messages
    sink.failing.clear()
    assert wait_until(lambda: trail.pending() == 0)
    trail.stop()
    patients = {
        _xml(m).find("ParticipantObjectIdentification").get("ParticipantObjectID")
        for m in sink.messages
    }
    assert patients == {f"P{n}" for n in range(50)}
    assert len(sink.messages) == 50  # the file-like destination acknowledges once written


def test_lost_connection_resends_unsettled_records(tmp_path: Path) -> None:
    sink = MemoryDestination(settles=True)
    trail = _trail(tmp_path, sink, settle_seconds=30.0)  # nothing settles during the test
    trail.start()
    trail.record(events.application_activity(start=True))
    assert wait_until(lambda: len(sink.messages) == 1)
    assert trail.pending() == 1  # written, not yet known to be delivered
    sink.connection_alive = False  # the receiver went away: what it got is in doubt
    trail.record(events.application_activity(start=False))
    assert wait_until(lambda: len(sink.messages) >= 3)
    trail.stop()
    kinds = [
        _xml(m).find("EventIdentification/EventTypeCode").get("csd-code") for m in sink.messages
    ]
    assert kinds.count("110120") == 2  # at least once: the start record was sent again
    assert "110121" in kinds


def test_settled_records_are_acknowledged(tmp_path: Path) -> None:
    sink = MemoryDestination(settles=True)
    trail = _trail(tmp_path, sink, settle_seconds=0.05)
    trail.start()
    trail.record(events.application_activity(start=True))
    assert wait_until(lambda: len(sink.messages) == 1 and trail.pending() == 0)
    trail.stop()
    assert len(sink.messages) == 1


def test_stop_then_restart_delivers_the_rest(tmp_path: Path) -> None:
    down = MemoryDestination()
    down.failing.set()
    trail = _trail(tmp_path, down)
    trail.start()
    trail.record(events.application_activity(start=True))
    trail.stop()
    up = MemoryDestination()
    again = _trail(tmp_path, up)
    again.start()
    assert wait_until(lambda: len(up.messages) == 1)
    again.stop()


def test_two_destinations_each_get_everything(tmp_path: Path) -> None:
    one, two = MemoryDestination("one"), MemoryDestination("two")
    trail = _trail(tmp_path, one, two)
    trail.start()
    for _ in range(5):
        trail.record(events.application_activity(start=True))
    assert wait_until(lambda: len(one.messages) == 5 and len(two.messages) == 5)
    trail.stop()


@pytest.mark.parametrize("trail", [NullAuditTrail()])
def test_null_trail(trail: NullAuditTrail) -> None:
    trail.start()
    trail.record(events.application_activity(start=True))
    trail.soap_observer("x")(object())
    trail.record_client_call("ITI-18", endpoint="x", outcome="Success")
    assert trail.pending() == 0
    trail.stop()


def test_from_urls(tmp_path: Path) -> None:
    trail = AuditTrail.from_urls(
        "udp://arr.example:514, file:audit/audit.log",
        queue_dir=tmp_path / "q",
        base_dir=tmp_path,
        tls_context=None,
        source=AuditSource(source_id="gw"),
    )
    assert [s.destination.name for s in trail.senders] == [
        "udp://arr.example:514",
        f"file:{tmp_path / 'audit' / 'audit.log'}",
    ]
    trail.stop()
    with pytest.raises(ValueError, match="needs the node's certificate"):
        AuditTrail.from_urls(
            "tls://arr.example",
            queue_dir=tmp_path / "q",
            base_dir=tmp_path,
            tls_context=None,
            source=AuditSource(source_id="gw"),
        )
    for bad in ("", "http://x", "tls://"):
        with pytest.raises(ValueError):
            AuditTrail.from_urls(
                bad, queue_dir=tmp_path / "q", base_dir=tmp_path, tls_context=None,
                source=AuditSource(source_id="gw"),
            )  # fmt: skip
