"""ITI-18 "contents" queries on SQLite and PostgreSQL: GetAll, GetSubmissionSetAndContents,
GetFolderAndContents, with their DocumentEntry filters and the associations each returns.

Standard: ITI TF-2 §3.18.4.1.2.3.7.4, .10, .11 (rev. 19.0); NIST tests 11906, 11907, 15803.
World: ``iti18_world``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gateway.errors import XDSError
from gateway.metadata import ebrim
from gateway.metadata.model import DocumentEntry, Folder
from gateway.registry.database import Database
from gateway.registry.iti18 import StoredQueries
from gateway.registry.queries import LEAF_CLASS, AdhocQuery, quote, quote_list
from gateway.registry.queries import table as t
from tests.integration.registry.iti18_world import (
    APPROVED,
    DEPRECATED,
    MERGED_PATIENT_ID,
    ON_DEMAND,
    PATIENT_ID,
    STABLE,
    WORLD_PARAMS,
    ask,
    entry_of,
    folder_of,
    names,
    open_world,
    uid_of,
    uuid_of,
)

BOTH = quote_list([APPROVED, DEPRECATED])


@pytest.fixture(scope="module", params=WORLD_PARAMS)
def world_db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Database]:
    yield from open_world(request, tmp_path_factory)


@pytest.fixture(scope="module")
def sq(world_db: Database) -> StoredQueries:
    return StoredQueries(world_db)


# --- GetAll --------------------------------------------------------------------------------------
def get_all(
    sq: StoredQueries,
    *slots: tuple[str, ...],
    patient: str = PATIENT_ID,
    de: str = BOTH,
    ss: str = BOTH,
    fol: str = BOTH,
) -> set[str]:
    found = ask(
        sq,
        t.GET_ALL,
        (t.PATIENT_ID, quote(patient)),
        (t.DE_STATUS, de),
        (t.SS_STATUS, ss),
        (t.FOL_STATUS, fol),
        *slots,
        return_type=LEAF_CLASS,
    )
    return names(found)


ALL_ASSOCIATIONS_OF_P = {
    "SS1-D1", "SS1-D2", "SS1-D3", "SS1-F1", "F1-D1", "SS1-F1-D1", "APND-D2-D1",
    "SS2-D4", "SS2-F2", "RPLC-D4-D3", "F1-D4", "SS2-F1-D4", "SS3-D6",
}  # fmt: skip


def test_get_all(sq: StoredQueries) -> None:
    objects = {"D1", "D2", "D3", "D4", "D6", "SS1", "SS2", "SS3", "F1", "F2"}
    # D5 (On-Demand) is not asked for, so neither SS2-D5 nor XFRM-D5-D1 come back.
    assert get_all(sq) == objects | ALL_ASSOCIATIONS_OF_P


def test_get_all_with_on_demand_entries(sq: StoredQueries) -> None:
    found = get_all(sq, (t.DE_TYPE, quote_list([STABLE, ON_DEMAND])))
    assert {"D5", "SS2-D5", "XFRM-D5-D1"} <= found


def test_get_all_status_lists_apply_per_kind(sq: StoredQueries) -> None:
    found = get_all(sq, de=quote_list([APPROVED]), fol=quote_list([APPROVED]))
    assert "D3" not in found and "F2" not in found
    assert not {"SS1-D3", "RPLC-D4-D3", "SS2-F2"} & found
    assert {"D1", "D2", "D4", "D6", "F1", "SS1", "SS2", "SS3", "F1-D4", "SS2-F1-D4"} <= found


def test_get_all_document_filters(sq: StoredQueries) -> None:
    found = get_all(sq, (t.DE_FORMAT_CODE, quote_list(["F2^^1.2.3.1"])))
    assert found & {"D1", "D2", "D3", "D4", "D6"} == {"D2"}
    n = (t.DE_CONFIDENTIALITY_CODE, quote_list(["N^^1.2.3.1"]))
    r = (t.DE_CONFIDENTIALITY_CODE, quote_list(["R^^1.2.3.1"]))
    assert get_all(sq, n, r) & {"D1", "D2", "D3", "D4", "D6"} == {"D3"}


def test_get_all_of_a_subsumed_id_is_empty(sq: StoredQueries) -> None:
    assert get_all(sq, patient=MERGED_PATIENT_ID) == set()


def test_get_all_requires_every_status_list(sq: StoredQueries) -> None:
    with pytest.raises(XDSError) as raised:
        ask(sq, t.GET_ALL, (t.PATIENT_ID, quote(PATIENT_ID)), (t.DE_STATUS, BOTH))
    assert sorted(e.code for e in raised.value) == ["XDSStoredQueryMissingParam"] * 2


# --- GetSubmissionSetAndContents -----------------------------------------------------------------
def ss_contents(sq: StoredQueries, *slots: tuple[str, ...]) -> set[str]:
    return names(ask(sq, t.GET_SUBMISSION_SET_AND_CONTENTS, *slots, return_type=LEAF_CLASS))


def test_submission_set_and_contents(sq: StoredQueries) -> None:
    found = ss_contents(sq, (t.SS_ENTRY_UUID, quote(uuid_of("SS1"))))
    # APND-D2-D1 was submitted apart: it is no member of SS1.
    assert found == {
        "SS1", "D1", "D2", "D3", "F1", "SS1-D1", "SS1-D2", "SS1-D3", "SS1-F1", "F1-D1", "SS1-F1-D1",
    }  # fmt: skip


def test_submission_set_and_contents_filter_drops_the_folder_link(sq: StoredQueries) -> None:
    found = ss_contents(
        sq,
        (t.SS_UNIQUE_ID, quote(uid_of("SS1"))),
        (t.DE_FORMAT_CODE, quote_list(["F2^^1.2.3.1"])),
    )
    assert found == {"SS1", "D2", "F1", "SS1-D2", "SS1-F1"}


def test_submission_set_and_contents_confidentiality(sq: StoredQueries) -> None:
    n = (t.DE_CONFIDENTIALITY_CODE, quote_list(["N^^1.2.3.1"]))
    r = (t.DE_CONFIDENTIALITY_CODE, quote_list(["R^^1.2.3.1"]))
    found = ss_contents(sq, (t.SS_ENTRY_UUID, quote(uuid_of("SS1"))), n, r)
    assert found == {"SS1", "D3", "F1", "SS1-D3", "SS1-F1"}


def test_submission_set_and_contents_link_into_an_earlier_folder(sq: StoredQueries) -> None:
    # SS2 put D4 into F1 (of SS1): that link is SS2 content; D5 (On-Demand) is filtered out.
    found = ss_contents(sq, (t.SS_ENTRY_UUID, quote(uuid_of("SS2"))))
    assert found == {"SS2", "D4", "F2", "SS2-D4", "SS2-F2", "F1-D4", "SS2-F1-D4"}
    everything = ss_contents(
        sq, (t.SS_ENTRY_UUID, quote(uuid_of("SS2"))), (t.DE_TYPE, quote_list([STABLE, ON_DEMAND]))
    )
    assert everything == found | {"D5", "SS2-D5", "F2-D5", "SS2-F2-D5"}


def test_submission_set_and_contents_object_refs(sq: StoredQueries) -> None:
    refs = ask(sq, t.GET_SUBMISSION_SET_AND_CONTENTS, (t.SS_ENTRY_UUID, quote(uuid_of("SS3"))))
    assert names(refs) == {"SS3", "D6", "SS3-D6"}


def test_submission_set_and_contents_unknown_and_parameter_errors(sq: StoredQueries) -> None:
    assert ss_contents(sq, (t.SS_UNIQUE_ID, quote("1.2.3.4.5.6.7"))) == set()
    with pytest.raises(XDSError) as raised:
        ss_contents(sq, (t.SS_UNIQUE_ID, quote_list([uid_of("SS1"), uid_of("SS2")])))
    assert [e.code for e in raised.value] == ["XDSStoredQueryParamNumber"]


# --- GetFolderAndContents ------------------------------------------------------------------------
def folder_contents(sq: StoredQueries, *slots: tuple[str, ...]) -> set[str]:
    return names(ask(sq, t.GET_FOLDER_AND_CONTENTS, *slots, return_type=LEAF_CLASS))


def test_folder_and_contents(sq: StoredQueries) -> None:
    found = folder_contents(sq, (t.FOL_ENTRY_UUID, quote(uuid_of("F1"))))
    assert found == {"F1", "D1", "D4", "F1-D1", "F1-D4"}
    assert folder_contents(sq, (t.FOL_UNIQUE_ID, quote(uid_of("FQ")))) == {"FQ", "DQ", "FQ-DQ"}
    # F2 holds only D5, an On-Demand entry: returned only when that type is asked for.
    assert folder_contents(sq, (t.FOL_ENTRY_UUID, quote(uuid_of("F2")))) == {"F2"}
    with_type = (t.DE_TYPE, quote_list([ON_DEMAND]))
    found = folder_contents(sq, (t.FOL_ENTRY_UUID, quote(uuid_of("F2"))), with_type)
    assert found == {"F2", "D5", "F2-D5"}


def test_folder_and_contents_filters(sq: StoredQueries) -> None:
    folder = (t.FOL_ENTRY_UUID, quote(uuid_of("F1")))
    confidential = (t.DE_CONFIDENTIALITY_CODE, quote_list(["R^^1.2.3.1"]))
    assert folder_contents(sq, folder, confidential) == {"F1"}
    event_format = (t.DE_FORMAT_CODE, quote_list(["F1^^1.2.3.1"]))
    assert folder_contents(sq, folder, event_format) == {"F1", "D1", "D4", "F1-D1", "F1-D4"}
    wrong_scheme = (t.DE_FORMAT_CODE, quote_list(["F1^^1.2.3.2"]))
    assert folder_contents(sq, folder, wrong_scheme) == {"F1"}


def test_leaf_class_objects_are_the_registered_metadata(sq: StoredQueries) -> None:
    """The XML answer read back equals what was registered, plus what the registry keeps."""
    query = AdhocQuery(query_id=t.GET_FOLDER_AND_CONTENTS, return_type=LEAF_CLASS)
    query.add(t.FOL_ENTRY_UUID, quote(uuid_of("F1")))
    returned = ebrim.parse_registry_object_list(sq.run(query))
    entries = {o.title: o for o in returned if isinstance(o, DocumentEntry)}
    assert set(entries) == {"D1", "D4"}
    for name, entry in entries.items():
        _ss, expected = entry_of(name)
        expected.logical_id, expected.version = expected.entry_uuid, "1"
        assert entry == expected
    (folder,) = [o for o in returned if isinstance(o, Folder)]
    expected_folder = folder_of("F1")
    expected_folder.logical_id, expected_folder.version = expected_folder.entry_uuid, "1"
    expected_folder.last_update_time = "20050101120000"
    assert folder == expected_folder
