"""Ready-made audit events beyond SOAP: DICOM, HL7, the application itself, security alerts.

Each function returns an :class:`AuditEvent` for :meth:`AuditTrail.record`; none does I/O.

Standards: DICOM PS3.15 A.5.3.1 (Application Activity), A.5.3.7 (DICOM Instances Transferred),
A.5.3.11 (Security Alert), A.5.2.2 (AE titles as ``AETITLES=``); ITI TF-2 §3.8.5.1 (ITI-8),
§3.20.4.1.1.1 (trigger events: node-authentication failure, actor start/stop).
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Sequence

from gateway.audit import codes
from gateway.audit.model import INITIATOR, RESPONDER, AuditEvent, Participant, StudyRef


def ae_titles(*titles: str) -> str:
    """AlternativeUserID of a DICOM process: ``AETITLES=A;B`` (PS3.15 A.5.2.2)."""
    return "AETITLES=" + ";".join(t.strip() for t in titles if t and t.strip())


def application_activity(
    *,
    start: bool,
    app_name: str = "xdsi-gateway",
    host: str | None = None,
    dicom_ae_titles: Sequence[str] = (),
    launcher: str | None = None,
) -> AuditEvent:
    """Application Start/Stop (110100 with 110120/110121); launcher = the OS user by default.

    Standard: DICOM PS3.15 A.5.3.1; ITI TF-2 §3.20.4.1.1.1 ("Actor-start-stop").
    """
    alternative = str(os.getpid())
    if dicom_ae_titles:
        alternative = f"{alternative};{ae_titles(*dicom_ae_titles)}"
    try:
        user = launcher or getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        user = launcher or str(os.getuid())
    return AuditEvent(
        transaction="APPLICATION-START" if start else "APPLICATION-STOP",
        responder=Participant(user_id=app_name, alternative_user_id=alternative, host=host),
        initiator=Participant(user_id=user, host=host),
    )


def node_authentication_failure(
    *,
    remote_host: str | None,
    reason: str,
    local: Participant,
    listener: str = "",
    peer_subject: str | None = None,
) -> AuditEvent:
    """A TLS handshake refused a node (no, expired or foreign certificate).

    Security Alert (110113) with EventTypeCode Node Authentication (110126), minor failure.
    Standard: DICOM PS3.15 A.5.3.11; ITI TF-2 §3.20.4.1.1.1 ("Node-authentication-failure").
    """
    where = f" on {listener}" if listener else ""
    return AuditEvent(
        transaction="NODE-AUTHENTICATION-FAILURE",
        outcome=codes.MINOR_FAILURE,
        outcome_description=f"TLS authentication failed{where}: {reason}",
        initiator=Participant(user_id=peer_subject or remote_host or "unknown", host=remote_host),
        responder=local,
        alert_subject=remote_host or peer_subject or "unknown",
        alert_description=reason,
    )


def access_refused(
    *,
    transaction: str,
    remote_host: str | None,
    peer_subject: str | None,
    local: Participant,
    reason: str = "",
) -> AuditEvent:
    """An authenticated node called a transaction the access rules do not grant it.

    Security Alert (110113) with EventTypeCode Use of Restricted Function (110132).
    Standard: DICOM PS3.15 A.5.3.11; ITI TF-1 §9.4 (access control by the secure node).
    """
    who = peer_subject or "a caller without certificate"
    text = reason or f"{transaction} refused for {who}"
    return AuditEvent(
        transaction="ACCESS-REFUSED",
        outcome=codes.MINOR_FAILURE,
        outcome_description=text,
        initiator=Participant(
            user_id=peer_subject or remote_host or "unknown",
            user_name=peer_subject,
            host=remote_host,
        ),
        responder=local,
        alert_subject=peer_subject or remote_host or "unknown",
        alert_description=text,
    )


def dicom_transfer(
    *,
    side: str,
    calling_ae: str,
    called_ae: str,
    calling_host: str | None,
    called_host: str | None,
    patient_id: str | None,
    studies: Sequence[StudyRef],
    outcome: str = codes.SUCCESS,
    outcome_description: str | None = None,
) -> AuditEvent:
    """DICOM Instances Transferred over one association (C-STORE SCU ``initiator``, SCP
    ``responder``); one event per association and patient.

    Standard: DICOM PS3.15 A.5.3.7 (SCU: Read, SCP: Create; Source = the sender).
    """
    if side not in (INITIATOR, RESPONDER):
        raise ValueError(f"side must be {INITIATOR!r} or {RESPONDER!r}")
    return AuditEvent(
        transaction="C-STORE",
        side=side,
        outcome=outcome,
        outcome_description=outcome_description,
        initiator=Participant(
            user_id=calling_ae, alternative_user_id=ae_titles(calling_ae), host=calling_host
        ),
        responder=Participant(
            user_id=called_ae, alternative_user_id=ae_titles(called_ae), host=called_host
        ),
        patient_ids=(patient_id,) if patient_id else (),
        studies=tuple(studies),
    )


def patient_feed(
    *,
    side: str,
    sending: str,
    receiving: str,
    sending_host: str | None,
    receiving_host: str | None,
    patient_ids: Sequence[str],
    message_control_id: str | None,
    trigger: str | None,
    outcome: str = codes.SUCCESS,
) -> AuditEvent:
    """ITI-8 Patient Identity Feed: Patient Record (110110), C for A01/A04/A05, U for A08/A40.

    ``sending``/``receiving`` are ``MSH-3|MSH-4`` and ``MSH-5|MSH-6`` (application|facility).
    Standard: ITI TF-2 §3.8.5.1.
    """
    return AuditEvent(
        transaction="ITI-8",
        side=side,
        outcome=outcome,
        initiator=Participant(user_id=sending, host=sending_host),
        responder=Participant(user_id=receiving, host=receiving_host),
        patient_ids=tuple(patient_ids),
        message_control_id=message_control_id,
        hl7_event=trigger,
    )


def ui_query(
    *,
    operator: str,
    operator_host: str | None,
    local: Participant,
    query_id: str,
    query_text: str,
    patient_ids: Sequence[str] = (),
) -> AuditEvent:
    """An operator's search in the exchange browser (``/ui/patients?q=``, a patient's documents).

    Query (110112), action E; the operator (account name as UserID and UserName) is the
    initiator, the gateway the responder; the query object carries ``query_text``.
    Standard: DICOM PS3.15 A.5.3.10.
    """
    return AuditEvent(
        transaction="UI-QUERY",
        side="responder",
        initiator=Participant(user_id=operator, user_name=operator, host=operator_host),
        responder=local,
        patient_ids=tuple(patient_ids),
        query_id=query_id,
        query_request=query_text.encode("utf-8"),
    )


def ui_patient_record(
    *,
    operator: str,
    operator_host: str | None,
    local: Participant,
    patient_ids: Sequence[str],
    studies: Sequence[StudyRef] = (),
) -> AuditEvent:
    """A page of the exchange browser showed a patient's data (documents, images, metadata).

    Patient Record (110110), action R (read); the operator (account name) is the initiator.
    Standard: DICOM PS3.15 A.5.3.14.
    """
    return AuditEvent(
        transaction="UI-PATIENT-RECORD",
        side="responder",
        initiator=Participant(user_id=operator, user_name=operator, host=operator_host),
        responder=local,
        patient_ids=tuple(patient_ids),
        studies=tuple(studies),
    )
