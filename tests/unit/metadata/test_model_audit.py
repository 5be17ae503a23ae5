"""A submission's audit facts: the one function both ends of ITI-41/ITI-42/RAD-68 use.

Standard: ITI TF-2 §3.41.5.1, §3.42.5.1 (Patient and SubmissionSet ParticipantObjects).
"""

from __future__ import annotations

from gateway.metadata.model import Submission
from tests.factories import PATIENT_ID, make_document_entry, make_submission


def test_facts_name_the_submission_set_and_each_patient_once() -> None:
    submission = make_submission(entries=2)
    submission.document_entries.append(
        make_document_entry(entry_uuid="Document03", patient_id="OTHER^^^&1.2&ISO")
    )
    assert submission.patient_ids() == [PATIENT_ID, "OTHER^^^&1.2&ISO"]
    assert submission.submission_set is not None
    assert submission.audit_facts() == {
        "patient_ids": [PATIENT_ID, "OTHER^^^&1.2&ISO"],
        "submission_set_unique_id": submission.submission_set.unique_id,
    }


def test_facts_of_an_empty_submission() -> None:
    assert Submission().audit_facts() == {"patient_ids": [], "submission_set_unique_id": None}
