"""LocalFolderStorage: uniqueId-addressed keys, atomic durable stores, orphans and staging."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from gateway.repository import storage as storage_module
from gateway.repository.storage import LocalFolderStorage, storage_key
from gateway.soap.message import Attachment

UID = "1.3.6.1.4.1.21367.2024.99.1"


def spooled(tmp_path: Path, data: bytes) -> Attachment:
    path = tmp_path / "spool.part"
    path.write_bytes(data)
    return Attachment(content_id="c@x", path=path, owned=True)


def test_key_is_sha256_of_the_unique_id() -> None:
    assert storage_key(UID) == hashlib.sha256(UID.encode()).hexdigest()
    assert storage_key("1.2^ext") != storage_key("1.2")


def test_store_bytes_and_serve_them(tmp_path: Path) -> None:
    store = LocalFolderStorage(tmp_path / "repo")
    key = storage_key(UID)
    store.store(key, Attachment.from_bytes(b"hello"))
    assert store.path(key) == tmp_path / "repo" / "documents" / key[:2] / key
    served = store.attachment(key, content_type="text/plain", content_id="x@y")
    assert (served.read_bytes(), served.content_type, served.owned) == (
        b"hello",
        "text/plain",
        False,
    )
    assert store.size(key) == 5
    assert list(store.keys()) == [key]
    assert list(store.staging.iterdir()) == []


def test_owned_spool_file_is_renamed_not_copied(tmp_path: Path) -> None:
    store = LocalFolderStorage(tmp_path / "repo")
    attachment = spooled(tmp_path, b"x" * 1000)
    inode = os.stat(attachment.path).st_ino
    key = storage_key(UID)
    store.store(key, attachment)
    assert os.stat(store.path(key)).st_ino == inode
    assert attachment.path == store.path(key) and not attachment.owned
    assert not (tmp_path / "spool.part").exists()
    attachment.discard()  # the request's clean-up must not remove the stored file
    assert store.path(key).read_bytes() == b"x" * 1000


def test_not_owned_file_is_copied(tmp_path: Path) -> None:
    store = LocalFolderStorage(tmp_path / "repo")
    source = tmp_path / "mine.bin"
    source.write_bytes(b"keep me")
    store.store(storage_key(UID), Attachment.from_file(source))
    assert source.read_bytes() == b"keep me"
    assert store.path(storage_key(UID)).read_bytes() == b"keep me"


def test_store_fsyncs_file_and_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = LocalFolderStorage(tmp_path / "repo")
    synced: list[str] = []
    real = os.fsync

    def record(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(storage_module.os, "fsync", record)
    key = storage_key(UID)
    store.store(key, Attachment.from_bytes(b"data"))
    final = store.path(key)
    assert str(final.parent) == synced[-1]  # the directory after the rename
    assert any(p.startswith(str(store.staging)) for p in synced[:-1])  # the content before it
    synced.clear()
    store.store(storage_key("other"), spooled(tmp_path, b"spool"))
    assert str(tmp_path / "spool.part") in synced  # the spooled file before its rename


def test_failed_store_leaves_nothing(tmp_path: Path) -> None:
    store = LocalFolderStorage(tmp_path / "repo")

    class Broken(Attachment):
        def chunks(self, size: int = 1) -> object:
            yield b"partial"
            raise OSError("disk on fire")

    with pytest.raises(OSError, match="disk on fire"):
        store.store(storage_key(UID), Broken(content_id="c", data=b"ignored"))
    assert list(store.keys()) == [] and list(store.staging.iterdir()) == []


def test_delete_and_recover(tmp_path: Path) -> None:
    store = LocalFolderStorage(tmp_path / "repo")
    key = storage_key(UID)
    store.store(key, Attachment.from_bytes(b"a"))
    (store.staging / "left-by-a-crash.tmp").write_bytes(b"half")
    store.recover()
    assert list(store.staging.iterdir()) == []
    store.delete(key)
    store.delete(key)  # idempotent
    assert store.size(key) is None
    with pytest.raises(FileNotFoundError):
        store.attachment(key, content_type="text/plain")


def test_staging_is_per_process_and_only_gone_processes_are_cleared(tmp_path: Path) -> None:
    peer = LocalFolderStorage(tmp_path / "repo", owner="peer")  # a live process's folder
    (peer.staging / "in-progress.tmp").write_bytes(b"half")
    gone = peer.staging_root / "gone"  # a crashed process's folder: nobody holds its lock
    gone.mkdir()
    (gone / "left.tmp").write_bytes(b"half")
    (peer.staging_root / "left-by-an-earlier-version.tmp").write_bytes(b"half")
    mine = LocalFolderStorage(tmp_path / "repo", owner="me")
    mine.recover()
    left = sorted(
        str(p.relative_to(mine.staging_root))
        for p in mine.staging_root.rglob("*")
        if ".owners" not in p.parts
    )
    assert left == ["me", "peer", "peer/in-progress.tmp"]
    peer.close()  # a clean stop removes the process's own folder
    mine.close()
    assert [p.name for p in mine.staging_root.iterdir()] == [".owners"]


def test_foreign_files_are_not_keys_and_bad_keys_are_refused(tmp_path: Path) -> None:
    store = LocalFolderStorage(tmp_path / "repo")
    (store.documents / "ab" / "README").write_text("not a document")
    assert list(store.keys()) == []
    with pytest.raises(ValueError):
        store.path("../../etc/passwd")
