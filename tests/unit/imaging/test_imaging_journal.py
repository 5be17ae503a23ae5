"""The redo journal of C-STOREs answered before their SQLite rows were flushed
(gateway.imaging.journal): a new instance is created in place with a journal entry and its row
committed without a flush; the syncer flushes the log and drops the entries; after a crash the
next start re-indexes the rows the crash lost, removes files whose data never reached the disk,
and leaves a live process's journal alone. The crash is real: a process killed with SIGKILL.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import signal
import subprocess
import sys
import textwrap
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydicom
import pytest
from sqlalchemy import text

from gateway.imaging import synthetic
from gateway.imaging.cstore import file_meta
from gateway.imaging.source import ImagingSource
from tests.unit.imaging.support import RecordingRepository, make_source, study_spec

ROOT = Path(__file__).resolve().parents[3]


def instance() -> pydicom.Dataset:
    return synthetic.make_study(study_spec(series=(synthetic.SeriesSpec(modality="CT", count=1),)))[
        0
    ]


def parts(ds: pydicom.Dataset) -> tuple[bytes, bytes]:
    body = synthetic.dataset_bytes(synthetic.encode(ds))
    meta = file_meta(
        sop_class_uid=str(ds.SOPClassUID),
        sop_instance_uid=str(ds.SOPInstanceUID),
        transfer_syntax_uid=str(ds.file_meta.TransferSyntaxUID),
        source_ae="MODALITY",
    )
    return meta, body


def store(source: ImagingSource, ds: pydicom.Dataset) -> Any:
    meta, body = parts(ds)
    return source.ingest.store_received_parts(
        meta,
        [body],
        transfer_syntax_uid=str(ds.file_meta.TransferSyntaxUID),
        sop_class_uid=str(ds.SOPClassUID),
        sop_instance_uid=str(ds.SOPInstanceUID),
    )


def entries(source: ImagingSource) -> list[Path]:
    """The pending links in the store's series folders."""
    return sorted(source.store.root.glob("*/*/.*.pending"))


def in_order(seen: list[str], *expected: str) -> bool:
    """The statements ``expected`` were run in this order (others between them)."""
    position = 0
    for statement in expected:
        try:
            position = seen.index(statement, position) + 1
        except ValueError:
            return False
    return True


def locks(source: ImagingSource) -> list[str]:
    return sorted(p.name for p in (source.store.tmp_dir / "journal").glob("*.lock*"))


@pytest.fixture
def durable(tmp_path: Path) -> Iterator[ImagingSource]:
    source = make_source(tmp_path, RecordingRepository(), fsync=True)
    source.ingest.open_journal()
    yield source
    source.ingest.close_journal()


