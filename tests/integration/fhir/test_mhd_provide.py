"""Acceptance 1 and 3: a real FHIR client (fhirclient) provides two documents by ITI-65; ITI-18
on ``/xds/registry`` finds them with the metadata MHD's mapping prescribes; ITI-67 finds them
with each search parameter (and not with a wrong one); ITI-68 returns them byte for byte; ITI-66
finds the SubmissionSet and Folder Lists; every resource returned parses in fhir.resources
(R4B) and fhirclient (R4); each transaction leaves its audit record."""

from __future__ import annotations

import hashlib
from typing import Any

import requests
from fhirclient.models.bundle import Bundle
from fhirclient.models.capabilitystatement import CapabilityStatement
from fhirclient.models.documentreference import DocumentReference
from fhirclient.models.fhirsearch import FHIRSearch, FHIRSearchParam
from fhirclient.models.list import List as FhirList

from gateway.app import Gateway
from gateway.metadata import vocabulary as v
from gateway.metadata.datatypes import Code
from gateway.metadata.model import DocumentEntry, Folder, SubmissionSet
from gateway.metadata.query import AdhocQuery, build_query_request, parse_query_response
from gateway.soap import transactions as tx
from gateway.soap.client import SoapClient
from tests.integration.fhir.conftest import audit_records, fhir_base, with_type
from tests.support import mhd
from tests.support.fhir_check import check_resource

PATIENT = f"PAT-1^^^&{mhd.DOMAIN}&ISO"
PATIENT_TOKEN = f"urn:oid:{mhd.DOMAIN}|PAT-1"
LOINC_OID, SNOMED_OID = "2.16.840.1.113883.6.1", "2.16.840.1.113883.6.96"


def iti18(gw: Gateway, query_id: str, slots: dict[str, str]) -> list[Any]:
    """ITI-18 over SOAP on /xds/registry, as any XDS Document Consumer asks."""
    query = AdhocQuery(query_id=query_id)
    for name, value in slots.items():
        query.add(name, value)
    answer = SoapClient(gw.base_url + tx.REGISTRY_PATH).call(tx.ITI_18, build_query_request(query))
    parsed = parse_query_response(answer.body)
    assert parsed.status == "Success", parsed.errors
    return parsed.objects


def search(smart: Any, kind: type, items: list[tuple[str, str]]) -> list[Any]:
    """A fhirclient search with exactly these parameters (repeats allowed), every page."""
    query = FHIRSearch(kind)
    query.params = [FHIRSearchParam(name, value) for name, value in items]
    return list(query.perform_resources_iter(smart.server))


def provide_two(gw: Gateway, smart: Any) -> tuple[list[mhd.Document], dict[str, Any]]:
    docs = [
        mhd.Document(b"first document\n"),
        mhd.Document(b"%PDF-1.4 second document", mime_type="application/pdf", title="Report"),
    ]
    bundle = mhd.provide_bundle(docs, folder=True)
    answer = smart.server.post_json("", bundle).json()
    check_resource(answer)
    return docs, answer


def test_capability_statement_parses_and_names_mhd(gateway: Gateway, smart: Any) -> None:
    statement = smart.server.capabilityStatement  # fhirclient reads and parses /metadata
    assert isinstance(statement, CapabilityStatement)
    raw = requests.get(fhir_base(gateway) + "/metadata", timeout=30).json()
    check_resource(raw)
    assert set(raw["instantiates"]) == {
        "https://profiles.ihe.net/ITI/MHD/CapabilityStatement/IHE.MHD.DocumentResponder",
        "https://profiles.ihe.net/ITI/MHD/CapabilityStatement/IHE.MHD.DocumentRecipient.Comprehensive",
    }
    assert [i["code"] for i in raw["rest"][0]["interaction"]] == ["transaction"]


