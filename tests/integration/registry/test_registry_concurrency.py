"""Concurrent submissions: exactly one wins where uniqueness is at stake, decided by database
constraints; the losers get the standard errors and leave nothing behind (ARCHITECTURE.md
"Scale-out"; ITI TF-2 §3.42.4.1.3). Threads each hold their own connection, as separate gateway
processes would."""

from __future__ import annotations

import copy
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError

from gateway.errors import XDSError, XDSRegistryBusy
from gateway.hl7.adt import Demographics
from gateway.metadata import vocabulary as v
from gateway.metadata.model import Submission
from gateway.registry import rules
from gateway.registry.database import Database
from gateway.registry.iti42 import Registry
from tests.factories import PATIENT_ID
from tests.integration.registry import builders
from tests.integration.registry.support import column, count_rows

SUBMISSIONS = 50
THREADS = 8


def _run_all(registry: Registry, submissions: list[Submission]) -> list[Any]:
    """Register every submission from THREADS threads released together; return for each
    either the RegistrationResult or the list of error codes."""
    start = threading.Barrier(THREADS)
    started = threading.local()

    def one(submission: Submission) -> Any:
        if not getattr(started, "done", False):
            started.done = True
            start.wait(timeout=30)
        try:
            return registry.register_with_result(submission)
        except XDSError as exc:
            return sorted({e.code for e in exc})

    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(one, submissions, timeout=300))


def _split(outcomes: list[Any]) -> tuple[list[Any], Counter[tuple[str, ...]]]:
    winners = [o for o in outcomes if not isinstance(o, list)]
    losers = Counter(tuple(o) for o in outcomes if isinstance(o, list))
    return winners, losers


def _variant(base: Submission, change: Callable[[Submission, int], None], n: int) -> Submission:
    submission = copy.deepcopy(base)
    change(submission, n)
    return submission


def test_same_submission_set_and_document_unique_ids(registry: Registry, db: Database) -> None:
    """50 submissions share the SubmissionSet uniqueId and the DocumentEntry uniqueId with a
    different hash each: one is registered, 49 get XDSDuplicateUniqueIdInRegistry and
    XDSNonIdenticalHash, and the tables hold exactly one submission."""
    base = builders.documents(1, folder=True)

    def change(submission: Submission, n: int) -> None:
        submission.document_entries[0].hash = f"{n:040x}"
        submission.folders[0].unique_id = builders.new_uid()  # only the SS and DE uids clash

    before = count_rows(db)
    outcomes = _run_all(registry, [_variant(base, change, n) for n in range(SUBMISSIONS)])
    winners, losers = _split(outcomes)
    assert len(winners) == 1
    assert losers == {("XDSDuplicateUniqueIdInRegistry", "XDSNonIdenticalHash"): SUBMISSIONS - 1}
    after = count_rows(db)
    added = {table: after[table] - before[table] for table in after}
    assert added == {
        "submission_set": 1,
        "document_entry": 1,
        "document_unique_id": 1,
        "folder": 1,
        "association": 4,
        "object_code": 7 + 1 + 1,
        "object_author": 2,
        "reference_id": 1,
        "patient": 0,
        "patient_local_id": 0,
    }
    [winner] = winners
    assert column(db, "document_entry", winner.document_entry_ids[0], "hash") in {
        s.document_entries[0].hash for s in [base]
    } | {f"{n:040x}" for n in range(SUBMISSIONS)}


def test_same_document_unique_id_with_different_hashes(registry: Registry, db: Database) -> None:
    """Only the DocumentEntry uniqueId clashes: the first hash registered wins."""
    base = builders.documents(1)

    def change(submission: Submission, n: int) -> None:
        submission.submission_set.unique_id = builders.new_uid()
        submission.document_entries[0].hash = f"{n:040x}"

    outcomes = _run_all(registry, [_variant(base, change, n) for n in range(SUBMISSIONS)])
    winners, losers = _split(outcomes)
    assert len(winners) == 1
    assert losers == {("XDSNonIdenticalHash",): SUBMISSIONS - 1}
    assert count_rows(db)["document_entry"] == 1
    assert count_rows(db)["submission_set"] == 1


def test_identical_resubmissions_at_once_all_succeed(registry: Registry, db: Database) -> None:
    """The same document (uniqueId, hash, size) in 50 submissions at once: all are accepted
    (NIST 12004), one document_unique_id row."""
    base = builders.documents(1)

    def change(submission: Submission, n: int) -> None:
        submission.submission_set.unique_id = builders.new_uid()

    outcomes = _run_all(registry, [_variant(base, change, n) for n in range(SUBMISSIONS)])
    winners, losers = _split(outcomes)
    assert (len(winners), losers) == (SUBMISSIONS, Counter())
    counts = count_rows(db)
    assert counts["document_entry"] == SUBMISSIONS
    assert counts["document_unique_id"] == 1


