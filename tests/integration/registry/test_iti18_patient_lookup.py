"""The patient lookup of the Find queries: one statement for a patient without merges, merges
still followed, and an index (not a table scan) on SQLite after ANALYZE, whose statistics make
merged_into look unselective (every row NULL)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event

from gateway.registry import patients
from gateway.registry.database import Database
from gateway.registry.queries import sql

NOW = datetime(2024, 1, 2, tzinfo=UTC)
PID = "P1^^^&1.2.3&ISO"


def _feed(db: Database, count: int) -> None:
    with db.write() as conn:
        for n in range(count):
            patients.register_in(conn, f"X{n}^^^&1.2.3&ISO", None, [], now=NOW)
        patients.register_in(conn, PID, None, [], now=NOW)


def test_a_patient_without_merges_covers_itself(db: Database) -> None:
    _feed(db, 3)
    with db.read() as conn:
        assert sql.patient_ids(conn, PID) == [PID]
        assert sql.patient_ids(conn, "NEVER^^^&1.2.3&ISO") == ["NEVER^^^&1.2.3&ISO"]


def test_merged_ids_are_followed_and_a_subsumed_id_covers_nothing(db: Database) -> None:
    _feed(db, 3)
    with db.write() as conn:
        patients.merge_in(conn, PID, "X1^^^&1.2.3&ISO", now=NOW)
        patients.merge_in(conn, "X1^^^&1.2.3&ISO", "X2^^^&1.2.3&ISO", now=NOW)
    with db.read() as conn:
        assert sorted(sql.patient_ids(conn, PID)) == sorted(
            [PID, "X1^^^&1.2.3&ISO", "X2^^^&1.2.3&ISO"]
        )
        assert sql.patient_ids(conn, "X1^^^&1.2.3&ISO") == []


def test_sqlite_looks_patients_up_by_index_after_analyze(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'registry.sqlite'}")
    try:
        db.upgrade()
        _feed(db, 200)
        with db.write() as conn:
            conn.exec_driver_sql("ANALYZE")
        executed: list[tuple[str, Any]] = []

        def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
            executed.append((statement, parameters))

        with db.read() as conn:
            event.listen(db.engine, "before_cursor_execute", record)
            try:
                assert sql.patient_ids(conn, PID) == [PID]
            finally:
                event.remove(db.engine, "before_cursor_execute", record)
            lookups = [(s, p) for s, p in executed if "patient" in s and "SELECT" in s]
            assert lookups
            for statement, parameters in lookups:
                plan = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters).all()
                details = " | ".join(str(row[-1]) for row in plan)
                assert "SCAN patient" not in details, details
    finally:
        db.dispose()