def test_iti65_response_one_entry_per_request_entry(gateway: Gateway, smart: Any) -> None:
    _docs, answer = provide_two(gateway, smart)
    parsed = Bundle(answer)
    assert parsed.type == "transaction-response"
    statuses = [e.response.status for e in parsed.entry]
    assert statuses == ["201 Created"] * 6  # SubmissionSet, 2 x (DocumentReference, Binary), Folder
    kinds = [e.response.location.split("/")[0] for e in parsed.entry]
    assert kinds == ["List", "DocumentReference", "Binary", "DocumentReference", "Binary", "List"]


def test_provided_documents_have_the_mapped_xds_metadata(gateway: Gateway, smart: Any) -> None:
    docs, _answer = provide_two(gateway, smart)
    objects = iti18(
        gateway,
        v.FIND_DOCUMENTS,
        {
            "$XDSDocumentEntryPatientId": f"'{PATIENT}'",
            "$XDSDocumentEntryStatus": f"('{v.STATUS_APPROVED}')",
        },
    )
    entries = {o.unique_id: o for o in objects if isinstance(o, DocumentEntry)}
    assert set(entries) == {d.unique_id for d in docs}
    entry: DocumentEntry = entries[docs[0].unique_id]
    assert entry.mime_type == "text/plain"
    assert entry.hash == hashlib.sha1(docs[0].content).hexdigest()
    assert entry.size == len(docs[0].content)
    assert (entry.title, entry.comments, entry.language_code) == (
        "Discharge summary",
        "Summary of the stay",
        "en-US",
    )
    assert entry.creation_time == "20240301091500"  # 10:15 at +01:00, in UTC
    assert entry.class_code is not None and entry.class_code.matches(Code("11490-0", LOINC_OID))
    assert entry.type_code is not None and entry.type_code.matches(Code("18842-5", LOINC_OID))
    assert [(c.code, c.scheme) for c in entry.confidentiality_code] == [
        ("N", "2.16.840.1.113883.5.25")
    ]
    assert entry.format_code == Code(
        "urn:ihe:iti:xds:2017:mimeTypeSufficient", "1.3.6.1.4.1.19376.1.2.3", "mimeType Sufficient"
    )
    assert entry.healthcare_facility_type_code == Code("22232009", SNOMED_OID, "Hospital")
    assert entry.practice_setting_code == Code("394802001", SNOMED_OID, "General medicine")
    assert [c.code for c in entry.event_code_list] == ["183807002"]
    assert (entry.service_start_time, entry.service_stop_time) == (
        "20240227080000",
        "20240301090000",
    )
    assert entry.patient_id == PATIENT
    assert entry.source_patient_id == "MRN-7^^^&1.3.6.1.4.1.21367.13.20.2000&ISO"
    assert {"PID-5|Doe^Jane", "PID-7|19700101", "PID-8|F"} <= set(entry.source_patient_info)
    assert entry.author[0].person == "DR-7^Welby^Marcus^^^Dr^^^&1.2.3.9.1789&ISO"
    assert entry.author[0].telecom == ["^^Internet^marcus.welby@hospital.example"]
    assert entry.reference_id_list == [
        "ACC-77^^^&1.2.840.113619.6.197&ISO^urn:ihe:iti:xds:2013:accession"
    ]
    assert entry.repository_unique_id == gateway.settings.repository.unique_id
    sets = iti18(
        gateway,
        v.FIND_SUBMISSION_SETS,
        {
            "$XDSSubmissionSetPatientId": f"'{PATIENT}'",
            "$XDSSubmissionSetStatus": f"('{v.STATUS_APPROVED}')",
        },
    )
    [submission_set] = [o for o in sets if isinstance(o, SubmissionSet)]
    assert submission_set.source_id == mhd.SOURCE_ID
    assert submission_set.submission_time == "20240301102000"
    assert submission_set.content_type_code == Code("18842-5", LOINC_OID, "Discharge summary")
    assert submission_set.title == "Discharge documents"
    assert submission_set.author[0].person == "DR-7^Welby^Marcus^^^Dr^^^&1.2.3.9.1789&ISO"
    folders = iti18(
        gateway,
        v.FIND_FOLDERS,
        {"$XDSFolderPatientId": f"'{PATIENT}'", "$XDSFolderStatus": f"('{v.STATUS_APPROVED}')"},
    )
    [folder] = [o for o in folders if isinstance(o, Folder)]
    assert folder.title == "Stay of March 2024"
    assert folder.code_list == [Code("394802001", SNOMED_OID, "General medicine")]


