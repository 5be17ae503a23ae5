"""RepositoryIndex on SQLite and PostgreSQL: reservation (exclusive, all or nothing), states,
owners and leases, persistence, threads."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator

import pytest

from gateway.repository.index import (
    CONFIRMED,
    PENDING,
    UNRESOLVED,
    RepositoryIndex,
    StoredDocument,
)
from tests.support.site import Site, site_at


def doc(uid: str, hash_: str = "a" * 40, size: int = 3) -> StoredDocument:
    return StoredDocument(
        unique_id=uid,
        storage_key=uid.replace(".", "") * 4,
        hash=hash_,
        size=size,
        mime_type="text/plain",
    )


def never(_new: StoredDocument, _old: StoredDocument) -> bool:
    return False


@pytest.fixture
def site(db_url: str) -> Iterator[Site]:
    with site_at(db_url) as opened:
        yield opened


@pytest.fixture
def index(site: Site) -> RepositoryIndex:
    return RepositoryIndex(site.engine)


def test_reserve_inserts_pending_rows_with_owner_and_time(index: RepositoryIndex) -> None:
    assert index.reserve([doc("1.1"), doc("1.2")], owner="me", now=5.0, accept=never) == [
        None,
        None,
    ]
    row = index.get("1.1")
    assert row is not None
    assert (row.state, row.owner, row.created, row.hash, row.size) == (
        PENDING,
        "me",
        5.0,
        "a" * 40,
        3,
    )
    assert index.counts() == {PENDING: 2, UNRESOLVED: 0, CONFIRMED: 0}


def test_reservation_is_all_or_nothing(index: RepositoryIndex) -> None:
    index.reserve([doc("1.1")], owner="a", now=1, accept=never)
    existing = index.reserve([doc("1.2"), doc("1.1")], owner="b", now=2, accept=never)
    assert existing[0] is None and existing[1] is not None and existing[1].owner == "a"
    assert index.get("1.2") is None  # nothing inserted: one candidate was refused


def test_accepted_existing_rows_let_new_ones_in(index: RepositoryIndex) -> None:
    index.reserve([doc("1.1")], owner="a", now=1, accept=never)
    index.confirm(["1.1"])
    existing = index.reserve(
        [doc("1.1"), doc("1.2")], owner="b", now=2, accept=lambda new, old: new.hash == old.hash
    )
    assert existing[0] is not None and existing[0].state == CONFIRMED
    assert index.get("1.2") is not None


def test_confirmed_rows_are_never_downgraded_or_removed(index: RepositoryIndex) -> None:
    index.reserve([doc("1.1"), doc("1.2")], owner="a", now=1, accept=never)
    index.confirm(["1.1"])
    index.mark_unresolved(["1.1", "1.2"], owner="a")
    index.remove(["1.1"], owner="a")
    assert index.get("1.1").state == CONFIRMED
    assert index.get("1.2").state == UNRESOLVED
    index.remove(["1.2"], owner="someone else")  # not theirs
    assert index.get("1.2") is not None
    index.remove(["1.2"], owner="a")
    assert index.get("1.2") is None


def test_unsettled_rows_are_mine_and_those_of_gone_owners(
    index: RepositoryIndex, site: Site
) -> None:
    me, alive, gone = site.process(), site.process(), site.process()
    site.expire(gone)
    index.reserve([doc("1.1")], owner="old-run", now=10, accept=never)  # no lease row at all
    index.reserve([doc("1.2")], owner=me.owner, now=20, accept=never)  # in flight: not unsettled
    index.reserve([doc("1.3")], owner=me.owner, now=30, accept=never)
    index.mark_unresolved(["1.3"], owner=me.owner)
    index.reserve([doc("1.4")], owner="old-run", now=40, accept=never)
    index.confirm(["1.4"])
    index.reserve([doc("1.5")], owner=alive.owner, now=50, accept=never)  # a live peer's
    index.reserve([doc("1.6")], owner=alive.owner, now=55, accept=never)
    index.mark_unresolved(["1.6"], owner=alive.owner)  # the peer resolves it itself
    index.reserve([doc("1.7")], owner=gone.owner, now=60, accept=never)  # lease ran out
    found = index.unsettled(owner=me.owner, created_before=100)
    assert [r.unique_id for r in found] == ["1.1", "1.3", "1.7"]
    assert [r.unique_id for r in index.unsettled(owner=me.owner, created_before=15)] == ["1.1"]


def test_take_over_only_from_a_gone_owner(index: RepositoryIndex, site: Site) -> None:
    me, peer = site.process(), site.process()
    index.reserve([doc("1.1")], owner=peer.owner, now=1, accept=never)
    row = index.get("1.1")
    assert row is not None
    assert not index.take_over(row, owner=me.owner)  # alive: its ITI-41 is in flight
    site.expire(peer)
    assert index.take_over(row, owner=me.owner)
    taken = index.get("1.1")
    assert taken is not None and (taken.owner, taken.state) == (me.owner, UNRESOLVED)
    assert not index.take_over(row, owner="a third process")  # the row changed hands


def test_a_reserved_storage_key_is_not_an_orphan(index: RepositoryIndex) -> None:
    index.reserve([doc("1.1")], owner="a", now=1, accept=never)
    assert not index.reserve_orphan(doc("1.1").storage_key, owner="b", now=2)
    assert index.reserve_orphan("f" * 64, owner="b", now=2)
    other_name = dataclasses.replace(doc("9.9"), storage_key="f" * 64)
    busy = index.reserve([other_name], owner="c", now=3, accept=never)
    assert busy[0] is not None and busy[0].state == PENDING  # reported as busy, not inserted
    assert index.get("9.9") is None
    assert index.counts() == {PENDING: 1, UNRESOLVED: 0, CONFIRMED: 0}


def test_rows_survive_reopening(db_url: str) -> None:
    with site_at(db_url) as first:
        RepositoryIndex(first.engine).reserve([doc("1.1")], owner="a", now=1, accept=never)
    with site_at(db_url) as second:
        reopened = RepositoryIndex(second.engine)
        assert reopened.get("1.1") is not None
        assert reopened.storage_keys() == {doc("1.1").storage_key}


def test_one_of_many_threads_wins_a_unique_id(index: RepositoryIndex) -> None:
    barrier = threading.Barrier(8)
    results: list[bool] = []
    lock = threading.Lock()

    def contend(n: int) -> None:
        barrier.wait()
        existing = index.reserve([doc("1.1", hash_=f"{n:040d}")], owner=str(n), now=n, accept=never)
        with lock:
            results.append(existing[0] is None)

    threads = [threading.Thread(target=contend, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 7 + [True]
