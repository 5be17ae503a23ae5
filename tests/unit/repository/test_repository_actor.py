"""The Repository actor without sockets, on SQLite and PostgreSQL: the write path, its failure
paths, recovery after a simulated SIGKILL at each step (a ``Crash`` that skips every clean-up, as a
kill would, then the killed process's lease runs out), and two processes sharing one index and
storage folder (a live process's reservation is never resolved by another)."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from sqlalchemy import update

from gateway.errors import XDSErrorList, XDSRegistryNotAvailable
from gateway.metadata.ebrim import parse_submit_objects_request
from gateway.metadata.model import Submission
from gateway.metadata.retrieve import DocumentRequest, Status, build_registry_response
from gateway.repository.actor import Repository
from gateway.repository.index import CONFIRMED, PENDING, UNRESOLVED, StoredDocument
from gateway.repository.model import ProvidedDocument
from gateway.repository.schema import repository_document
from gateway.repository.storage import storage_key
from gateway.soap.message import Attachment
from tests.factories import UID_ROOT, make_submission
from tests.support.site import Site, site_at

REPO = "1.3.6.1.4.1.21367.13.40.100"
DATA = b"document bytes\n"


class Crash(BaseException):
    """The process dies here: no except/finally of the repository may clean up after it."""


class Registry:
    """A registry double implementing RegistryClient directly."""

    def __init__(self) -> None:
        self.listed: set[str] = set()
        self.status = Status.SUCCESS
        self.reachable = True
        self.crash_after_commit = False
        self.requests: list[etree._Element] = []

    def register(self, request: etree._Element) -> etree._Element:
        self.requests.append(request)
        if not self.reachable:
            raise XDSRegistryNotAvailable("down")
        if self.status == Status.SUCCESS:
            entries = parse_submit_objects_request(request).document_entries
            self.listed.update(e.unique_id or "" for e in entries)
        if self.crash_after_commit:
            raise Crash
        return build_registry_response(self.status)

    def is_registered(self, unique_id: str, repository_unique_id: str) -> bool | None:
        assert repository_unique_id == REPO
        return unique_id in self.listed if self.reachable else None


def submission(n: int = 1) -> Submission:
    sub = make_submission(entries=n)
    for entry in sub.document_entries:
        entry.hash = entry.size = entry.repository_unique_id = None
        entry.mime_type = "text/plain"
    return sub


def documents(n: int = 1, data: bytes = DATA) -> list[ProvidedDocument]:
    return [
        ProvidedDocument(id=f"Document{i:02d}", attachment=Attachment.from_bytes(data))
        for i in range(1, n + 1)
    ]


def files(root: Path) -> list[bytes]:
    return sorted(p.read_bytes() for p in (root / "documents").rglob("*") if p.is_file())


OPENED: list[Repository] = []


@pytest.fixture
def site(db_url: str) -> Iterator[Site]:
    with site_at(db_url) as opened:
        yield opened
        while OPENED:
            OPENED.pop().stop()


def open_repo(root: Path, registry: Registry, site: Site, **kwargs: Any) -> Repository:
    """The repository of one (new) gateway process on ``site``."""
    owner = site.process().owner
    repo = Repository.open(
        root, unique_id=REPO, registry=registry, engine=site.engine, owner=owner, **kwargs
    )
    OPENED.append(repo)
    return repo


def uid(n: int) -> str:
    return f"{UID_ROOT}.{n}"


def served(repo: Repository, unique_id: str) -> bytes | None:
    request = DocumentRequest(repository_unique_id=REPO, document_unique_id=unique_id)
    result = repo.retrieve([request])
    return result.documents[0].attachment.read_bytes() if result.documents else None


def test_success_stores_confirms_and_serves(tmp_path: Path, site: Site) -> None:
    registry = Registry()
    repo = open_repo(tmp_path, registry, site)
    response = repo.provide(submission(2), documents(2))
    assert response.get("status") == Status.SUCCESS
    assert files(tmp_path) == [DATA, DATA]
    assert repo.index.counts()[CONFIRMED] == 2
    assert served(repo, uid(2)) == DATA
    [entry, _] = parse_submit_objects_request(registry.requests[0]).document_entries
    assert (entry.hash, entry.size) == (hashlib.sha1(DATA).hexdigest(), len(DATA))


def test_failure_leaves_nothing(tmp_path: Path, site: Site) -> None:
    registry = Registry()
    registry.status = Status.FAILURE
    repo = open_repo(tmp_path, registry, site)
    repo.provide(submission(), documents())
    assert files(tmp_path) == []
    assert repo.index.counts() == {PENDING: 0, UNRESOLVED: 0, CONFIRMED: 0}


def test_failed_resubmission_keeps_the_original(tmp_path: Path, site: Site) -> None:
    registry = Registry()
    repo = open_repo(tmp_path, registry, site)
    repo.provide(submission(), documents())
    registry.status = Status.FAILURE
    repo.provide(submission(), documents())  # identical resubmission, rejected by the registry
    assert files(tmp_path) == [DATA]
    assert served(repo, uid(1)) == DATA


def test_metadata_errors_are_all_reported_before_anything_is_stored(
    tmp_path: Path, site: Site
) -> None:
    registry = Registry()
    repo = open_repo(tmp_path, registry, site)
    sub = submission(2)
    sub.document_entries[0].size = 1
    sub.document_entries[1].class_code = None
    with pytest.raises(XDSErrorList) as raised:
        stray = ProvidedDocument(id="X", attachment=Attachment.from_bytes(b""))
        repo.provide(sub, [*documents(1), stray])
    found = sorted(e.code for e in raised.value)
    assert found == sorted(
        [
            "XDSRepositoryMetadataError",  # size
            "XDSRepositoryMetadataError",  # classCode missing
            "XDSMissingDocument",
            "XDSMissingDocumentMetadata",
        ]
    )
    assert registry.requests == [] and files(tmp_path) == []


def test_a_unique_id_in_flight_elsewhere_is_busy(tmp_path: Path, site: Site) -> None:
    registry = Registry()
    repo = open_repo(tmp_path, registry, site)
    busy = StoredDocument(
        unique_id=uid(1), storage_key=storage_key(uid(1)), hash="0" * 40, size=1, mime_type="x/y"
    )
    repo.index.reserve([busy], owner="another-request", now=time.time(), accept=lambda a, b: False)
    with pytest.raises(XDSErrorList) as raised:
        repo.provide(submission(), documents())
    assert [e.code for e in raised.value] == ["XDSRepositoryBusy"]


def test_unknown_outcome_then_resolved(tmp_path: Path, site: Site) -> None:
    registry = Registry()
    registry.reachable = False
    repo = open_repo(tmp_path, registry, site)
    with pytest.raises(XDSRegistryNotAvailable):
        repo.provide(submission(), documents())
    assert repo.index.counts()[UNRESOLVED] == 1
    assert served(repo, uid(1)) is None  # unsettled: not served
    assert repo.recovery.resolve() == 1  # still unreachable: kept
    registry.reachable = True
    assert repo.recovery.resolve() == 0
    assert files(tmp_path) == []  # the registry never listed it


def crash_during(repo: Repository, registry: Registry, site: Site, *, after_commit: bool) -> None:
    """Run provide() until a kill: before the registry commits, or after it; the killed
    process's lease then runs out (it renews no more)."""
    if after_commit:
        registry.crash_after_commit = True
    else:
        registry.reachable = False

    def killed(*_args: object) -> None:
        raise Crash

    repo._settle_unknown = killed  # type: ignore[method-assign]
    with pytest.raises(Crash):
        repo.provide(submission(), documents())
    registry.crash_after_commit, registry.reachable = False, True
    site.expire(repo.owner)


