"""The facts dict handlers fill, mapped onto AuditEvent."""

from __future__ import annotations

from gateway.audit.model import (
    FACT_KEYS,
    RESPONDER,
    Participant,
    StudyRef,
    aligned,
    event_from_facts,
)


def _event(facts: dict):
    return event_from_facts(
        "RAD-69",
        side=RESPONDER,
        outcome="0",
        initiator=Participant(user_id="a"),
        responder=Participant(user_id="b"),
        facts=facts,
    )


def test_plural_and_singular_keys() -> None:
    event = _event(
        {
            "patient_id": "P1",
            "repository_unique_id": "1.9",
            "home_community_id": "urn:oid:1.2",
            "document_unique_ids": ("1.1", "1.2"),
            "query_request": "<q/>",
            "query_id": "urn:uuid:x",
        }
    )
    assert event.patient_ids == ("P1",)
    assert event.repository_unique_ids == ("1.9",)
    assert event.home_community_ids == ("urn:oid:1.2",)
    assert event.document_unique_ids == ("1.1", "1.2")
    assert event.query_request == b"<q/>"
    assert event.query_encoding == "UTF-8"
    plural = _event({"patient_ids": ["P1", "P2"], "patient_id": "ignored"})
    assert plural.patient_ids == ("P1", "P2")


def test_study_forms() -> None:
    event = _event(
        {
            "studies": [
                {
                    "study_uid": "1.1",
                    "instances": [("1.2.840.10008.5.1.4.1.1.2", "1.1.1"), "1.1.2"],
                },
                {"study_uid": "1.2", "sop_class_uid": "9.9", "sop_instance_uids": ["1.2.1"]},
                StudyRef(study_uid="1.3"),
            ],
            "study_uids": ["1.1", "1.4"],
            "sop_instance_uids": ["1.4.1"],
        }
    )
    assert [s.study_uid for s in event.studies] == ["1.1", "1.2", "1.3", "1.4"]
    assert event.studies[0].instances == (("1.2.840.10008.5.1.4.1.1.2", "1.1.1"), (None, "1.1.2"))
    assert event.studies[1].instances == (("9.9", "1.2.1"),)
    assert event.studies[3].instances == ((None, "1.4.1"),)


def test_empty_facts() -> None:
    event = _event({})
    assert event.patient_ids == () and event.studies == () and event.query_request is None


def test_documented_keys() -> None:
    assert {"patient_ids", "query_request", "studies", "reply_to"} <= set(FACT_KEYS)


def test_aligned_values() -> None:
    assert aligned(["a"], 3) == "a"  # one value shared by every item
    assert aligned(["a", "b"], 1) == "b"
    assert aligned(["a", "b"], 2) is None
    assert aligned([], 0) is None
