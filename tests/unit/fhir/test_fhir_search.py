"""FHIR search parameters as ITI-18 slots (MHD ITI-66 / ITI-67 XDS on FHIR tables)."""

from __future__ import annotations

import pytest

from gateway.fhir import iti66, iti67
from gateway.fhir.search import (
    Params,
    code_slots,
    date_bounds,
    patient_ids,
    person_pattern,
    split_or,
)
from gateway.fhir.wire import FhirError
from gateway.metadata import vocabulary as v

DOMAIN = "1.3.6.1.4.1.21367.13.20.1000"
PATIENT = f"'PAT-1^^^&{DOMAIN}&ISO'"


def slots(query: object) -> list[tuple[str, tuple[str, ...]]]:
    return [(s.name, s.values) for s in query.slots]  # type: ignore[attr-defined]


def test_find_documents_of_every_parameter() -> None:
    params = Params.parse(
        "patient.identifier=urn:oid:1.3.6.1.4.1.21367.13.20.1000|PAT-1&status=current,superseded"
        "&creation=ge2024-01-01&creation=lt2024-02&period=ge2023&period=le2023-06-30"
        "&author.family=Welby&author.given=Marcus&type=http://loinc.org|18842-5,http://loinc.org|1-1"
        "&event=http://snomed.info/sct|1&event=http://snomed.info/sct|2&format=urn:oid:1.2.3|x"
        "&unknown=ignored"
    )
    query = iti67.find_documents(params, DOMAIN)
    assert query.query_id == v.FIND_DOCUMENTS
    assert slots(query) == [
        ("$XDSDocumentEntryPatientId", (PATIENT,)),
        ("$XDSDocumentEntryStatus", (f"('{v.STATUS_APPROVED}','{v.STATUS_DEPRECATED}')",)),
        ("$XDSDocumentEntryCreationTimeFrom", ("20240101",)),
        ("$XDSDocumentEntryCreationTimeTo", ("202402",)),
        ("$XDSDocumentEntryServiceStopTimeFrom", ("2023",)),
        ("$XDSDocumentEntryServiceStartTimeTo", ("20230701",)),
        ("$XDSDocumentEntryAuthorPerson", ("('%^Welby%^Marcus%')",)),
        (
            "$XDSDocumentEntryTypeCode",
            ("('18842-5^^2.16.840.1.113883.6.1','1-1^^2.16.840.1.113883.6.1')",),
        ),
        ("$XDSDocumentEntryEventCodeList", ("('1^^2.16.840.1.113883.6.96')",)),
        ("$XDSDocumentEntryEventCodeList", ("('2^^2.16.840.1.113883.6.96')",)),
        ("$XDSDocumentEntryFormatCode", ("('x^^1.2.3')",)),
    ]


def test_related_uses_find_documents_by_reference_id() -> None:
    query = iti67.find_documents(Params.parse("patient=PAT-1&related=urn:oid:1.2.3|ACC-1"), DOMAIN)
    assert query.query_id == v.FIND_DOCUMENTS_BY_REFERENCE_ID
    [values] = [s.values for s in query.slots if s.name == "$XDSDocumentEntryReferenceIdList"]
    assert "'ACC-1^^^&1.2.3&ISO^urn:ihe:iti:xds:2013:accession'" in values[0]


def test_find_submission_sets_and_folders() -> None:
    params = Params.parse(
        "patient=PAT-1&code=submissionset&status=current&date=ge2024&source.family=Welby"
        "&designationType=http://loinc.org|1&sourceId=urn:oid:1.2.3"
    )
    assert slots(iti66.find_submission_sets(params, f"PAT-1^^^&{DOMAIN}&ISO")) == [
        ("$XDSSubmissionSetPatientId", (PATIENT,)),
        ("$XDSSubmissionSetStatus", (f"('{v.STATUS_APPROVED}')",)),
        ("$XDSSubmissionSetSubmissionTimeFrom", ("2024",)),
        ("$XDSSubmissionSetAuthorPerson", ("'%^Welby%'",)),
        ("$XDSSubmissionSetContentType", ("('1^^2.16.840.1.113883.6.1')",)),
        ("$XDSSubmissionSetSourceId", ("('1.2.3')",)),
    ]
    assert slots(iti66.find_folders(params, f"PAT-1^^^&{DOMAIN}&ISO"))[2:] == [
        ("$XDSFolderLastUpdateTimeFrom", ("2024",)),
        ("$XDSFolderCodeList", ("('1^^2.16.840.1.113883.6.1')",)),
    ]


@pytest.mark.parametrize(
    ("query", "start", "end"),
    [
        ("d=ge2024-03-01", "20240301", None),
        ("d=gt2024-03-01", "20240302", None),
        ("d=lt2024-03-01", None, "20240301"),
        ("d=le2024-03-01", None, "20240302"),
        ("d=2024-03", "202403", "202404"),
        ("d=eq2024-03-01T10:00:00Z", "20240301100000", "20240301100001"),
        ("d=ge2024&d=ge2024-06-01&d=lt2025&d=lt2024-09", "20240601", "202409"),
    ],
)
def test_date_bounds(query: str, start: str | None, end: str | None) -> None:
    bounds = date_bounds(Params.parse(query), "d")
    assert (bounds.start, bounds.end) == (start, end)


@pytest.mark.parametrize(
    "query", ["d=ne2024", "d=sa2024", "d=ge2024-03-01T10:00:00", "d=geyesterday"]
)
def test_date_bounds_refused(query: str) -> None:
    with pytest.raises(FhirError) as caught:
        date_bounds(Params.parse(query), "d")
    assert caught.value.status == 400


def test_codes_need_a_system() -> None:
    with pytest.raises(FhirError):
        code_slots(Params.parse("type=18842-5"), "type")
    with pytest.raises(FhirError):
        code_slots(Params.parse("type=|18842-5"), "type")


def test_patients() -> None:
    assert patient_ids(Params.parse("patient=Patient/PAT-1"), DOMAIN) == [f"PAT-1^^^&{DOMAIN}&ISO"]
    assert patient_ids(Params.parse("patient=https://x/fhir/Patient/PAT-1"), DOMAIN) == [
        f"PAT-1^^^&{DOMAIN}&ISO"
    ]
    same = f"patient=PAT-1&patient.identifier=urn:oid:{DOMAIN}|PAT-1"
    assert len(patient_ids(Params.parse(same), DOMAIN)) == 1
    for bad in ("", "patient.identifier=PAT-1", "patient=PAT-1&patient=PAT-2", "patient=a/b c"):
        with pytest.raises(FhirError):
            patient_ids(Params.parse(bad), DOMAIN)


def test_names_and_lists() -> None:
    assert person_pattern(["Marcus"], []) == "%^%^Marcus%"
    assert person_pattern([], []) is None
    assert split_or("a,b\\,c,,d") == ["a", "b,c", "d"]
    with pytest.raises(FhirError):
        Params.parse("&".join(f"p{n}=1" for n in range(200)))
