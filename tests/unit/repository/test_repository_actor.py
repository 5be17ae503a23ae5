"""The Repository actor without sockets: the write path, its failure paths, and recovery after a
simulated SIGKILL at each step (a ``Crash`` that skips every clean-up, as a kill would)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import etree

from gateway.errors import XDSErrorList, XDSRegistryNotAvailable
from gateway.metadata.ebrim import parse_submit_objects_request
from gateway.metadata.model import Submission
from gateway.metadata.retrieve import DocumentRequest, Status, build_registry_response
from gateway.repository.actor import Repository
from gateway.repository.index import CONFIRMED, PENDING, UNRESOLVED, StoredDocument
from gateway.repository.model import ProvidedDocument
from gateway.repository.storage import storage_key
from gateway.soap.message import Attachment
from tests.factories import UID_ROOT, make_submission

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


@pytest.fixture(autouse=True)
def _close_repositories() -> Iterator[None]:
    yield
    while OPENED:
        OPENED.pop().stop()


def open_repo(root: Path, registry: Registry, **kwargs: object) -> Repository:
    repo = Repository.open(root, unique_id=REPO, registry=registry, **kwargs)
    OPENED.append(repo)
    return repo


def uid(n: int) -> str:
    return f"{UID_ROOT}.{n}"


def served(repo: Repository, unique_id: str) -> bytes | None:
    request = DocumentRequest(repository_unique_id=REPO, document_unique_id=unique_id)
    result = repo.retrieve([request])
    return result.documents[0].attachment.read_bytes() if result.documents else None


def test_success_stores_confirms_and_serves(tmp_path: Path) -> None:
    registry = Registry()
    repo = open_repo(tmp_path, registry)
    response = repo.provide(submission(2), documents(2))
    assert response.get("status") == Status.SUCCESS
    assert files(tmp_path) == [DATA, DATA]
    assert repo.index.counts()[CONFIRMED] == 2
    assert served(repo, uid(2)) == DATA
    [entry, _] = parse_submit_objects_request(registry.requests[0]).document_entries
    assert (entry.hash, entry.size) == (hashlib.sha1(DATA).hexdigest(), len(DATA))


def test_failure_leaves_nothing(tmp_path: Path) -> None:
    registry = Registry()
    registry.status = Status.FAILURE
    repo = open_repo(tmp_path, registry)
    repo.provide(submission(), documents())
    assert files(tmp_path) == []
    assert repo.index.counts() == {PENDING: 0, UNRESOLVED: 0, CONFIRMED: 0}


def test_failed_resubmission_keeps_the_original(tmp_path: Path) -> None:
    registry = Registry()
    repo = open_repo(tmp_path, registry)
    repo.provide(submission(), documents())
    registry.status = Status.FAILURE
    repo.provide(submission(), documents())  # identical resubmission, rejected by the registry
    assert files(tmp_path) == [DATA]
    assert served(repo, uid(1)) == DATA


def test_metadata_errors_are_all_reported_before_anything_is_stored(tmp_path: Path) -> None:
    registry = Registry()
    repo = open_repo(tmp_path, registry)
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


def test_a_unique_id_in_flight_elsewhere_is_busy(tmp_path: Path) -> None:
    registry = Registry()
    repo = open_repo(tmp_path, registry)
    busy = StoredDocument(
        unique_id=uid(1), storage_key=storage_key(uid(1)), hash="0" * 40, size=1, mime_type="x/y"
    )
    repo.index.reserve([busy], owner="another-request", now=time.time(), accept=lambda a, b: False)
    with pytest.raises(XDSErrorList) as raised:
        repo.provide(submission(), documents())
    assert [e.code for e in raised.value] == ["XDSRepositoryBusy"]


def test_unknown_outcome_then_resolved(tmp_path: Path) -> None:
    registry = Registry()
    registry.reachable = False
    repo = open_repo(tmp_path, registry)
    with pytest.raises(XDSRegistryNotAvailable):
        repo.provide(submission(), documents())
    assert repo.index.counts()[UNRESOLVED] == 1
    assert served(repo, uid(1)) is None  # unsettled: not served
    assert repo.recovery.resolve() == 1  # still unreachable: kept
    registry.reachable = True
    assert repo.recovery.resolve() == 0
    assert files(tmp_path) == []  # the registry never listed it


def crash_during(repo: Repository, registry: Registry, *, after_commit: bool) -> None:
    """Run provide() until a kill: before the registry commits, or after it."""
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


def test_kill_before_registration_then_restart_removes_the_file(tmp_path: Path) -> None:
    registry = Registry()
    crash_during(open_repo(tmp_path, registry), registry, after_commit=False)
    assert files(tmp_path) == [DATA]  # placed, pending
    restarted = open_repo(tmp_path, registry)
    restarted.start()
    try:
        assert files(tmp_path) == []
        assert restarted.index.counts() == {PENDING: 0, UNRESOLVED: 0, CONFIRMED: 0}
    finally:
        restarted.stop()


def test_kill_after_registration_then_restart_serves_the_document(tmp_path: Path) -> None:
    registry = Registry()
    crash_during(open_repo(tmp_path, registry), registry, after_commit=True)
    restarted = open_repo(tmp_path, registry)
    restarted.start()
    try:
        assert served(restarted, uid(1)) == DATA
    finally:
        restarted.stop()


def test_kill_with_registry_unreachable_at_restart(tmp_path: Path) -> None:
    registry = Registry()
    crash_during(open_repo(tmp_path, registry), registry, after_commit=True)
    registry.reachable = False
    restarted = open_repo(tmp_path, registry, retry_seconds=0.05)
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


def test_orphans_and_staging_leftovers_are_removed_at_start(tmp_path: Path) -> None:
    registry = Registry()
    repo = open_repo(tmp_path, registry)
    repo.provide(submission(), documents())
    orphan_key = storage_key("1.2.3.orphan")
    repo.storage.store(orphan_key, Attachment.from_bytes(b"orphan"))  # a file without a row
    (tmp_path / "staging" / "x.tmp").write_bytes(b"half")
    restarted = open_repo(tmp_path, registry)
    restarted.start()
    restarted.stop()
    assert files(tmp_path) == [DATA]
    assert list((tmp_path / "staging").iterdir()) == []


def test_settle_time_protects_young_unsettled_documents(tmp_path: Path) -> None:
    registry = Registry()
    crash_during(open_repo(tmp_path, registry), registry, after_commit=False)
    now = [time.time()]
    restarted = open_repo(tmp_path, registry, settle_seconds=60)
    restarted.recovery.clock = lambda: now[0]
    assert restarted.recovery.resolve() == 1  # too young to judge "not registered"
    assert files(tmp_path) == [DATA]
    now[0] += 61
    assert restarted.recovery.resolve() == 0
    assert files(tmp_path) == []
