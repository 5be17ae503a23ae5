"""Patient consent (IHE BPPC) follows the registry operations (issue 22), on a real registry
database (SQLite and PostgreSQL):

- a consent document registered for the wrong patient and moved by ITI-57 Update Document Set
  (a new version for the right patient, the old one Deprecated) takes effect for the patient it
  was moved to and no longer for the first one;
- a report moved by ITI-57 to an opted-out patient is refused to other organizations by uniqueId
  (ITI-43), judged by its latest version, while the organization that published it (not the
  registry operator that sent the update) still gets it;
- ITI-62 Remove Metadata of the consent document (and its SubmissionSet) ends its effect.

Standard: ITI TF-1 §19.2 (BPPC), ITI TF-2b §3.57, §3.62.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator

import pytest

from gateway.consent.caller import CALLER, Caller
from gateway.consent.guard import ConsentGuard
from gateway.hl7.adt import Demographics
from gateway.metadata.datatypes import Code, new_uuid_urn
from gateway.metadata.model import DocumentEntry, Submission
from gateway.metadata.retrieve import DocumentRequest, RetrieveDocumentSetResponse, Status
from gateway.registry.consent_view import ConsentView
from gateway.registry.database import Database
from gateway.registry.iti42 import Registry
from gateway.registry.remove import MetadataRemover
from gateway.registry.update import MetadataUpdater
from tests.factories import (
    REPOSITORY_UNIQUE_ID,
    make_document_entry,
    make_has_member,
    make_submission_set,
)

DOMAIN = "1.3.6.1.4.1.21367.13.20.1000"
WRONG = f"BPPC-1^^^&{DOMAIN}&ISO"
RIGHT = f"BPPC-2^^^&{DOMAIN}&ISO"
A_SOURCE, B_SOURCE, OPERATOR = "1.3.6.1.4.1.21367.13.99.1", "1.3.6.1.4.1.21367.13.99.2", "1.9.9"
OPT_OUT = "1.3.6.1.4.1.21367.2017.7.104"
BPPC = Code("urn:ihe:iti:bppc:2007", "1.3.6.1.4.1.19376.1.2.3", "BPPC")
POLICY = Code(OPT_OUT, "1.3.6.1.4.1.21367.2017.3", "Opt-out")


@pytest.fixture
def registry(db_url: str) -> Iterator[Registry]:
    database = Database(db_url)
    database.upgrade()
    registry = Registry(database)
    for pid in (WRONG, RIGHT):
        registry.patients.register(pid, Demographics(), other_ids=[])
    try:
        yield registry
    finally:
        database.dispose()


def _uid() -> str:
    return f"2.25.{int(new_uuid_urn()[9:].replace('-', ''), 16)}"


def _publish(registry: Registry, patient: str, source_id: str, **entry: object) -> Submission:
    """ITI-42 (in-process) of one document; returns the submission as registered."""
    document = make_document_entry(
        entry_uuid=new_uuid_urn(), unique_id=_uid(), patient_id=patient, **entry
    )
    document.logical_id = document.entry_uuid
    submission_set = make_submission_set(
        entry_uuid=new_uuid_urn(), unique_id=_uid(), patient_id=patient, source_id=source_id
    )
    member = make_has_member(submission_set.entry_uuid, document.entry_uuid)
    member.entry_uuid = new_uuid_urn()
    submission = Submission(
        submission_set=submission_set, document_entries=[document], associations=[member]
    )
    assert registry.register_document_set(submission) == []
    return submission


def _move(registry: Registry, original: DocumentEntry, patient: str) -> str:
    """ITI-57 by the registry operator: version 2 of ``original`` for ``patient``; returns the
    entryUUID of the update's SubmissionSet."""
    entry = copy.deepcopy(original)
    entry.entry_uuid = new_uuid_urn()
    entry.logical_id = original.entry_uuid
    entry.version = entry.availability_status = None
    entry.patient_id = patient
    submission_set = make_submission_set(
        entry_uuid=new_uuid_urn(), unique_id=_uid(), patient_id=patient, source_id=OPERATOR
    )
    member = make_has_member(submission_set.entry_uuid, entry.entry_uuid, previous_version="1")
    member.entry_uuid = new_uuid_urn()
    MetadataUpdater(registry.db).update(
        Submission(submission_set=submission_set, document_entries=[entry], associations=[member])
    )
    return submission_set.entry_uuid


def _retrieved_by(guard: ConsentGuard, organization: str, unique_ids: list[str]) -> set[str]:
    """The uniqueIds ITI-43 would not refuse to a caller of ``organization``."""
    retrieve = guard.guard_documents(lambda _r: RetrieveDocumentSetResponse(status=Status.SUCCESS))
    token = CALLER.set(Caller(organization=organization, transaction="ITI-43"))
    try:
        answer = retrieve(
            [
                DocumentRequest(repository_unique_id=REPOSITORY_UNIQUE_ID, document_unique_id=u)
                for u in unique_ids
            ]
        )
    finally:
        CALLER.reset(token)
    return set(unique_ids) - {str(e.location) for e in answer.errors}


def test_consent_follows_iti57_moves_and_ends_with_iti62(registry: Registry) -> None:
    view = ConsentView(registry.db)
    guard = ConsentGuard(
        {OPT_OUT: "opt-out"},
        owners=view.owners,
        documents=view.documents,
        consents=view.consents,
        source_organizations={A_SOURCE: "a", B_SOURCE: "b", OPERATOR: "operator"},
    )
    report = _publish(registry, WRONG, A_SOURCE).document_entries[0]
    consent = _publish(
        registry, WRONG, A_SOURCE, format_code=BPPC, event_code_list=[POLICY], mime_type="text/xml"
    )
    [consent_entry] = consent.document_entries
    assert guard.opted_out({WRONG, RIGHT}) == {WRONG}
    assert report.unique_id is not None
    assert _retrieved_by(guard, "b", [report.unique_id]) == set()
    assert _retrieved_by(guard, "a", [report.unique_id]) == {report.unique_id}

    # The consent was registered for the wrong patient: ITI-57 moves it to the right one.
    update = _move(registry, consent_entry, RIGHT)
    assert guard.opted_out({WRONG, RIGHT}) == {RIGHT}
    assert _retrieved_by(guard, "b", [report.unique_id]) == {report.unique_id}
    # The report too: by uniqueId it is now the right patient's (latest version), still A's.
    _move(registry, report, RIGHT)
    owner = view.documents([report.unique_id])[report.unique_id]
    assert (owner.patient_id, owner.source_id) == (RIGHT, A_SOURCE)
    assert _retrieved_by(guard, "b", [report.unique_id]) == set()
    assert _retrieved_by(guard, "a", [report.unique_id]) == {report.unique_id}
    assert _retrieved_by(guard, "operator", [report.unique_id]) == set()

    # ITI-62 removes the update's submission (the consent's version 2): the opt-out ends;
    # version 1, Deprecated, is no one's consent.
    remover = MetadataRemover(registry.db)
    removed = remover.remove(remover.submission_contents(update))
    assert removed.count == 3  # SubmissionSet, DocumentEntry, HasMember
    assert guard.opted_out({WRONG, RIGHT}) == set()
    assert _retrieved_by(guard, "b", [report.unique_id]) == {report.unique_id}
