"""What happened, in plain data: the input of the audit message builders.

An :class:`AuditEvent` names the transaction, the side this gateway played (``initiator``: it
sent the request; ``responder``: it answered), the outcome, the two network participants and
the objects the transaction touched. The builders (:mod:`gateway.audit.messages`) turn it into
the DICOM audit message the IHE audit tables prescribe, deciding which participant is the
Source and which the Destination of the data (ITI-43 and RAD-69 move data from responder to
initiator; the others from initiator to responder).

Transaction names: ITI-8, ITI-18, ITI-41, ITI-42, ITI-43, RAD-68, RAD-69, ITI-38, ITI-39, RAD-75,
the MHD ITI-65, ITI-66, ITI-67, ITI-68 and PDQm ITI-78, C-STORE (DICOM instances transferred),
and the events APPLICATION-START, APPLICATION-STOP, NODE-AUTHENTICATION-FAILURE, ACCESS-REFUSED,
USER-LOGIN, USER-LOGOUT, and the exchange browser's UI-QUERY and UI-PATIENT-RECORD.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.audit import codes

INITIATOR, RESPONDER = "initiator", "responder"


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@dataclass(slots=True, kw_only=True)
class Participant:
    """One active participant: a process (or person) on one end of the transaction.

    ``user_id``: for SOAP, the endpoint URI (responder) or the wsa:ReplyTo address (initiator);
    for HL7, ``application|facility`` (MSH-3|MSH-4 or MSH-5|MSH-6); for DICOM, the AE title.
    ``host``: IP address or DNS name (NetworkAccessPointID). ``user_name``: the TLS peer's
    certificate subject, when authenticated. Standard: DICOM PS3.15 A.5.2.1, A.5.2.2.
    """

    user_id: str
    alternative_user_id: str | None = None
    user_name: str | None = None
    host: str | None = None


@dataclass(slots=True, kw_only=True)
class StudyRef:
    """A study touched by a DICOM transfer, with the instances moved (class may be unknown)."""

    study_uid: str
    series_uids: tuple[str, ...] = ()
    instances: tuple[tuple[str | None, str], ...] = ()  # (SOP Class UID or None, SOP Inst UID)


@dataclass(slots=True, kw_only=True)
class AuditEvent:
    """Everything one audit message needs (see the module docstring for transaction names)."""

    transaction: str
    side: str = RESPONDER
    outcome: str = codes.SUCCESS
    outcome_description: str | None = None
    initiator: Participant | None = None
    responder: Participant | None = None
    human_requestor: Participant | None = None
    patient_ids: tuple[str, ...] = ()  # HL7 CX: id^^^&oid&ISO
    submission_set_unique_id: str | None = None
    document_unique_ids: tuple[str, ...] = ()
    repository_unique_ids: tuple[str, ...] = ()  # aligned with documents, or one for all
    home_community_ids: tuple[str, ...] = ()  # aligned with documents, or one for all
    query_id: str | None = None  # stored query id (urn:uuid:...)
    query_request: bytes | None = None  # the AdhocQueryRequest as sent
    query_encoding: str = "UTF-8"
    studies: tuple[StudyRef, ...] = ()
    message_control_id: str | None = None  # HL7 MSH-10
    hl7_event: str | None = None  # HL7 trigger event, e.g. A01
    alert_subject: str | None = None  # security alerts: the node concerned
    alert_description: str | None = None
    event_time: datetime.datetime = field(default_factory=utc_now)


# Keys a handler may put into ``Context.audit`` (SOAP) or pass as ``facts`` (other listeners).
FACT_KEYS = (
    "patient_ids",
    "patient_id",
    "submission_set_unique_id",
    "document_unique_ids",
    "repository_unique_ids",
    "repository_unique_id",
    "home_community_ids",
    "home_community_id",
    "query_id",
    "query_request",
    "query_encoding",
    "studies",
    "study_uids",
    "sop_instance_uids",
    "message_control_id",
    "hl7_event",
    "reply_to",
    "outcome_description",
)


def _strings(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,) if value else ()
    return tuple(str(v) for v in value if v)


def _studies(facts: Mapping[str, Any]) -> tuple[StudyRef, ...]:
    refs: list[StudyRef] = []
    for raw in facts.get("studies") or ():
        if isinstance(raw, StudyRef):
            refs.append(raw)
            continue
        instances: list[tuple[str | None, str]] = []
        for item in raw.get("instances") or ():
            if isinstance(item, str):
                instances.append((None, item))
            else:
                instances.append((item[0] or None, item[1]))
        instances += [(raw.get("sop_class_uid"), uid) for uid in raw.get("sop_instance_uids", ())]
        refs.append(
            StudyRef(
                study_uid=raw["study_uid"],
                series_uids=_strings(raw.get("series_uids")),
                instances=tuple(instances),
            )
        )
    known = {ref.study_uid for ref in refs}
    loose = [(None, uid) for uid in _strings(facts.get("sop_instance_uids"))]
    for study_uid in _strings(facts.get("study_uids")):
        if study_uid not in known:
            refs.append(StudyRef(study_uid=study_uid, instances=tuple(loose)))
            loose = []
    return tuple(refs)


def event_from_facts(
    transaction: str,
    *,
    side: str,
    outcome: str,
    initiator: Participant | None,
    responder: Participant | None,
    facts: Mapping[str, Any],
) -> AuditEvent:
    """Build an event from the plain ``facts`` dict handlers fill (keys: :data:`FACT_KEYS`).

    Lists may be given as lists or tuples; singular keys (``patient_id``,
    ``repository_unique_id``, ``home_community_id``) are accepted for one value. ``studies`` is
    a list of ``{"study_uid", "series_uids", "instances": [(sop_class_uid, sop_instance_uid)]}``
    (or ``"sop_instance_uids"`` + ``"sop_class_uid"``); ``study_uids`` is the short form.
    """
    query = facts.get("query_request")
    if isinstance(query, str):
        query = query.encode("utf-8")
    return AuditEvent(
        transaction=transaction,
        side=side,
        outcome=outcome,
        outcome_description=facts.get("outcome_description"),
        initiator=initiator,
        responder=responder,
        patient_ids=_strings(facts.get("patient_ids")) or _strings(facts.get("patient_id")),
        submission_set_unique_id=facts.get("submission_set_unique_id"),
        document_unique_ids=_strings(facts.get("document_unique_ids")),
        repository_unique_ids=_strings(facts.get("repository_unique_ids"))
        or _strings(facts.get("repository_unique_id")),
        home_community_ids=_strings(facts.get("home_community_ids"))
        or _strings(facts.get("home_community_id")),
        query_id=facts.get("query_id"),
        query_request=query,
        query_encoding=facts.get("query_encoding") or "UTF-8",
        studies=_studies(facts),
        message_control_id=facts.get("message_control_id"),
        hl7_event=facts.get("hl7_event"),
    )


def aligned(values: Iterable[str], index: int) -> str | None:
    """The value for item ``index``: per item when aligned, else the single shared value."""
    items = list(values)
    if not items:
        return None
    return items[index] if index < len(items) else items[-1] if len(items) == 1 else None
