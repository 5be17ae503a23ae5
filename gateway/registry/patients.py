"""Patient identity of the Document Registry, fed by ITI-8 (``gateway.hl7.feed``).

Tables ``patient`` and ``patient_local_id`` (``schema.py``). :class:`PatientRegistry` is the
:class:`gateway.hl7.feed.PatientIdentitySink` of the registry and answers the questions of ITI-42
and ITI-18:

* a submission's patientId must have been fed and not merged away (ITI TF-2 §3.42.4.1.3:
  XDSUnknownPatientId; ITI TF-2 §3.8.4.2.3: after a merge the subsumed id is not used for new
  submissions);
* a query for the surviving id also finds what was registered under the ids merged into it
  (ITI TF-2 §3.8.4.2.3), hence :func:`aliases_in`.

Merges are kept flat: every subsumed id points straight at its final survivor (a later merge of
that survivor re-points them), so aliases are one indexed lookup. Metadata already registered is
never rewritten: documents keep the patientId they were registered with.

Local identifiers (other PID-3 repetitions of a feed) map to the domain id they came with, for the
imaging source that meets a DICOM Patient ID with a local issuer (:meth:`domain_id_for_local`).
"""

from __future__ import annotations

import dataclasses
import enum
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Table, select, update
from sqlalchemy.dialects import postgresql, sqlite

from gateway.metadata.datatypes import DataTypeError, format_dtm, parse_cx
from gateway.registry.database import Database
from gateway.registry.schema import patient, patient_local_id

if TYPE_CHECKING:
    from gateway.hl7.adt import Demographics

__all__ = [
    "PatientDetails",
    "PatientMatch",
    "PatientRegistry",
    "PatientState",
    "PatientStatus",
    "aliases_in",
    "merge_in",
    "register_in",
    "resolve_in",
    "state_in",
]

_MAX_CHAIN = 32  # merges are flat; a longer chain can only be a corrupted table


class PatientStatus(enum.Enum):
    UNKNOWN = "unknown"  # never fed
    ACTIVE = "active"  # fed, usable for submissions
    MERGED = "merged"  # subsumed by another id (ITI TF-2 §3.8.4.2.3)


@dataclass(frozen=True, slots=True)
class PatientState:
    """What the registry knows of one patient id."""

    status: PatientStatus
    merged_into: str | None = None  # the surviving id when MERGED


@dataclass(frozen=True, slots=True, kw_only=True)
class PatientDetails:
    """A fed patient for display: state, the demographics of its last feed (the field names of
    ``gateway.hl7.adt.Demographics``) and the local ids fed with it."""

    patient_id: str
    state: PatientState
    demographics: dict[str, Any]
    local_ids: tuple[str, ...] = ()


def _now() -> datetime:
    return datetime.now(UTC)


def state_in(conn: Connection, pid: str) -> PatientState:
    """The state of ``pid`` within the caller's transaction."""
    row = conn.execute(select(patient.c.merged_into).where(patient.c.patient_id == pid)).first()
    if row is None:
        return PatientState(PatientStatus.UNKNOWN)
    if row.merged_into is None:
        return PatientState(PatientStatus.ACTIVE)
    return PatientState(PatientStatus.MERGED, resolve_in(conn, pid))


def resolve_in(conn: Connection, pid: str) -> str | None:
    """The id that ``pid`` finally merged into (``pid`` itself when active); None if never fed."""
    current, seen = pid, {pid}
    for _ in range(_MAX_CHAIN):
        row = conn.execute(
            select(patient.c.merged_into).where(patient.c.patient_id == current)
        ).first()
        if row is None:
            return None if current == pid else current
        if row.merged_into is None or row.merged_into in seen:
            return current
        current = row.merged_into
        seen.add(current)
    return current


