"""Audit messages per transaction: valid per the project's PS3.15 schema, content per IHE tables."""

from __future__ import annotations

import base64
import datetime

import pytest
from lxml import etree

from gateway.audit import codes, events
from gateway.audit.messages import (
    ANONYMOUS,
    KNOWN_EVENTS,
    AuditSource,
    build_message,
    load_schema,
    serialize,
)
from gateway.audit.model import INITIATOR, RESPONDER, AuditEvent, Participant, StudyRef

SCHEMA = load_schema()
SOURCE = AuditSource(source_id="xdsi-gateway@test", enterprise_site_id="Region")
PATIENT = "PID-1^^^&1.3.6.1.4.1.21367.13.20.1000&ISO"
CONSUMER = Participant(user_id=ANONYMOUS, host="10.0.0.7", user_name="CN=hospital-a,O=X")
REGISTRY = Participant(user_id="https://region.example/xds/registry", host="region.example")


def _valid(event: AuditEvent) -> etree._Element:
    message = build_message(event, SOURCE)
    assert SCHEMA.validate(message), SCHEMA.error_log
    # The serialized form parses back and still validates (what a receiver sees).
    again = etree.fromstring(serialize(message))
    assert SCHEMA.validate(again), SCHEMA.error_log
    return message


def _code(element: etree._Element) -> tuple[str, str, str]:
    return (element.get("csd-code"), element.get("codeSystemName"), element.get("originalText"))


def _event(message: etree._Element) -> tuple[tuple[str, str, str], str, list]:
    ident = message.find("EventIdentification")
    types = [_code(e) for e in ident.findall("EventTypeCode")]
    return _code(ident.find("EventID")), ident.get("EventActionCode"), types


def _roles(message: etree._Element) -> dict[str, etree._Element]:
    out = {}
    for participant in message.findall("ActiveParticipant"):
        role = participant.find("RoleIDCode")
        out[role.get("csd-code") if role is not None else "none"] = participant
    return out


def _objects(message: etree._Element) -> list[tuple[str, str, str, str]]:
    return [
        (
            o.get("ParticipantObjectID"),
            o.get("ParticipantObjectTypeCode"),
            o.get("ParticipantObjectTypeCodeRole"),
            o.find("ParticipantObjectIDTypeCode").get("csd-code"),
        )
        for o in message.findall("ParticipantObjectIdentification")
    ]


def _submission(transaction: str, side: str) -> AuditEvent:
    return AuditEvent(
        transaction=transaction,
        side=side,
        initiator=Participant(user_id=ANONYMOUS, host="10.0.0.9"),
        responder=Participant(user_id="https://region.example/xds/repository", host="10.0.0.1"),
        patient_ids=(PATIENT,),
        submission_set_unique_id="1.2.3.4.5",
    )


@pytest.mark.parametrize(
    ("transaction", "side", "event_id", "action"),
    [
        ("ITI-41", INITIATOR, "110106", "R"),
        ("ITI-41", RESPONDER, "110107", "C"),
        ("RAD-68", INITIATOR, "110106", "R"),
        ("ITI-42", INITIATOR, "110106", "R"),
        ("ITI-42", RESPONDER, "110107", "C"),
    ],
)
def test_submissions(transaction: str, side: str, event_id: str, action: str) -> None:
    message = _valid(_submission(transaction, side))
    eid, act, types = _event(message)
    assert eid[0] == event_id and eid[1] == "DCM" and act == action
    assert types[0][:2] == (transaction, "IHE Transactions")
    roles = _roles(message)
    # Data flows from the Document Source (or Repository) to the Repository (or Registry).
    assert roles["110153"].get("NetworkAccessPointID") == "10.0.0.9"
    assert roles["110153"].get("UserIsRequestor") == "true"
    assert roles["110152"].get("UserID") == "https://region.example/xds/repository"
    assert roles["110152"].get("UserIsRequestor") == "false"
    assert _objects(message) == [
        (PATIENT, "1", "1", "2"),
        ("1.2.3.4.5", "2", "20", "urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd"),
    ]


def test_rad68_event_type() -> None:
    _eid, _act, types = _event(_valid(_submission("RAD-68", INITIATOR)))
    assert types == [("RAD-68", "IHE Transactions", codes.RAD_68.text)]


