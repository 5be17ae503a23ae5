"""A gateway database shared by the "processes" of one test: migrated to the newest schema, with
leases that tests create, let run out, or delete (a process killed, expired, or stopped)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, update

from gateway.database import Database
from gateway.database.leases import Lease, gateway_process


class Site:
    """One gateway database (``url``) and the leases of the processes a test plays."""

    def __init__(self, url: str) -> None:
        self.database = Database(url)
        self.database.upgrade()

    @property
    def engine(self) -> Engine:
        return self.database.engine

    def process(self, seconds: float = 30.0) -> Lease:
        """A live process: its lease row, valid ``seconds`` (no heartbeat thread)."""
        return Lease(self.engine, seconds=seconds).acquire()

    def expire(self, lease: Lease | str) -> None:
        """The process stopped renewing long ago (killed on another machine): its lease ran out."""
        owner = lease if isinstance(lease, str) else lease.owner
        with self.engine.begin() as conn:
            conn.execute(
                update(gateway_process)
                .where(gateway_process.c.owner == owner)
                .values(expires_at=0.0)
            )

    def close(self) -> None:
        self.database.dispose()


@contextmanager
def site_at(url: str) -> Iterator[Site]:
    """A :class:`Site` disposed of at the end of the block."""
    site = Site(url)
    try:
        yield site
    finally:
        site.close()
