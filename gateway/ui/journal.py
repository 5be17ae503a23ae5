"""Recent transactions and failed logins, in the gateway database (migration ``0004_ui``).

Every worker process writes the transactions it answered; the dashboard of any of them reads
the newest. Rows older than the newest :data:`KEEP` are pruned now and then by the writers, so
the table stays small without a separate job. Writes leave the request path: :meth:`Journal.record`
only queues the entry, a background thread inserts what has queued (one transaction per batch,
at most :data:`FLUSH_SECONDS` later); a full queue drops entries rather than slow requests down.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import asdict, dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gateway.database.engine import write_transaction

log = logging.getLogger("gateway.ui")

KEEP = 1000  # rows of ui_transaction kept
PRUNE_EVERY = 500  # rows written by one process between prunings
FLUSH_SECONDS = 0.5  # longest wait of a queued entry
QUEUE_SIZE = 10_000  # entries waiting at most (more are dropped, and counted in the log)

metadata = sa.MetaData()
ui_transaction = sa.Table(
    "ui_transaction",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("direction", sa.String(8), nullable=False),
    sa.Column("transaction", sa.String(64), nullable=True),
    sa.Column("path", sa.String(256), nullable=False),
    sa.Column("peer", sa.String(256), nullable=True),
    sa.Column("outcome", sa.String(32), nullable=False),
    sa.Column("http_status", sa.Integer, nullable=False),
    sa.Column("duration_ms", sa.Float, nullable=False),
    sa.Column("error_codes", sa.String(512), nullable=True),
)
sa.Index("ix_ui_transaction_at", ui_transaction.c.at)  # migration 0004_ui
ui_login_attempt = sa.Table(
    "ui_login_attempt",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("username", sa.String(128), nullable=False),
    sa.Column("remote", sa.String(64), nullable=True),
)
sa.Index("ix_ui_login_attempt_at", ui_login_attempt.c.at)


@dataclass(frozen=True, slots=True)
class Entry:
    """One transaction served (``direction = "served"``) or sent (``"sent"``)."""

    at: float
    direction: str
    transaction: str | None
    path: str
    peer: str | None
    outcome: str
    http_status: int
    duration_ms: float
    error_codes: str | None = None


class Journal:
    """The recent-transactions log and the failed-login record of one gateway database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._queue: queue.Queue[Entry] = queue.Queue(maxsize=QUEUE_SIZE)
        self._lock = threading.Lock()  # one flush at a time
        self._stop = threading.Event()
        self._written = 0
        self._dropped = 0
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the background writer (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="ui-journal", daemon=True)
            self._thread.start()

    def close(self) -> None:
        """Stop the writer after writing what is queued."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self.flush()

    def record(self, entry: Entry) -> None:
        """Queue one transaction for the writer (never blocks)."""
        try:
            self._queue.put_nowait(entry)
        except queue.Full:
            self._dropped += 1
            if self._dropped % 1000 == 1:
                log.warning("ui journal: queue full, %d entries dropped", self._dropped)

    def _run(self) -> None:
        while not self._stop.wait(FLUSH_SECONDS):
            try:
                self.flush()
            except Exception:  # the database away: that batch is lost (a display log only)
                log.exception("ui journal: cannot write recent transactions")

    def flush(self) -> None:
        """Insert every queued entry (one database transaction); prune now and then."""
        with self._lock:
            batch: list[Entry] = []
            while True:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            if not batch:
                return
            rows = [_row(e) for e in batch]
            with self.engine.begin() as conn:
                conn.execute(ui_transaction.insert(), rows)
            before, self._written = self._written, self._written + len(rows)
            if before // PRUNE_EVERY != self._written // PRUNE_EVERY:
                self.prune()

    def prune(self) -> None:
        """Delete all but the newest :data:`KEEP` transactions and logins older than a day."""
        # read, then delete: a write transaction from the start (SQLite: BEGIN IMMEDIATE), or a
        # writer committing in between fails the deferred one at once ("database is locked")
        with write_transaction(self.engine) as conn:
            newest = conn.execute(sa.select(sa.func.max(ui_transaction.c.id))).scalar()
            if newest is not None:
                conn.execute(ui_transaction.delete().where(ui_transaction.c.id <= newest - KEEP))
            conn.execute(
                ui_login_attempt.delete().where(ui_login_attempt.c.at < time.time() - 86400)
            )

    def recent(self, limit: int = 50, *, failures_only: bool = False) -> list[Entry]:
        """The newest ``limit`` transactions, newest first (failures only: outcome not Success);
        this process's queued entries are written first."""
        self.flush()
        query = sa.select(ui_transaction).order_by(ui_transaction.c.id.desc()).limit(limit)
        if failures_only:
            query = query.where(ui_transaction.c.outcome.not_in(["Success"]))
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            Entry(
                at=r.at,
                direction=r.direction,
                transaction=r.transaction,
                path=r.path,
                peer=r.peer,
                outcome=r.outcome,
                http_status=r.http_status,
                duration_ms=r.duration_ms,
                error_codes=r.error_codes,
            )
            for r in rows
        ]

    def failed_login(self, username: str, remote: str | None) -> None:
        """Record one refused login (for :meth:`recent_failures`)."""
        with self.engine.begin() as conn:
            conn.execute(
                ui_login_attempt.insert().values(
                    at=time.time(), username=username[:128], remote=(remote or "")[:64] or None
                )
            )

    def recent_failures(self, username: str, remote: str | None, seconds: float) -> int:
        """Refused logins in the last ``seconds`` for this account name or this address."""
        since = time.time() - seconds
        who = ui_login_attempt.c.username == username[:128]
        if remote:
            who = sa.or_(who, ui_login_attempt.c.remote == remote[:64])
        query = (
            sa.select(sa.func.count())
            .select_from(ui_login_attempt)
            .where(who)
            .where(ui_login_attempt.c.at >= since)
        )
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar() or 0)


def _row(entry: Entry) -> dict[str, object]:
    row = asdict(entry)
    row["transaction"] = (entry.transaction or "")[:64] or None
    row["path"] = entry.path[:256]
    row["peer"] = (entry.peer or "")[:256] or None
    row["outcome"] = entry.outcome[:32]
    row["error_codes"] = (entry.error_codes or "")[:512] or None
    return row
