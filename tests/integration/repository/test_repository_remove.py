"""ITI-86 Remove Documents at the repository: index and bytes go together, and an interrupted
removal is finished by the recovery, never left half-done.

The repository (``system`` fixture: a real gateway on 127.0.0.1, a real SQLite gateway
database, files in a temporary storage folder) removes documents with
``gateway.repository.remove``; a crash between its commit and the unlink is reproduced by running
step 1 alone under the name of a process that holds no lease, then letting the live process's
recovery pass run. Standard: ITI TF-2b §3.86.4.1.3.
"""

from __future__ import annotations

import time

import pytest

from gateway.errors import XDSErrorList, XDSRepositoryError
from gateway.metadata.retrieve import DocumentRequest
from gateway.repository import remove
from gateway.repository.index import ORPHAN_PREFIX
from gateway.repository.storage import LocalFolderStorage
from gateway.soap.transactions import ITI_41
from tests.integration.repository.repo_support import (
    REPOSITORY_UID,
    RepositorySystem,
    provide_body,
    status_of,
    stored_files,
    submission_with,
)


def _store(system: RepositorySystem, *contents: bytes, prefix: str) -> list[str]:
    submission = submission_with(list(contents), prefix=prefix)
    body, attachments = provide_body(submission, list(contents))
    assert status_of(system.client().call(ITI_41, body, attachments).body) == "Success"
    return [e.unique_id or "" for e in submission.document_entries]


def _requests(*uids: str) -> list[DocumentRequest]:
    return [
        DocumentRequest(repository_unique_id=REPOSITORY_UID, document_unique_id=u) for u in uids
    ]


def test_a_removal_interrupted_after_its_commit_is_finished_by_the_recovery(
    system: RepositorySystem,
) -> None:
    (uid,) = _store(system, b"to be removed", prefix="86")
    index = system.repository.index
    key = index.get(uid).storage_key  # type: ignore[union-attr]
    assert len(stored_files(system.root)) == 1
    # Step 1 only, by a process that then "died" (it never held a lease).
    remove._retire(index, [uid], unique_id=REPOSITORY_UID, owner="crashed-process", now=time.time())
    assert index.get(uid) is None  # no longer served from the moment of the commit
    assert stored_files(system.root)  # the bytes are still there: the crash came before unlink
    system.repository.recovery.resolve()
    assert stored_files(system.root) == []
    assert index.get(f"{ORPHAN_PREFIX}{key}") is None and index.storage_keys() == set()


def test_a_failed_unlink_answers_an_error_and_is_retried(
    system: RepositorySystem, monkeypatch: pytest.MonkeyPatch
) -> None:
    (uid,) = _store(system, b"stubborn", prefix="87")
    storage = system.repository.storage
    assert isinstance(storage, LocalFolderStorage)
    real_delete = storage.delete

    def refuse(key: str) -> None:
        raise PermissionError(13, "read-only for the test", str(storage.path(key)))

    monkeypatch.setattr(storage, "delete", refuse)
    with pytest.raises(XDSRepositoryError):
        remove.remove_documents(system.repository, _requests(uid))
    assert system.repository.index.get(uid) is None and stored_files(system.root)
    monkeypatch.setattr(storage, "delete", real_delete)
    system.repository.recovery.resolve()  # this process's own reservation, marked unresolved
    assert stored_files(system.root) == [] and system.repository.index.storage_keys() == set()


def test_refused_requests_change_nothing(system: RepositorySystem) -> None:
    uids = _store(system, b"one", b"two", prefix="88")
    before = stored_files(system.root)
    for wrong in (
        _requests(uids[0], "1.2.3.4456"),
        [
            *_requests(uids[1]),
            DocumentRequest(repository_unique_id="1.2.1.1.1", document_unique_id=uids[0]),
        ],
    ):
        with pytest.raises(XDSErrorList):
            remove.remove_documents(system.repository, wrong)
    assert stored_files(system.root) == before
    assert all(system.repository.index.get(u) is not None for u in uids)
    assert remove.remove_documents(system.repository, _requests(*uids)) == uids
    assert stored_files(system.root) == []
