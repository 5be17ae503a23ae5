"""Audit messages of the registry operations: ITI-57 (Update Document Set) and RMD's ITI-62 and
ITI-86, valid per the project's PS3.15 schema, with their event, action and objects.

Standard: ITI TF-2b §3.57.5.1, §3.62.5.1, §3.86.5.1; DICOM PS3.15 A.5.
"""

from __future__ import annotations

import pytest

from gateway.audit.messages import ANONYMOUS, AuditSource, build_message, load_schema
from gateway.audit.model import INITIATOR, RESPONDER, AuditEvent, Participant

SCHEMA = load_schema()
SOURCE = AuditSource(source_id="xdsi-gateway@test", enterprise_site_id="Region")
PATIENT = "PID-1^^^&1.3.6.1.4.1.21367.13.20.1000&ISO"


def _event(transaction: str, side: str) -> AuditEvent:
    return AuditEvent(
        transaction=transaction,
        side=side,
        initiator=Participant(user_id=ANONYMOUS, host="10.0.0.9", user_name="CN=admin,O=X"),
        responder=Participant(user_id="https://region.example/xds/registry", host="10.0.0.1"),
        patient_ids=(PATIENT,),
        submission_set_unique_id="1.2.3.4.5",
        document_unique_ids=("1.2.3.4.6",),
        repository_unique_ids=("1.2.3.4.7",),
    )


@pytest.mark.parametrize(
    ("transaction", "event_id", "action", "objects"),
    [
        ("ITI-57", {"110106", "110107"}, "U", {"2", "1"}),
        ("ITI-62", {"110110"}, "D", {"2", "1"}),
        ("ITI-86", {"110110"}, "D", {"2", "1"}),
    ],
)
@pytest.mark.parametrize("side", [INITIATOR, RESPONDER])
def test_registry_operation_messages(
    transaction: str, side: str, event_id: set[str], action: str, objects: set[str]
) -> None:
    message = build_message(_event(transaction, side), SOURCE)
    assert SCHEMA.validate(message), SCHEMA.error_log
    ident = message.find("EventIdentification")
    assert ident is not None
    assert ident.find("EventID").get("csd-code") in event_id  # type: ignore[union-attr]
    assert ident.get("EventActionCode") == action
    (type_code,) = ident.findall("EventTypeCode")
    assert type_code.get("csd-code") == transaction
    found = {
        o.get("ParticipantObjectTypeCode") for o in message.iter("ParticipantObjectIdentification")
    }
    assert objects <= found
    ids = {o.get("ParticipantObjectID") for o in message.iter("ParticipantObjectIdentification")}
    assert PATIENT in ids
