"""Friendly query options to stored-query parameters (ITI TF-2 §3.18.4.1.2.3)."""

from __future__ import annotations

import pytest

from gateway.consumer import queries as q
from gateway.metadata.datatypes import Code

PATIENT = "P1^^^&1.2.3&ISO"
APPROVED = "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"


def slots(**options: object) -> dict[str, tuple[str, ...]]:
    query_id, found = q.build_slots(q.QueryOptions(**options))  # type: ignore[arg-type]
    assert query_id.startswith("urn:uuid:")
    return {slot.name: slot.values for slot in found}


def test_values_are_coded_as_the_technical_framework_says() -> None:
    assert q.quote("O'Hara") == "'O''Hara'"
    assert q.quote_list(["a", "b'c"]) == "('a','b''c')"
    assert q.dtm("2024-01-02") == "20240102"
    assert q.dtm("2024-01-02T10:15") == "202401021015"
    assert q.dtm("2024-01-02 10:15:30") == "20240102101530"
    assert q.dtm("2024") == "2024"
    for bad in ("yesterday", "2024/01/02", "20240102T1"):
        with pytest.raises(q.QueryUsageError):
            q.dtm(bad)


def test_find_documents_for_a_patients_ct_manifests_since_a_date() -> None:
    found = slots(
        patient_id=PATIENT,
        format_codes=[q.KOS_FORMAT_CODE],
        event_codes=[q.modality_code("ct")],
        time_from="2024-01-01",
        created_to="2025",
    )
    assert found == {
        "$XDSDocumentEntryPatientId": ("'P1^^^&1.2.3&ISO'",),
        "$XDSDocumentEntryStatus": (f"('{APPROVED}')",),
        "$XDSDocumentEntryFormatCode": ("('1.2.840.10008.5.1.4.1.1.88.59^^1.2.840.10008.2.6.1')",),
        "$XDSDocumentEntryEventCodeList": ("('CT^^1.2.840.10008.2.16.4')",),
        "$XDSDocumentEntryServiceStartTimeFrom": ("20240101",),
        "$XDSDocumentEntryCreationTimeTo": ("2025",),
    }


def test_get_all_carries_the_three_statuses_and_all_expands() -> None:
    found = slots(query="getall", patient_id=PATIENT, statuses=["all"])
    assert found["$patientId"] == ("'P1^^^&1.2.3&ISO'",)
    for name in ("$XDSDocumentEntryStatus", "$XDSSubmissionSetStatus", "$XDSFolderStatus"):
        assert found[name][0].count("StatusType:") == 3


def test_ids_go_to_the_owner_of_each_get_query() -> None:
    assert slots(query="GetDocuments", unique_ids=["1.2", "1.3"]) == {
        "$XDSDocumentEntryUniqueId": ("('1.2','1.3')",)
    }
    assert slots(query="GetFolderAndContents", entry_uuids=["urn:uuid:x"]) == {
        "$XDSFolderEntryUUID": ("'urn:uuid:x'",)
    }
    assert slots(query="GetAssociations", entry_uuids=["urn:uuid:a"]) == {
        "$uuid": ("('urn:uuid:a')",)
    }
    assert slots(query="GetRelatedDocuments", unique_ids=["1.2"], association_types=["RPLC"]) == {
        "$XDSDocumentEntryUniqueId": ("'1.2'",),
        "$AssociationTypes": ("('urn:ihe:iti:2007:AssociationType:RPLC')",),
    }
    assert slots(
        query="FindDocumentsByReferenceId",
        patient_id=PATIENT,
        reference_ids=[q.study_reference_id("1.2.3")],
        raw=[("$XDSDocumentEntryType", "('urn:uuid:x')")],
    )["$XDSDocumentEntryReferenceIdList"] == ("('1.2.3^^^^urn:ihe:iti:xds:2016:studyInstanceUID')",)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"query": "FindEverything"}, "unknown stored query"),
        ({"query": "FindDocuments"}, "needs --patient"),
        ({"query": "GetDocuments", "patient_id": PATIENT, "unique_ids": ["1"]}, "--patient"),
        ({"query": "GetDocuments", "class_codes": [Code("a", "b")]}, "--class-code"),
        ({"query": "FindFolders", "patient_id": PATIENT, "created_from": "2024"}, "--created-from"),
        ({"query": "GetSubmissionSets", "unique_ids": ["1"]}, "--unique-id"),
        ({"query": "GetFoldersForDocument", "unique_ids": ["1", "2"]}, "takes one"),
        ({"patient_id": PATIENT, "statuses": ["gone"]}, "unknown status"),
        ({"patient_id": PATIENT, "statuses": []}, "at least one status"),
        ({"patient_id": PATIENT, "association_types": ["RPLC"]}, "--association-type"),
    ],
)
def test_options_a_query_does_not_define_are_refused(options: dict, message: str) -> None:
    with pytest.raises(q.QueryUsageError, match=message):
        q.build_slots(q.QueryOptions(**options))


def test_query_ids_by_name_or_uuid() -> None:
    assert q.query_id("finddocuments") == ("FindDocuments", q.QUERY_IDS["FindDocuments"])
    assert q.query_id(q.QUERY_IDS["GetAll"])[0] == "GetAll"
    assert len(set(q.QUERY_IDS.values())) == 14