def aliases_in(conn: Connection, pid: str) -> list[str]:
    """``pid`` followed by every id merged into it, directly or through earlier merges.

    For the ids a query for ``pid`` must cover, call it with the surviving id:
    ``aliases_in(conn, resolve_in(conn, pid) or pid)``. Standard: ITI TF-2 §3.8.4.2.3.
    """
    found, frontier = [pid], [pid]
    seen = {pid}
    for _ in range(_MAX_CHAIN):
        rows = conn.execute(
            select(patient.c.patient_id).where(patient.c.merged_into.in_(frontier))
        ).scalars()
        frontier = sorted(set(rows) - seen)
        if not frontier:
            break
        seen.update(frontier)
        found.extend(frontier)
    return found


def _demographics_json(demographics: Any) -> str | None:
    if demographics is None:
        return None
    if dataclasses.is_dataclass(demographics) and not isinstance(demographics, type):
        values = dataclasses.asdict(demographics)
    else:
        values = dict(demographics)
    return json.dumps({k: v for k, v in values.items() if v is not None}, ensure_ascii=False)


# The INSERT ... ON CONFLICT of each supported dialect (the dialect modules need no driver).
_UPSERT_INSERTS: dict[str, Callable[[Table], postgresql.Insert | sqlite.Insert]] = {
    "postgresql": postgresql.insert,
    "sqlite": sqlite.insert,
}


def _upsert(
    conn: Connection,
    table: Table,
    key: str,
    values: dict[str, Any],
) -> None:
    """INSERT a row, or UPDATE ``values`` when the primary key ``key`` exists (atomic upsert).

    Columns not in ``values`` keep their value (or default to NULL on insert). SQLite >= 3.24 and
    PostgreSQL both have ``INSERT ... ON CONFLICT DO UPDATE``, so two processes feeding the same
    new id at once cannot collide.
    """
    dialect = conn.dialect.name
    dialect_insert = _UPSERT_INSERTS.get(dialect)
    if dialect_insert is None:  # pragma: no cover - the registry supports these two
        raise NotImplementedError(f"no upsert for {dialect}")
    statement = dialect_insert(table).values(**values)
    statement = statement.on_conflict_do_update(
        index_elements=[table.c[key]],
        set_={name: statement.excluded[name] for name in values if name != key},
    )
    conn.execute(statement)


def register_in(
    conn: Connection,
    pid: str,
    demographics: Any,
    other_ids: Sequence[str],
    *,
    now: datetime,
) -> None:
    """Create ``pid`` or update its demographics; map ``other_ids`` to it.

    A merged (subsumed) id stays merged: demographics updates (A08) do not undo a merge.
    Standard: ITI TF-2 §3.8.4.1.3.
    """
    stamp = format_dtm(now)
    _upsert(
        conn,
        patient,
        "patient_id",
        {"patient_id": pid, "demographics": _demographics_json(demographics), "updated": stamp},
    )
    for local in dict.fromkeys(other_ids):
        if local != pid:
            _upsert(conn, patient_local_id, "local_id", {"local_id": local, "patient_id": pid})


