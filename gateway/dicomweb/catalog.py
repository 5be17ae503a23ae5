"""The QIDO-RS attribute table: what the imaging source's index lacks to match and answer searches.

``dicomweb_instance`` holds, per stored instance, the attributes that PS3.18 Table 10.6.1-5
requires for matching and Tables 10.6.3-3..5 require in answers (patient, study, series and
instance level; the table is ``gateway.dicomweb.schema``). It lives in the gateway database and
follows the imaging source's index: before a search the rows received (or moved) since the last
one seen are read, their headers parsed from the stored files and upserted (:meth:`Catalog.sync`).
Every process sharing the database does the same, idempotently, so an instance stored by any of
them (C-STORE, STOW-RS, folder import) is found by all; the look-back of :data:`LOOK_BACK` seconds
covers transactions committed late.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from pydicom import dcmread
from sqlalchemy import Engine, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite

from gateway.dicomweb.ports import Backend, StoredInstance
from gateway.dicomweb.schema import COLUMNS, INTEGER_COLUMNS, PN_COLUMNS, dicomweb_instance

log = logging.getLogger("gateway.dicomweb")

LOOK_BACK = 120.0  # seconds: instances committed this late after a sync are still picked up
PAGE = 500
REMOVED_AT_ONCE = 1_000_000  # rejected instances read in one look (rejections are rare)


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
        row[name] = _integer(value) if name in INTEGER_COLUMNS else _text(value)
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
        self._removed_after = 0.0  # rejected instances forgotten up to here (this process)

    def sync(self) -> int:
        """Catch up with the index; return how many rows were (re)written."""
        c = dicomweb_instance.c
        with self.engine.connect() as conn:
            latest = conn.execute(select(func.max(c.received_at))).scalar()
        after = (latest or 0.0) - LOOK_BACK
        written = self._forget_removed()
        while True:
            changed = self.backend.changed_since(after, PAGE)
            if not changed:
                return written
            written += self._write(changed)
            if len(changed) < PAGE:
                return written
            after = changed[-1].received_at

    def _forget_removed(self) -> int:
        """Delete the rows of instances the source took away (rejected, IHE RAD IOCM) since the
        last look, with the same look-back; idempotent, so every process may do it. One note's
        instances share one time, so they are read whole, not by pages."""
        removed = self.backend.removed_since(self._removed_after - LOOK_BACK, REMOVED_AT_ONCE)
        if not removed:
            return 0
        c = dicomweb_instance.c
        uids = [uid for uid, _when in removed]
        with self.engine.begin() as conn:
            for start in range(0, len(uids), PAGE):
                chunk = uids[start : start + PAGE]
                conn.execute(delete(dicomweb_instance).where(c.sop_instance_uid.in_(chunk)))
        self._removed_after = max(self._removed_after, removed[-1][1])
        return len(uids)

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
