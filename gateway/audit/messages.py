"""Audit message builders: one DICOM audit message (PS3.15 A.5) per :class:`AuditEvent`.

One table, :data:`SPECS`, says for every transaction what the IHE audit section prescribes:
the EventID and EventActionCode of each side, the EventTypeCode, which side is the Source of the
data, and which participant objects the message carries. :func:`build_message` assembles the
XML; it is checked against the project's schema (``schema/audit-message.rng``) in the tests.

Standards: DICOM PS3.15 A.5.1 (schema), A.5.2 (general conventions), A.5.3.1 (Application
Activity), A.5.3.7 (DICOM Instances Transferred), A.5.3.11 (Security Alert), A.5.3.12 (User
Authentication); ITI TF-2 §3.8.5.1 (ITI-8), §3.18.5.1 (ITI-18), §3.41.5.1 (ITI-41), §3.42.5.1
(ITI-42), §3.43.5.1 (ITI-43), §3.38.5.1 (ITI-38), §3.39.5.1 (ITI-39), §3.20.4.1.1.1 (security
events); RAD TF-3 §4.68, §4.69 and §4.75 (Security Considerations: RAD-68 audits as ITI-41,
RAD-69 and RAD-75 as DICOM Instances Transferred).
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from gateway.audit import codes
from gateway.audit.codes import Code
from gateway.audit.model import INITIATOR, AuditEvent, Participant
from gateway.audit.objects import (
    Objects,
    alert_subject,
    clean,
    coded,
    dicom_query,
    patients,
    query,
    studies,
    submission_set,
)
from gateway.audit.objects import documents as document_objects

ANONYMOUS = "http://www.w3.org/2005/08/addressing/anonymous"  # wsa:ReplyTo when absent
SCHEMA_PATH = Path(__file__).parent / "schema" / "audit-message.rng"


def load_schema() -> etree.RelaxNG:
    """The project's RELAX NG schema of the DICOM audit message (PS3.15 A.5.1), for tests."""
    return etree.RelaxNG(etree.parse(str(SCHEMA_PATH)))


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditSource:
    """AuditSourceIdentification: who writes the record (PS3.15 A.5.2; ITI TF-2 §3.20)."""

    source_id: str
    enterprise_site_id: str | None = None
    type_code: Code = codes.SOURCE_APPLICATION_SERVER


@dataclass(frozen=True, slots=True, kw_only=True)
class Spec:
    """How one transaction is audited (the IHE audit table, in data)."""

    event_id: tuple[Code, Code]  # (initiator side, responder side)
    action: tuple[str, str]
    type_code: Code | None
    data_from_initiator: bool  # True: initiator is the Source (110153) of the data
    objects: Objects


def _combine(*parts: Objects) -> Objects:
    def build(event: AuditEvent) -> list[etree._Element]:
        return [element for part in parts for element in part(event)]

    return build


def _none(_event: AuditEvent) -> list[etree._Element]:
    return []


_EXPORT_IMPORT = (codes.EXPORT, codes.IMPORT)
_IMPORT_EXPORT = (codes.IMPORT, codes.EXPORT)
_SUBMIT = _combine(patients, submission_set)

