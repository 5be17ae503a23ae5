"""The QIDO-RS attribute table: what the imaging source's index lacks to match and answer searches.

``dicomweb_instance`` holds, per stored instance, the attributes that PS3.18 Table 10.6.1-5
requires for matching and Tables 10.6.3-3..5 require in answers (patient, study, series and
instance level). It lives in the imaging source's database and follows its index: before a search
the rows received (or moved) since the last one seen are read, their headers parsed from the
stored files and upserted (:meth:`Catalog.sync`). Every process sharing the database does the
same, idempotently, so an instance stored by any of them (C-STORE, STOW-RS, folder import) is
found by all; the look-back of :data:`LOOK_BACK` seconds covers transactions committed late.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from pydicom import dcmread
from sqlalchemy import (
    Column,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite

from gateway.dicomweb.ports import Backend, StoredInstance

log = logging.getLogger("gateway.dicomweb")

LOOK_BACK = 120.0  # seconds: instances committed this late after a sync are still picked up
PAGE = 500

metadata = MetaData()

# column name -> (keyword, level, kind); kind says how values match (qido.py).
COLUMNS: dict[str, tuple[str, str, str]] = {
    "specific_character_set": ("SpecificCharacterSet", "study", "CS"),
    "patient_id": ("PatientID", "study", "LO"),
    "patient_name": ("PatientName", "study", "PN"),
    "patient_birth_date": ("PatientBirthDate", "study", "DA"),
    "patient_sex": ("PatientSex", "study", "CS"),
    "study_date": ("StudyDate", "study", "DA"),
    "study_time": ("StudyTime", "study", "TM"),
    "accession_number": ("AccessionNumber", "study", "SH"),
    "referring_physician_name": ("ReferringPhysicianName", "study", "PN"),
    "study_id": ("StudyID", "study", "SH"),
    "study_description": ("StudyDescription", "study", "LO"),
    "timezone_offset": ("TimezoneOffsetFromUTC", "study", "SH"),
    "modality": ("Modality", "series", "CS"),
    "series_number": ("SeriesNumber", "series", "IS"),
    "series_description": ("SeriesDescription", "series", "LO"),
    "pps_start_date": ("PerformedProcedureStepStartDate", "series", "DA"),
    "pps_start_time": ("PerformedProcedureStepStartTime", "series", "TM"),
    "instance_number": ("InstanceNumber", "instance", "IS"),
    "rows": ("Rows", "instance", "US"),
    "columns": ("Columns", "instance", "US"),
    "bits_allocated": ("BitsAllocated", "instance", "US"),
    "number_of_frames": ("NumberOfFrames", "instance", "IS"),
}
_INTEGERS = {"series_number", "instance_number", "rows", "columns", "bits_allocated"}
_INTEGERS.add("number_of_frames")
PN_COLUMNS = [name for name, (_kw, _lvl, kind) in COLUMNS.items() if kind == "PN"]

dicomweb_instance = Table(
    "dicomweb_instance",
    metadata,
    Column("sop_instance_uid", String(64), primary_key=True),
    Column("study_instance_uid", String(64), nullable=False),
    Column("series_instance_uid", String(64), nullable=False),
    Column("sop_class_uid", String(64), nullable=False),
    Column("received_at", Float, nullable=False),
    # RequestAttributesSequence (0040,0275) > ScheduledProcedureStepID / RequestedProcedureID,
    # backslash-joined with a leading and a trailing backslash (matched with LIKE).
    Column("sps_ids", Text),
    Column("rp_ids", Text),
    *[Column(name, Integer if name in _INTEGERS else Text) for name in COLUMNS],
    # PN values case-folded in Python (SQLite's lower() folds ASCII only): PS3.4 C.2.2.2.1
    *[Column(f"{name}_folded", Text) for name in PN_COLUMNS],
    Index("ix_dicomweb_instance_series", "study_instance_uid", "series_instance_uid"),
    Index("ix_dicomweb_instance_received", "received_at"),
    Index("ix_dicomweb_instance_patient", "patient_id"),
    Index("ix_dicomweb_instance_date", "study_date"),
)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = "\\".join(str(v) for v in value) if isinstance(value, list | tuple) else str(value)
    return text.strip() or None


def _integer(value: Any) -> int | None:
    try:
        return int(str(value)) if value not in (None, "") else None
    except ValueError:
        return None


def normal_time(value: str | None) -> str | None:
    """A TM value padded to ``HHMMSS`` (fraction kept) so times compare as strings."""
    if not value:
        return value
    whole, dot, fraction = value.partition(".")
    whole = (whole + "000000")[:6] if whole.isdigit() else whole
    return whole + (dot + fraction if fraction else "")


def row_of(instance: StoredInstance) -> dict[str, Any]:
    """The catalog row of a stored instance, from its header (read up to the pixel data)."""
    ds = dcmread(instance.path, stop_before_pixels=True)
    row: dict[str, Any] = {
        "sop_instance_uid": instance.sop_instance_uid,
        "study_instance_uid": instance.study_instance_uid,
        "series_instance_uid": instance.series_instance_uid,
        "sop_class_uid": instance.sop_class_uid,
        "received_at": instance.received_at,
    }
    for name, (keyword, _level, kind) in COLUMNS.items():
        value = ds.get(keyword)
        row[name] = _integer(value) if name in _INTEGERS else _text(value)
        if kind == "TM":
            row[name] = normal_time(row[name])
    for name in PN_COLUMNS:
        row[f"{name}_folded"] = row[name].casefold() if row[name] else None
    sps, rps = [], []
    for item in ds.get("RequestAttributesSequence") or []:
        sps.append(str(item.get("ScheduledProcedureStepID", "") or ""))
        rps.append(str(item.get("RequestedProcedureID", "") or ""))
    row["sps_ids"] = "\\" + "\\".join(sps) + "\\" if sps else None
    row["rp_ids"] = "\\" + "\\".join(rps) + "\\" if rps else None
    return row


class Catalog:
    """The attribute table on one engine, kept in step with the imaging source's index."""

    def __init__(self, engine: Engine, backend: Backend) -> None:
        self.engine = engine
        self.backend = backend
        self._insert = sqlite.insert if engine.dialect.name == "sqlite" else postgresql.insert
        metadata.create_all(engine, checkfirst=True)

    def sync(self) -> int:
        """Catch up with the index; return how many rows were (re)written."""
        c = dicomweb_instance.c
        with self.engine.connect() as conn:
            latest = conn.execute(select(func.max(c.received_at))).scalar()
        after = (latest or 0.0) - LOOK_BACK
        written = 0
        while True:
            changed = self.backend.changed_since(after, PAGE)
            if not changed:
                return written
            written += self._write(changed)
            if len(changed) < PAGE:
                return written
            after = changed[-1].received_at

    def _write(self, changed: Sequence[StoredInstance]) -> int:
        c = dicomweb_instance.c
        uids = [i.sop_instance_uid for i in changed]
        with self.engine.connect() as conn:
            known = dict(
                conn.execute(
                    select(c.sop_instance_uid, c.received_at).where(c.sop_instance_uid.in_(uids))
                ).all()
            )
        rows = []
        for instance in changed:
            if known.get(instance.sop_instance_uid) == instance.received_at:
                continue
            try:
                rows.append(row_of(instance))
            except Exception as exc:  # a file gone or unreadable: not searchable, say so
                log.warning("QIDO-RS: cannot read %s: %s", instance.sop_instance_uid, exc)
        if rows:
            self._upsert(rows)
        return len(rows)

    def _upsert(self, rows: Iterable[dict[str, Any]]) -> None:
        statement = self._insert(dicomweb_instance)
        statement = statement.on_conflict_do_update(
            index_elements=[dicomweb_instance.c.sop_instance_uid],
            set_={
                col.name: statement.excluded[col.name]
                for col in dicomweb_instance.columns
                if col.name != "sop_instance_uid"
            },
        )
        with self.engine.begin() as conn:
            conn.execute(statement, list(rows))
