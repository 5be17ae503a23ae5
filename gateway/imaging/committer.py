"""Group commit of instance rows: the rows of instances stored at the same moment, by several
associations, go into the index in one durable transaction.

Each C-STORE answers only once its row is durable: a commit that reached the disk (SQLite's
``synchronous=FULL``, PostgreSQL's default ``synchronous_commit``), or a commit whose instance
is journaled until the next flush of the log (``gateway.imaging.journal``). A durable commit
per instance costs one log flush per instance; while a commit is in flight, the rows of the
other associations queue up, and the next commit takes them all. The first thread to find no
commit in flight runs it itself (leader/follower: no committer thread, so a lone association
pays no hand-off), the
others wait for it and get their own outcome: if the shared transaction fails, each row is
retried alone, so one bad row fails only its own C-STORE.

Standard: none (a storage technique); the durability promise is PS3.4 §B.2.3's "Success":
the SCP has stored the instance.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from gateway.imaging.index import InstanceRecord


class RowWriter(Protocol):
    """The index operation the committer batches (``ImagingIndex.record_instances``)."""

    def record_instances(
        self, records: Sequence[InstanceRecord], *, durable: bool = True
    ) -> list[InstanceRecord | None]:
        """Index ``records`` in one transaction; the earlier row of each, or None."""
        ...


@dataclass(slots=True, eq=False)
class _Ticket:
    record: InstanceRecord
    durable: bool
    done: bool = False
    old: InstanceRecord | None = None
    error: Exception | None = None


class GroupCommitter:
    """Records instance rows durably, sharing commits between concurrent callers.

    A batch holds at most one row per association (each waits for its row before it reads its
    next data set), so it needs no bound of its own.
    """

    def __init__(self, index: RowWriter) -> None:
        self.index = index
        self.commits = 0  # transactions run (the benchmark reports rows per commit)
        self.rows = 0
        self._cond = threading.Condition()
        self._queue: list[_Ticket] = []
        self._busy = False

    def record(self, record: InstanceRecord, *, durable: bool = True) -> InstanceRecord | None:
        """Index ``record`` and return once it is committed (durable unless ``durable`` is
        False: the caller journals it); the earlier row, or None.

        Raises: what ``record_instances`` raised for this row (SQLAlchemyError ...).
        """
        ticket = _Ticket(record, durable)
        with self._cond:
            self._queue.append(ticket)
            while self._busy and not ticket.done:
                self._cond.wait()
            if not ticket.done:  # no commit in flight: lead one with all that is queued
                self._busy = True
                batch, self._queue = self._queue, []
        if not ticket.done:
            try:
                self._commit(batch)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()
        if ticket.error is not None:
            raise ticket.error
        return ticket.old

    def _commit(self, batch: list[_Ticket]) -> None:
        """Run one transaction for ``batch`` and settle every ticket in it (never raises)."""
        durable = any(ticket.durable for ticket in batch)
        try:
            olds = self.index.record_instances([ticket.record for ticket in batch], durable=durable)
        except Exception as exc:
            if len(batch) > 1:
                self._one_by_one(batch)  # find the row that failed; the others still go in
                return
            olds, batch[0].error = [None], exc
        else:
            self.commits += 1
            self.rows += len(batch)
        with self._cond:
            for ticket, old in zip(batch, olds, strict=True):
                ticket.old, ticket.done = old, True

    def _one_by_one(self, batch: list[_Ticket]) -> None:
        for ticket in batch:
            try:
                [ticket.old] = self.index.record_instances([ticket.record], durable=ticket.durable)
                self.commits += 1
                self.rows += 1
            except Exception as exc:
                ticket.error = exc
            with self._cond:
                ticket.done = True