def statements(source: ImagingSource) -> list[str]:
    """The SQL every new pooled SQLite connection runs from now on."""
    seen: list[str] = []
    source.index.engine.dispose()

    def trace(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.set_trace_callback(seen.append)

    from sqlalchemy import event

    event.listen(source.index.engine, "connect", trace)
    return seen


def test_a_new_instance_is_journaled_and_its_row_committed_without_a_flush(
    durable: ImagingSource,
) -> None:
    seen = statements(durable)
    ds = instance()
    record = store(durable, ds)
    [entry] = entries(durable)
    final = durable.store.path(record.path)
    assert os.path.samefile(entry, final)  # a hard link to the instance file
    meta, body = parts(ds)
    journal = durable.ingest.journal
    assert journal is not None
    crc, size = zlib.crc32(meta + body), len(meta + body)
    assert entry.name == f".{final.name}.{journal.run}-{crc:08x}-{size}.pending"
    assert entry.parent == final.parent  # flushed with the file's own folder
    # the journal stands in for the flush: the row's commit alone runs with NORMAL
    assert in_order(seen, "PRAGMA synchronous=1", "BEGIN IMMEDIATE", "COMMIT")
    assert in_order(seen, "COMMIT", "PRAGMA synchronous=2")  # the connection's FULL is back
    found = durable.index.instance(str(ds.SOPInstanceUID))
    assert found is not None and dataclasses.replace(found, received_at=0.0) == record
    seen.clear()
    assert durable.ingest.journal is not None and durable.ingest.journal.sync() == 1
    # the log flushed by a commit with the connection's FULL, then the link went
    assert any(s.startswith("PRAGMA user_version=") for s in seen)
    assert not any("synchronous" in s for s in seen) and entries(durable) == []


def test_a_replaced_instance_is_written_the_strict_way(durable: ImagingSource) -> None:
    seen = statements(durable)
    ds = instance()
    store(durable, ds)
    assert durable.ingest.journal is not None
    durable.ingest.journal.sync()
    seen.clear()
    store(durable, ds)  # the same instance again: the file exists, it is replaced atomically
    assert entries(durable) == []
    # its row flushed before the answer: committed with the connection's FULL
    assert "COMMIT" in seen and not any("synchronous" in s for s in seen)


def test_durable_flag_of_the_index(durable: ImagingSource) -> None:
    seen = statements(durable)
    ds = instance()
    rec = store(durable, ds)
    seen.clear()
    durable.index.record_instances([rec], durable=True)  # the gateway database's FULL
    assert in_order(seen, "BEGIN IMMEDIATE", "COMMIT")
    assert not any("synchronous" in statement for statement in seen)
    seen.clear()
    durable.index.record_instances([rec], durable=False)
    assert in_order(
        seen, "PRAGMA synchronous=1", "BEGIN IMMEDIATE", "COMMIT", "PRAGMA synchronous=2"
    )


def test_a_failed_transaction_leaves_every_connection_at_full(durable: ImagingSource) -> None:
    """A row refused half-way through a NORMAL commit: the transaction is rolled back and the
    connection goes back to the pool with FULL (the registry's commits on it stay durable)."""
    from sqlalchemy.exc import IntegrityError

    rec = store(durable, instance())
    before = durable.index.instance(rec.sop_instance_uid)
    study = durable.index.study(rec.study_instance_uid)
    broken = dataclasses.replace(rec, series_instance_uid="1.2.3", path=None)  # NOT NULL
    with pytest.raises(IntegrityError):
        durable.index.record_instances([broken], durable=False)
    engine = durable.index.engine
    pooled = engine.pool.checkedin()
    assert pooled >= 1
    connections = [engine.connect() for _ in range(pooled)]
    try:
        for conn in connections:
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2
    finally:
        for conn in connections:
            conn.close()
    # nothing half-written: the study's touch before the failing row was rolled back too
    assert durable.index.instance(rec.sop_instance_uid) == before
    assert durable.index.study(rec.study_instance_uid) == study


CRASHING = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    sys.path.insert(0, sys.argv[1])
    from tests.unit.imaging.support import RecordingRepository, make_source
    from tests.unit.imaging.test_imaging_journal import instance, store
    source = make_source(Path(sys.argv[2]), RecordingRepository(), fsync=True)
    source.ingest.open_journal()
    source.ingest.journal.interval = 3600  # never flushes on its own
    ds = instance()
    record = store(source, ds)
    print(json.dumps({"uid": str(ds.SOPInstanceUID), "path": record.path}), flush=True)
    time.sleep(3600)
    """
)


def crash_after_storing(tmp_path: Path) -> dict[str, str]:
    """A process stores one instance, journaled, and is killed (SIGKILL) before any flush."""
    process = subprocess.Popen(
        [sys.executable, "-c", CRASHING, str(ROOT), str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert process.stdout is not None
        stored: dict[str, str] = json.loads(process.stdout.readline())
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(30)
        if process.stdout:
            process.stdout.close()
    return stored


def test_the_next_start_reindexes_a_row_the_crash_lost(tmp_path: Path) -> None:
    stored = crash_after_storing(tmp_path)
    source = make_source(tmp_path, RecordingRepository(), fsync=True)
    assert len(entries(source)) == 1  # the dead process's journal is still there
    with source.index.engine.begin() as conn:  # what a power cut does to an unflushed commit
        conn.execute(text("DELETE FROM imaging_instance"))
        conn.execute(text("DELETE FROM imaging_study"))
    source.ingest.open_journal()
    try:
        found = source.index.instance(stored["uid"])
        assert found is not None and found.path == stored["path"]
        study = source.index.study(found.study_instance_uid)
        assert study is not None and study.state == "receiving"
        assert entries(source) == []
        journal = source.ingest.journal
        assert journal is not None
        assert locks(source) == [f"{journal.run}.lock"]  # the dead run's lock is gone
    finally:
        source.ingest.close_journal()


def test_the_next_start_removes_a_file_whose_data_never_reached_the_disk(tmp_path: Path) -> None:
    stored = crash_after_storing(tmp_path)
    source = make_source(tmp_path, RecordingRepository(), fsync=True)
    final = source.store.path(stored["path"])
    with final.open("r+b") as handle:  # a power cut before the data were written
        handle.truncate(100)
    with source.index.engine.begin() as conn:
        conn.execute(text("DELETE FROM imaging_instance"))
    source.ingest.open_journal()
    try:
        assert not final.exists()
        assert source.index.instance(stored["uid"]) is None
        assert entries(source) == []
    finally:
        source.ingest.close_journal()


def test_a_row_that_survived_is_left_as_it_is(tmp_path: Path) -> None:
    stored = crash_after_storing(tmp_path)
    source = make_source(tmp_path, RecordingRepository(), fsync=True)
    before = source.index.instance(stored["uid"])
    source.ingest.open_journal()
    try:
        assert source.index.instance(stored["uid"]) == before
        assert entries(source) == []
    finally:
        source.ingest.close_journal()


def test_a_live_processs_journal_is_left_alone(tmp_path: Path) -> None:
    stored = crash_after_storing(tmp_path)
    source = make_source(tmp_path, RecordingRepository(), fsync=True)
    [entry] = entries(source)
    [name] = locks(source)
    lock = os.open(source.store.tmp_dir / "journal" / name, os.O_RDWR)
    fcntl.flock(lock, fcntl.LOCK_EX)  # as if its process were still running
    try:
        with source.index.engine.begin() as conn:
            conn.execute(text("DELETE FROM imaging_instance"))
        source.ingest.open_journal()
        assert entry.exists()
        assert source.index.instance(stored["uid"]) is None
    finally:
        source.ingest.close_journal()
        os.close(lock)


def test_close_flushes_and_removes_the_lock(durable: ImagingSource) -> None:
    store(durable, instance())
    assert len(entries(durable)) == 1 and len(locks(durable)) == 1
    durable.ingest.close_journal()
    assert entries(durable) == [] and locks(durable) == []
    durable.ingest.open_journal()  # the fixture closes it again


def test_a_row_that_fails_after_the_answer_is_indexed_by_the_syncer(
    durable: ImagingSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The C-STORE was answered (its instance durable, journaled); the database then refuses
    the row: nothing is raised to the association, and the journal indexes it later."""
    from sqlalchemy.exc import OperationalError

    from gateway.imaging.cstore import DataSetReceiver

    ds = instance()
    meta, body = parts(ds)
    receiver = DataSetReceiver(
        durable.ingest,
        sop_class_uid=str(ds.SOPClassUID),
        sop_instance_uid=str(ds.SOPInstanceUID),
        transfer_syntax_uid=str(ds.file_meta.TransferSyntaxUID),
        calling_ae="MODALITY",
        on_stored=lambda record: None,
        incoming_dir=durable.store.incoming_dir,  # unused: the data set stays in memory
    )
    receiver.write(memoryview(body))
    assert receiver.finish() == (0x0000, None)  # durable: file and link on the disk
    [link] = entries(durable)
    real = durable.ingest.rows.record

    def refused(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("INSERT", {}, Exception("database is locked"))

    monkeypatch.setattr(durable.ingest.rows, "record", refused)
    receiver.after_response()  # the row fails: logged, left to the journal
    assert durable.index.instance(str(ds.SOPInstanceUID)) is None
    monkeypatch.setattr(durable.ingest.rows, "record", real)
    journal = durable.ingest.journal
    assert journal is not None
    journal._redo()  # what the syncer does on its next round
    found = durable.index.instance(str(ds.SOPInstanceUID))
    assert found is not None and durable.store.path(found.path).read_bytes() == meta + body
    assert not link.exists()
