"""Audit messages of the exchange browser (gateway.ui): an operator's search (DICOM PS3.15
A.5.3.10 Query, E) and a page showing a patient's data (A.5.3.14 Patient Record, R), each
naming the operator and valid against the DICOM audit message schema."""

from __future__ import annotations

import base64

from gateway.audit import events
from gateway.audit.messages import AuditSource, build_message, load_schema
from gateway.audit.model import Participant, StudyRef

SCHEMA = load_schema()
SOURCE = AuditSource(source_id="xdsi-gateway@test")
PATIENT = "PAT-1^^^&1.3.6.1.4.1.21367.13.20.1000&ISO"
GATEWAY = Participant(user_id="http://gw.test/ui", host="gw.test")


def test_patient_record_read_names_the_operator_and_the_patient() -> None:
    message = build_message(
        events.ui_patient_record(
            operator="alice",
            operator_host="10.0.0.5",
            local=GATEWAY,
            patient_ids=[PATIENT],
            studies=[StudyRef(study_uid="1.2.3")],
        ),
        SOURCE,
    )
    assert SCHEMA.validate(message), SCHEMA.error_log
    event = message.find("EventIdentification")
    assert event.get("EventActionCode") == "R"
    assert event.find("EventID").get("csd-code") == "110110"
    alice = next(p for p in message.findall("ActiveParticipant") if p.get("UserID") == "alice")
    assert alice.get("UserName") == "alice" and alice.get("UserIsRequestor") == "true"
    assert alice.get("NetworkAccessPointID") == "10.0.0.5"
    objects = message.findall("ParticipantObjectIdentification")
    assert [o.get("ParticipantObjectID") for o in objects] == [PATIENT, "1.2.3"]


def test_query_carries_the_search_text() -> None:
    message = build_message(
        events.ui_query(
            operator="bob",
            operator_host=None,
            local=GATEWAY,
            query_id="urn:xdsi-gateway:ui:patient-search",
            query_text="q=doe",
            patient_ids=[PATIENT],
        ),
        SOURCE,
    )
    assert SCHEMA.validate(message), SCHEMA.error_log
    event = message.find("EventIdentification")
    assert event.get("EventActionCode") == "E"
    assert event.find("EventID").get("csd-code") == "110112"
    query = message.find("ParticipantObjectIdentification/ParticipantObjectQuery")
    assert base64.b64decode(query.text) == b"q=doe"
    assert any(p.get("UserName") == "bob" for p in message.findall("ActiveParticipant"))
