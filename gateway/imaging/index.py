"""The instance and study index of the imaging document source (tables of ``schema.py``).

Several threads write at once (one per DICOM association, the idle worker, RAD-69 readers) and
several gateway processes may share one PostgreSQL database, so every decision that must be taken
once is a single conditional ``UPDATE`` (a claim) rather than an in-process lock, and every write
transaction starts with its write statement (SQLite then takes the write lock first and waits for
it with ``busy_timeout`` instead of failing on a read-to-write upgrade).

Study state machine (``schema.STATES``)::

    receiving --claim--> publishing --ok--> published --new instance--> receiving
        ^                    |  \\--patient unknown--> held --mapping known--> publishing
        +----error (retry)---+

An instance that arrives while its study is ``publishing`` puts the study back to ``receiving``,
so the manifest being sent is followed by a replacement that includes it (RAD TF-3 §4.68.4.1.1).

A manifest is recorded as *pending* (``imaging_pending_manifest``) before it is sent and forgotten
when its registration is settled: published, or refused. A pending manifest whose answer was lost
is sent again, byte for byte, by the next publication of its study.

Owners (``gateway.database.leases``): a claim names the process holding it (``claimed_by``) and
only that process ends it (``mark_*``, ``give_back``); a claim whose process is gone is given back
by :meth:`ImagingIndex.release_orphaned_claims`, never a live one however old. A pending manifest
names the process sending it; another process sends it again only once that one is gone
(:meth:`ImagingIndex.take_pending`), and records a new one only while it holds the claim, no live
process has one on its way, and the study's last manifest is still the one it replaces
(:meth:`ImagingIndex.save_pending`): so with several processes on one database a study still has
one manifest on its way at a time, each replacing the one registered before it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import Engine, bindparam, case, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from gateway.database.engine import create_database_engine
from gateway.database.leases import Lease, owner_gone
from gateway.database.migrate import upgrade_engine
from gateway.imaging import driversql
from gateway.imaging.schema import (
    HELD,
    PUBLISHED,
    PUBLISHING,
    RECEIVING,
    imaging_instance,
    imaging_pending_manifest,
    imaging_study,
)

Clock = Callable[[], float]


class ManifestInFlight(Exception):
    """Another live process is sending the study's pending manifest: try again later."""


@dataclass(frozen=True, slots=True, kw_only=True)
class InstanceRecord:
    """One stored SOP Instance (a row of ``imaging_instance``)."""

    sop_instance_uid: str
    sop_class_uid: str
    study_instance_uid: str
    series_instance_uid: str
    transfer_syntax_uid: str
    path: str
    size: int
    received_at: float = 0.0
    patient_id: str | None = None
    modality: str | None = None
    series_number: int | None = None
    instance_number: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class StudyRecord:
    """The publication state of one study (a row of ``imaging_study``)."""

    study_instance_uid: str
    state: str
    first_received: float
    last_received: float
    publish_count: int = 0
    claimed_at: float | None = None
    claimed_by: str | None = None
    retry_after: float | None = None
    published_at: float | None = None
    manifest_sop_instance_uid: str | None = None
    manifest_series_instance_uid: str | None = None
    manifest_entry_uuid: str | None = None
    patient_id: str | None = None
    held_reason: str | None = None
    last_error: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Manifest:
    """What a successful publication leaves behind for the next replacement (RPLC)."""

    sop_instance_uid: str
    series_instance_uid: str
    entry_uuid: str
    patient_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PendingManifest:
    """A manifest sent (or about to be) whose registration is not settled: the exact ITI-41
    body and KOS, what it lists, and what it replaces (a row of ``imaging_pending_manifest``)."""

    study_instance_uid: str
    sop_instance_uid: str
    series_instance_uid: str
    entry_uuid: str
    patient_id: str
    replaces: str | None
    instance_count: int
    instances_digest: str
    content_id: str
    request: bytes
    kos: bytes
    created_at: float = 0.0

    @property
    def manifest(self) -> Manifest:
        """What the index records once this manifest is registered."""
        return Manifest(
            sop_instance_uid=self.sop_instance_uid,
            series_instance_uid=self.series_instance_uid,
            entry_uuid=self.entry_uuid,
            patient_id=self.patient_id,
        )


