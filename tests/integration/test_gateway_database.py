"""The gateway database (issue 15): upgrading a deployment of the previous version without
losing a row, ``xdsi-gateway db upgrade``, one ``serve`` per embedded SQLite data folder, and
``/health`` reporting the database and the storage folders."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Index, MetaData, Table, insert, select

from gateway.app import Gateway
from gateway.config import load_settings
from gateway.database import Database
from gateway.database.engine import write_transaction
from gateway.database.migrate import HEAD, alembic_config
from gateway.imaging.index import ImagingIndex, InstanceRecord
from gateway.imaging.schema import imaging_instance, imaging_pending_manifest, imaging_study
from gateway.imaging.schema import metadata as imaging_metadata
from gateway.metadata.retrieve import DocumentRequest
from gateway.registry.schema import patient
from gateway.repository.storage import storage_key
from tests.integration.repository.serve_process import ROOT, ServeProcess

REPOSITORY_UID = "1.3.6.1.4.1.21367.13.40.100"
ISOLATED_PORTS = {
    "XDSI_HTTP_PORT": "0",
    "XDSI_HL7_MLLP_PORT": "0",
    "XDSI_IMAGING_SOURCE_DICOM_PORT": "0",
}

# The repository index file of the previous version (gateway/repository/index.py before issue 15).
OLD_INDEX_SCHEMA = """
CREATE TABLE document (
    unique_id   TEXT PRIMARY KEY,
    storage_key TEXT NOT NULL,
    hash        TEXT NOT NULL,
    size        INTEGER NOT NULL,
    mime_type   TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('pending', 'unresolved', 'confirmed')),
    owner       TEXT NOT NULL,
    created     REAL NOT NULL
)
"""


def previous_imaging_tables() -> MetaData:
    """The imaging tables as the previous version's create_all made them (no owners)."""
    old = MetaData()
    for table in imaging_metadata.sorted_tables:
        columns = [c._copy() for c in table.columns if c.name not in {"claimed_by", "owner"}]
        copy = Table(table.name, old, *columns)
        for index in table.indexes:
            Index(index.name, *[copy.c[c.name] for c in index.columns])
    return old


def make_previous_version(url: str, data_dir: Path) -> dict[str, bytes]:
    """A deployment of the previous version: registry at revision 0001, imaging tables by
    create_all with a claimed study and a pending manifest, and the repository's own index
    file with a confirmed and a pending document (both files stored). Returns the files."""
    database = Database(url)
    try:
        with write_transaction(database.engine) as conn:
            config = alembic_config(url)
            config.attributes["connection"] = conn
            command.upgrade(config, "0001_initial")
            previous_imaging_tables().create_all(conn)
            conn.execute(insert(patient).values(patient_id="P^^^&1.2&ISO", updated="20240101"))
            conn.execute(
                insert(imaging_study).values(
                    study_instance_uid="1.2.3",
                    state="publishing",
                    first_received=1.0,
                    last_received=2.0,
                    claimed_at=3.0,
                    publish_count=0,
                )
            )
            conn.execute(
                insert(imaging_instance).values(
                    sop_instance_uid="1.2.3.4",
                    sop_class_uid="1.2.840.10008.5.1.4.1.1.2",
                    study_instance_uid="1.2.3",
                    series_instance_uid="1.2.3.1",
                    transfer_syntax_uid="1.2.840.10008.1.2.1",
                    path="1.2.3/1.2.3.1/1.2.3.4.dcm",
                    size=10,
                    received_at=2.0,
                )
            )
            conn.execute(
                insert(imaging_pending_manifest).values(
                    study_instance_uid="1.2.3",
                    sop_instance_uid="2.25.5",
                    series_instance_uid="2.25.6",
                    entry_uuid="urn:uuid:x",
                    patient_id="P^^^&1.2&ISO",
                    instance_count=1,
                    instances_digest="d" * 64,
                    content_id="kos@x",
                    request=b"<request/>",
                    kos=b"DICM",
                    created_at=3.0,
                )
            )
    finally:
        database.dispose()
    files = {"1.9.1": b"confirmed document\n", "1.9.2": b"never registered\n"}
    root = data_dir / "repository"
    root.mkdir(parents=True)
    index = sqlite3.connect(root / "index.sqlite")
    with index:
        index.execute(OLD_INDEX_SCHEMA)
        for state, uid in (("confirmed", "1.9.1"), ("pending", "1.9.2")):
            key = storage_key(uid)
            (root / "documents" / key[:2]).mkdir(parents=True, exist_ok=True)
            (root / "documents" / key[:2] / key).write_bytes(files[uid])
            index.execute(
                "INSERT INTO document VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (uid, key, "0" * 40, len(files[uid]), "text/plain", state, "old-run", 1.0),
            )
    index.close()
    return files


