"""The audit trail of one gateway: record events, keep them on disk, deliver them in background.

:meth:`AuditTrail.record` only puts the event on an in-memory hand-off and returns: it never
touches the network or the disk and never raises, so a transaction is never slowed or failed by
auditing (ITI TF-2 §3.20: the Secure Node keeps working while the repository is away). A writer
thread builds the messages and stores them in the durable queue in batches (one fsync per
batch); one sender thread per destination delivers them (:mod:`gateway.audit.transport`).
:meth:`stop` stores whatever is still in memory before returning, so a clean shutdown loses
nothing; after a crash only the records of the last few milliseconds (not yet written) can be
missing.

Observers map the gateway's notifications onto :class:`AuditEvent`: :meth:`soap_observer` for
the SOAP boundary's ``TransactionCompleted`` (read by attribute, so this room imports nothing of
``gateway.soap``), and helpers for client calls, DICOM transfers, HL7 feeds and security events.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import ssl
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from gateway.audit import codes, syslog
from gateway.audit.messages import ANONYMOUS, AuditSource, encode_event
from gateway.audit.model import (
    INITIATOR,
    RESPONDER,
    AuditEvent,
    Participant,
    event_from_facts,
)
from gateway.audit.queue import AuditQueue
from gateway.audit.transport import Destination, Sender, parse_destination

log = logging.getLogger("gateway.audit")

# TransactionCompleted.outcome / RegistryResponse status -> EventOutcomeIndicator (PS3.15 A.5.1).
OUTCOMES = {
    "Success": codes.SUCCESS,
    "PartialSuccess": codes.MINOR_FAILURE,
    "Failure": codes.SERIOUS_FAILURE,
    "Fault": codes.SERIOUS_FAILURE,
}
MEMORY_HANDOFF = 100_000  # events waiting for the writer thread before record() writes itself


class AuditTrail:
    """Record audit events and deliver them to every configured destination."""

    def __init__(
        self,
        *,
        queue_dir: str | os.PathLike[str],
        destinations: Sequence[Destination],
        source: AuditSource,
        app_name: str = "xdsi-gateway",
        hostname: str | None = None,
        settle_seconds: float = 1.0,
        retry_min_seconds: float = 0.5,
        retry_max_seconds: float = 60.0,
        owner: str | None = None,
    ) -> None:
        """``owner``: this process's owner id in the shared queue (see :class:`AuditQueue`)."""
        self.source = source
        self.app_name = app_name
        self.hostname = hostname or socket.getfqdn() or "localhost"
        self.queue = AuditQueue(queue_dir, [d.name for d in destinations], owner=owner)
        self._handoff: queue.Queue[AuditEvent | None] = queue.Queue(maxsize=MEMORY_HANDOFF)
        self._wakes = [threading.Event() for _ in destinations]
        self.senders = [
            Sender(
                self.queue,
                destination,
                wake=wake,
                settle_seconds=settle_seconds,
                retry_min_seconds=retry_min_seconds,
                retry_max_seconds=retry_max_seconds,
            )
            for destination, wake in zip(destinations, self._wakes, strict=True)
        ]
        self._writer = threading.Thread(target=self._write_loop, name="audit-writer", daemon=True)
        self._write_lock = threading.Lock()
        self._started = False

    @classmethod
    def from_urls(
        cls,
        urls: str | Sequence[str],
        *,
        queue_dir: str | os.PathLike[str],
        base_dir: str | os.PathLike[str],
        tls_context: ssl.SSLContext | None,
        source: AuditSource,
        **options: Any,
    ) -> AuditTrail:
        """A trail for the configured destinations (``audit.destinations``).

        ``urls``: comma-separated or a list of ``tls://host:6514``, ``udp://host:514``,
        ``file:PATH`` (relative paths below ``base_dir``). ``tls_context``: the node's client
        context (:func:`gateway.security.tls.client_context`), needed for ``tls://``.
        Raises:
            ValueError: no destination, or an unusable one (the message names it).
        """
        items = urls.split(",") if isinstance(urls, str) else list(urls)
        destinations = [
            parse_destination(url, tls_context=tls_context, base_dir=base_dir)
            for url in items
            if url.strip()
        ]
        if not destinations:
            raise ValueError("audit: no destination configured")
        return cls(queue_dir=queue_dir, destinations=destinations, source=source, **options)

    # -- life cycle ---------------------------------------------------------------------------
    def start(self) -> None:
        """Start the writer and the senders (records queued before a restart go out first)."""
        if self._started:
            return
        self._started = True
        self._writer.start()
        for sender in self.senders:
            sender.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Store every recorded event, then stop; undelivered records stay queued on disk."""
        if self._started:
            self._handoff.put(None)
            self._writer.join(timeout)
            for sender in self.senders:
                sender.stop(timeout)
        self._drain()  # anything recorded after the writer ended
        self.queue.close()
        self._started = False

    # -- recording ----------------------------------------------------------------------------
    def record(self, event: AuditEvent) -> None:
        """Hand ``event`` over for storage and delivery; returns at once and never raises."""
        try:
            self._handoff.put_nowait(event)
        except queue.Full:  # the disk cannot keep up: store it here rather than lose it
            log.warning("audit hand-off full; storing a record synchronously")
            self._store([event])
        except Exception:  # pragma: no cover - auditing must never break a transaction
            log.exception("audit: could not record %s", getattr(event, "transaction", "?"))

    def _write_loop(self) -> None:
        done = False
        while not done:
            batch = [self._handoff.get()]
            while len(batch) < 500:
                try:
                    batch.append(self._handoff.get_nowait())
                except queue.Empty:
                    break
            done = None in batch
            self._store([event for event in batch if event is not None])

    def _drain(self) -> None:
        leftovers: list[AuditEvent] = []
        while True:
            try:
                event = self._handoff.get_nowait()
            except queue.Empty:
                break
            if event is not None:
                leftovers.append(event)
        self._store(leftovers)

    def _store(self, events: list[AuditEvent]) -> None:
        messages = []
        for event in events:
            try:
                messages.append(self.encode(event))
            except Exception:
                log.exception("audit: cannot build the %s record; skipped", event.transaction)
        if not messages:
            return
        try:
            with self._write_lock:
                self.queue.put_many(messages)
        except Exception:
            log.exception("audit: cannot store %d records", len(messages))
            return
        for wake in self._wakes:
            wake.set()

    def encode(self, event: AuditEvent) -> bytes:
        """The RFC 5424 message (header + BOM + XML) of ``event``."""
        xml = encode_event(event, self.source)
        return syslog.format_message(
            xml,
            hostname=self.hostname,
            app_name=self.app_name,
            procid=str(os.getpid()),
            moment=event.event_time,
        )

    def pending(self) -> int:
        """Records stored and not yet delivered everywhere (handed-off ones not counted)."""
        return self.queue.pending()

    # -- observers and helpers ----------------------------------------------------------------
    def soap_observer(self, base_url: str | Callable[[], str]) -> Callable[[Any], None]:
        """An observer for the SOAP boundary's ``TransactionCompleted`` notifications.

        We answered: the caller is the initiator (UserID = ``audit["reply_to"]`` or the WS-A
        anonymous URI, host = remote address, UserName = TLS subject), this endpoint
        (``base_url`` + path) the responder. ``audit`` holds the handler's facts
        (:data:`gateway.audit.model.FACT_KEYS`). Requests that never reached a transaction
        (``transaction`` is None) are not audited here.
        """

        def observe(completed: Any) -> None:
            try:
                if not completed.transaction:
                    return
                facts: Mapping[str, Any] = completed.audit or {}
                base = base_url() if callable(base_url) else base_url
                endpoint = base.rstrip("/") + completed.path
                event = event_from_facts(
                    completed.transaction,
                    side=RESPONDER,
                    outcome=OUTCOMES.get(completed.outcome, codes.SERIOUS_FAILURE),
                    initiator=Participant(
                        user_id=facts.get("reply_to") or ANONYMOUS,
                        host=completed.remote_addr,
                        user_name=completed.peer_subject,
                    ),
                    responder=self.local_participant(endpoint, host=urlsplit(endpoint).hostname),
                    facts=facts,
                )
                if event.outcome != codes.SUCCESS and not event.outcome_description:
                    event.outcome_description = ", ".join(completed.error_codes) or None
                self.record(event)
            except Exception:  # observers never break a response
                log.exception("audit: cannot map a SOAP transaction")

        return observe

    def local_participant(self, user_id: str, *, host: str | None = None) -> Participant:
        """This process as a participant: ``user_id`` plus its process id and host."""
        return Participant(
            user_id=user_id, alternative_user_id=str(os.getpid()), host=host or self.hostname
        )

    def record_client_call(
        self,
        transaction: str,
        *,
        endpoint: str,
        outcome: str,
        facts: Mapping[str, Any] | None = None,
        reply_to: str | None = None,
        peer_subject: str | None = None,
    ) -> None:
        """Audit a call this gateway made (initiator side) to ``endpoint``.

        ``outcome``: "Success", "PartialSuccess", "Failure" (also for transport errors) or an
        EventOutcomeIndicator. Use it for ITI-42 (repository -> registry), ITI-41/RAD-68
        (imaging source -> repository), ITI-18, ITI-43 and RAD-69 (consumer).
        """
        event = event_from_facts(
            transaction,
            side=INITIATOR,
            outcome=OUTCOMES.get(outcome, outcome),
            initiator=self.local_participant(reply_to or ANONYMOUS),
            responder=Participant(
                user_id=endpoint, host=urlsplit(endpoint).hostname, user_name=peer_subject
            ),
            facts=facts or {},
        )
        self.record(event)


class NullAuditTrail:
    """Auditing switched off: the same interface, doing nothing."""

    @property
    def hostname(self) -> str:
        # No DNS lookup (getfqdn) for a trail that records nothing.
        return socket.gethostname() or "localhost"

    def start(self) -> None: ...

    def stop(self, timeout: float = 10.0) -> None: ...

    def record(self, event: AuditEvent) -> None: ...

    def pending(self) -> int:
        return 0

    def soap_observer(self, base_url: str | Callable[[], str]) -> Callable[[Any], None]:
        return lambda _completed: None

    def record_client_call(self, transaction: str, **_kwargs: Any) -> None: ...

    def local_participant(self, user_id: str, *, host: str | None = None) -> Participant:
        """This process as a participant, as :meth:`AuditTrail.local_participant` gives it."""
        return Participant(
            user_id=user_id, alternative_user_id=str(os.getpid()), host=host or self.hostname
        )


def default_source_id(app_name: str = "xdsi-gateway") -> str:
    """``app@host``: the AuditSourceID when none is configured."""
    return f"{app_name}@{socket.gethostname()}"


def queue_dir(data_dir: str | os.PathLike[str]) -> Path:
    """Where the durable queue lives: ``<data_dir>/audit``."""
    return Path(data_dir) / "audit"
