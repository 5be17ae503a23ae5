"""Process leases: who is alive, so that only a dead process's pending work is taken over.

Every gateway process (every worker of ``serve --workers``, every ``publish`` command) has an
*owner* id and one row in ``gateway_process``, inserted at start, renewed by a heartbeat thread
every ``lease_seconds / 3`` and deleted at a clean stop. Work a process leaves pending carries its
owner id: repository reservations (``repository_document.owner``), study claims
(``imaging_study.claimed_by``) and pending manifests (``imaging_pending_manifest.owner``).
Another process may resolve such work only when its owner is *provably gone*: its row is absent
or expired. That test is part of the very SQL statement that takes the work over
(:func:`owner_gone`), so a lease renewed a moment earlier always wins.

Times are the database's clock (:class:`db_now`), never the caller's: processes on machines whose
clocks disagree still agree on whether a lease has run out.

A process that died on this machine is recognised at once (:meth:`Lease.reap`): a row with this
machine's node identity (boot id and PID namespace) whose process no longer exists is deleted,
so a restart takes over what its predecessor left without waiting for the lease to run out. A
process that is alive but frozen longer than its lease (a stopped VM) is treated as gone: the
lease must be longer than any pause a live process may take.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Engine,
    Float,
    Integer,
    MetaData,
    Select,
    String,
    Table,
    delete,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

log = logging.getLogger("gateway.database")

DEFAULT_LEASE_SECONDS = 30.0
FORGET_AFTER_SECONDS = 86_400.0  # expired rows are deleted after a day (absent = expired)

metadata = MetaData()

OWNER = 128  # length of an owner id (one run of one process)

gateway_process = Table(
    "gateway_process",
    metadata,
    Column("owner", String(OWNER), primary_key=True),  # this run of the process
    Column("host", String(255), nullable=False),  # host name, for people
    Column("node", String(128), nullable=False),  # boot id + PID namespace ("" = unknown)
    Column("pid", Integer, nullable=False),
    Column("started_at", Float, nullable=False),
    Column("heartbeat_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
)


class db_now(FunctionElement[float]):
    """The database's current time in POSIX seconds (the lease clock)."""

    type = Float()
    inherit_cache = True


@compiles(db_now, "sqlite")
def _sqlite_now(_element: Any, _compiler: Any, **_kw: Any) -> str:
    return "((julianday('now') - 2440587.5) * 86400.0)"


@compiles(db_now, "postgresql")
def _postgresql_now(_element: Any, _compiler: Any, **_kw: Any) -> str:
    return "CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS DOUBLE PRECISION)"


def live_owners() -> Select[Any]:
    """The owners whose lease has not expired (a subquery for ``NOT IN``)."""
    return select(gateway_process.c.owner).where(gateway_process.c.expires_at > db_now())


def owner_gone(column: ColumnElement[Any]) -> ColumnElement[bool]:
    """SQL: the owner named in ``column`` is absent, unknown or expired."""
    return or_(column.is_(None), column.not_in(live_owners()))


def node_identity() -> str:
    """This machine's boot id and this process's PID namespace: two rows with the same node
    can compare their pids; "" when the platform does not tell (then only leases count)."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""
    return f"{boot}/{namespace}"


def pid_alive(pid: int) -> bool:
    """True unless process ``pid`` provably does not exist (or is a zombie) on this node."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"  # a zombie has exited