def test_concurrent_replacements_of_one_original(registry: Registry, db: Database) -> None:
    """Ten replacements of the same document at once: one deprecates it, nine are refused."""
    original = registry.register_with_result(builders.documents(1)).document_entry_ids[0]
    replacements = [builders.replace(original) for _ in range(10)]
    outcomes = _run_all(registry, replacements)
    winners, losers = _split(outcomes)
    assert len(winners) == 1
    assert losers == {("XDSRegistryDeprecatedDocumentError",): 9}
    assert column(db, "document_entry", original, "status") == v.STATUS_DEPRECATED
    assert count_rows(db)["document_entry"] == 2


def test_sqlite_lock_held_too_long_is_registry_busy(tmp_path: Path) -> None:
    """A writer that cannot get SQLite's write lock within busy_timeout: XDSRegistryBusy, and
    nothing of the submission is stored."""
    db = Database(f"sqlite:///{tmp_path / 'registry.sqlite'}", busy_timeout_ms=200)
    db.create_all()
    registry = Registry(db)
    registry.patients.register(PATIENT_ID, Demographics(), other_ids=[])
    holding, release = threading.Event(), threading.Event()

    def hold_the_lock() -> None:
        with db.write():
            holding.set()
            release.wait(timeout=30)

    try:
        with ThreadPoolExecutor(1) as pool:
            holder = pool.submit(hold_the_lock)
            assert holding.wait(timeout=10)
            try:
                with pytest.raises(XDSRegistryBusy):
                    registry.register_document_set(builders.documents(1))
            finally:
                release.set()
            holder.result(timeout=30)
        assert count_rows(db)["document_entry"] == 0
    finally:
        db.dispose()


# -- a lost race, made deterministic: the check "misses" what a concurrent submission committed --
def _blind_check(monkeypatch: pytest.MonkeyPatch, times: int = 1) -> None:
    """Make the next ``times`` checks see no uniqueId in the registry, as a check that ran just
    before a concurrent submission committed would; the constraints must still decide."""
    calls = {"n": 0}
    real_conflicts = rules.registry_conflicts
    real_registered = rules.registered_document_unique_ids

    def conflicts(conn: Any, submission: Submission, registered: Any = None) -> list[XDSError]:
        return [] if calls["n"] <= times else real_conflicts(conn, submission, registered)

    def registered(conn: Any, unique_ids: set[str]) -> dict[str, Any]:
        calls["n"] += 1
        return {} if calls["n"] <= times else real_registered(conn, unique_ids)

    monkeypatch.setattr(rules, "registry_conflicts", conflicts)
    monkeypatch.setattr(rules, "registered_document_unique_ids", registered)


def test_lost_race_on_submission_set_unique_id(
    registry: Registry, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = builders.documents(1)
    registry.register_document_set(first)
    second = builders.documents(1)
    second.submission_set.unique_id = first.submission_set.unique_id
    _blind_check(monkeypatch)
    before = count_rows(db)
    with pytest.raises(XDSError) as info:
        registry.register_document_set(second)
    assert [e.code for e in info.value] == ["XDSDuplicateUniqueIdInRegistry"]
    assert isinstance(info.value.__cause__, IntegrityError)
    assert count_rows(db) == before


def test_lost_race_on_document_unique_id_with_other_hash(
    registry: Registry, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = builders.documents(1)
    registry.register_document_set(first)
    second = builders.documents(1, hash="e" * 40)
    second.document_entries[0].unique_id = first.document_entries[0].unique_id
    _blind_check(monkeypatch)
    with pytest.raises(XDSError) as info:
        registry.register_document_set(second)
    assert [e.code for e in info.value] == ["XDSNonIdenticalHash"]
    assert isinstance(info.value.__cause__, IntegrityError)
    assert count_rows(db)["submission_set"] == 1


def test_lost_race_on_identical_document_is_retried(
    registry: Registry, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two identical documents at once: the loser's insert fails, nothing conflicts, it retries
    and is registered as a resubmission (NIST 12004)."""
    first = builders.documents(1)
    registry.register_document_set(first)
    second = builders.documents(1)
    second.document_entries[0].unique_id = first.document_entries[0].unique_id
    _blind_check(monkeypatch)
    registry.register_document_set(second)
    counts = count_rows(db)
    assert (counts["document_entry"], counts["document_unique_id"]) == (2, 1)
