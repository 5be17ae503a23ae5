"""ITI-18 Get queries by id on SQLite and PostgreSQL: GetDocuments, GetFolders, GetAssociations,
GetDocumentsAndAssociations, GetSubmissionSets, GetFoldersForDocument, GetRelatedDocuments.

Standard: ITI TF-2 §3.18.4.1.2.3.7.5-9, .12, .13 and §3.18.4.1.3 (XDSResultNotSinglePatient,
NIST test 12368), rev. 19.0. World: ``iti18_world``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gateway.errors import XDSError
from gateway.metadata.model import DocumentEntry, Folder
from gateway.registry.database import Database
from gateway.registry.iti18 import StoredQueries
from gateway.registry.queries import LEAF_CLASS, OBJECT_REF, quote, quote_list
from gateway.registry.queries import table as t
from tests.integration.registry.iti18_world import (
    DEPRECATED,
    ON_DEMAND,
    STABLE,
    WORLD_PARAMS,
    ask,
    names,
    open_world,
    uid_of,
    uuid_of,
)

HAS_MEMBER = "urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember"
RPLC = "urn:ihe:iti:2007:AssociationType:RPLC"
APND = "urn:ihe:iti:2007:AssociationType:APND"
XFRM = "urn:ihe:iti:2007:AssociationType:XFRM"


@pytest.fixture(scope="module", params=WORLD_PARAMS)
def world_db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Database]:
    yield from open_world(request, tmp_path_factory)


@pytest.fixture(scope="module")
def sq(world_db: Database) -> StoredQueries:
    return StoredQueries(world_db)


def uuids(*names_: str) -> str:
    return quote_list([uuid_of(n) for n in names_])


def uids(*names_: str) -> str:
    return quote_list([uid_of(n) for n in names_])


def codes_of(error: pytest.ExceptionInfo[XDSError]) -> list[str]:
    return [e.code for e in error.value]


# --- GetDocuments --------------------------------------------------------------------------------
def test_get_documents_by_uuid_any_status_and_type(sq: StoredQueries) -> None:
    found = ask(
        sq, t.GET_DOCUMENTS, (t.DE_ENTRY_UUID, uuids("D1", "D3", "D5")), return_type=LEAF_CLASS
    )
    assert names(found) == {"D1", "D3", "D5"}
    status = {obj.title: obj.availability_status for obj in found if isinstance(obj, DocumentEntry)}
    assert status["D3"] == DEPRECATED


def test_get_documents_by_unique_id_and_value_elements(sq: StoredQueries) -> None:
    assert names(ask(sq, t.GET_DOCUMENTS, (t.DE_UNIQUE_ID, uids("D2")))) == {"D2"}
    two = (t.DE_UNIQUE_ID, uids("D2"), uids("D4"))
    assert names(ask(sq, t.GET_DOCUMENTS, two)) == {"D2", "D4"}
    single = (t.DE_UNIQUE_ID, quote(uid_of("D4")))
    assert names(ask(sq, t.GET_DOCUMENTS, single)) == {"D4"}


def test_get_documents_unknown_id_is_an_empty_success(sq: StoredQueries) -> None:
    unknown = "urn:uuid:d90e5407-b356-4d91-a89f-873917b4b0e6"
    assert ask(sq, t.GET_DOCUMENTS, (t.DE_ENTRY_UUID, quote_list([unknown]))) == []


def test_get_documents_needs_exactly_one_of_uuid_and_unique_id(sq: StoredQueries) -> None:
    with pytest.raises(XDSError) as both:
        ask(sq, t.GET_DOCUMENTS, (t.DE_ENTRY_UUID, uuids("D1")), (t.DE_UNIQUE_ID, uids("D1")))
    assert codes_of(both) == ["XDSStoredQueryParamNumber"]
    with pytest.raises(XDSError) as neither:
        ask(sq, t.GET_DOCUMENTS)
    assert codes_of(neither) == ["XDSStoredQueryMissingParam"]


def test_get_documents_rejects_a_malformed_uuid(sq: StoredQueries) -> None:
    with pytest.raises(XDSError) as raised:
        ask(sq, t.GET_DOCUMENTS, (t.DE_ENTRY_UUID, "('Document01')"))
    assert codes_of(raised) == ["XDSRegistryError"]


def test_leaf_class_across_patients_is_refused_object_ref_is_not(sq: StoredQueries) -> None:
    with pytest.raises(XDSError) as raised:
        ask(sq, t.GET_DOCUMENTS, (t.DE_ENTRY_UUID, uuids("D1", "DQ")), return_type=LEAF_CLASS)
    assert codes_of(raised) == ["XDSResultNotSinglePatient"]
    refs = ask(sq, t.GET_DOCUMENTS, (t.DE_ENTRY_UUID, uuids("D1", "DQ")), return_type=OBJECT_REF)
    assert names(refs) == {"D1", "DQ"}


def test_leaf_class_of_merged_patient_ids_is_one_patient(sq: StoredQueries) -> None:
    found = ask(sq, t.GET_DOCUMENTS, (t.DE_ENTRY_UUID, uuids("D1", "D6")), return_type=LEAF_CLASS)
    assert names(found) == {"D1", "D6"}


# --- GetFolders ----------------------------------------------------------------------------------
def test_get_folders(sq: StoredQueries) -> None:
    found = ask(sq, t.GET_FOLDERS, (t.FOL_ENTRY_UUID, uuids("F1", "F2")), return_type=LEAF_CLASS)
    assert names(found) == {"F1", "F2"}
    updated = {obj.title: obj.last_update_time for obj in found if isinstance(obj, Folder)}
    assert updated == {"F1": "20050101120000", "F2": "20041231000000"}  # the column, normalised
    assert names(ask(sq, t.GET_FOLDERS, (t.FOL_UNIQUE_ID, uids("FQ")))) == {"FQ"}


def test_get_folders_across_patients(sq: StoredQueries) -> None:
    with pytest.raises(XDSError) as raised:
        ask(sq, t.GET_FOLDERS, (t.FOL_UNIQUE_ID, uids("F1", "FQ")), return_type=LEAF_CLASS)
    assert codes_of(raised) == ["XDSResultNotSinglePatient"]
    assert names(ask(sq, t.GET_FOLDERS, (t.FOL_UNIQUE_ID, uids("F1", "FQ")))) == {"F1", "FQ"}


# --- GetAssociations -----------------------------------------------------------------------------
def test_get_associations_source_or_target(sq: StoredQueries) -> None:
    found = ask(sq, t.GET_ASSOCIATIONS, (t.UUIDS, uuids("D1")), return_type=LEAF_CLASS)
    assert names(found) == {"SS1-D1", "F1-D1", "APND-D2-D1", "XFRM-D5-D1"}
    from_ss = names(ask(sq, t.GET_ASSOCIATIONS, (t.UUIDS, uuids("SS1"))))
    assert from_ss == {"SS1-D1", "SS1-D2", "SS1-D3", "SS1-F1", "SS1-F1-D1"}
    both = names(ask(sq, t.GET_ASSOCIATIONS, (t.UUIDS, uuids("SS3", "F1-D4"))))
    assert both == {"SS3-D6", "SS2-F1-D4"}


def test_get_associations_requires_uuid(sq: StoredQueries) -> None:
    with pytest.raises(XDSError) as raised:
        ask(sq, t.GET_ASSOCIATIONS, (t.DE_ENTRY_UUID, uuids("D1")))
    assert codes_of(raised) == ["XDSStoredQueryMissingParam"]


# --- GetDocumentsAndAssociations -----------------------------------------------------------------
def test_get_documents_and_associations(sq: StoredQueries) -> None:
    found = ask(sq, t.GET_DOCUMENTS_AND_ASSOCIATIONS, (t.DE_UNIQUE_ID, uids("D2")))
    assert names(found) == {"D2", "SS1-D2", "APND-D2-D1"}
    found = ask(
        sq,
        t.GET_DOCUMENTS_AND_ASSOCIATIONS,
        (t.DE_ENTRY_UUID, uuids("D3", "D6")),
        return_type=LEAF_CLASS,
    )
    assert names(found) == {"D3", "D6", "SS1-D3", "RPLC-D4-D3", "SS3-D6"}


# --- GetSubmissionSets ---------------------------------------------------------------------------
def test_get_submission_sets(sq: StoredQueries) -> None:
    found = ask(sq, t.GET_SUBMISSION_SETS, (t.UUIDS, uuids("D1")), return_type=LEAF_CLASS)
    assert names(found) == {"SS1", "SS1-D1"}
    two = names(ask(sq, t.GET_SUBMISSION_SETS, (t.UUIDS, uuids("D1", "D4"))))
    assert two == {"SS1", "SS2", "SS1-D1", "SS2-D4"}
    same = names(ask(sq, t.GET_SUBMISSION_SETS, (t.UUIDS, uuids("D1", "D2"))))
    assert same == {"SS1", "SS1-D1", "SS1-D2"}
    # F1 was created by SS1; SS2 only linked a document into it.
    assert names(ask(sq, t.GET_SUBMISSION_SETS, (t.UUIDS, uuids("F1")))) == {"SS1", "SS1-F1"}


def test_get_submission_sets_across_patients(sq: StoredQueries) -> None:
    with pytest.raises(XDSError) as raised:
        ask(sq, t.GET_SUBMISSION_SETS, (t.UUIDS, uuids("D1", "DQ")), return_type=LEAF_CLASS)
    assert codes_of(raised) == ["XDSResultNotSinglePatient"]
    refs = ask(sq, t.GET_SUBMISSION_SETS, (t.UUIDS, uuids("D1", "DQ")))
    assert names(refs) == {"SS1", "SSQ", "SS1-D1", "SSQ-DQ"}


# --- GetFoldersForDocument -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("slot", "expected"),
    [
        ((t.DE_ENTRY_UUID, quote(uuid_of("D1"))), {"F1"}),
        ((t.DE_UNIQUE_ID, quote(uid_of("D4"))), {"F1"}),
        ((t.DE_ENTRY_UUID, quote(uuid_of("D2"))), set()),
        ((t.DE_UNIQUE_ID, quote(uid_of("DQ"))), {"FQ"}),
    ],
)
def test_get_folders_for_document(
    sq: StoredQueries, slot: tuple[str, str], expected: set[str]
) -> None:
    assert names(ask(sq, t.GET_FOLDERS_FOR_DOCUMENT, slot, return_type=LEAF_CLASS)) == expected


def test_get_folders_for_document_takes_one_document(sq: StoredQueries) -> None:
    with pytest.raises(XDSError) as raised:
        ask(sq, t.GET_FOLDERS_FOR_DOCUMENT, (t.DE_ENTRY_UUID, uuids("D1", "D4")))
    assert codes_of(raised) == ["XDSStoredQueryParamNumber"]


# --- GetRelatedDocuments -------------------------------------------------------------------------
def related(sq: StoredQueries, name: str, *types: str, doc_types: tuple[str, ...] = ()) -> set:
    slots = [(t.DE_ENTRY_UUID, quote(uuid_of(name))), (t.ASSOCIATION_TYPES, quote_list(types))]
    if doc_types:
        slots.append((t.DE_TYPE, quote_list(doc_types)))
    return names(ask(sq, t.GET_RELATED_DOCUMENTS, *slots, return_type=LEAF_CLASS))


def test_get_related_documents_both_directions(sq: StoredQueries) -> None:
    assert related(sq, "D3", HAS_MEMBER, RPLC) == {"D3", "D4", "RPLC-D4-D3"}
    assert related(sq, "D4", RPLC) == {"D3", "D4", "RPLC-D4-D3"}
    assert related(sq, "D4", "RPLC") == {"D3", "D4", "RPLC-D4-D3"}  # ebRIM 2.1 short name


def test_get_related_documents_ignores_folder_and_set_members(sq: StoredQueries) -> None:
    # HasMember from SS1 and F1 point at D1, but neither source is a DocumentEntry.
    assert related(sq, "D1", HAS_MEMBER, APND) == {"D1", "D2", "APND-D2-D1"}
    assert related(sq, "D1", HAS_MEMBER, RPLC) == set()  # nothing related: not even D1


def test_get_related_documents_type_filter(sq: StoredQueries) -> None:
    assert related(sq, "D1", APND, XFRM) == {"D1", "D2", "APND-D2-D1"}  # D5 is On-Demand
    with_d5 = related(sq, "D1", APND, XFRM, doc_types=(STABLE, ON_DEMAND))
    assert with_d5 == {"D1", "D2", "D5", "APND-D2-D1", "XFRM-D5-D1"}


def test_get_related_documents_by_unique_id_and_missing_types(sq: StoredQueries) -> None:
    slots = ((t.DE_UNIQUE_ID, quote(uid_of("D4"))), (t.ASSOCIATION_TYPES, quote_list([RPLC])))
    assert names(ask(sq, t.GET_RELATED_DOCUMENTS, *slots)) == {"D3", "D4", "RPLC-D4-D3"}
    with pytest.raises(XDSError) as raised:
        ask(sq, t.GET_RELATED_DOCUMENTS, (t.DE_UNIQUE_ID, quote(uid_of("D4"))))
    assert codes_of(raised) == ["XDSStoredQueryMissingParam"]