def test_iti67_finds_them_with_each_search_parameter(gateway: Gateway, smart: Any) -> None:
    docs, _answer = provide_two(gateway, smart)
    both = {d.unique_id for d in docs}
    patient = [("patient.identifier", PATIENT_TOKEN), ("status", "current")]
    matching = {
        "patient": [("patient", "PAT-1"), ("status", "current")],
        "type": [*patient, ("type", f"{mhd.LOINC}|18842-5")],
        "category": [*patient, ("category", f"{mhd.LOINC}|11490-0")],
        "format": [
            *patient,
            ("format", f"{mhd.FORMAT_SYSTEM}|urn:ihe:iti:xds:2017:mimeTypeSufficient"),
        ],
        "security-label": [*patient, ("security-label", f"{mhd.CONFIDENTIALITY}|N")],
        "setting": [*patient, ("setting", f"{mhd.SNOMED}|394802001")],
        "facility": [*patient, ("facility", f"{mhd.SNOMED}|22232009")],
        "event": [*patient, ("event", f"{mhd.SNOMED}|183807002")],
        "creation": [*patient, ("creation", "ge2024-03-01"), ("creation", "lt2024-03-02")],
        "period": [*patient, ("period", "ge2024-02-28"), ("period", "lt2024-02-29")],
        "author": [*patient, ("author.family", "Welby"), ("author.given", "Marcus")],
        "related": [*patient, ("related", "urn:oid:1.2.840.113619.6.197|ACC-77")],
        "OR of two types": [*patient, ("type", f"{mhd.LOINC}|1-1,{mhd.LOINC}|18842-5")],
    }
    for name, items in matching.items():
        found = search(smart, DocumentReference, items)
        assert {r.masterIdentifier.value[len("urn:oid:") :] for r in found} == both, name
        for resource in found:
            check_resource(resource.as_json())
    missing = {
        "type": [*patient, ("type", f"{mhd.LOINC}|00000-0")],
        "creation": [*patient, ("creation", "lt2024-03-01")],
        "period": [*patient, ("period", "ge2024-03-02")],
        "author": [*patient, ("author.family", "Kildare")],
        "status": [("patient.identifier", PATIENT_TOKEN), ("status", "superseded")],
        "related": [*patient, ("related", "urn:oid:1.2.840.113619.6.197|ACC-78")],
        "other patient": [("patient", "PAT-2"), ("status", "current")],
    }
    for name, items in missing.items():
        assert search(smart, DocumentReference, items) == [], name
    [one] = search(
        smart, DocumentReference, [*patient, ("identifier", f"urn:oid:{docs[1].unique_id}")]
    )
    assert one.masterIdentifier.value == f"urn:oid:{docs[1].unique_id}"
    assert (
        DocumentReference.read(one.id, smart.server).masterIdentifier.value
        == one.masterIdentifier.value
    )


def test_iti67_pages_with_total_and_links(gateway: Gateway, smart: Any) -> None:
    provide_two(gateway, smart)
    url = fhir_base(gateway) + "/DocumentReference"
    first = requests.get(url, params={"patient": "PAT-1", "_count": "1"}, timeout=30).json()
    check_resource(first)
    assert first["total"] == 2 and len(first["entry"]) == 1
    links = {link["relation"]: link["url"] for link in first["link"]}
    assert {"self", "first", "next", "last"} <= set(links)
    second = requests.get(links["next"], timeout=30).json()
    assert second["total"] == 2 and len(second["entry"]) == 1
    assert "next" not in {link["relation"] for link in second["link"]}
    assert first["entry"][0]["fullUrl"] != second["entry"][0]["fullUrl"]
    # fhirclient follows the next links by itself
    assert len(search(smart, DocumentReference, [("patient", "PAT-1"), ("_count", "1")])) == 2


