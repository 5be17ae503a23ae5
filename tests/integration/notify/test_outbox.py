"""The durable outbox on a real database (SQLite file, PostgreSQL): claims under process leases,
order within a sequence, back-off, take-over of a dead sender's rows, no double claim."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from gateway.database import Database
from gateway.database.leases import Lease
from gateway.notify.outbox import Claimed, Dispatcher, Message, Outbox, PermanentFailure


@pytest.fixture
def database(db_url: str) -> Iterator[Database]:
    db = Database(db_url)
    db.upgrade()
    yield db
    db.dispose()


def _lease(db: Database) -> Lease:
    return Lease(db.engine, seconds=30).acquire()


def test_a_sequence_goes_out_in_order_and_waits_for_its_head(database: Database) -> None:
    lease = _lease(database)
    outbox = Outbox(database.engine, lease.owner, retry_initial_seconds=0.3)
    outbox.add(Message("forward", "A@h:1", {"n": n}, sequence_key="s1") for n in range(3))
    outbox.add([Message("webhook", "http://x", {"n": 9})])
    first = outbox.claim()
    assert sorted(c.payload["n"] for c in first) == [0, 9]  # one per sequence, plus the free one
    head = next(c for c in first if c.payload["n"] == 0)
    outbox.retry(head, "peer down")
    outbox.sent(next(c for c in first if c.payload["n"] == 9))
    assert outbox.claim() == []  # the head is backing off: nothing behind it may pass
    time.sleep(0.4)
    again = outbox.claim()
    assert [c.payload["n"] for c in again] == [0]
    assert again[0].attempts == 1
    outbox.sent(again[0])
    assert [c.payload["n"] for c in outbox.claim()] == [1]
    counts = outbox.counts()
    assert counts["forward"] == {"sent": 1, "pending": 2}
    assert counts["webhook"] == {"sent": 1}
    lease.release()


def test_a_permanent_failure_lets_the_sequence_move_on(database: Database) -> None:
    lease = _lease(database)
    outbox = Outbox(database.engine, lease.owner)
    outbox.add(Message("forward", "A@h:1", {"n": n}, sequence_key="s") for n in range(2))

    def refuse(item: Claimed) -> None:
        if item.payload["n"] == 0:
            raise PermanentFailure("refused with 0xA900")

    dispatcher = Dispatcher(outbox, {"forward": refuse})
    assert dispatcher.run_once() == 1
    assert dispatcher.run_once() == 1
    assert outbox.counts()["forward"] == {"failed": 1, "sent": 1}
    lease.release()


def test_a_live_claim_is_respected_and_a_dead_one_taken_over(database: Database) -> None:
    alive, other = _lease(database), _lease(database)
    first = Outbox(database.engine, alive.owner)
    second = Outbox(database.engine, other.owner)
    first.add([Message("webhook", "http://x", {"n": 1})])
    [claimed] = first.claim()
    assert second.claim() == []  # held by a live process
    alive.release()  # that process is gone: its row is free at once
    [taken] = second.claim()
    assert taken.id == claimed.id
    first.sent(claimed)  # too late: the claim is no longer its own, nothing is recorded
    assert second.counts()["webhook"] == {"pending": 1}
    second.sent(taken)
    assert second.counts()["webhook"] == {"sent": 1}
    other.release()


def test_processes_claiming_at_once_never_share_a_row(database: Database) -> None:
    leases = [_lease(database) for _ in range(4)]
    Outbox(database.engine, leases[0].owner).add(
        Message("webhook", f"http://x/{n}", {"n": n}) for n in range(60)
    )
    got: list[list[int]] = [[] for _ in leases]

    def drain(index: int) -> None:
        outbox = Outbox(database.engine, leases[index].owner)
        while True:
            items = outbox.claim(limit=5)
            if not items:
                return
            for item in items:
                got[index].append(item.payload["n"])
                outbox.sent(item)

    threads = [threading.Thread(target=drain, args=(i,)) for i in range(len(leases))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    everything = [n for part in got for n in part]
    assert sorted(everything) == list(range(60))  # every row once, none twice
    for lease in leases:
        lease.release()