@pytest.mark.parametrize("side", [INITIATOR, RESPONDER])
def test_registry_stored_query(side: str) -> None:
    request = (
        b'<query:AdhocQueryRequest xmlns:query="urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0"/>'
    )
    event = AuditEvent(
        transaction="ITI-18",
        side=side,
        initiator=CONSUMER,
        responder=REGISTRY,
        patient_ids=(PATIENT,),
        query_id="urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d",
        query_request=request,
        home_community_ids=("urn:oid:1.2.3",),
    )
    message = _valid(event)
    eid, action, types = _event(message)
    assert (eid, action) == (("110112", "DCM", "Query"), "E")
    assert types == [("ITI-18", "IHE Transactions", "Registry Stored Query")]
    roles = _roles(message)
    assert roles["110153"].get("UserID") == ANONYMOUS  # the consumer is the Source
    assert roles["110153"].get("UserName") == "CN=hospital-a,O=X"
    assert roles["110152"].get("UserID") == REGISTRY.user_id
    query = message.findall("ParticipantObjectIdentification")[1]
    assert query.get("ParticipantObjectTypeCodeRole") == "24"
    assert _code(query.find("ParticipantObjectIDTypeCode"))[0] == "ITI-18"
    assert base64.b64decode(query.findtext("ParticipantObjectQuery")) == request
    details = {
        d.get("type"): base64.b64decode(d.get("value"))
        for d in query.iter("ParticipantObjectDetail")
    }
    assert details == {"QueryEncoding": b"UTF-8", "ihe:homeCommunityID": b"urn:oid:1.2.3"}


@pytest.mark.parametrize(
    ("side", "event_id", "action"), [(INITIATOR, "110107", "C"), (RESPONDER, "110106", "R")]
)
def test_retrieve_document_set(side: str, event_id: str, action: str) -> None:
    repository = Participant(user_id="https://r.example/xds/repository", host="192.0.2.1")
    event = AuditEvent(
        transaction="ITI-43",
        side=side,
        initiator=CONSUMER,
        responder=repository,
        patient_ids=(PATIENT,),
        document_unique_ids=("1.2.3.1", "1.2.3.2"),
        repository_unique_ids=("1.3.6.1.4.1.21367.13.40.100",),
    )
    message = _valid(event)
    eid, act, _types = _event(message)
    assert (eid[0], act) == (event_id, action)
    roles = _roles(message)
    # ITI-43 moves data from the repository (Source) to the consumer (Destination, requestor).
    assert roles["110153"].get("UserID") == repository.user_id
    assert roles["110153"].get("UserIsRequestor") == "false"
    assert roles["110152"].get("UserIsRequestor") == "true"
    documents = [o for o in _objects(message) if o[3] == "9"]
    assert [d[0] for d in documents] == ["1.2.3.1", "1.2.3.2"]
    assert all(d[1:3] == ("2", "3") for d in documents)
    detail = message.find("ParticipantObjectIdentification/ParticipantObjectDetail")
    assert detail.get("type") == "Repository Unique Id"
    assert base64.b64decode(detail.get("value")) == b"1.3.6.1.4.1.21367.13.40.100"


def test_retrieve_imaging_document_set() -> None:
    study = StudyRef(
        study_uid="1.2.840.1",
        instances=(
            ("1.2.840.10008.5.1.4.1.1.2", "1.2.840.1.1"),
            ("1.2.840.10008.5.1.4.1.1.2", "1.2.840.1.2"),
        ),
    )
    event = AuditEvent(
        transaction="RAD-69",
        side=RESPONDER,
        initiator=CONSUMER,
        responder=Participant(user_id="https://h.example/xdsi/source"),
        patient_ids=(PATIENT,),
        studies=(study,),
        repository_unique_ids=("1.3.6.1.4.1.21367.13.80.100",),
    )
    message = _valid(event)
    eid, action, types = _event(message)
    assert (eid[0], action, types[0][0]) == ("110104", "R", "RAD-69")
    study_object = message.findall("ParticipantObjectIdentification")[1]
    assert _code(study_object.find("ParticipantObjectIDTypeCode")) == (
        "110180",
        "DCM",
        "Study Instance UID",
    )
    sop = study_object.find("SOPClass")
    assert sop.get("UID") == "1.2.840.10008.5.1.4.1.1.2" and sop.get("NumberOfInstances") == "2"
    assert [i.get("UID") for i in sop.findall("Instance")] == ["1.2.840.1.1", "1.2.840.1.2"]


