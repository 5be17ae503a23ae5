"""The stored-query table: every query id of ITI TF-2 Table 3.18.4.1.2.4-1 and its parameters."""

from __future__ import annotations

import pytest

from gateway.registry.queries import run
from gateway.registry.queries import table as t
from gateway.registry.queries.table import Kind

# ITI TF-2 §3.18.4.1.2.4 (rev. 19.0), Table 3.18.4.1.2.4-1.
EXPECTED_IDS = {
    "FindDocuments": "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d",
    "FindDocumentsByReferenceId": "urn:uuid:12941a89-e02e-4be5-967c-ce4bfc8fe492",
    "FindSubmissionSets": "urn:uuid:f26abbcb-ac74-4422-8a30-edb644bbc1a9",
    "FindFolders": "urn:uuid:958f3006-baad-4929-a4de-ff1114824431",
    "GetAll": "urn:uuid:10b545ea-725c-446d-9b95-8aeb444eddf3",
    "GetDocuments": "urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4",
    "GetFolders": "urn:uuid:5737b14c-8a1a-4539-b659-e03a34a5e1e4",
    "GetAssociations": "urn:uuid:a7ae438b-4bc2-4642-93e9-be891f7bb155",
    "GetDocumentsAndAssociations": "urn:uuid:bab9529a-4a10-40b3-a01f-f68a615d247a",
    "GetSubmissionSets": "urn:uuid:51224314-5390-4169-9b91-b1980040715a",
    "GetSubmissionSetAndContents": "urn:uuid:e8e3cb2c-e39c-46b9-99e4-c12f57260b83",
    "GetFolderAndContents": "urn:uuid:b909a503-523d-4517-8acf-8e5834dfc4c7",
    "GetFoldersForDocument": "urn:uuid:10cae35a-c7f9-4cf5-b61e-fc3278ffb578",
    "GetRelatedDocuments": "urn:uuid:d90e5407-b356-4d91-a89f-873917b4b0e6",
}


def test_every_query_id() -> None:
    assert {spec.name: str(spec.id) for spec in t.QUERIES} == EXPECTED_IDS
    assert set(t.BY_ID) == set(EXPECTED_IDS.values())


def test_every_query_has_a_function() -> None:
    assert set(run.FUNCTIONS) == set(EXPECTED_IDS.values())


@pytest.mark.parametrize("spec", t.QUERIES, ids=lambda s: s.name)
def test_parameter_tables_are_consistent(spec: t.QuerySpec) -> None:
    names = [p.name for p in spec.params]
    assert len(names) == len(set(names))
    assert all(name.startswith("$") for name in names)
    for group in spec.one_of:
        for name in group:
            param = spec.param(name)
            assert param is not None and not param.required
    for param in spec.params:
        if param.and_or:
            assert param.multiple


def test_find_documents_parameters() -> None:
    spec = t.BY_ID[t.FIND_DOCUMENTS]
    required = {p.name for p in spec.params if p.required}
    assert required == {t.DE_PATIENT_ID, t.DE_STATUS}
    assert len(spec.params) == 17
    kinds = {p.name: p.kind for p in spec.params}
    assert kinds[t.DE_CREATION_TIME_FROM] is Kind.DTM
    assert kinds[t.DE_EVENT_CODE_LIST] is Kind.CODE
    assert kinds[t.DE_AUTHOR_PERSON] is Kind.PATTERN
    event = spec.param(t.DE_EVENT_CODE_LIST)
    assert event is not None and event.and_or


def test_single_and_multiple_flavours_of_the_same_name() -> None:
    get_documents = t.BY_ID[t.GET_DOCUMENTS].param(t.DE_ENTRY_UUID)
    folders_for_document = t.BY_ID[t.GET_FOLDERS_FOR_DOCUMENT].param(t.DE_ENTRY_UUID)
    assert get_documents is not None and get_documents.multiple
    assert folders_for_document is not None and not folders_for_document.multiple
    ss_author = t.BY_ID[t.FIND_SUBMISSION_SETS].param(t.SS_AUTHOR_PERSON)
    assert ss_author is not None and not ss_author.multiple


def test_reference_id_query_adds_the_reference_list() -> None:
    by_ref = t.BY_ID[t.FIND_DOCUMENTS_BY_REFERENCE_ID]
    plain = t.BY_ID[t.FIND_DOCUMENTS]
    extra = {p.name for p in by_ref.params} - {p.name for p in plain.params}
    assert extra == {t.DE_REFERENCE_ID_LIST}
    ref = by_ref.param(t.DE_REFERENCE_ID_LIST)
    assert ref is not None and ref.required