def test_kill_before_registration_then_restart_removes_the_file(tmp_path: Path, site: Site) -> None:
    registry = Registry()
    crash_during(open_repo(tmp_path, registry, site), registry, site, after_commit=False)
    assert files(tmp_path) == [DATA]  # placed, pending
    restarted = open_repo(tmp_path, registry, site)
    restarted.start()
    try:
        assert files(tmp_path) == []
        assert restarted.index.counts() == {PENDING: 0, UNRESOLVED: 0, CONFIRMED: 0}
    finally:
        restarted.stop()


def test_kill_after_registration_then_restart_serves_the_document(
    tmp_path: Path, site: Site
) -> None:
    registry = Registry()
    crash_during(open_repo(tmp_path, registry, site), registry, site, after_commit=True)
    restarted = open_repo(tmp_path, registry, site)
    restarted.start()
    try:
        assert served(restarted, uid(1)) == DATA
    finally:
        restarted.stop()


def test_kill_with_registry_unreachable_at_restart(tmp_path: Path, site: Site) -> None:
    registry = Registry()
    crash_during(open_repo(tmp_path, registry, site), registry, site, after_commit=True)
    registry.reachable = False
    restarted = open_repo(tmp_path, registry, site, retry_seconds=0.05)
    restarted.start()
    try:
        assert served(restarted, uid(1)) is None  # unknown yet: not served, not deleted
        assert files(tmp_path) == [DATA]
        registry.reachable = True
        deadline = time.monotonic() + 10
        while served(restarted, uid(1)) is None and time.monotonic() < deadline:
            time.sleep(0.02)  # polling the background resolver, with a deadline
        assert served(restarted, uid(1)) == DATA
    finally:
        restarted.stop()