@pytest.mark.parametrize(
    ("side", "action", "source_ae"), [(INITIATOR, "R", "SCU"), (RESPONDER, "C", "SCU")]
)
def test_dicom_instances_transferred(side: str, action: str, source_ae: str) -> None:
    event = events.dicom_transfer(
        side=side,
        calling_ae="SCU",
        called_ae="XDSI_SOURCE",
        calling_host="10.1.1.1",
        called_host="10.1.1.2",
        patient_id="P1",
        studies=[StudyRef(study_uid="1.2", instances=((None, "1.2.1"),))],
    )
    message = _valid(event)
    eid, act, types = _event(message)
    assert (eid[0], act, types) == ("110104", action, [])
    roles = _roles(message)
    assert roles["110153"].get("UserID") == source_ae
    assert roles["110153"].get("AlternativeUserID") == "AETITLES=SCU"
    assert roles["110152"].get("UserID") == "XDSI_SOURCE"
    sop = message.find("ParticipantObjectIdentification/SOPClass")
    assert sop.get("UID") is None and sop.get("NumberOfInstances") == "1"


@pytest.mark.parametrize(
    ("trigger", "action"), [("A01", "C"), ("A04", "C"), ("A08", "U"), ("A40", "U")]
)
def test_patient_identity_feed(trigger: str, action: str) -> None:
    event = events.patient_feed(
        side=RESPONDER,
        sending="ADT|HOSP",
        receiving="XDSI|REGION",
        sending_host="10.2.2.2",
        receiving_host=None,
        patient_ids=[PATIENT],
        message_control_id="MSG-0001",
        trigger=trigger,
    )
    message = _valid(event)
    eid, act, types = _event(message)
    assert (eid[0], act, types[0][0]) == ("110110", action, "ITI-8")
    assert _roles(message)["110153"].get("UserID") == "ADT|HOSP"
    detail = message.find("ParticipantObjectIdentification/ParticipantObjectDetail")
    assert detail.get("type") == "MSH-10" and base64.b64decode(detail.get("value")) == b"MSG-0001"


@pytest.mark.parametrize(("start", "type_code"), [(True, "110120"), (False, "110121")])
def test_application_activity(start: bool, type_code: str) -> None:
    message = _valid(events.application_activity(start=start, dicom_ae_titles=["XDSI_SOURCE"]))
    eid, action, types = _event(message)
    assert (eid[0], action, types[0][0]) == ("110100", "E", type_code)
    roles = _roles(message)
    assert roles["110150"].get("UserID") == "xdsi-gateway"
    assert "AETITLES=XDSI_SOURCE" in roles["110150"].get("AlternativeUserID")
    assert roles["110151"].get("UserIsRequestor") == "true"


def test_node_authentication_failure() -> None:
    event = events.node_authentication_failure(
        remote_host="203.0.113.5",
        reason="certificate verify failed: unable to get local issuer certificate",
        local=Participant(user_id="xdsi-gateway", host="gw.example"),
        listener="https",
    )
    message = _valid(event)
    eid, action, types = _event(message)
    assert (eid[0], action, types[0][0]) == ("110113", "E", "110126")
    ident = message.find("EventIdentification")
    assert ident.get("EventOutcomeIndicator") == "4"
    assert "https" in ident.findtext("EventOutcomeDescription")
    assert _objects(message) == [("203.0.113.5", "2", "13", "110182")]


def test_access_refused() -> None:
    event = events.access_refused(
        transaction="ITI-42",
        remote_host="10.0.0.7",
        peer_subject="CN=hospital-a,O=X",
        local=Participant(user_id="https://region/xds/registry"),
    )
    message = _valid(event)
    eid, _action, types = _event(message)
    assert (eid[0], types[0][0]) == ("110113", "110132")
    assert "ITI-42" in message.findtext("EventIdentification/EventOutcomeDescription")


def test_user_authentication_events() -> None:
    for name, type_code in (("USER-LOGIN", "110122"), ("USER-LOGOUT", "110123")):
        message = _valid(AuditEvent(transaction=name, initiator=Participant(user_id="alice")))
        assert _event(message)[0][0] == "110114" and _event(message)[2][0][0] == type_code


def test_every_known_event_builds_valid_messages_on_both_sides() -> None:
    for name in KNOWN_EVENTS:
        for side in (INITIATOR, RESPONDER):
            _valid(AuditEvent(transaction=name, side=side, patient_ids=("p",)))


def test_failure_outcome_and_time() -> None:
    moment = datetime.datetime(
        2024, 5, 1, 14, 30, 5, 123456, tzinfo=datetime.timezone(datetime.timedelta(hours=2))
    )
    event = _submission("ITI-41", RESPONDER)
    event.outcome, event.outcome_description, event.event_time = (
        "8",
        "XDSRepositoryError\nboom",
        moment,
    )
    ident = _valid(event).find("EventIdentification")
    assert ident.get("EventOutcomeIndicator") == "8"
    assert ident.get("EventDateTime") == "2024-05-01T12:30:05.123Z"
    assert ident.findtext("EventOutcomeDescription") == "XDSRepositoryError boom"  # one line