def test_iti68_returns_the_bytes_with_their_media_type(gateway: Gateway, smart: Any) -> None:
    docs, _answer = provide_two(gateway, smart)
    found = search(smart, DocumentReference, [("patient", "PAT-1"), ("status", "current")])
    by_uid = {r.masterIdentifier.value[len("urn:oid:") :]: r for r in found}
    for doc in docs:
        attachment = by_uid[doc.unique_id].content[0].attachment
        answer = smart.server.session.get(attachment.url, timeout=30)
        assert answer.status_code == 200
        assert answer.headers["Content-Type"] == doc.mime_type
        assert answer.content == doc.content
        assert attachment.size == len(doc.content)
    pdf = by_uid[docs[1].unique_id].content[0].attachment.url
    refused = requests.get(pdf, headers={"Accept": "image/png"}, timeout=30)
    assert refused.status_code == 406
    check_resource(refused.json())
    binary = requests.get(pdf, headers={"Accept": "application/fhir+json"}, timeout=30).json()
    check_resource(binary)
    assert binary["contentType"] == "application/pdf"


def test_iti66_finds_the_submission_set_and_folder(gateway: Gateway, smart: Any) -> None:
    docs, answer = provide_two(gateway, smart)
    [listed] = search(
        smart,
        FhirList,
        [("patient.identifier", PATIENT_TOKEN), ("code", "submissionset"), ("status", "current")],
    )
    check_resource(listed.as_json())
    assert listed.id == answer["entry"][0]["response"]["location"].split("/")[1]
    members = {e.item.reference for e in listed.entry}
    locations = {e["response"]["location"] for e in answer["entry"]}
    assert {m for m in members if m.startswith("DocumentReference/")} == {
        loc for loc in locations if loc.startswith("DocumentReference/")
    }
    assert answer["entry"][5]["response"]["location"] in members  # the Folder List
    [folder] = search(smart, FhirList, [("patient", "PAT-1"), ("code", "folder")])
    assert len(folder.entry) == len(docs)
    assert search(
        smart,
        FhirList,
        [
            ("patient", "PAT-1"),
            ("code", "submissionset"),
            ("designationType", f"{mhd.LOINC}|18842-5"),
            ("sourceId", f"urn:oid:{mhd.SOURCE_ID}"),
        ],
    )
    assert (
        search(
            smart,
            FhirList,
            [("patient", "PAT-1"), ("code", "submissionset"), ("date", "lt2024-03-01")],
        )
        == []
    )
    assert search(
        smart,
        FhirList,
        [("patient", "PAT-1"), ("code", "submissionset"), ("source.family", "Welby")],
    )
    read = FhirList.read(listed.id, smart.server)
    assert {e.item.reference for e in read.entry} == members


def test_transactions_are_audited(gateway: Gateway, smart: Any) -> None:
    docs, _answer = provide_two(gateway, smart)
    [found, *_] = search(smart, DocumentReference, [("patient", "PAT-1")])
    requests.get(found.content[0].attachment.url, timeout=30)
    search(smart, FhirList, [("patient", "PAT-1"), ("code", "submissionset")])

    def complete(records: list[Any]) -> bool:
        return all(with_type(records, code) for code in ("ITI-65", "ITI-66", "ITI-67", "ITI-68"))

    records = audit_records(gateway, complete)
    [provide] = with_type(records, "ITI-65")
    ident = provide.find("EventIdentification")
    assert (ident.find("EventID").get("csd-code"), ident.get("EventActionCode")) == ("110107", "C")
    objects = {
        o.get("ParticipantObjectID") for o in provide.iter("ParticipantObjectIdentification")
    }
    assert PATIENT in objects
    retrieve = with_type(records, "ITI-68")[0]
    ids = {o.get("ParticipantObjectID") for o in retrieve.iter("ParticipantObjectIdentification")}
    assert PATIENT in ids and found.masterIdentifier.value[len("urn:oid:") :] in ids
    assert {d.unique_id for d in docs} >= ids - {PATIENT}
    query = with_type(records, "ITI-67")[0]
    assert query.find("EventIdentification/EventID").get("csd-code") == "110112"
