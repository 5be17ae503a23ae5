"""Audit messages of the MHD transactions (ITI-65, ITI-66, ITI-67, ITI-68) and PDQm (ITI-78), as
the gateway's responder side records them: valid per the PS3.15 schema, EventID, action, type
code and objects per MHD rev. 4.2.2 §2:3.65.5.1, §2:3.66.5.1, §2:3.67.5.1, §2:3.68.5.1."""

from __future__ import annotations

import base64

import pytest
from lxml import etree

from gateway.audit import codes
from gateway.audit.messages import AuditSource, build_message, load_schema
from gateway.audit.model import RESPONDER, Participant, event_from_facts

SCHEMA = load_schema()
SOURCE = AuditSource(source_id="xdsi-gateway@test")
PATIENT = "PAT-1^^^&1.3.6.1.4.1.21367.13.20.1000&ISO"
CLIENT = Participant(user_id="CN=ehr", host="10.0.0.9")
SERVER = Participant(user_id="https://region.example/fhir/DocumentReference", host="region.example")


def _message(transaction: str, facts: dict) -> etree._Element:
    event = event_from_facts(
        transaction,
        side=RESPONDER,
        outcome=codes.SUCCESS,
        initiator=CLIENT,
        responder=SERVER,
        facts=facts,
    )
    message = build_message(event, SOURCE)
    assert SCHEMA.validate(message), SCHEMA.error_log
    return message


def _ident(message: etree._Element) -> tuple[str, str, str]:
    ident = message.find("EventIdentification")
    return (
        ident.find("EventID").get("csd-code"),
        ident.get("EventActionCode"),
        ident.find("EventTypeCode").get("csd-code"),
    )


def test_provide_document_bundle_is_an_import_with_patient_and_submission_set() -> None:
    message = _message("ITI-65", {"patient_ids": [PATIENT], "submission_set_unique_id": "1.2.3.4"})
    assert _ident(message) == ("110107", "C", "ITI-65")
    objects = {
        o.get("ParticipantObjectID") for o in message.iter("ParticipantObjectIdentification")
    }
    assert objects == {PATIENT, "1.2.3.4"}
    roles = [p.find("RoleIDCode").get("csd-code") for p in message.findall("ActiveParticipant")]
    assert roles == ["110153", "110152"]  # the Document Source sends, the Recipient receives


@pytest.mark.parametrize("transaction", ["ITI-66", "ITI-67", "ITI-78"])
def test_searches_are_queries_carrying_their_parameters(transaction: str) -> None:
    search = "DocumentReference?patient=PAT-1&status=current"
    message = _message(
        transaction,
        {"patient_ids": [PATIENT], "query_id": "urn:uuid:x", "query_request": search},
    )
    assert _ident(message) == ("110112", "E", transaction)
    [query] = [
        o
        for o in message.iter("ParticipantObjectIdentification")
        if o.get("ParticipantObjectTypeCodeRole") == codes.ROLE_QUERY
    ]
    assert query.find("ParticipantObjectIDTypeCode").get("csd-code") == transaction
    assert base64.b64decode(query.findtext("ParticipantObjectQuery")).decode() == search


def test_retrieve_document_is_an_export_from_the_responder() -> None:
    message = _message(
        "ITI-68",
        {
            "patient_ids": [PATIENT],
            "document_unique_ids": ["1.2.3.5"],
            "repository_unique_ids": ["1.2.3.6"],
        },
    )
    assert _ident(message) == ("110106", "R", "ITI-68")
    participants = message.findall("ActiveParticipant")
    source = next(p for p in participants if p.find("RoleIDCode").get("csd-code") == "110153")
    assert source.get("UserID") == SERVER.user_id  # the responder is the Source of the data
    objects = {
        o.get("ParticipantObjectID") for o in message.iter("ParticipantObjectIdentification")
    }
    assert objects == {PATIENT, "1.2.3.5"}