class Lease:
    """The lease of one process (``owner``), renewed by a daemon thread once started."""

    def __init__(
        self, engine: Engine, *, seconds: float = DEFAULT_LEASE_SECONDS, owner: str | None = None
    ) -> None:
        if seconds <= 0:
            raise ValueError("gateway.lease_seconds must be greater than 0")
        self.engine = engine
        self.seconds = float(seconds)
        self.owner = owner or uuid.uuid4().hex
        self.host = socket.gethostname()[:255]
        self.node = node_identity()
        self.pid = os.getpid()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._valid_until = 0.0  # time.monotonic() until which the last renewal holds

    # -- life cycle -------------------------------------------------------------------------------
    def acquire(self) -> Lease:
        """Insert this process's row and forget dead processes of this node; return self."""
        now = db_now()
        with self.engine.begin() as conn:
            conn.execute(
                insert(gateway_process).values(
                    owner=self.owner,
                    host=self.host,
                    node=self.node,
                    pid=self.pid,
                    started_at=now,
                    heartbeat_at=now,
                    expires_at=now + self.seconds,
                )
            )
        self._valid_until = time.monotonic() + self.seconds
        self.reap()
        return self

    def start(self) -> Lease:
        """Acquire (if not yet) and start the heartbeat thread; return self."""
        if self._valid_until == 0.0:
            self.acquire()
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._beat, name=f"lease-{self.owner[:8]}", daemon=True
            )
            self._thread.start()
        return self

    def release(self) -> None:
        """Stop the heartbeat and delete the row: this process's pending work is free at once."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=10)
        try:
            with self.engine.begin() as conn:
                conn.execute(delete(gateway_process).where(gateway_process.c.owner == self.owner))
        except Exception:  # the database is gone: the row expires by itself
            log.warning("could not delete the lease of %s; it expires by itself", self.owner)
        self._valid_until = 0.0

    @property
    def valid(self) -> bool:
        """True while the last renewal this process saw still holds."""
        return time.monotonic() < self._valid_until

    # -- heartbeat --------------------------------------------------------------------------------
    def renew(self) -> bool:
        """Push the expiry ``seconds`` ahead; False when the row was gone (the lease had been
        given up as expired: it is inserted again and the loss logged)."""
        started = time.monotonic()
        now = db_now()
        with self.engine.begin() as conn:
            renewed = conn.execute(
                update(gateway_process)
                .where(gateway_process.c.owner == self.owner)
                .values(heartbeat_at=now, expires_at=now + self.seconds)
            ).rowcount
        if not renewed:
            log.error(
                "lease %s was lost (no heartbeat for more than %.0f s): other processes may "
                "have taken over its pending work",
                self.owner,
                self.seconds,
            )
            self.acquire()
            return False
        self._valid_until = started + self.seconds
        return True

    def reap(self) -> int:
        """Delete the rows of processes of this node that no longer exist, and rows expired a
        day ago; return how many rows were deleted."""
        table = gateway_process
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(table.c.owner, table.c.pid)
                .where(table.c.node == self.node)
                .where(table.c.owner != self.owner)
            ).all()
        dead = [(owner, pid) for owner, pid in rows if self.node and not pid_alive(pid)]
        removed = 0
        with self.engine.begin() as conn:
            for owner, pid in dead:
                removed += conn.execute(
                    delete(table).where(table.c.owner == owner).where(table.c.pid == pid)
                ).rowcount
            removed += conn.execute(
                delete(table).where(table.c.expires_at < db_now() - FORGET_AFTER_SECONDS)
            ).rowcount
        for owner, pid in dead:
            log.info("process %d (%s) of this machine is gone: its work is free", pid, owner)
        return removed

    def _beat(self) -> None:
        interval = self.seconds / 3
        while not self._stop.wait(interval):
            try:
                self.renew()
                self.reap()
            except Exception:  # a database outage must not end the heartbeat
                log.exception("lease heartbeat failed; retrying in %.1f s", interval)


def live_processes(engine: Engine) -> list[dict[str, Any]]:
    """The rows of processes whose lease holds (for ``/health`` and operators)."""
    table = gateway_process
    query = (
        select(table.c.owner, table.c.host, table.c.pid, table.c.expires_at)
        .where(table.c.expires_at > db_now())
        .order_by(table.c.started_at)
    )
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]


def live_owner_ids(engine: Engine) -> set[str]:
    """The owners whose lease holds (whose temporary files must be left alone)."""
    with engine.connect() as conn:
        return set(conn.execute(live_owners()).scalars())
