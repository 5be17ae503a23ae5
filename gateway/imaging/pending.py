"""Studies not published (yet), for ``xdsi-gateway imaging pending`` and ``/health``.

A study waits in one of three states (``schema.STATES``): ``receiving`` (published once quiet
for ``imaging_source.study_idle_seconds``; after a failed publication it is retried), ``held``
(its patient is not known: no affinity-domain identifier, or the registry does not know it) and
``publishing``. For each, the listing says why and what to do; for a held study that is what
the publisher stored (:class:`gateway.imaging.outcomes.HoldReason`).

"Since" is the time the study's last instance arrived: the study has waited since then.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from sqlalchemy import Engine, RowMapping, func, select

from gateway.imaging.outcomes import HoldReason
from gateway.imaging.schema import HELD, PUBLISHED, PUBLISHING, imaging_instance, imaging_study


@dataclass(frozen=True, slots=True, kw_only=True)
class PendingStudy:
    """One study not published, with the reason and what a person can do."""

    study_instance_uid: str
    state: str
    patient_id: str | None  # Patient ID (0010,0020) as received
    instances: int
    since: float  # POSIX time of its last instance
    reason: str
    todo: str


def held_count(engine: Engine) -> int:
    """How many studies are held (their patient is not known)."""
    query = select(func.count()).select_from(imaging_study).where(imaging_study.c.state == HELD)
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def pending_studies(engine: Engine, *, held_only: bool = False) -> list[PendingStudy]:
    """Every study not published, oldest first (only held ones with ``held_only``)."""
    i, s = imaging_instance.c, imaging_study.c
    per_study = (
        select(
            i.study_instance_uid,
            func.min(i.patient_id).label("received_patient_id"),
            func.count().label("instances"),
        )
        .group_by(i.study_instance_uid)
        .subquery()
    )
    query = (
        select(imaging_study, per_study.c.received_patient_id, per_study.c.instances)
        .outerjoin(per_study, per_study.c.study_instance_uid == s.study_instance_uid)
        .where(s.state == HELD if held_only else s.state != PUBLISHED)
        .order_by(s.last_received)
    )
    with engine.connect() as conn:
        rows = conn.execute(query).mappings().all()
    return [_pending(row) for row in rows]


def _pending(values: RowMapping) -> PendingStudy:
    state = values["state"]
    uid = values["study_instance_uid"]
    if state == HELD:
        hold = HoldReason.decode(values["held_reason"] or "the patient is not known")
        reason, todo = hold.reason, hold.todo or "send an ITI-8 feed that makes the patient known"
    elif state == PUBLISHING:
        reason, todo = "being published now", "nothing"
    elif values["last_error"]:
        reason = f"the last publication failed: {values['last_error']}"
        todo = (
            "it is retried by itself; check that the repository is reachable "
            f"(imaging_source.repository_url), or try now: xdsi-gateway publish {uid}"
        )
    else:
        reason = "receiving: published once quiet for imaging_source.study_idle_seconds"
        todo = f"nothing (or publish now: xdsi-gateway publish {uid})"
    return PendingStudy(
        study_instance_uid=uid,
        state=state,
        patient_id=values["received_patient_id"],
        instances=int(values["instances"] or 0),
        since=float(values["last_received"]),
        reason=reason,
        todo=todo,
    )


def _when(moment: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(moment))


def render_text(studies: Sequence[PendingStudy]) -> str:
    """One block per study: state and UID, then patient, since, reason and what to do."""
    if not studies:
        return "no study is waiting: every received study is published"
    blocks = []
    for study in studies:
        patient = study.patient_id or "(none)"
        blocks.append(
            f"{study.state} {study.study_instance_uid}\n"
            f"  patient id as received: {patient}\n"
            f"  since: {_when(study.since)} ({study.instances} instance(s))\n"
            f"  reason: {study.reason}\n"
            f"  to do: {study.todo}"
        )
    return "\n".join(blocks)


def render_json(studies: Sequence[PendingStudy]) -> str:
    """The listing as a JSON array (``since`` in ISO 8601, UTC)."""
    items = []
    for study in studies:
        item = asdict(study)
        item["since"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(study.since))
        items.append(item)
    return json.dumps(items, indent=2)