def merge_in(conn: Connection, surviving: str, subsumed: str, *, now: datetime) -> None:
    """Merge ``subsumed`` into ``surviving`` (either may be new to the registry).

    The final survivor is where ``surviving`` itself resolves to, unless that is ``subsumed``
    (a merge reversing an earlier one): then ``surviving`` becomes active again.
    Standard: ITI TF-2 §3.8.4.2.3.
    """
    if surviving == subsumed:
        return
    stamp = format_dtm(now)
    target = resolve_in(conn, surviving)
    if target is None:
        _upsert(conn, patient, "patient_id", {"patient_id": surviving, "updated": stamp})
        target = surviving
    elif target == subsumed:
        conn.execute(
            update(patient)
            .where(patient.c.patient_id == surviving)
            .values(merged_into=None, updated=stamp)
        )
        target = surviving
    _upsert(
        conn,
        patient,
        "patient_id",
        {"patient_id": subsumed, "merged_into": target, "updated": stamp},
    )
    conn.execute(
        update(patient)
        .where(patient.c.merged_into == subsumed)
        .values(merged_into=target, updated=stamp)
    )
    conn.execute(
        update(patient_local_id)
        .where(patient_local_id.c.patient_id == subsumed)
        .values(patient_id=target)
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class PatientMatch:
    """A fed patient found by its demographics (PID-5 name, PID-7 birth date, PID-8 sex)."""

    patient_id: str
    family_name: str | None = None
    given_name: str | None = None
    birth_date: str | None = None
    sex: str | None = None


def _fold(value: object) -> str:
    return " ".join(str(value or "").split()).casefold()


def find_by_demographics_in(
    conn: Connection, *, family_name: str, given_name: str, birth_date: str, sex: str
) -> list[PatientMatch]:
    """Active patients whose fed family name, given name (case and spacing aside), birth date
    (to the day) and sex are the given ones. A scan narrowed by the birth date in the stored JSON
    (the demographics are kept for display, not indexed): for reconciling imported media."""
    if len(birth_date) != 8 or not birth_date.isdigit():
        return []
    query = (
        select(patient.c.patient_id, patient.c.demographics)
        .where(patient.c.merged_into.is_(None))
        .where(patient.c.demographics.like(f'%"birth_date": "{birth_date}%'))
        .order_by(patient.c.patient_id)
    )
    found = []
    for pid, text in conn.execute(query):
        values = json.loads(text or "{}")
        match = PatientMatch(
            patient_id=pid,
            family_name=values.get("family_name"),
            given_name=values.get("given_name"),
            birth_date=values.get("birth_date"),
            sex=values.get("sex"),
        )
        if (
            _fold(match.family_name) == _fold(family_name)
            and _fold(match.given_name) == _fold(given_name)
            and str(match.birth_date or "")[:8] == birth_date
            and _fold(match.sex) == _fold(sex)
        ):
            found.append(match)
    return found


class PatientRegistry:
    """The registry's patient identity store; a ``gateway.hl7.feed.PatientIdentitySink``."""

    def __init__(self, db: Database, *, clock: Callable[[], datetime] = _now) -> None:
        self.db = db
        self.clock = clock

    # -- ITI-8 sink ---------------------------------------------------------------------------
    def register(self, pid: str, demographics: Demographics, *, other_ids: Sequence[str]) -> None:
        """Create the patient id, or update its demographics when it exists (A01/A04/A05/A08).

        Standard: ITI TF-2 §3.8.4.1.3.
        """
        with self.db.write() as conn:
            register_in(conn, pid, demographics, other_ids, now=self.clock())

    def merge(self, surviving: str, subsumed: str) -> None:
        """Merge ``subsumed`` into ``surviving`` (A40). Standard: ITI TF-2 §3.8.4.2.3."""
        with self.db.write() as conn:
            merge_in(conn, surviving, subsumed, now=self.clock())

    # -- questions ----------------------------------------------------------------------------
    def state(self, pid: str) -> PatientState:
        """UNKNOWN, ACTIVE or MERGED (with the surviving id)."""
        with self.db.read() as conn:
            return state_in(conn, pid)

    def details(self, pid: str) -> PatientDetails | None:
        """What ITI-8 fed for ``pid`` (None when never fed): for patient lookups (FHIR Patient).

        Standard: ITI TF-2 §3.8.4.1.3 (demographics and identifiers of the feed).
        """
        with self.db.read() as conn:
            row = conn.execute(
                select(patient.c.demographics).where(patient.c.patient_id == pid)
            ).first()
            if row is None:
                return None
            local_ids = conn.execute(
                select(patient_local_id.c.local_id)
                .where(patient_local_id.c.patient_id == pid)
                .order_by(patient_local_id.c.local_id)
            ).scalars()
            state = state_in(conn, pid)
            try:
                demographics = json.loads(row.demographics) if row.demographics else {}
            except ValueError:
                demographics = {}
            return PatientDetails(
                patient_id=pid,
                state=state,
                demographics=demographics if isinstance(demographics, dict) else {},
                local_ids=tuple(local_ids),
            )

    def is_known(self, pid: str) -> bool:
        """True when ``pid`` was fed and not merged into another id (submissions may use it).

        Standard: ITI TF-2 §3.42.4.1.3 (XDSUnknownPatientId), §3.8.4.2.3.
        """
        return self.state(pid).status is PatientStatus.ACTIVE

    def resolve(self, pid: str) -> str | None:
        """The surviving id of ``pid`` (``pid`` itself when active); None when never fed."""
        with self.db.read() as conn:
            return resolve_in(conn, pid)

    def aliases(self, pid: str) -> list[str]:
        """``pid`` and every id merged into it, transitively (see :func:`aliases_in`)."""
        with self.db.read() as conn:
            return aliases_in(conn, pid)

    def find_by_demographics(
        self, *, family_name: str, given_name: str, birth_date: str, sex: str
    ) -> list[PatientMatch]:
        """Active patients with exactly these fed demographics (see
        :func:`find_by_demographics_in`); IHE RAD IRWF.b reconciliation of imported media."""
        with self.db.read() as conn:
            return find_by_demographics_in(
                conn,
                family_name=family_name,
                given_name=given_name,
                birth_date=birth_date,
                sex=sex,
            )

    def search(self, text: str, *, limit: int = 200) -> list[PatientMatch]:
        """Active patients whose id starts with ``text`` (a CX or a bare id; local ids fed with
        them count) or whose fed family or given name contains it (case aside), at most
        ``limit``, ids in order. For the exchange browser's patient search (``/ui/patients?q=``);
        names are narrowed in SQL on the stored JSON, then checked field by field."""
        text = text.strip()
        if not text:
            return []
        escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        folded = _fold(text)
        with self.db.read() as conn:
            by_local = select(patient_local_id.c.patient_id).where(
                patient_local_id.c.local_id.like(f"{escaped}%", escape="\\")
            )
            by_id = patient.c.patient_id.like(
                f"{escaped}%", escape="\\"
            ) | patient.c.patient_id.in_(by_local)
            query = (
                select(patient.c.patient_id, patient.c.demographics, by_id.label("by_id"))
                .where(by_id | patient.c.demographics.ilike(f"%{escaped}%", escape="\\"))
                .where(patient.c.merged_into.is_(None))
                .order_by(patient.c.patient_id)
            )
            found: list[PatientMatch] = []
            for pid, raw, id_matched in conn.execute(query):
                values = json.loads(raw or "{}")
                names = (values.get("family_name"), values.get("given_name"))
                if not id_matched and not any(folded in _fold(n) for n in names if n):
                    continue  # the text was elsewhere in the JSON (a key, the birth date ...)
                found.append(
                    PatientMatch(
                        patient_id=pid,
                        family_name=values.get("family_name"),
                        given_name=values.get("given_name"),
                        birth_date=values.get("birth_date"),
                        sex=values.get("sex"),
                    )
                )
                if len(found) >= limit:
                    break
            return found

    def domain_id_for_local(self, local_cx: str) -> str | None:
        """The affinity-domain id fed together with a local id (followed through merges)."""
        with self.db.read() as conn:
            domain_id = conn.execute(
                select(patient_local_id.c.patient_id).where(patient_local_id.c.local_id == local_cx)
            ).scalar()
            if domain_id is None:
                return None
            return resolve_in(conn, domain_id) or domain_id

    def ids_in_domain(self, pid: str, domain_oid: str) -> list[str]:
        """The identifiers ITI-8 feeds listed for this patient in another assigning authority.

        For an Initiating Gateway querying a community of another patient identifier domain: the
        other PID-3 repetitions of the patient's feeds (followed through merges), those whose
        CX.4 universal id is ``domain_oid``. Standard: ITI TF-2 §3.8.4.1.3 (PID-3 may list the
        patient's identifiers in several domains); ITI TF-1 §18.2.3 (XCA patient identifiers).
        """
        with self.db.read() as conn:
            survivor = resolve_in(conn, pid) or pid
            owners = aliases_in(conn, survivor)
            local_ids = conn.execute(
                select(patient_local_id.c.local_id).where(patient_local_id.c.patient_id.in_(owners))
            ).scalars()
            return sorted(i for i in local_ids if _authority(i) == domain_oid)


def _authority(cx: str) -> str | None:
    try:
        return parse_cx(cx).assigning_authority
    except DataTypeError:
        return None  # a local id of another form (namespace only): not of an OID domain
