"""Participant objects of audit messages: patients, submission sets, documents, queries, studies.

Each function returns the ParticipantObjectIdentification elements an :class:`AuditEvent` calls
for, in the element order of the DICOM audit message schema (PS3.15 A.5.1). The IHE audit tables
say which object types each transaction carries (see :data:`gateway.audit.messages.SPECS`).

Standards: DICOM PS3.15 A.5.1, A.5.3.7, A.5.3.11; RFC 3881 §5.5; ITI TF-2 §3.8.5.1,
§3.18.5.1.1, §3.41.5.1.1, §3.43.5.1.1; RAD TF-3 §4.69.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable

from lxml import etree

from gateway.audit import codes
from gateway.audit.codes import Code
from gateway.audit.model import AuditEvent, aligned

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # one line per message; lxml refuses C0 controls

Objects = Callable[[AuditEvent], list[etree._Element]]


def clean(text: str) -> str:
    return _CONTROL.sub(" ", text)


def coded(parent: etree._Element, tag: str, code: Code) -> etree._Element:
    return etree.SubElement(
        parent,
        tag,
        {"csd-code": code.code, "codeSystemName": code.system, "originalText": code.text},
    )


def _b64(text: str | bytes) -> str:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return base64.b64encode(data).decode("ascii")


def _object(
    object_id: str, type_code: str, role: str, id_type: Code
) -> tuple[etree._Element, Callable[[str, str | bytes], None]]:
    element = etree.Element(
        "ParticipantObjectIdentification",
        {
            "ParticipantObjectID": clean(object_id),
            "ParticipantObjectTypeCode": type_code,
            "ParticipantObjectTypeCodeRole": role,
        },
    )
    coded(element, "ParticipantObjectIDTypeCode", id_type)

    def detail(kind: str, value: str | bytes) -> None:
        etree.SubElement(element, "ParticipantObjectDetail", {"type": kind, "value": _b64(value)})

    return element, detail


def patients(event: AuditEvent) -> list[etree._Element]:
    """Patient (type 1, role 1, EV(2, RFC-3881, "Patient Number")); ITI TF-2 §3.41.5.1.1."""
    out = []
    for patient_id in dict.fromkeys(event.patient_ids):
        element, detail = _object(
            patient_id, codes.TYPE_PERSON, codes.ROLE_PATIENT, codes.PATIENT_NUMBER
        )
        if event.message_control_id and event.transaction == "ITI-8":
            detail(codes.DETAIL_MSH10, event.message_control_id)  # ITI TF-2 §3.8.5.1
        out.append(element)
    return out


def submission_set(event: AuditEvent) -> list[etree._Element]:
    """Submission set (type 2, role 20 job, IHE XDS Metadata node); ITI TF-2 §3.41.5.1.1."""
    if not event.submission_set_unique_id:
        return []
    element, _detail = _object(
        event.submission_set_unique_id, codes.TYPE_SYSTEM, codes.ROLE_JOB, codes.SUBMISSION_SET
    )
    return [element]


def documents(event: AuditEvent) -> list[etree._Element]:
    """Documents (type 2, role 3 report, EV(9, RFC-3881, "Report Number")); ITI §3.43.5.1."""
    out = []
    for index, unique_id in enumerate(event.document_unique_ids):
        element, detail = _object(
            unique_id, codes.TYPE_SYSTEM, codes.ROLE_REPORT, codes.REPORT_NUMBER
        )
        repository = aligned(event.repository_unique_ids, index)
        if repository:
            detail(codes.DETAIL_REPOSITORY, repository)
        community = aligned(event.home_community_ids, index)
        if community:
            detail(codes.DETAIL_HOME_COMMUNITY, community)
        out.append(element)
    return out


# The ParticipantObjectIDTypeCode of the query object is the transaction's own code (ITI TF-2
# §3.18.5.1.1 for ITI-18; MHD ITI-66/ITI-67 and PDQm ITI-78 carry their search parameters).
_QUERY_TYPES = {
    "ITI-66": codes.ITI_66,
    "ITI-67": codes.ITI_67,
    "ITI-78": codes.ITI_78,
}


def query(event: AuditEvent) -> list[etree._Element]:
    """Query parameters (type 2, role 24, EV("ITI-18", ...)): id, request, QueryEncoding.

    Standard: ITI TF-2 §3.18.5.1.1. The homeCommunityID goes into a ParticipantObjectDetail,
    because PS3.15 A.5.1 allows ParticipantObjectName or ParticipantObjectQuery, not both.
    """
    element = etree.Element(
        "ParticipantObjectIdentification",
        {
            "ParticipantObjectID": clean(event.query_id or "unknown"),
            "ParticipantObjectTypeCode": codes.TYPE_SYSTEM,
            "ParticipantObjectTypeCodeRole": codes.ROLE_QUERY,
        },
    )
    coded(element, "ParticipantObjectIDTypeCode", _QUERY_TYPES.get(event.transaction, codes.ITI_18))
    etree.SubElement(element, "ParticipantObjectQuery").text = _b64(event.query_request or b"")
    etree.SubElement(
        element,
        "ParticipantObjectDetail",
        {"type": codes.DETAIL_QUERY_ENCODING, "value": _b64(event.query_encoding)},
    )
    for community in dict.fromkeys(event.home_community_ids):
        etree.SubElement(
            element,
            "ParticipantObjectDetail",
            {"type": codes.DETAIL_HOME_COMMUNITY, "value": _b64(community)},
        )
    return [element]


def studies(event: AuditEvent) -> list[etree._Element]:
    """Studies (type 2, role 3, EV(110180, DCM, "Study Instance UID")) with SOPClass/Instance.

    Standard: DICOM PS3.15 A.5.3.7 (Participating Object: Studies), A.5.1 (SOPClass element:
    UID optional, NumberOfInstances required); RAD TF-3 §4.69 (Repository Unique Id detail).
    """
    out = []
    repository = aligned(event.repository_unique_ids, 0)
    community = aligned(event.home_community_ids, 0)
    for study in event.studies:
        element, detail = _object(
            study.study_uid, codes.TYPE_SYSTEM, codes.ROLE_REPORT, codes.STUDY_INSTANCE_UID
        )
        if repository and event.transaction == "RAD-69":
            detail(codes.DETAIL_REPOSITORY, repository)
        if community and event.transaction == "RAD-69":
            detail(codes.DETAIL_HOME_COMMUNITY, community)
        by_class: dict[str | None, list[str]] = {}
        for sop_class, sop_instance in study.instances:
            by_class.setdefault(sop_class, []).append(sop_instance)
        for sop_class, instances in by_class.items():
            attributes = {"NumberOfInstances": str(len(instances))}
            if sop_class:
                attributes = {"UID": sop_class, **attributes}
            sop = etree.SubElement(element, "SOPClass", attributes)
            for uid in instances:
                etree.SubElement(sop, "Instance", {"UID": uid})
        out.append(element)
    return out


def alert_subject(event: AuditEvent) -> list[etree._Element]:
    """Alert subject (type 2, role 13 security resource, EV(110182, DCM, "Node ID")).

    Standard: DICOM PS3.15 A.5.3.11 (Security Alert: Participating Object "Alert Subject"),
    with the free-text reason as an "Alert Description" detail.
    """
    if not event.alert_subject:
        return []
    element, detail = _object(
        event.alert_subject, codes.TYPE_SYSTEM, codes.ROLE_SECURITY_RESOURCE, codes.NODE_ID
    )
    if event.alert_description:
        detail(codes.DETAIL_ALERT, event.alert_description)
    return [element]


def dicom_query(event: AuditEvent) -> list[etree._Element]:
    """SOP Queried (type 2, role 3, EV(110181, DCM, "SOP Class UID")) with the query itself:
    the SOP Class of the information model searched (``query_id``) and the request
    (``query_request``, for QIDO-RS its path and query string).

    Standard: DICOM PS3.15 A.5.3.10 (Query: Participating Object "SOP Queried").
    """
    element, detail = _object(
        event.query_id or "unknown", codes.TYPE_SYSTEM, codes.ROLE_REPORT, codes.SOP_CLASS_UID
    )
    etree.SubElement(element, "ParticipantObjectQuery").text = _b64(event.query_request or b"")
    detail("TransferSyntax", "1.2.840.10008.1.2.1")
    return [element]