class _Statements:
    """The statements of the C-STORE path, built once (SQLAlchemy construction is not free and
    an instance is indexed in a few milliseconds)."""

    def __init__(self, insert: Callable[..., Any]) -> None:
        study, instance = imaging_study.c, imaging_instance.c
        touch = insert(imaging_study).values(
            study_instance_uid=bindparam("uid"),
            state=RECEIVING,
            first_received=bindparam("now"),
            last_received=bindparam("now"),
            publish_count=0,
        )
        self.touch = touch.on_conflict_do_update(
            index_elements=[study.study_instance_uid],
            set_={
                "last_received": touch.excluded.last_received,
                "state": case((study.state == HELD, HELD), else_=RECEIVING),
                "retry_after": None,
            },
        )
        self.extend = (
            update(imaging_study)
            .where(study.study_instance_uid == bindparam("uid"))
            .where(study.state == RECEIVING)
            .values(last_received=bindparam("now"))
        )
        upsert = insert(imaging_instance)
        self.upsert_instance = upsert.on_conflict_do_update(
            index_elements=[instance.sop_instance_uid],
            set_={
                column.name: upsert.excluded[column.name]
                for column in imaging_instance.columns
                if column.name != "sop_instance_uid"
            },
        )
        self.instance = select(imaging_instance).where(
            instance.sop_instance_uid == bindparam("uid")
        )


class _DriverStatements:
    """The C-STORE path's statements in the driver's SQL (``gateway.imaging.driversql``)."""

    def __init__(self, statements: _Statements, engine: Engine) -> None:
        self.instance = driversql.DriverStatement(statements.instance, engine)
        self.touch = driversql.DriverStatement(statements.touch, engine)
        self.extend = driversql.DriverStatement(statements.extend, engine)
        self.upsert_instance = driversql.DriverStatement(statements.upsert_instance, engine)


_INSTANCE_COLUMNS = tuple(column.name for column in imaging_instance.columns)


def _record(cls: type, row: Any) -> Any:
    mapping = row._mapping
    return cls(**{f.name: mapping[f.name] for f in fields(cls) if f.name in mapping})


def create_index_engine(url: str) -> Engine:
    """An engine for ``url`` with the gateway database's settings (``gateway.database.engine``:
    SQLite WAL and busy timeout, cross-thread connections; PostgreSQL pool)."""
    return create_database_engine(url)


