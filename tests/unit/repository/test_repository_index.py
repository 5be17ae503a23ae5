"""RepositoryIndex: reservation (exclusive, all or nothing), states, persistence, threads."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.repository.index import (
    CONFIRMED,
    PENDING,
    UNRESOLVED,
    RepositoryIndex,
    StoredDocument,
)


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
def index(tmp_path: Path) -> Iterator[RepositoryIndex]:
    opened = RepositoryIndex(tmp_path / "index.sqlite")
    yield opened
    opened.close()


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
    index.mark_unresolved(["1.1", "1.2"])
    index.remove(["1.1"])
    assert index.get("1.1").state == CONFIRMED
    assert index.get("1.2").state == UNRESOLVED
    index.remove(["1.2"])
    assert index.get("1.2") is None


def test_unsettled_rows(index: RepositoryIndex) -> None:
    index.reserve([doc("1.1")], owner="old-run", now=10, accept=never)
    index.reserve([doc("1.2")], owner="me", now=20, accept=never)  # in flight: not unsettled
    index.reserve([doc("1.3")], owner="me", now=30, accept=never)
    index.mark_unresolved(["1.3"])
    index.reserve([doc("1.4")], owner="old-run", now=40, accept=never)
    index.confirm(["1.4"])
    found = index.unsettled(owner="me", created_before=100)
    assert [r.unique_id for r in found] == ["1.1", "1.3"]
    assert [r.unique_id for r in index.unsettled(owner="me", created_before=15)] == ["1.1"]


def test_rows_survive_reopening(tmp_path: Path) -> None:
    first = RepositoryIndex(tmp_path / "index.sqlite")
    first.reserve([doc("1.1")], owner="a", now=1, accept=never)
    first.close()
    reopened = RepositoryIndex(tmp_path / "index.sqlite")
    assert reopened.get("1.1") is not None
    assert reopened.storage_keys() == {doc("1.1").storage_key}
    reopened.close()


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