def test_control_characters_are_cleaned() -> None:
    event = _submission("ITI-41", RESPONDER)
    event.patient_ids = ("bad\x00id\x1b",)
    message = _valid(event)
    assert message.find("ParticipantObjectIdentification").get("ParticipantObjectID") == "bad id "
    assert b"\n" not in serialize(message)


def test_unknown_transaction() -> None:
    with pytest.raises(KeyError):
        build_message(AuditEvent(transaction="ITI-99"), SOURCE)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda m: m.remove(m.find("AuditSourceIdentification")),
        lambda m: m.find("EventIdentification").set("EventOutcomeIndicator", "3"),
        lambda m: m.find("EventIdentification").set("EventDateTime", "yesterday"),
        lambda m: m.find("EventIdentification/EventID").attrib.pop("originalText"),
        lambda m: m.find("ActiveParticipant").set("UserIsRequestor", "maybe"),
        lambda m: [m.remove(p) for p in m.findall("ActiveParticipant")],
        lambda m: m.find("ActiveParticipant").attrib.pop("NetworkAccessPointID"),
        lambda m: m.find("ParticipantObjectIdentification").set(
            "ParticipantObjectTypeCodeRole", "25"
        ),
        lambda m: etree.SubElement(m.find("ParticipantObjectIdentification"), "Unexpected"),
        lambda m: m.insert(0, m.find("AuditSourceIdentification")),  # wrong order
    ],
)
def test_schema_rejects_malformed_messages(mutate) -> None:
    message = build_message(_submission("ITI-41", RESPONDER), SOURCE)
    assert SCHEMA.validate(message)
    mutate(message)
    assert not SCHEMA.validate(message)


# -- XCA and XCA-I (ITI TF-2 §3.38.5.1, §3.39.5.1; RAD TF-3 §4.75) --------------------------------

GATEWAY = Participant(user_id="https://b.example/xca/rg", host="192.0.2.9")


@pytest.mark.parametrize("side", [INITIATOR, RESPONDER])
def test_cross_gateway_query_audits_as_a_stored_query(side: str) -> None:
    event = AuditEvent(
        transaction="ITI-38",
        side=side,
        initiator=CONSUMER,
        responder=GATEWAY,
        patient_ids=(PATIENT,),
        query_id="urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d",
        query_request=b"<AdhocQueryRequest/>",
        home_community_ids=("urn:oid:1.2.3",),
    )
    eid, action, types = _event(_valid(event))
    assert (eid[0], action, types) == (
        "110112",
        "E",
        [("ITI-38", "IHE Transactions", "Cross Gateway Query")],
    )


@pytest.mark.parametrize(
    ("side", "event_id", "action"), [(INITIATOR, "110107", "C"), (RESPONDER, "110106", "R")]
)
def test_cross_gateway_retrieve_audits_as_a_retrieve(side: str, event_id: str, action: str) -> None:
    event = AuditEvent(
        transaction="ITI-39",
        side=side,
        initiator=CONSUMER,
        responder=GATEWAY,
        document_unique_ids=("1.2.3.1",),
        repository_unique_ids=("1.3.6.1.4.1.21367.13.40.100",),
        home_community_ids=("urn:oid:1.2.3",),
    )
    message = _valid(event)
    eid, act, types = _event(message)
    assert (eid[0], act, types[0][0]) == (event_id, action, "ITI-39")
    assert _roles(message)["110153"].get("UserID") == GATEWAY.user_id  # the RG is the Source


@pytest.mark.parametrize(("side", "action"), [(INITIATOR, "C"), (RESPONDER, "R")])
def test_cross_gateway_imaging_retrieve_audits_as_instances_transferred(
    side: str, action: str
) -> None:
    event = AuditEvent(
        transaction="RAD-75",
        side=side,
        initiator=CONSUMER,
        responder=GATEWAY,
        studies=(StudyRef(study_uid="1.2.840.1", instances=((None, "1.2.840.1.1"),)),),
        home_community_ids=("urn:oid:1.2.3",),
    )
    eid, act, types = _event(_valid(event))
    assert (eid[0], act, types[0]) == (
        "110104",
        action,
        ("RAD-75", "IHE Transactions", "Cross Gateway Retrieve Imaging Document Set"),
    )