SPECS: dict[str, Spec] = {
    # ITI TF-2 §3.41.5.1: Document Source Export (R), Document Repository Import (C).
    "ITI-41": Spec(
        event_id=_EXPORT_IMPORT,
        action=(codes.READ, codes.CREATE),
        type_code=codes.ITI_41,
        data_from_initiator=True,
        objects=_SUBMIT,
    ),
    # RAD TF-3 §4.68: the Imaging Document Source audits as an ITI-41 Document Source.
    "RAD-68": Spec(
        event_id=_EXPORT_IMPORT,
        action=(codes.READ, codes.CREATE),
        type_code=codes.RAD_68,
        data_from_initiator=True,
        objects=_SUBMIT,
    ),
    # ITI TF-2 §3.42.5.1: Document Repository Export (R), Document Registry Import (C).
    "ITI-42": Spec(
        event_id=_EXPORT_IMPORT,
        action=(codes.READ, codes.CREATE),
        type_code=codes.ITI_42,
        data_from_initiator=True,
        objects=_SUBMIT,
    ),
    # ITI TF-2 §3.18.5.1: Query (E) on both sides; consumer is the Source.
    "ITI-18": Spec(
        event_id=(codes.QUERY, codes.QUERY),
        action=(codes.EXECUTE, codes.EXECUTE),
        type_code=codes.ITI_18,
        data_from_initiator=True,
        objects=_combine(patients, query),
    ),
    # ITI TF-2 §3.43.5.1: Consumer Import (C), Repository Export (R); repository is the Source.
    "ITI-43": Spec(
        event_id=_IMPORT_EXPORT,
        action=(codes.CREATE, codes.READ),
        type_code=codes.ITI_43,
        data_from_initiator=False,
        objects=_combine(patients, document_objects),
    ),
    # RAD TF-3 §4.69: DICOM Instances Transferred; the Imaging Document Source is the Source.
    "RAD-69": Spec(
        event_id=(codes.INSTANCES_TRANSFERRED, codes.INSTANCES_TRANSFERRED),
        action=(codes.CREATE, codes.READ),
        type_code=codes.RAD_69,
        data_from_initiator=False,
        objects=_combine(patients, studies),
    ),
    # ITI TF-2 §3.38.5.1: audited as ITI-18 (the Initiating Gateway as the Document Consumer,
    # the Responding Gateway as the Document Registry) with EventTypeCode ITI-38.
    "ITI-38": Spec(
        event_id=(codes.QUERY, codes.QUERY),
        action=(codes.EXECUTE, codes.EXECUTE),
        type_code=codes.ITI_38,
        data_from_initiator=True,
        objects=_combine(patients, query),
    ),
    # ITI TF-2 §3.39.5.1: audited as ITI-43 (Initiating Gateway Import, Responding Gateway
    # Export) with EventTypeCode ITI-39.
    "ITI-39": Spec(
        event_id=_IMPORT_EXPORT,
        action=(codes.CREATE, codes.READ),
        type_code=codes.ITI_39,
        data_from_initiator=False,
        objects=_combine(patients, document_objects),
    ),
    # RAD TF-3 §4.75: audited as RAD-69 (DICOM Instances Transferred) with EventTypeCode RAD-75.
    "RAD-75": Spec(
        event_id=(codes.INSTANCES_TRANSFERRED, codes.INSTANCES_TRANSFERRED),
        action=(codes.CREATE, codes.READ),
        type_code=codes.RAD_75,
        data_from_initiator=False,
        objects=_combine(patients, studies),
    ),
    # Registry operations. ITI-57 (ITI TF-2b §3.57.5.1): audited like ITI-42 with action U.
    # ITI-62 and ITI-86 (RMD, ITI TF-2b §3.62.5.1, §3.86.5.1): Patient Record, action D, with
    # the patient and the removed documents.
    "ITI-57": Spec(
        event_id=_EXPORT_IMPORT,
        action=(codes.UPDATE, codes.UPDATE),
        type_code=codes.ITI_57,
        data_from_initiator=True,
        objects=_SUBMIT,
    ),
    "ITI-62": Spec(
        event_id=(codes.PATIENT_RECORD, codes.PATIENT_RECORD),
        action=(codes.DELETE, codes.DELETE),
        type_code=codes.ITI_62,
        data_from_initiator=True,
        objects=_combine(patients, document_objects),
    ),
    "ITI-86": Spec(
        event_id=(codes.PATIENT_RECORD, codes.PATIENT_RECORD),
        action=(codes.DELETE, codes.DELETE),
        type_code=codes.ITI_86,
        data_from_initiator=True,
        objects=_combine(patients, document_objects),
    ),
    # MHD (rev. 4.2.2) ITI-65 §2:3.65.5.1, AuditEvent profiles IHE.MHD.ProvideBundle.Audit.*:
    # Document Source Export (R), Document Recipient Import (C), patient and submission set.
    "ITI-65": Spec(
        event_id=_EXPORT_IMPORT,
        action=(codes.READ, codes.CREATE),
        type_code=codes.ITI_65,
        data_from_initiator=True,
        objects=_SUBMIT,
    ),
    # MHD ITI-66 §2:3.66.5.1, ITI-67 §2:3.67.5.1 (BALP PatientQuery: Query, E; as ITI-18) and
    # PDQm ITI-78: the consumer is the Source, the query its search parameters.
    "ITI-66": Spec(
        event_id=(codes.QUERY, codes.QUERY),
        action=(codes.EXECUTE, codes.EXECUTE),
        type_code=codes.ITI_66,
        data_from_initiator=True,
        objects=_combine(patients, query),
    ),
    "ITI-67": Spec(
        event_id=(codes.QUERY, codes.QUERY),
        action=(codes.EXECUTE, codes.EXECUTE),
        type_code=codes.ITI_67,
        data_from_initiator=True,
        objects=_combine(patients, query),
    ),
    "ITI-78": Spec(
        event_id=(codes.QUERY, codes.QUERY),
        action=(codes.EXECUTE, codes.EXECUTE),
        type_code=codes.ITI_78,
        data_from_initiator=True,
        objects=_combine(patients, query),
    ),
    # MHD ITI-68 §2:3.68.5.1 ("similar to ITI-43"): Consumer Import (C), Responder Export (R).
    "ITI-68": Spec(
        event_id=_IMPORT_EXPORT,
        action=(codes.CREATE, codes.READ),
        type_code=codes.ITI_68,
        data_from_initiator=False,
        objects=_combine(patients, document_objects),
    ),
    # PS3.15 A.5.3.10 Query: a QIDO-RS search; the requester (initiator) is the Source.
    "QIDO-RS": Spec(
        event_id=(codes.QUERY, codes.QUERY),
        action=(codes.EXECUTE, codes.EXECUTE),
        type_code=None,
        data_from_initiator=True,
        objects=dicom_query,
    ),
    # PS3.15 A.5.3.7 DICOM Instances Transferred: WADO-RS (RAD-107 in XDS-I.b), the origin
    # server is the Source (as RAD-69).
    "WADO-RS": Spec(
        event_id=(codes.INSTANCES_TRANSFERRED, codes.INSTANCES_TRANSFERRED),
        action=(codes.CREATE, codes.READ),
        type_code=codes.RAD_107,
        data_from_initiator=False,
        objects=_combine(patients, studies),
    ),
    # PS3.15 A.5.3.7: STOW-RS, the user agent sends (R) and the origin server stores (C).
    "STOW-RS": Spec(
        event_id=(codes.INSTANCES_TRANSFERRED, codes.INSTANCES_TRANSFERRED),
        action=(codes.READ, codes.CREATE),
        type_code=None,
        data_from_initiator=True,
        objects=_combine(patients, studies),
    ),
    # PS3.15 A.5.3.7: C-STORE SCU (sender, R) and SCP (receiver, C).
    "C-STORE": Spec(
        event_id=(codes.INSTANCES_TRANSFERRED, codes.INSTANCES_TRANSFERRED),
        action=(codes.READ, codes.CREATE),
        type_code=None,
        data_from_initiator=True,
        objects=_combine(patients, studies),
    ),
    # ITI TF-2 §3.8.5.1: Patient Record, action C or U by trigger event (set in build_message).
    "ITI-8": Spec(
        event_id=(codes.PATIENT_RECORD, codes.PATIENT_RECORD),
        action=(codes.CREATE, codes.CREATE),
        type_code=codes.ITI_8,
        data_from_initiator=True,
        objects=patients,
    ),
    # The exchange browser (gateway.ui): an operator's search, and a page showing a patient's
    # data. DICOM PS3.15 A.5.3.10 Query (E) and A.5.3.14 Patient Record (R, read); the operator
    # is the initiator (UserID/UserName = account name), the gateway the responder.
    "UI-QUERY": Spec(
        event_id=(codes.QUERY, codes.QUERY),
        action=(codes.EXECUTE, codes.EXECUTE),
        type_code=None,
        data_from_initiator=True,
        objects=_combine(patients, query),
    ),
    "UI-PATIENT-RECORD": Spec(
        event_id=(codes.PATIENT_RECORD, codes.PATIENT_RECORD),
        action=(codes.READ, codes.READ),
        type_code=None,
        data_from_initiator=False,
        objects=_combine(patients, studies),
    ),
}

