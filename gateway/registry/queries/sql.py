"""SQL building blocks of the stored queries (SQLAlchemy Core): filters, fetches, result rows.

Every filter runs in the database: patient ids and statuses as ``IN``, time ranges as string
comparisons on the normalised 14-digit columns, code parameters as one ``EXISTS`` on
``object_code`` per AND-ed slot (OR of the slot's codes inside), authors as ``EXISTS`` on
``object_author`` with LIKE, referenceIdList as ``EXISTS`` on ``reference_id``. The correlated
sub-queries use the ``(object_id, ...)`` indexes of ``schema.py``.

Standard: ITI TF-2 §3.18.4.1.2.3.5 (AND/OR, LIKE patterns), §3.18.4.1.2.3.7 (time ranges: From
inclusive, To exclusive; DocumentEntry type), rev. 19.0.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    RowMapping,
    Select,
    Table,
    and_,
    exists,
    or_,
    select,
    text,
)

from gateway.errors import XDSTooManyResults
from gateway.metadata import vocabulary as v
from gateway.metadata.datatypes import Code
from gateway.registry import codec, patients
from gateway.registry.schema import (
    association,
    document_entry,
    folder,
    object_author,
    object_code,
    patient,
    reference_id,
    submission_set,
)

# Without $XDSDocumentEntryType a query returns Stable entries only, so consumers that predate
# On-Demand Documents never meet one (ITI TF-2 §3.18.4.1.2.5, On-Demand Documents option).
DEFAULT_DOCUMENT_TYPES: tuple[str, ...] = (str(v.DOCUMENT_ENTRY_STABLE),)


@dataclass(slots=True, kw_only=True)
class Scope:
    """How one query runs: its connection and dialect, whole rows or keys, the result limit."""

    conn: Connection
    full: bool  # LeafClass: fetch bodies; ObjectRef: keys only
    limit: int = 0  # max objects of a LeafClass answer (0 = none; XDSTooManyResults beyond)
    metadata_level: int = 1  # $MetadataLevel (Metadata Update option): 1 or 2

    @property
    def dialect(self) -> str:
        return self.conn.dialect.name


@dataclass(slots=True)
class Found:
    """The rows a query selected, per object kind, in result order."""

    documents: list[RowMapping] = field(default_factory=list)
    submission_sets: list[RowMapping] = field(default_factory=list)
    folders: list[RowMapping] = field(default_factory=list)
    associations: list[RowMapping] = field(default_factory=list)

    def count(self) -> int:
        return (
            len(self.documents)
            + len(self.submission_sets)
            + len(self.folders)
            + len(self.associations)
        )


# --- fetching -------------------------------------------------------------------------------------
def columns(table: Table, full: bool) -> list[Column[Any]]:
    """All columns for LeafClass; without ``body`` for ObjectRef (the JSON is not needed)."""
    return [c for c in table.c if full or c.name != "body"]


def _select(table: Table, full: bool) -> Select[Any]:
    # select(table) names the same columns as listing them, and is cheaper to key in the
    # compiled-statement cache.
    selected = select(table) if full else select(*columns(table, full))
    return selected.order_by(table.c.seq, table.c.id)


def fetch(scope: Scope, table: Table, *where: ColumnElement[bool]) -> list[RowMapping]:
    """Rows of ``table`` matching ``where``, in registration order (``seq``, then ``id``).

    With a LeafClass limit, at most ``limit + 1`` rows are read: enough to know the answer is
    too large without reading a million rows. Raises: XDSTooManyResults.
    """
    base = _SELECTS.get((table, scope.full))
    if base is None:
        base = _select(table, scope.full)
    statement: Select[Any] = base.where(*where, *level_filters(scope, table))
    if scope.full and scope.limit:
        statement = statement.limit(scope.limit + 1)
    rows = list(scope.conn.execute(statement).mappings())
    check_limit(scope, len(rows))
    return rows


def level_filters(scope: Scope, table: Table) -> list[ColumnElement[bool]]:
    """What ``$MetadataLevel`` 1 (the default) hides: DocumentEntries and Folders that are not
    the latest version of their logical object, and Deprecated Associations. Level 2 hides
    nothing. (Only ITI-57 makes versions and deprecates associations.) Not hidden, unlike the
    TF's list: a Deprecated Folder that is its latest version (the queries' $XDSFolderStatus
    selects it, as before the Metadata Update option), and DocumentEntries with
    documentAvailability Offline (this registry never records one as Offline).

    Standard: ITI TF-2 §3.18.4.1.2.3.5.1 (Metadata Update option, MetadataLevel).
    """
    if scope.metadata_level >= 2:
        return []
    if table is document_entry or table is folder:
        newer = table.alias("newer")
        latest = ~exists(
            select(newer.c.id).where(
                newer.c.logical_id == table.c.logical_id, newer.c.version > table.c.version
            )
        )
        return [latest]
    if table is association:
        return [table.c.status != v.STATUS_DEPRECATED]
    return []


def check_limit(scope: Scope, count: int) -> None:
    """Refuse a LeafClass answer of more than ``limit`` objects.

    Standard: ITI TF-2 §3.18.4.1.3 (XDSTooManyResults). Raises: XDSTooManyResults.
    """
    if scope.full and scope.limit and count > scope.limit:
        raise XDSTooManyResults(
            f"the query matches more than {scope.limit} objects; narrow it or ask for ObjectRef"
        )


def ids_of(rows: Iterable[RowMapping]) -> list[str]:
    """The ``id`` of each row, in order, without repeats."""
    return list(dict.fromkeys(row["id"] for row in rows))


def unique(rows: Iterable[RowMapping]) -> list[RowMapping]:
    """Rows without repeated ids (an object reached on two paths is returned once)."""
    seen: set[str] = set()
    out = []
    for row in rows:
        if row["id"] not in seen:
            seen.add(row["id"])
            out.append(row)
    return out


# --- patients -------------------------------------------------------------------------------------
def patient_ids(conn: Connection, pid: str) -> list[str]:
    """The patient ids a query for ``pid`` covers: ``pid`` and every id merged into it.

    A query for an id that was itself merged away (subsumed) returns nothing.
    Standard: ITI TF-2 §3.8.4.2.3 and the ITI-18 merge rule (IHE assertions ITI18-11, ITI18-12).
    """
    # One round trip answers the usual case, a patient that took part in no merge: its own row
    # and any row merged into it. Anything else goes the general way of patients.py.
    if conn.dialect.name == "sqlite":
        rows = conn.execute(_PATIENT_ROWS_SQLITE, {"pid": pid}).all()
    else:
        rows = conn.execute(
            select(patient.c.patient_id, patient.c.merged_into).where(
                or_(patient.c.patient_id == pid, patient.c.merged_into == pid)
            )
        ).all()
    if all(row.patient_id == pid and row.merged_into is None for row in rows):
        return [pid]
    survivor = patients.resolve_in(conn, pid)
    if survivor is not None and survivor != pid:
        return []
    return patients.aliases_in(conn, pid)


# After ANALYZE, SQLite's statistics (sqlite_stat1, no null counts) say every row shares one
# merged_into value (NULL), so "merged_into = ?" looks unselective and the planner scans the
# whole table (20 ms at 100,000 patients); PostgreSQL knows the null fraction and uses the index.
_PATIENT_ROWS_SQLITE = text(
    "SELECT patient_id, merged_into FROM patient WHERE patient_id = :pid "
    "UNION ALL SELECT patient_id, merged_into FROM patient INDEXED BY ix_patient_merged_into "
    "WHERE merged_into = :pid"
)


# --- filters --------------------------------------------------------------------------------------
def time_range(column: Column[Any], low: str | None, high: str | None) -> list[ColumnElement[bool]]:
    """``low <= column < high`` on normalised 14-digit times (either bound may be absent).

    A DTM of any precision is padded with its lowest values, so ``To 2005`` excludes everything
    from 2005-01-01 00:00:00 on. Standard: ITI TF-2 §3.18.4.1.2.3.7 (From inclusive, To
    exclusive).
    """
    clauses: list[ColumnElement[bool]] = []
    if low is not None:
        clauses.append(column >= codec.normalise_dtm(low))
    if high is not None:
        clauses.append(column < codec.normalise_dtm(high))
    return clauses


def one_of(column: Any, values: Sequence[str]) -> ColumnElement[bool]:
    """``column = value`` for one value, ``column IN (values)`` for several (or none).

    The same rows either way; the single comparison saves SQLAlchemy the expansion of an IN
    parameter list at every execution, about a fifth of a one-row query's cost in Python.
    """
    if len(values) == 1:
        return column == values[0]
    return column.in_(list(values))


def in_list(column: Column[Any], values: Sequence[str] | None) -> list[ColumnElement[bool]]:
    """``column IN values`` when the parameter was given (status, type, sourceId ...)."""
    return [] if values is None else [one_of(column, values)]


def code_filters(
    object_id: Column[Any], attribute: str, groups: Sequence[Sequence[Code]] | None
) -> list[ColumnElement[bool]]:
    """One ``EXISTS`` on ``object_code`` per AND-ed slot, the slot's codes OR-ed inside.

    Code and codingScheme must both match. Standard: ITI TF-2 §3.18.4.1.2.3.4 (code^^scheme),
    §3.18.4.1.2.3.5 (AND/OR semantics).
    """
    clauses: list[ColumnElement[bool]] = []
    for codes in groups or ():
        pairs = [
            and_(object_code.c.code == c.code, object_code.c.scheme == c.scheme) for c in codes
        ]
        clauses.append(
            exists().where(
                object_code.c.object_id == object_id,
                object_code.c.attribute == attribute,
                or_(*pairs),
            )
        )
    return clauses


def reference_filters(
    object_id: Column[Any], groups: Sequence[Sequence[str]] | None
) -> list[ColumnElement[bool]]:
    """One ``EXISTS`` on ``reference_id`` per AND-ed slot (exact match of the CXi values).

    Standard: ITI TF-2 §3.18.4.1.2.3.7.14 ($XDSDocumentEntryReferenceIdList).
    """
    return [
        exists().where(reference_id.c.object_id == object_id, reference_id.c.value.in_(list(vals)))
        for vals in groups or ()
    ]


def author_filter(
    object_id: Column[Any], patterns: Sequence[str] | None, dialect: str
) -> list[ColumnElement[bool]]:
    """``EXISTS`` an authorPerson of the object matching one of the LIKE patterns.

    ``%`` matches any string, ``_`` one character; every other character is literal and matched
    case-sensitively on every database. Standard: ITI TF-2 §3.18.4.1.2.3.5 (author parameters).
    """
    if patterns is None:
        return []
    matches = [like(object_author.c.person, pattern, dialect) for pattern in patterns]
    return [exists().where(object_author.c.object_id == object_id, or_(*matches))]


def like(column: Column[Any], pattern: str, dialect: str) -> ColumnElement[bool]:
    """A case-sensitive SQL LIKE of the stored-query pattern language (``%`` and ``_``).

    SQLite's LIKE ignores ASCII case, so there the pattern becomes a GLOB (case-sensitive) with
    GLOB's own metacharacters bracketed; elsewhere LIKE with ``\\`` as escape character.
    """
    if dialect == "sqlite":
        glob = "".join(_GLOB.get(char, char) for char in pattern)
        return column.op("GLOB")(glob)
    return column.like(pattern.replace("\\", "\\\\"), escape="\\")


_GLOB = {"%": "*", "_": "?", "*": "[*]", "?": "[?]", "[": "[[]"}


# --- document entry filters shared by several queries --------------------------------------------
def document_type_filter(
    types: Sequence[str] | None, entries: Any = document_entry
) -> list[ColumnElement[bool]]:
    """``objectType IN types``, Stable only when $XDSDocumentEntryType is absent.

    ``entries`` is the ``document_entry`` table or an alias of it.
    Standard: ITI TF-2 §3.18.4.1.2.5 (DocumentEntry type in queries, On-Demand Documents).
    """
    wanted = DEFAULT_DOCUMENT_TYPES if types is None else types
    return [one_of(entries.c.object_type, wanted)]


TABLES: dict[str, Table] = {
    "DocumentEntry": document_entry,
    "SubmissionSet": submission_set,
    "Folder": folder,
    "Association": association,
}

# The SELECT ... ORDER BY of each table, LeafClass and ObjectRef, built once: a query only adds
# its WHERE (building the column list again costs more than running a one-row lookup).
_SELECTS: MappingProxyType[tuple[Table, bool], Select[Any]] = MappingProxyType(
    {(table, full): _select(table, full) for table in TABLES.values() for full in (True, False)}
)