class ImagingIndex:
    """Reads and writes the imaging source's tables; safe to share between threads."""

    def __init__(self, engine: Engine, *, owner: str, clock: Clock = time.time) -> None:
        if engine.dialect.name not in {"sqlite", "postgresql"}:
            raise ValueError(f"unsupported database {engine.dialect.name}: SQLite or PostgreSQL")
        self.engine = engine
        self.owner = owner  # the lease of this process: the claims it takes carry it
        self.clock = clock
        self._insert = sqlite.insert if engine.dialect.name == "sqlite" else postgresql.insert
        self._statements = _Statements(self._insert)
        self._driver = _DriverStatements(self._statements, engine)
        self._lease: Lease | None = None

    @classmethod
    def from_url(cls, url: str, *, clock: Clock = time.time) -> ImagingIndex:
        """An index on its own engine for ``url`` (migrated to the newest schema) with a lease
        of its own (standalone use: tools, tests); :meth:`close` gives both up."""
        engine = create_index_engine(url)
        upgrade_engine(engine, url)
        lease = Lease(engine).start()
        index = cls(engine, owner=lease.owner, clock=clock)
        index._lease = lease
        return index

    def close(self) -> None:
        """Release the lease and engine :meth:`from_url` made (nothing otherwise)."""
        if self._lease is not None:
            self._lease.release()
            self._lease = None
            self.engine.dispose()

    # -- instances ------------------------------------------------------------------------------
    def record_instance(self, record: InstanceRecord) -> InstanceRecord | None:
        """Index a stored instance (replacing an earlier copy); return the earlier row, if any.

        The study becomes ``receiving`` (``held`` stays held) when the instance is new or moved;
        an identical duplicate only extends a study that is still receiving, so re-sending a
        published study does not produce a new manifest.
        """
        return self.record_instances([record])[0]

    def record_instances(
        self, records: Sequence[InstanceRecord], *, durable: bool = True
    ) -> list[InstanceRecord | None]:
        """Index stored instances in one transaction (a group commit for instances arriving on
        several associations at once); the earlier row of each.

        Study rules as in :meth:`record_instance`. ``durable``: the commit has reached the disk
        when this returns (SQLite: ``synchronous=FULL``, the gateway database's setting,
        ``gateway.database.engine``). ``durable=False``: on SQLite the commit runs with
        ``synchronous=NORMAL`` on this connection for this transaction only, which survives a
        crash of the process but not of the machine until the next :meth:`sync_log` (the
        C-STORE path then keeps a journal entry, ``gateway.imaging.journal``). PostgreSQL
        commits are durable either way.
        """
        sql = self._driver
        with driversql.cursor(self.engine) as (connection, handle):
            olds: dict[str, InstanceRecord] = {}
            for uid in dict.fromkeys(record.sop_instance_uid for record in records):
                # read before the write transaction, which holds SQLite's write lock
                handle.execute(sql.instance.sql, sql.instance.params({"uid": uid}))
                row = handle.fetchone()
                if row is not None:
                    olds[uid] = InstanceRecord(**dict(zip(_INSTANCE_COLUMNS, row, strict=True)))
            now = self.clock()
            touched, extended, rows = _changes(records, olds, now)
            with self._synchronous(connection, durable=durable):
                if self.engine.dialect.name == "sqlite":
                    # the gateway's SQLite connections leave BEGIN to the caller (autocommit
                    # mode, gateway.database.engine): without it every statement would commit
                    # on its own; IMMEDIATE takes the write lock first (no upgrade can fail)
                    handle.execute("BEGIN IMMEDIATE")
                driversql.run_many(handle, sql.touch, [{"uid": u, "now": now} for u in touched])
                driversql.run_many(handle, sql.extend, [{"uid": u, "now": now} for u in extended])
                driversql.run_many(handle, sql.upsert_instance, rows)
                connection.commit()
        return [olds.get(record.sop_instance_uid) for record in records]

    def sync_log(self) -> None:
        """Put every transaction committed so far on the disk (SQLite: a ``synchronous=FULL``
        commit, which flushes the whole WAL, of a write that changes nothing: the database
        header's ``user_version`` set to its own value). No-op on PostgreSQL.
        Standard: SQLite "PRAGMA synchronous", "Write-Ahead Logging" §2.2."""
        if self.engine.dialect.name != "sqlite":
            return
        with (
            driversql.cursor(self.engine) as (connection, handle),
            self._synchronous(connection, durable=True),
        ):
            version = int(handle.execute("PRAGMA user_version").fetchone()[0])
            handle.execute(f"PRAGMA user_version={version}")  # its own transaction, committed

    @contextmanager
    def _synchronous(self, connection: Any, *, durable: bool) -> Iterator[None]:
        """Inside this block, commits on the DBAPI ``connection`` reach the disk (``durable``:
        SQLite ``synchronous=FULL``) or only the operating system (``NORMAL``); the
        connection's own setting is put back afterwards. PostgreSQL: nothing to do."""
        if self.engine.dialect.name != "sqlite":
            yield
            return
        info = connection.info  # per pooled connection: its setting is read once
        previous = info.get("synchronous")
        if previous is None:
            previous = info["synchronous"] = int(
                connection.execute("PRAGMA synchronous").fetchone()[0]
            )
        wanted = max(previous, 2) if durable else min(previous, 1)  # FULL / NORMAL at most
        if wanted == previous:
            yield
            return
        # SQLite refuses to change it inside a transaction: set before BEGIN, back after the end
        connection.execute(f"PRAGMA synchronous={wanted}")
        try:
            yield
        finally:
            try:
                if connection.in_transaction:  # the block failed half-way
                    connection.rollback()
                connection.execute(f"PRAGMA synchronous={previous}")
            except Exception:
                connection.invalidate()  # never back in the pool with another setting
                raise

    def instance(self, sop_instance_uid: str) -> InstanceRecord | None:
        """The stored instance with this SOP Instance UID, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(self._statements.instance, {"uid": sop_instance_uid}).first()
        return None if row is None else _record(InstanceRecord, row)

    def instances(self, sop_instance_uids: Sequence[str]) -> dict[str, InstanceRecord]:
        """The stored instances among ``sop_instance_uids``, by SOP Instance UID (one query per
        500 UIDs: a RAD-69 request for a whole study asks for hundreds at once)."""
        found: dict[str, InstanceRecord] = {}
        unique = list(dict.fromkeys(sop_instance_uids))
        with self.engine.connect() as conn:
            for start in range(0, len(unique), 500):
                query = select(imaging_instance).where(
                    imaging_instance.c.sop_instance_uid.in_(unique[start : start + 500])
                )
                for row in conn.execute(query):
                    record = _record(InstanceRecord, row)
                    found[record.sop_instance_uid] = record
        return found

    def instances_of_study(self, study_uid: str) -> list[InstanceRecord]:
        """Every instance of a study, by series then instance number."""
        c = imaging_instance.c
        query = (
            select(imaging_instance)
            .where(c.study_instance_uid == study_uid)
            .order_by(c.series_number, c.series_instance_uid, c.instance_number, c.sop_instance_uid)
        )
        with self.engine.connect() as conn:
            return [_record(InstanceRecord, row) for row in conn.execute(query)]

    # -- studies --------------------------------------------------------------------------------
    def study(self, study_uid: str) -> StudyRecord | None:
        """The state of one study, or None when nothing of it was received."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(imaging_study).where(imaging_study.c.study_instance_uid == study_uid)
            ).first()
        return None if row is None else _record(StudyRecord, row)

    def due_studies(self, state: str, idle_seconds: float, *, limit: int = 100) -> list[str]:
        """Studies in ``state`` quiet for ``idle_seconds`` and not waiting for a retry."""
        now = self.clock()
        c = imaging_study.c
        query = (
            select(c.study_instance_uid)
            .where(c.state == state)
            .where(c.last_received <= now - idle_seconds)
            .where((c.retry_after.is_(None)) | (c.retry_after <= now))
            .order_by(c.last_received)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return list(conn.execute(query).scalars())

    def claim(
        self, study_uid: str, states: Iterable[str], *, idle_seconds: float | None = None
    ) -> StudyRecord | None:
        """Take a study for publication (state -> publishing) if it is in one of ``states``
        (and quiet for ``idle_seconds`` when given); None when another worker has it."""
        now = self.clock()
        c = imaging_study.c
        statement = (
            update(imaging_study)
            .where(c.study_instance_uid == study_uid)
            .where(c.state.in_(list(states)))
            .values(state=PUBLISHING, claimed_at=now, claimed_by=self.owner)
        )
        if idle_seconds is not None:
            statement = statement.where(c.last_received <= now - idle_seconds)
        with self.engine.begin() as conn:
            if conn.execute(statement).rowcount != 1:
                return None
            row = conn.execute(select(imaging_study).where(c.study_instance_uid == study_uid)).one()
        return _record(StudyRecord, row)

    def mark_published(self, study_uid: str, manifest: Manifest, *, reopen: bool = False) -> None:
        """Record a published manifest and forget this process's pending one; the study stays
        ``receiving`` if instances came in, and becomes ``receiving`` when ``reopen`` (the
        manifest lists less than the study holds now, so a replacement must follow). The state
        and claim only change while this process holds the claim; the manifest is recorded
        regardless (it is registered: the next one must replace it)."""
        c = imaging_study.c
        mine = c.claimed_by == self.owner
        published = RECEIVING if reopen else case((c.state == PUBLISHING, PUBLISHED), else_=c.state)
        values = {
            "state": case((mine, published), else_=c.state),
            "published_at": self.clock(),
            "publish_count": c.publish_count + 1,
            "manifest_sop_instance_uid": manifest.sop_instance_uid,
            "manifest_series_instance_uid": manifest.series_instance_uid,
            "manifest_entry_uuid": manifest.entry_uuid,
            "patient_id": manifest.patient_id,
            "held_reason": None,
            "last_error": None,
            "retry_after": case((mine, None), else_=c.retry_after),
            "claimed_at": case((mine, None), else_=c.claimed_at),
            "claimed_by": case((mine, None), else_=c.claimed_by),
        }
        self._update(study_uid, values, forget_pending=True)

    def mark_withdrawn(self, study_uid: str) -> None:
        """Every instance of the study was rejected (``gateway.imaging.rejection``) and its last
        manifest deprecated: the study is ``published`` with no manifest, so instances that come
        later are published in a new manifest, replacing nothing. Only under this process's
        claim."""
        c = imaging_study.c
        values = {
            "state": case((c.state == PUBLISHING, PUBLISHED), else_=c.state),
            "published_at": self.clock(),
            "manifest_sop_instance_uid": None,
            "manifest_entry_uuid": None,
            "held_reason": None,
            "last_error": None,
            "retry_after": None,
        }
        self._update(study_uid, values, claimed=True, forget_pending=True)

    def mark_held(
        self, study_uid: str, reason: str, *, retry_seconds: float, forget_pending: bool = False
    ) -> None:
        """Hold a study whose patient is not known yet (retried after ``retry_seconds``);
        ``forget_pending``: its manifest was refused, the retry builds a new one."""
        c = imaging_study.c
        values = {
            "state": case((c.state == PUBLISHING, HELD), else_=c.state),
            "held_reason": reason,
            "retry_after": self.clock() + retry_seconds,
        }
        self._update(study_uid, values, claimed=True, forget_pending=forget_pending)

    def mark_failed(
        self, study_uid: str, error: str, *, retry_seconds: float, forget_pending: bool = True
    ) -> None:
        """Give a study back after a failed publication; retried after ``retry_seconds``.

        ``forget_pending=False`` keeps the pending manifest (its registration is not settled), so
        the retry sends it again instead of a new one.
        """
        values = self._given_back(retry_seconds)
        values["last_error"] = error
        self._update(study_uid, values, claimed=True, forget_pending=forget_pending)

    def give_back(self, study_uid: str, *, retry_seconds: float) -> None:
        """End this process's claim without publishing (``publishing`` -> ``receiving``), due
        again after ``retry_seconds``; nothing happens when another process holds the claim."""
        self._update(study_uid, self._given_back(retry_seconds), claimed=True)

    def _given_back(self, retry_seconds: float) -> dict[str, Any]:
        c = imaging_study.c
        return {
            "state": case((c.state == PUBLISHING, RECEIVING), else_=c.state),
            "retry_after": self.clock() + retry_seconds,
        }

    def release_orphaned_claims(self) -> int:
        """Give back the studies claimed by processes whose lease is gone (crashed, killed or
        frozen longer than their lease); return how many. A live process's claim is never
        touched, however old."""
        c = imaging_study.c
        statement = (
            update(imaging_study)
            .where(c.state == PUBLISHING)
            .where(owner_gone(c.claimed_by))
            .values(state=RECEIVING, claimed_at=None, claimed_by=None)
        )
        with self.engine.begin() as conn:
            return int(conn.execute(statement).rowcount)

    def _update(
        self,
        study_uid: str,
        values: dict[str, Any],
        *,
        forget_pending: bool = False,
        claimed: bool = False,
    ) -> None:
        """Update a study (``claimed``: only while this process holds its claim, which it then
        gives up) and forget this process's pending manifest of it, in one transaction."""
        c = imaging_study.c
        if claimed:
            values = {**values, "claimed_at": None, "claimed_by": None}
        with self.engine.begin() as conn:
            if values:
                statement = update(imaging_study).where(c.study_instance_uid == study_uid)
                if claimed:
                    statement = statement.where(c.claimed_by == self.owner)
                conn.execute(statement.values(**values))
            if forget_pending:
                table = imaging_pending_manifest
                conn.execute(
                    delete(table)
                    .where(table.c.study_instance_uid == study_uid)
                    .where(table.c.owner == self.owner)
                )

    # -- pending manifests ------------------------------------------------------------------------
    def save_pending(self, pending: PendingManifest) -> bool:
        """Record a manifest about to be sent (replacing an earlier pending one of this process
        or of a gone one); False, and nothing recorded, when this process no longer holds the
        study's claim, the study's last manifest is not the one ``pending`` replaces (another
        process published meanwhile), or another live process has a manifest of it on its way.
        """
        values = {f.name: getattr(pending, f.name) for f in fields(PendingManifest)}
        values.update(created_at=self.clock(), owner=self.owner)
        table, c = imaging_pending_manifest, imaging_study.c
        uid = pending.study_instance_uid
        current = (
            update(imaging_study)  # locks the study's row until commit (PostgreSQL)
            .where(c.study_instance_uid == uid)
            .where(c.claimed_by == self.owner)
            .where(c.manifest_entry_uuid.is_not_distinct_from(pending.replaces))
            .values(claimed_by=c.claimed_by)
        )
        with self.engine.begin() as conn:
            if not conn.execute(current).rowcount:
                return False
            conn.execute(
                delete(table)
                .where(table.c.study_instance_uid == uid)
                .where(or_(table.c.owner == self.owner, owner_gone(table.c.owner)))
            )
            insert = self._insert(table).values(**values).on_conflict_do_nothing()
            return bool(conn.execute(insert).rowcount)

    def pending(self, study_uid: str) -> PendingManifest | None:
        """The study's manifest whose registration is not settled, or None."""
        table = imaging_pending_manifest
        with self.engine.connect() as conn:
            row = conn.execute(select(table).where(table.c.study_instance_uid == study_uid)).first()
        return None if row is None else _record(PendingManifest, row)

    def take_pending(self, study_uid: str) -> PendingManifest | None:
        """The study's unsettled manifest, now this process's to send again (taken over when
        its owner's lease is gone), or None when there is none.

        Raises: ManifestInFlight when a live process is sending it (only the claim holder
        calls this, but a claim may change hands while a manifest is on its way).
        """
        table = imaging_pending_manifest
        take = (
            update(table)
            .where(table.c.study_instance_uid == study_uid)
            .where(or_(table.c.owner == self.owner, owner_gone(table.c.owner)))
            .values(owner=self.owner)
        )
        with self.engine.begin() as conn:
            taken = conn.execute(take).rowcount
        found = self.pending(study_uid)
        if found is not None and not taken:
            raise ManifestInFlight(
                f"manifest {found.sop_instance_uid} of study {study_uid} is being sent by "
                "another process"
            )
        return found

    def states(self, study_uids: Sequence[str]) -> dict[str, str]:
        """``{study_uid: state}`` for the studies that exist."""
        c = imaging_study.c
        query = select(c.study_instance_uid, c.state).where(c.study_instance_uid.in_(study_uids))
        with self.engine.connect() as conn:
            return {uid: state for uid, state in conn.execute(query)}


def _changes(
    records: Sequence[InstanceRecord], olds: dict[str, InstanceRecord], now: float
) -> tuple[list[str], list[str], list[dict[str, Any]]]:
    """What indexing ``records`` writes: the studies to touch (an instance new or moved: back to
    ``receiving``), the studies only extended (identical duplicates), and the instance rows (one
    per SOP Instance, the last copy winning)."""
    touched: dict[str, None] = {}  # ordered sets of Study Instance UIDs
    extended: dict[str, None] = {}
    rows: dict[str, dict[str, Any]] = {}
    for record in records:
        old = olds.get(record.sop_instance_uid)
        if old is None or _identity(old) != _identity(record):
            touched[record.study_instance_uid] = None
            if old is not None and old.study_instance_uid != record.study_instance_uid:
                # the old study lost an instance: its manifest must be replaced too
                touched[old.study_instance_uid] = None
        else:
            extended[record.study_instance_uid] = None
        values = {f.name: getattr(record, f.name) for f in fields(InstanceRecord)}
        values["received_at"] = now
        rows[record.sop_instance_uid] = values
    return list(touched), [uid for uid in extended if uid not in touched], list(rows.values())


def _identity(record: InstanceRecord) -> tuple[str, str, str]:
    """What a manifest lists about an instance: a change here needs a new manifest."""
    return (record.study_instance_uid, record.series_instance_uid, record.sop_class_uid)


__all__ = [
    "HELD",
    "PUBLISHED",
    "PUBLISHING",
    "RECEIVING",
    "ImagingIndex",
    "InstanceRecord",
    "Manifest",
    "ManifestInFlight",
    "PendingManifest",
    "StudyRecord",
    "create_index_engine",
]