# Events that are not a transaction between two actors: (EventID, EventTypeCode, objects).
_EVENTS: dict[str, tuple[Code, Code, Objects]] = {
    "APPLICATION-START": (codes.APPLICATION_ACTIVITY, codes.APPLICATION_START, _none),
    "APPLICATION-STOP": (codes.APPLICATION_ACTIVITY, codes.APPLICATION_STOP, _none),
    "NODE-AUTHENTICATION-FAILURE": (
        codes.SECURITY_ALERT,
        codes.NODE_AUTHENTICATION,
        alert_subject,
    ),
    # With patient_ids (a refusal by patient consent, gateway.consent): the patient too.
    "ACCESS-REFUSED": (
        codes.SECURITY_ALERT,
        codes.USE_OF_RESTRICTED_FUNCTION,
        _combine(alert_subject, patients),
    ),
    "USER-LOGIN": (codes.USER_AUTHENTICATION, codes.LOGIN, _none),
    "USER-LOGOUT": (codes.USER_AUTHENTICATION, codes.LOGOUT, _none),
}

KNOWN_EVENTS = (*SPECS, *_EVENTS)
_ITI8_UPDATES = {"A08", "A40", "A47"}  # ITI TF-2 §3.8.5.1: update (and merge) events -> "U"


def _timestamp(moment: datetime.datetime) -> str:
    utc = moment.astimezone(datetime.UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _network_type(host: str) -> str:
    """NetworkAccessPointTypeCode: 2 = IP address, 1 = machine (DNS) name (RFC 3881 §5.3.6)."""
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return "1"
    return "2"


def _participant(
    root: etree._Element, who: Participant, *, requestor: bool, role: Code | None
) -> None:
    attributes = {"UserID": clean(who.user_id or ANONYMOUS)}
    if who.alternative_user_id:
        attributes["AlternativeUserID"] = clean(who.alternative_user_id)
    if who.user_name:
        attributes["UserName"] = clean(who.user_name)
    attributes["UserIsRequestor"] = "true" if requestor else "false"
    if who.host:
        attributes["NetworkAccessPointID"] = clean(who.host)
        attributes["NetworkAccessPointTypeCode"] = _network_type(who.host)
    element = etree.SubElement(root, "ActiveParticipant", attributes)
    if role is not None:
        coded(element, "RoleIDCode", role)


def _identification(
    root: etree._Element, event: AuditEvent, event_id: Code, action: str, type_code: Code | None
) -> None:
    identification = etree.SubElement(
        root,
        "EventIdentification",
        {
            "EventActionCode": action,
            "EventDateTime": _timestamp(event.event_time),
            "EventOutcomeIndicator": event.outcome,
        },
    )
    coded(identification, "EventID", event_id)
    if type_code is not None:
        coded(identification, "EventTypeCode", type_code)
    if event.outcome_description and event.outcome != codes.SUCCESS:
        etree.SubElement(identification, "EventOutcomeDescription").text = clean(
            event.outcome_description
        )


def _source(root: etree._Element, source: AuditSource) -> None:
    attributes = {"AuditSourceID": clean(source.source_id)}
    if source.enterprise_site_id:
        attributes = {"AuditEnterpriseSiteID": clean(source.enterprise_site_id), **attributes}
    element = etree.SubElement(root, "AuditSourceIdentification", attributes)
    coded(element, "AuditSourceTypeCode", source.type_code)


def _transaction_message(root: etree._Element, event: AuditEvent, spec: Spec) -> Objects:
    ours = 0 if event.side == INITIATOR else 1
    action = spec.action[ours]
    if event.transaction == "ITI-8":
        action = codes.UPDATE if (event.hl7_event or "").upper() in _ITI8_UPDATES else action
    _identification(root, event, spec.event_id[ours], action, spec.type_code)
    initiator = event.initiator or Participant(user_id=ANONYMOUS)
    responder = event.responder or Participant(user_id=ANONYMOUS)
    source, destination = (
        (initiator, responder) if spec.data_from_initiator else (responder, initiator)
    )
    source_requests = spec.data_from_initiator
    _participant(root, source, requestor=source_requests, role=codes.ROLE_SOURCE)
    if event.human_requestor is not None:
        _participant(root, event.human_requestor, requestor=True, role=None)
    _participant(root, destination, requestor=not source_requests, role=codes.ROLE_DESTINATION)
    return spec.objects


def _event_message(root: etree._Element, event: AuditEvent) -> Objects:
    event_id, type_code, objects = _EVENTS[event.transaction]
    _identification(root, event, event_id, codes.EXECUTE, type_code)
    application = event.responder or Participant(user_id="xdsi-gateway")
    if event_id == codes.APPLICATION_ACTIVITY:
        # PS3.15 A.5.3.1: the application (110150) and, when known, its launcher (110151).
        _participant(root, application, requestor=False, role=codes.ROLE_APPLICATION)
        if event.initiator is not None:
            _participant(
                root, event.initiator, requestor=True, role=codes.ROLE_APPLICATION_LAUNCHER
            )
        return objects
    # PS3.15 A.5.3.11 / A.5.3.12: the remote node or user (requestor) and this reporting process.
    if event.initiator is not None:
        _participant(root, event.initiator, requestor=True, role=None)
    _participant(root, application, requestor=event.initiator is None, role=None)
    return objects


def build_message(event: AuditEvent, source: AuditSource) -> etree._Element:
    """The AuditMessage element for ``event``, written by ``source``.

    Standard: DICOM PS3.15 A.5.1 (element order of the schema), A.5.2, and the transaction's
    audit table (see :data:`SPECS`).
    Raises:
        KeyError: ``event.transaction`` is not a known transaction or event name.
    """
    root = etree.Element("AuditMessage")
    spec = SPECS.get(event.transaction)
    if spec is not None:
        objects = _transaction_message(root, event, spec)
    elif event.transaction in _EVENTS:
        objects = _event_message(root, event)
    else:
        raise KeyError(f"no audit message is defined for {event.transaction!r}")
    _source(root, source)
    for element in objects(event):
        root.append(element)
    return root


def serialize(message: etree._Element) -> bytes:
    """UTF-8 bytes with an XML declaration, one line (no pretty-printing newlines)."""
    return b'<?xml version="1.0" encoding="UTF-8"?>' + etree.tostring(
        message, encoding="UTF-8", xml_declaration=False
    )


def encode_event(event: AuditEvent, source: AuditSource) -> bytes:
    """:func:`build_message` then :func:`serialize`."""
    return serialize(build_message(event, source))
