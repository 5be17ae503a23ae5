"""The durable outbox: every message owed to a peer, delivered at least once.

A row is *pending* until a sender delivers it (*sent*) or the peer refuses it for good
(*failed*). Processes share the table (scale-out): a process *claims* a row by writing its owner
id into ``claimed_by`` with a conditional update that only succeeds while the row is unclaimed
or its claimant is provably gone (:func:`gateway.database.leases.owner_gone`, the same test that
guards imaging claims and repository reservations). So two live processes never send one row at
the same time; a row whose sender died is taken over (at once when it died on this machine,
after its lease otherwise) and sent again: at least once, and twice only across a crash.

Rows with the same ``sequence_key`` (a forwarding destination and study) are sent one at a time
in ``id`` order: a row is eligible only when no earlier row of its key is still pending, so a
row waiting out its back-off holds the ones behind it.

A failed attempt puts the row back with ``due_at`` pushed ahead exponentially
(``retry_initial_seconds`` doubling up to ``retry_max_seconds``); times are the database's clock.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, exists, func, insert, select, update
from sqlalchemy.orm import aliased

from gateway.database.engine import write_transaction
from gateway.database.leases import db_now, owner_gone
from gateway.notify.schema import notify_outbox

log = logging.getLogger("gateway.notify")

PENDING, SENT, FAILED = "pending", "sent", "failed"
KINDS = ("webhook", "dsub", "forward", "xdr")


class PermanentFailure(Exception):
    """The peer refused the message for good (retrying cannot help): the row becomes failed."""


@dataclass(frozen=True, slots=True)
class Message:
    """One message to enqueue: ``kind`` picks the sender, ``target`` the peer."""

    kind: str
    target: str
    payload: Mapping[str, Any]
    sequence_key: str | None = None


@dataclass(frozen=True, slots=True)
class Claimed:
    """A row claimed by this process for sending."""

    id: int
    kind: str
    target: str
    payload: dict[str, Any]
    attempts: int


Sender = Callable[[Claimed], None]  # raises on failure (PermanentFailure: do not retry)


def enqueue(conn: Connection, messages: Iterable[Message]) -> list[int]:
    """Insert ``messages`` as pending rows in the caller's transaction; return their ids."""
    rows = [
        {
            "kind": m.kind,
            "target": m.target,
            "sequence_key": m.sequence_key,
            "payload": json.dumps(m.payload, separators=(",", ":"), sort_keys=True),
            "state": PENDING,
            "attempts": 0,
            "created_at": db_now(),
            "due_at": db_now(),
        }
        for m in messages
    ]
    ids = []
    for row in rows:  # one statement per row: db_now() is a SQL expression, not a value
        key = conn.execute(insert(notify_outbox).values(**row)).inserted_primary_key
        assert key is not None
        ids.append(int(key[0]))
    return ids


