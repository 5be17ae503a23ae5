"""Read-only views of the instance index for services built over the imaging source (DICOMweb).

The C-STORE path writes ``imaging_instance`` (``gateway.imaging.index``); a service that keeps
its own derived tables (the QIDO-RS attributes of ``gateway.dicomweb``) follows it by
``received_at``: every new or moved instance gets a new ``received_at``, so "what changed since
t" is one indexed range query, whichever process stored the instance.
"""

from __future__ import annotations

from sqlalchemy import Engine, select

from gateway.imaging.index import InstanceRecord
from gateway.imaging.schema import imaging_instance


def changed_since(engine: Engine, after: float, *, limit: int = 1000) -> list[InstanceRecord]:
    """Instances received (or moved) after ``after``, oldest first, at most ``limit``."""
    c = imaging_instance.c
    query = (
        select(imaging_instance)
        .where(c.received_at > after)
        .order_by(c.received_at, c.sop_instance_uid)
        .limit(limit)
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [
        InstanceRecord(**{k: row._mapping[k] for k in InstanceRecord.__dataclass_fields__})
        for row in rows
    ]
