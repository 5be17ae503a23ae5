"""ITI-18 Find queries on SQLite and PostgreSQL: every parameter, and for each one a case where a
wrong rule (OR for AND, inclusive To, scheme or status ignored, case folded) answers otherwise.

Standard: ITI TF-2 §3.18.4.1.2.3.7.1-3, §3.18.4.1.2.3.7.14 (rev. 19.0). World: ``iti18_world``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gateway.errors import XDSError
from gateway.metadata.model import DocumentEntry, ObjectRef
from gateway.registry.database import Database
from gateway.registry.iti18 import StoredQueries
from gateway.registry.queries import LEAF_CLASS, quote, quote_list
from gateway.registry.queries import table as t
from tests.integration.registry.builders import OTHER_PATIENT_ID
from tests.integration.registry.iti18_world import (
    APPROVED,
    DEPRECATED,
    MERGED_PATIENT_ID,
    ON_DEMAND,
    PATIENT_ID,
    REF_1,
    REF_2,
    STABLE,
    UNKNOWN_PATIENT_ID,
    WORLD_PARAMS,
    ask,
    names,
    open_world,
)

BOTH = (APPROVED, DEPRECATED)


@pytest.fixture(scope="module", params=WORLD_PARAMS)
def world_db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Database]:
    yield from open_world(request, tmp_path_factory)


@pytest.fixture(scope="module")
def sq(world_db: Database) -> StoredQueries:
    return StoredQueries(world_db)


def docs(
    sq: StoredQueries,
    *slots: tuple[str, ...],
    patient: str = PATIENT_ID,
    status: tuple[str, ...] = (APPROVED,),
) -> set[str]:
    return names(
        ask(
            sq,
            t.FIND_DOCUMENTS,
            (t.DE_PATIENT_ID, quote(patient)),
            (t.DE_STATUS, quote_list(status)),
            *slots,
        )
    )


def code(name: str, *codes: str) -> tuple[str, str]:
    return name, quote_list(codes)


# --- patient, status, type ----------------------------------------------------------------------
def test_patient_and_status(sq: StoredQueries) -> None:
    # D3 deprecated, D5 On-Demand, DQ another patient; D6 belongs to an id merged into P.
    assert docs(sq) == {"D1", "D2", "D4", "D6"}
    assert docs(sq, status=BOTH) == {"D1", "D2", "D3", "D4", "D6"}
    assert docs(sq, status=(DEPRECATED,)) == {"D3"}


def test_status_values_in_separate_value_elements_are_ored(sq: StoredQueries) -> None:
    found = ask(
        sq,
        t.FIND_DOCUMENTS,
        (t.DE_PATIENT_ID, quote(PATIENT_ID)),
        (t.DE_STATUS, quote_list([APPROVED]), quote_list([DEPRECATED])),
    )
    assert names(found) == {"D1", "D2", "D3", "D4", "D6"}


def test_unknown_status_value_matches_nothing_without_error(sq: StoredQueries) -> None:
    assert docs(sq, status=("urn:example:NoSuchStatus",)) == set()


def test_other_patient_and_unknown_patient(sq: StoredQueries) -> None:
    assert docs(sq, patient=OTHER_PATIENT_ID) == {"DQ"}
    assert docs(sq, patient=UNKNOWN_PATIENT_ID) == set()


def test_subsumed_patient_id_returns_nothing(sq: StoredQueries) -> None:
    # ITI18-11: a query naming the id merged away finds nothing, not even its own entries.
    assert docs(sq, patient=MERGED_PATIENT_ID) == set()


def test_document_entry_type(sq: StoredQueries) -> None:
    assert docs(sq, (t.DE_TYPE, quote_list([ON_DEMAND]))) == {"D5"}
    both = quote_list([STABLE, ON_DEMAND])
    assert docs(sq, (t.DE_TYPE, both)) == {"D1", "D2", "D4", "D5", "D6"}
    assert docs(sq, (t.DE_TYPE, quote_list([STABLE]))) == {"D1", "D2", "D4", "D6"}


# --- codes ---------------------------------------------------------------------------------------
def test_class_code_matches_code_and_scheme(sq: StoredQueries) -> None:
    assert docs(sq, code(t.DE_CLASS_CODE, "A^^1.2.3.1"), status=BOTH) == {"D1", "D4", "D6"}
    # Same code in another scheme: only D3 (a scheme-blind match would add D1, D4, D6).
    assert docs(sq, code(t.DE_CLASS_CODE, "A^^1.2.3.2"), status=BOTH) == {"D3"}
    # The code^^^scheme spelling some consumers send is read as the same code.
    assert docs(sq, code(t.DE_CLASS_CODE, "A^^^1.2.3.2"), status=BOTH) == {"D3"}


def test_class_code_or_within_a_slot(sq: StoredQueries) -> None:
    one_value = code(t.DE_CLASS_CODE, "A^^1.2.3.1", "B^^1.2.3.1")
    assert docs(sq, one_value) == {"D1", "D2", "D4", "D6"}
    two_values = (t.DE_CLASS_CODE, quote_list(["A^^1.2.3.1"]), quote_list(["B^^1.2.3.1"]))
    assert docs(sq, two_values) == {"D1", "D2", "D4", "D6"}


def test_class_code_repeated_slots_are_anded(sq: StoredQueries) -> None:
    assert (
        docs(sq, code(t.DE_CLASS_CODE, "A^^1.2.3.1"), code(t.DE_CLASS_CODE, "B^^1.2.3.1")) == set()
    )
    wide = code(t.DE_CLASS_CODE, "A^^1.2.3.1", "B^^1.2.3.1")
    assert docs(sq, wide, code(t.DE_CLASS_CODE, "B^^1.2.3.1")) == {"D2"}


@pytest.mark.parametrize(
    ("param", "value", "expected"),
    [
        (t.DE_TYPE_CODE, "T2^^1.2.3.1", {"D2"}),
        (t.DE_TYPE_CODE, "T1^^1.2.3.1", {"D1", "D4", "D6"}),
        (t.DE_PRACTICE_SETTING_CODE, "P2^^1.2.3.1", {"D2"}),
        (t.DE_HEALTHCARE_FACILITY_TYPE_CODE, "H2^^1.2.3.1", {"D2"}),
        (t.DE_FORMAT_CODE, "F2^^1.2.3.1", {"D2"}),
        (t.DE_FORMAT_CODE, "F1^^1.2.3.1", {"D1", "D4", "D6"}),
        (t.DE_FORMAT_CODE, "F1^^1.2.3.2", set()),  # right code, wrong scheme
        (t.DE_CONFIDENTIALITY_CODE, "R^^1.2.3.1", {"D2"}),
        (t.DE_EVENT_CODE_LIST, "E3^^1.2.3.1", {"D4"}),
    ],
)
def test_single_code_parameters(
    sq: StoredQueries, param: str, value: str, expected: set[str]
) -> None:
    assert docs(sq, code(param, value)) == expected


def test_event_code_list_and_across_slots(sq: StoredQueries) -> None:
    e1, e2 = code(t.DE_EVENT_CODE_LIST, "E1^^1.2.3.1"), code(t.DE_EVENT_CODE_LIST, "E2^^1.2.3.1")
    assert docs(sq, e1, e2) == {"D1"}  # OR would give D1, D2, D6
    assert docs(sq, code(t.DE_EVENT_CODE_LIST, "E1^^1.2.3.1", "E2^^1.2.3.1")) == {"D1", "D2", "D6"}


def test_confidentiality_code_and_across_slots(sq: StoredQueries) -> None:
    n, r = (
        code(t.DE_CONFIDENTIALITY_CODE, "N^^1.2.3.1"),
        code(t.DE_CONFIDENTIALITY_CODE, "R^^1.2.3.1"),
    )
    assert docs(sq, n, r, status=BOTH) == {"D3"}
    either = code(t.DE_CONFIDENTIALITY_CODE, "N^^1.2.3.1", "R^^1.2.3.1")
    assert docs(sq, either, status=BOTH) == {"D1", "D2", "D3", "D4", "D6"}


def test_codes_of_different_parameters_are_anded(sq: StoredQueries) -> None:
    found = docs(sq, code(t.DE_CLASS_CODE, "A^^1.2.3.1"), code(t.DE_EVENT_CODE_LIST, "E3^^1.2.3.1"))
    assert found == {"D4"}


# --- times ---------------------------------------------------------------------------------------
def test_creation_time_from_inclusive_to_exclusive(sq: StoredQueries) -> None:
    found = docs(sq, (t.DE_CREATION_TIME_FROM, "20040101"), (t.DE_CREATION_TIME_TO, "20041224"))
    assert found == {"D1", "D6"}  # D2 (20041224) sits on the exclusive edge


def test_creation_time_left_edge_and_precision(sq: StoredQueries) -> None:
    assert docs(sq, (t.DE_CREATION_TIME_FROM, "20041224")) == {"D2", "D4"}
    # D3 (20041224093000) is inside 20041224 when padded; D1 (20040101) is on a 12-digit edge.
    assert docs(sq, (t.DE_CREATION_TIME_FROM, "200412240930"), status=BOTH) == {"D3", "D4"}
    assert docs(sq, (t.DE_CREATION_TIME_FROM, "200401010000"), (t.DE_CREATION_TIME_TO, "2004")) == (
        set()
    )
    assert docs(sq, (t.DE_CREATION_TIME_TO, "200401010001")) == {"D1"}


def test_creation_time_quoted_number_is_read(sq: StoredQueries) -> None:
    assert docs(sq, (t.DE_CREATION_TIME_FROM, "'2005'")) == {"D4"}


def test_service_start_and_stop_times(sq: StoredQueries) -> None:
    start = docs(sq, (t.DE_SERVICE_START_TIME_FROM, "2005"), (t.DE_SERVICE_START_TIME_TO, "2006"))
    assert start == {"D2"}
    assert docs(sq, (t.DE_SERVICE_STOP_TIME_FROM, "2006")) == {"D2"}
    # Entries without the time (D4, D6) never match a range on it.
    assert docs(sq, (t.DE_SERVICE_STOP_TIME_TO, "2006"), status=BOTH) == {"D1", "D3"}
    assert docs(sq, (t.DE_SERVICE_START_TIME_TO, "200401011000")) == set()  # exclusive


# --- author --------------------------------------------------------------------------------------
def test_author_person_like(sq: StoredQueries) -> None:
    assert docs(sq, (t.DE_AUTHOR_PERSON, quote_list(["%Smith%"])), status=BOTH) == {"D1"}
    # Case-sensitive on every database: "smith" is D3's, "Smith" D1's.
    assert docs(sq, (t.DE_AUTHOR_PERSON, quote_list(["%mith%"])), status=BOTH) == {"D1", "D3"}
    assert docs(sq, (t.DE_AUTHOR_PERSON, quote_list(["^Ford^%"]))) == {"D2", "D4"}
    assert docs(sq, (t.DE_AUTHOR_PERSON, quote_list(["^Ford^_nna^^^"]))) == {"D4"}


def test_author_person_or_and_quotes(sq: StoredQueries) -> None:
    either = (t.DE_AUTHOR_PERSON, quote_list(["%Harrison%", "%Jones%"]))
    assert docs(sq, either) == {"D2", "D6"}
    assert docs(sq, (t.DE_AUTHOR_PERSON, quote_list(["%O'Brien%"]))) == {"D4"}
    assert docs(sq, (t.DE_AUTHOR_PERSON, "'%O''Brien%'")) == {"D4"}


@pytest.mark.parametrize("pattern", ["^Ford^*", "^Ford^?arrison^^^", "[^]Ford%", "%\\%"])
def test_author_person_other_characters_are_literal(sq: StoredQueries, pattern: str) -> None:
    assert docs(sq, (t.DE_AUTHOR_PERSON, quote_list([pattern]))) == set()


# --- misc ----------------------------------------------------------------------------------------
def test_undefined_parameter_is_ignored(sq: StoredQueries) -> None:
    found = docs(
        sq,
        code(t.DE_PRACTICE_SETTING_CODE, "P2^^1.2.3.1"),
        ("$XDSDocumentEntryPracticeSettingCodeScheme", "('Connect-a-thon practiceSettingCodes')"),
    )
    assert found == {"D2"}


def test_leaf_class_returns_full_entries_with_column_status(sq: StoredQueries) -> None:
    found = ask(
        sq,
        t.FIND_DOCUMENTS,
        (t.DE_PATIENT_ID, quote(PATIENT_ID)),
        (t.DE_STATUS, quote_list([DEPRECATED])),
        return_type=LEAF_CLASS,
    )
    assert len(found) == 1 and isinstance(found[0], DocumentEntry)
    entry = found[0]
    assert entry.title == "D3" and entry.availability_status == DEPRECATED
    assert entry.logical_id == entry.entry_uuid and entry.version == "1"
    refs = ask(sq, t.FIND_DOCUMENTS, (t.DE_PATIENT_ID, quote(PATIENT_ID)),
               (t.DE_STATUS, quote_list([DEPRECATED])))  # fmt: skip
    assert [type(r) for r in refs] == [ObjectRef] and refs[0].entry_uuid == entry.entry_uuid


@pytest.mark.parametrize(
    "slot",
    [
        (t.DE_CLASS_CODE, "('A')"),  # no scheme (NIST 11897/old_scheme)
        (t.DE_CLASS_CODE, "('A^^1.2.3.1', 'a^^')"),  # NIST 11897/classcode_scheme_mismatch
        (t.DE_CREATION_TIME_FROM, "2004-01-01"),
        (t.DE_CREATION_TIME_FROM, "20041301"),
        (t.DE_AUTHOR_PERSON, "(%Smith%)"),
    ],
)
def test_malformed_value_is_an_error_not_an_empty_result(
    sq: StoredQueries, slot: tuple[str, str]
) -> None:
    with pytest.raises(XDSError) as raised:
        docs(sq, slot)
    assert [e.code for e in raised.value] == ["XDSRegistryError"]


# --- FindDocumentsByReferenceId ------------------------------------------------------------------
def by_reference(sq: StoredQueries, *slots: tuple[str, ...], status: tuple[str, ...]) -> set[str]:
    return names(
        ask(
            sq,
            t.FIND_DOCUMENTS_BY_REFERENCE_ID,
            (t.DE_PATIENT_ID, quote(PATIENT_ID)),
            (t.DE_STATUS, quote_list(status)),
            *slots,
        )
    )


def test_reference_id_list(sq: StoredQueries) -> None:
    ref1 = (t.DE_REFERENCE_ID_LIST, quote_list([REF_1]))
    assert by_reference(sq, ref1, status=(APPROVED,)) == {"D1"}  # D5 On-Demand, DQ other patient
    assert by_reference(sq, ref1, status=BOTH) == {"D1", "D3"}
    either = (t.DE_REFERENCE_ID_LIST, quote_list([REF_1, REF_2]))
    assert by_reference(sq, either, status=BOTH) == {"D1", "D2", "D3"}
    ref2 = (t.DE_REFERENCE_ID_LIST, quote_list([REF_2]))
    assert by_reference(sq, ref1, ref2, status=BOTH) == {"D3"}


def test_reference_id_list_with_other_filters(sq: StoredQueries) -> None:
    ref1 = (t.DE_REFERENCE_ID_LIST, quote_list([REF_1]))
    assert by_reference(sq, ref1, code(t.DE_CLASS_CODE, "A^^1.2.3.2"), status=BOTH) == {"D3"}


def test_reference_id_list_is_required(sq: StoredQueries) -> None:
    with pytest.raises(XDSError) as raised:
        by_reference(sq, status=(APPROVED,))
    assert [e.code for e in raised.value] == ["XDSStoredQueryMissingParam"]


# --- FindSubmissionSets --------------------------------------------------------------------------
def sets(sq: StoredQueries, *slots: tuple[str, ...], status: tuple[str, ...] = (APPROVED,)) -> set:
    return names(
        ask(
            sq,
            t.FIND_SUBMISSION_SETS,
            (t.SS_PATIENT_ID, quote(PATIENT_ID)),
            (t.SS_STATUS, quote_list(status)),
            *slots,
        )
    )


def test_find_submission_sets(sq: StoredQueries) -> None:
    assert sets(sq) == {"SS1", "SS2", "SS3"}  # SS3: the merged id's
    assert sets(sq, status=(DEPRECATED,)) == set()
    assert sets(sq, (t.SS_SOURCE_ID, quote_list(["1.1.2"]))) == {"SS2"}
    assert sets(sq, (t.SS_SOURCE_ID, quote_list(["1.1.1", "1.1.3"]))) == {"SS1", "SS3"}


def test_find_submission_sets_time_author_content_type(sq: StoredQueries) -> None:
    window = ((t.SS_SUBMISSION_TIME_FROM, "20041225"), (t.SS_SUBMISSION_TIME_TO, "20050101"))
    assert sets(sq, *window) == {"SS1"}  # SS2 at 20050101 is on the exclusive edge
    assert sets(sq, (t.SS_SUBMISSION_TIME_FROM, "20050101")) == {"SS2"}
    assert sets(sq, (t.SS_AUTHOR_PERSON, "'%Dopplemeyer%'")) == {"SS1"}
    assert sets(sq, (t.SS_AUTHOR_PERSON, "('%Smith%')")) == {"SS2"}
    assert sets(sq, code(t.SS_CONTENT_TYPE, "CT2^^1.2.3.1")) == {"SS2"}
    assert sets(sq, code(t.SS_CONTENT_TYPE, "CT1^^1.2.3.2")) == set()


def test_find_submission_sets_author_is_single_valued(sq: StoredQueries) -> None:
    with pytest.raises(XDSError) as raised:
        sets(sq, (t.SS_AUTHOR_PERSON, "('%Smith%', '%Jones%')"))
    assert [e.code for e in raised.value] == ["XDSStoredQueryParamNumber"]


# --- FindFolders ---------------------------------------------------------------------------------
def folders(sq: StoredQueries, *slots: tuple[str, ...], status: tuple[str, ...] = BOTH) -> set:
    return names(
        ask(
            sq,
            t.FIND_FOLDERS,
            (t.FOL_PATIENT_ID, quote(PATIENT_ID)),
            (t.FOL_STATUS, quote_list(status)),
            *slots,
        )
    )


def test_find_folders(sq: StoredQueries) -> None:
    assert folders(sq, status=(APPROVED,)) == {"F1"}
    assert folders(sq) == {"F1", "F2"}
    window = (
        (t.FOL_LAST_UPDATE_TIME_FROM, "20041231"),
        (t.FOL_LAST_UPDATE_TIME_TO, "20050101120000"),
    )
    assert folders(sq, *window) == {"F2"}  # F1 sits on the exclusive edge


def test_find_folders_code_list(sq: StoredQueries) -> None:
    assert folders(sq, code(t.FOL_CODE_LIST, "FC2^^1.2.3.1")) == {"F1", "F2"}
    fc1, fc2 = code(t.FOL_CODE_LIST, "FC1^^1.2.3.1"), code(t.FOL_CODE_LIST, "FC2^^1.2.3.1")
    assert folders(sq, fc1, fc2) == {"F1"}
    assert folders(sq, code(t.FOL_CODE_LIST, "FC1^^1.2.3.1", "FC2^^1.2.3.1")) == {"F1", "F2"}
    assert folders(sq, code(t.FOL_CODE_LIST, "FC2^^1.2.3.2")) == set()