class Outbox:
    """The queue over ``notify_outbox`` for one process (``owner``: its lease's owner id)."""

    def __init__(
        self,
        engine: Engine,
        owner: str,
        *,
        retry_initial_seconds: float = 2.0,
        retry_max_seconds: float = 300.0,
    ) -> None:
        self.engine = engine
        self.owner = owner
        self.retry_initial_seconds = retry_initial_seconds
        self.retry_max_seconds = retry_max_seconds

    def add(self, messages: Iterable[Message]) -> list[int]:
        """Enqueue ``messages`` in a transaction of their own; return their ids."""
        with write_transaction(self.engine) as conn:
            return enqueue(conn, messages)

    def claim(self, limit: int = 32) -> list[Claimed]:
        """Claim up to ``limit`` due rows (at most one per sequence key), oldest first."""
        t = notify_outbox
        earlier = aliased(notify_outbox)
        blocked = exists().where(
            earlier.c.sequence_key == t.c.sequence_key,
            earlier.c.state == PENDING,
            earlier.c.id < t.c.id,
        )
        free = owner_gone(t.c.claimed_by)
        query = (
            select(t.c.id)
            .where(t.c.state == PENDING, t.c.due_at <= db_now(), free)
            .where(t.c.sequence_key.is_(None) | ~blocked)
            .order_by(t.c.id)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            candidates = list(conn.execute(query).scalars())
        claimed: list[Claimed] = []
        for row_id in candidates:
            with write_transaction(self.engine) as conn:
                won = conn.execute(
                    update(t)
                    .where(t.c.id == row_id, t.c.state == PENDING, free)
                    .values(claimed_by=self.owner)
                ).rowcount
                if not won:
                    continue  # another process was quicker
                row = conn.execute(
                    select(t.c.kind, t.c.target, t.c.payload, t.c.attempts).where(t.c.id == row_id)
                ).one()
            claimed.append(
                Claimed(row_id, row.kind, row.target, json.loads(row.payload), row.attempts)
            )
        return claimed

    def sent(self, item: Claimed) -> None:
        """Record a delivery (only while this process still holds the claim)."""
        self._finish(item, state=SENT, error=None)

    def failed(self, item: Claimed, error: str) -> None:
        """The peer refused for good: the row is kept as failed, the sequence moves on."""
        self._finish(item, state=FAILED, error=error)

    def _finish(self, item: Claimed, *, state: str, error: str | None) -> None:
        t = notify_outbox
        with write_transaction(self.engine) as conn:
            conn.execute(
                update(t)
                .where(t.c.id == item.id, t.c.claimed_by == self.owner)
                .values(
                    state=state,
                    claimed_by=None,
                    sent_at=db_now(),
                    attempts=t.c.attempts + 1,
                    last_error=error,
                )
            )

    def retry(self, item: Claimed, error: str) -> float:
        """Put the row back, due after the back-off; return the delay in seconds."""
        delay = min(
            self.retry_max_seconds, self.retry_initial_seconds * 2 ** min(item.attempts, 30)
        )
        t = notify_outbox
        with write_transaction(self.engine) as conn:
            conn.execute(
                update(t)
                .where(t.c.id == item.id, t.c.claimed_by == self.owner)
                .values(
                    claimed_by=None,
                    attempts=t.c.attempts + 1,
                    due_at=db_now() + delay,
                    last_error=error[:2000],
                )
            )
        return delay

    def state(self, row_id: int) -> tuple[str, int, str | None] | None:
        """(state, attempts, last error) of one row, or None when there is no such row."""
        return self.states([row_id])[0]

    def states(self, row_ids: Sequence[int]) -> list[tuple[str, int, str | None] | None]:
        """(state, attempts, last error) of each row, in one query; None for a missing row."""
        t = notify_outbox
        query = select(t.c.id, t.c.state, t.c.attempts, t.c.last_error)
        with self.engine.connect() as conn:
            found = {
                row.id: (row.state, row.attempts, row.last_error)
                for row in conn.execute(query.where(t.c.id.in_(list(row_ids))))
            }
        return [found.get(row_id) for row_id in row_ids]

    def counts(self) -> dict[str, dict[str, int]]:
        """Rows per kind and state (``/health``): ``{"webhook": {"pending": 2, "sent": 7}}``."""
        t = notify_outbox
        query = select(t.c.kind, t.c.state, func.count()).group_by(t.c.kind, t.c.state)
        report: dict[str, dict[str, int]] = {}
        with self.engine.connect() as conn:
            for kind, state, count in conn.execute(query):
                report.setdefault(kind, {})[state] = count
        return report


class Dispatcher:
    """A daemon thread that claims due rows and hands each to the sender of its kind.

    Rows of one claim are sent in parallel (``parallel`` threads; one row per sequence key per
    claim, so a sequence stays in order); another claim follows at once when the last one
    found work, else after ``poll_seconds`` or a :meth:`wake`. Each attempt's outcome
    (``delivered``, ``retried``, ``failed``) is told to the ``observers`` with the row's kind
    (the metrics' ``xdsi_outbox_deliveries_total``).
    """

    def __init__(
        self,
        outbox: Outbox,
        senders: Mapping[str, Sender],
        *,
        poll_seconds: float = 1.0,
        parallel: int = 4,
    ) -> None:
        self.outbox = outbox
        self.senders = dict(senders)
        self.poll_seconds = poll_seconds
        self.parallel = max(1, parallel)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None
        self.observers: list[Callable[[str, str], None]] = []  # (kind, outcome)

    def start(self) -> None:
        """Start the thread (idempotent)."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._pool = ThreadPoolExecutor(self.parallel, thread_name_prefix="notify-send")
        self._thread = threading.Thread(target=self._run, name="notify-dispatch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop after the sends in progress (their rows are recorded; the rest stay pending)."""
        self._stop.set()
        self._wake.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=60)
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)

    def wake(self) -> None:
        """Look for work now (a row was just enqueued by this process)."""
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self.run_once() > 0
            except Exception:  # a database outage must not end the thread
                log.exception("outbox dispatch failed; retrying")
                busy = False
            if not busy:
                self._wake.wait(self.poll_seconds)
                self._wake.clear()

    def run_once(self) -> int:
        """One claim and its sends; return how many rows were claimed."""
        items = [] if self._stop.is_set() else self.outbox.claim(self.parallel * 8)
        if not items:
            return 0
        if self._pool is None or len(items) == 1:
            for item in items:
                self.deliver(item)
        else:
            list(self._pool.map(self.deliver, items))
        return len(items)

    def deliver(self, item: Claimed) -> None:
        """Send one claimed row and record the outcome."""
        sender = self.senders.get(item.kind)
        try:
            if sender is None:
                raise RuntimeError(f"no sender for {item.kind!r} in this process")
            sender(item)
        except PermanentFailure as exc:
            log.error("%s #%d to %s refused for good: %s", item.kind, item.id, item.target, exc)
            self.outbox.failed(item, str(exc))
            self._tell(item.kind, "failed")
        except Exception as exc:
            reason = str(exc) or type(exc).__name__
            delay = self.outbox.retry(item, reason)
            log.warning(
                "%s #%d to %s failed (attempt %d): %s; retry in %.0f s",
                item.kind,
                item.id,
                item.target,
                item.attempts + 1,
                reason,
                delay,
            )
            self._tell(item.kind, "retried")
        else:
            self.outbox.sent(item)
            log.info("%s #%d delivered to %s", item.kind, item.id, item.target)
            self._tell(item.kind, "delivered")

    def _tell(self, kind: str, outcome: str) -> None:
        for observer in self.observers:
            try:
                observer(kind, outcome)
            except Exception:  # an observer never breaks a delivery
                log.debug("outbox observer failed", exc_info=True)