def test_upgrade_from_the_previous_version_keeps_every_row(db_url: str, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    files = make_previous_version(db_url, data_dir)
    settings = load_settings(
        environ={
            **ISOLATED_PORTS,
            "XDSI_GATEWAY_DATA_DIR": str(data_dir),
            "XDSI_GATEWAY_DATABASE_URL": db_url,
        }
    )
    gateway = Gateway(settings)  # migrates, imports the old index
    try:
        assert gateway.database.revision() == HEAD
        with gateway.database.read() as conn:
            assert conn.execute(select(patient.c.patient_id)).scalars().all() == ["P^^^&1.2&ISO"]
        imaging = gateway.imaging
        assert imaging is not None
        assert imaging.index.instance("1.2.3.4") is not None
        assert imaging.index.release_orphaned_claims() == 1  # its worker is long gone
        assert imaging.index.claim("1.2.3", ("receiving",)) is not None
        pending = imaging.index.take_pending("1.2.3")
        assert pending is not None and pending.kos == b"DICM"

        repository = gateway.repository
        assert repository is not None
        assert (data_dir / "repository" / "index.sqlite.imported").is_file()
        assert not (data_dir / "repository" / "index.sqlite").exists()
        repository.start()  # recovery: the old run's pending document was never registered
        answer = repository.retrieve(
            [DocumentRequest(repository_unique_id=REPOSITORY_UID, document_unique_id="1.9.1")]
        )
        assert [d.attachment.read_bytes() for d in answer.documents] == [files["1.9.1"]]
        assert repository.index.get("1.9.2") is None
        stored = [p.read_bytes() for p in (data_dir / "repository").rglob("*") if p.is_file()]
        assert files["1.9.2"] not in stored
    finally:
        gateway.stop()
    again = Gateway(settings)  # a second start imports nothing and keeps everything
    try:
        assert again.repository is not None
        assert again.repository.index.get("1.9.1") is not None
    finally:
        again.stop()


def test_db_upgrade_command(db_url: str, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "XDSI_GATEWAY_DATA_DIR": str(tmp_path),
        "XDSI_GATEWAY_DATABASE_URL": db_url,
    }
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "db", "upgrade"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("database schema is up to date at ")
    database = Database(db_url)
    try:
        assert database.revision() == HEAD
    finally:
        database.dispose()


def test_a_second_serve_on_the_same_sqlite_data_dir_exits_2(tmp_path: Path) -> None:
    first = ServeProcess(tmp_path / "data")
    try:
        result = subprocess.run(
            [sys.executable, "-m", "gateway", "serve"],
            cwd=ROOT,
            env=first.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 2
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert f"pid {first.pid}" in lines[0] and "gateway.database_url" in lines[0]
        assert first.proc.poll() is None  # the first one serves on
    finally:
        first.stop()
    restarted = ServeProcess(tmp_path / "data")  # the lock goes with its process
    restarted.stop()
    assert restarted.proc.returncode == 0


def test_sqlite_commits_are_durable_beside_journaled_imaging_rows(tmp_path: Path) -> None:
    """On the shared SQLite database every commit (an ITI-42 registration through
    ``Database.write``) runs with ``synchronous=FULL``; the imaging journal's NORMAL commit of a
    C-STORE row changes its own transaction only, on the connection the registry uses next."""
    database = Database(f"sqlite:///{tmp_path / 'registry.sqlite'}")
    try:
        database.upgrade()
        assert database.engine.pool.checkedin() == 1  # one pooled connection, shared below
        index = ImagingIndex(database.engine, owner="test-owner")
        row = InstanceRecord(
            sop_instance_uid="1.2.3.4",
            sop_class_uid="1.2.840.10008.5.1.4.1.1.2",
            study_instance_uid="1.2.3",
            series_instance_uid="1.2.3.1",
            transfer_syntax_uid="1.2.840.10008.1.2.1",
            path="1.2.3/1.2.3.1/1.2.3.4.dcm",
            size=10,
        )
        index.record_instances([row], durable=False)
        assert database.engine.pool.checkedin() == 1
        with database.write() as conn:
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
            conn.execute(insert(patient).values(patient_id="P^^^&1.2&ISO", updated="20240101"))
        with database.read() as conn:
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2
    finally:
        database.dispose()


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Gateway]:
    settings = load_settings(
        environ={**ISOLATED_PORTS, "XDSI_GATEWAY_DATA_DIR": str(tmp_path / "data")}
    )
    running = Gateway(settings)
    running.start()
    try:
        yield running
    finally:
        running.stop()


def health(gateway: Gateway) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(gateway.base_url + "/health", timeout=10) as response:
            return response.status, dict(json.load(response))
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, dict(json.load(exc))


def test_health_reports_database_and_storage(gateway: Gateway) -> None:
    status, report = health(gateway)
    assert status == 200
    database = report["database"]
    assert isinstance(database, dict)
    assert (database["state"], database["revision"], database["dialect"]) == ("ok", HEAD, "sqlite")
    storage = report["storage"]
    assert isinstance(storage, dict)
    assert set(storage) == {"data_dir", "repository", "imaging_source"}
    for folder in storage.values():
        assert folder["state"] == "ok" and folder["free_bytes"] > 0
    imaging = gateway.settings.imaging_storage_dir
    moved = imaging.with_name("moved-away")
    imaging.rename(moved)
    try:
        status, report = health(gateway)
        assert status == 503
        assert report["storage"]["imaging_source"]["state"] == "missing"  # type: ignore[index]
    finally:
        shutil.move(moved, imaging)
    assert health(gateway)[0] == 200


def _folder_row(folder_id: str, version: int) -> dict[str, object]:
    return {
        "id": folder_id,
        "logical_id": "urn:uuid:folder-1",
        "version": version,
        "unique_id": "1.2.9.1",
        "patient_id": "P^^^&1.2&ISO",
        "status": "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved",
        "seq": version,
        "body": "{}",
    }


def test_upgrade_from_0003_to_head_and_down_again(db_url: str) -> None:
    """A deployment at 0003_dicomweb (before issues 18, 21 and 22) upgrades to the head
    (0004_ui, 0005_notify, 0006_registry_operations, 0007_consent) keeping its rows, and the
    schema then equals every room's ``schema.py``; the head downgrades back to 0003 (once the
    Folder versions 0006 allows are gone) and upgrades again."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy import delete, inspect

    from gateway.database.migrate import target_metadata
    from gateway.registry.schema import folder

    def migrate(action: str, revision: str) -> None:
        with write_transaction(database.engine) as conn:
            config = alembic_config(db_url)
            config.attributes["connection"] = conn
            getattr(command, action)(config, revision)

    database = Database(db_url)
    try:
        migrate("upgrade", "0003_dicomweb")
        with write_transaction(database.engine) as conn:
            conn.execute(insert(patient).values(patient_id="P^^^&1.2&ISO", updated="20240101"))
            conn.execute(insert(folder).values(**_folder_row("urn:uuid:folder-1", 1)))
        added = {"ui_transaction", "notify_outbox", "imaging_rejection_note"}
        assert not added & set(inspect(database.engine).get_table_names())

        migrate("upgrade", "head")
        assert database.revision() == HEAD
        with database.read() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, target_metadata()) == []
            assert conn.execute(select(patient.c.patient_id)).scalars().all() == ["P^^^&1.2&ISO"]
            assert conn.execute(select(folder.c.id)).scalars().all() == ["urn:uuid:folder-1"]
        with write_transaction(database.engine) as conn:  # 0006: versions share the uniqueId
            conn.execute(insert(folder).values(**_folder_row("urn:uuid:folder-2", 2)))
            conn.execute(delete(folder).where(folder.c.id == "urn:uuid:folder-2"))

        migrate("downgrade", "0003_dicomweb")
        assert database.revision() == "0003_dicomweb"
        assert not added & set(inspect(database.engine).get_table_names())
        with database.read() as conn:
            assert conn.execute(select(folder.c.id)).scalars().all() == ["urn:uuid:folder-1"]
        migrate("upgrade", "head")
        assert database.revision() == HEAD
    finally:
        database.dispose()