def test_orphans_and_staging_leftovers_are_removed_at_start(tmp_path: Path, site: Site) -> None:
    registry = Registry()
    repo = open_repo(tmp_path, registry, site)
    repo.provide(submission(), documents())
    orphan_key = storage_key("1.2.3.orphan")
    repo.storage.store(orphan_key, Attachment.from_bytes(b"orphan"))  # a file without a row
    (tmp_path / "staging" / "x.tmp").write_bytes(b"half")
    restarted = open_repo(tmp_path, registry, site)
    restarted.start()
    restarted.stop()
    assert files(tmp_path) == [DATA]
    left = [p for p in (tmp_path / "staging").rglob("*") if p.is_file()]
    assert [p for p in left if ".owners" not in p.parts] == []  # locks of live processes stay


def test_settle_time_protects_young_unsettled_documents(tmp_path: Path, site: Site) -> None:
    registry = Registry()
    crash_during(open_repo(tmp_path, registry, site), registry, site, after_commit=False)
    now = [time.time()]
    restarted = open_repo(tmp_path, registry, site, settle_seconds=60)
    restarted.recovery.clock = lambda: now[0]
    assert restarted.recovery.resolve() == 1  # too young to judge "not registered"
    assert files(tmp_path) == [DATA]
    now[0] += 61
    assert restarted.recovery.resolve() == 0
    assert files(tmp_path) == []


# -- two processes on one index and storage folder (issue 15) ------------------------------------


class SlowRegistry(Registry):
    """A registry that takes its time: ``register`` waits until the test lets it commit."""

    def __init__(self) -> None:
        super().__init__()
        self.received = threading.Event()
        self.commit = threading.Event()

    def register(self, request: etree._Element) -> etree._Element:
        self.received.set()
        assert self.commit.wait(30), "the test never let the registry commit"
        return super().register(request)


def test_recovery_of_another_process_spares_a_live_reservation(tmp_path: Path, site: Site) -> None:
    """The reproduced loss: owner A reserves and writes a document; owner B starts (orphan
    sweep, recovery) while A's registry has not committed yet. A's lease is alive: B leaves
    A's file and row alone, and A's document is confirmed and served."""
    registry = SlowRegistry()
    a = open_repo(tmp_path, registry, site)
    answers: list[etree._Element] = []
    provide = threading.Thread(target=lambda: answers.append(a.provide(submission(), documents())))
    provide.start()
    try:
        assert registry.received.wait(30)  # A's file is placed, its ITI-42 is on its way
        b = open_repo(tmp_path, registry, site)
        b.start()  # B's whole start-up recovery, with the registry not listing A's document
        assert b.recovery.resolve() == 0
        row = a.index.get(uid(1))
        assert row is not None and (row.state, row.owner) == (PENDING, a.owner)
        assert files(tmp_path) == [DATA]
    finally:
        registry.commit.set()
        provide.join(30)
    assert answers and answers[0].get("status") == Status.SUCCESS
    assert a.index.get(uid(1)).state == CONFIRMED
    assert served(b, uid(1)) == DATA


def test_work_of_a_process_whose_lease_expired_is_resolved(tmp_path: Path, site: Site) -> None:
    """A is gone (its lease ran out) with two documents unsettled: the registered one is
    confirmed by B, the other one deleted, file and row."""
    registry = Registry()
    a = open_repo(tmp_path, registry, site)
    crash_during(a, registry, site, after_commit=True)  # registered, A killed before confirming
    sub = submission()
    sub.document_entries[0].unique_id = uid(2)
    registry.reachable = False
    a._settle_unknown = lambda _items: None  # type: ignore[method-assign]  # killed again
    with pytest.raises(XDSRegistryNotAvailable):
        a.provide(sub, documents(data=b"never registered"))
    registry.reachable = True
    assert {r.unique_id: r.state for r in (a.index.get(uid(1)), a.index.get(uid(2))) if r} == {
        uid(1): PENDING,
        uid(2): PENDING,
    }
    b = open_repo(tmp_path, registry, site)
    b.start()
    assert b.recovery.resolve() == 0
    assert served(b, uid(1)) == DATA
    assert b.index.get(uid(2)) is None
    assert files(tmp_path) == [DATA]


def test_a_gone_process_is_waited_for_until_its_lease_runs_out(tmp_path: Path, site: Site) -> None:
    registry = Registry()
    a = open_repo(tmp_path, registry, site)
    crash_during(a, registry, site, after_commit=False)
    lease = site.process()  # A again, but alive: its lease holds
    with site.engine.begin() as conn:
        conn.execute(
            update(repository_document).values(owner=lease.owner)
        )  # the killed run's row now belongs to a process whose lease still holds
    b = open_repo(tmp_path, registry, site)
    b.start()
    assert files(tmp_path) == [DATA] and b.index.counts()[PENDING] == 1
    site.expire(lease)
    assert b.recovery.resolve() == 0
    assert files(tmp_path) == [] and b.index.counts()[PENDING] == 0
