"""DocumentEntry <-> DocumentReference and SubmissionSet / Folder <-> List, both ways (MHD
ITI TF-3 §4.5): what XDS holds comes back from its FHIR form; every resource is valid FHIR."""

from __future__ import annotations

import dataclasses
from typing import Any

from gateway.fhir import docref, lists
from gateway.metadata import vocabulary as v
from gateway.metadata.datatypes import parse_xcn
from gateway.metadata.model import Association, Author
from tests.factories import (
    PATIENT_ID,
    make_author,
    make_document_entry,
    make_folder,
    make_submission_set,
)
from tests.support.fhir_check import check_resource

LINKS = docref.Links(base="https://region.example/fhir", root="https://region.example")
ENTRY_UUID = "urn:uuid:0f3c1a4e-5b6d-4e7f-8a9b-0c1d2e3f4a5b"
OTHER_UUID = "urn:uuid:1f3c1a4e-5b6d-4e7f-8a9b-0c1d2e3f4a5b"


def resolver(resource: dict[str, Any]) -> Any:
    contained = {f"#{r['id']}": r for r in resource.get("contained", [])}

    def resolve(reference: Any, _where: str) -> dict[str, Any] | None:
        text = reference.get("reference") if isinstance(reference, dict) else reference
        return contained.get(text)

    return resolve


def registered_entry(**overrides: Any) -> Any:
    values: dict[str, Any] = {
        "entry_uuid": ENTRY_UUID,
        "availability_status": v.STATUS_APPROVED,
        "service_start_time": "20240102030405",
        "service_stop_time": "20240102040506",
        "legal_authenticator": "DR-9^Kildare^James^^^Dr^^^&1.2.3.9.1789&ISO",
        "author": [make_author(person="DR-7^Welby^Marcus^^^Dr^^^&1.2.3.9.1789&ISO")],
    }
    return make_document_entry(**{**values, **overrides})


def test_document_entry_round_trip() -> None:
    entry = registered_entry()
    resource = docref.document_reference(entry, LINKS, patient_id="PAT-42")
    check_resource(resource)
    assert resource["id"] == ENTRY_UUID[len("urn:uuid:") :]
    assert resource["content"][0]["attachment"]["url"] == f"{LINKS.base}/Binary/{resource['id']}"
    back, url, relations = docref.document_entry_of(
        {**resource, "status": "current"},
        entry_uuid=ENTRY_UUID,
        patient_id=entry.patient_id,
        resolve=resolver(resource),
        where="DocumentReference",
    )
    assert url == resource["content"][0]["attachment"]["url"] and relations == []
    same = [
        "unique_id",
        "mime_type",
        "title",
        "comments",
        "class_code",
        "confidentiality_code",
        "creation_time",
        "event_code_list",
        "format_code",
        "hash",
        "healthcare_facility_type_code",
        "language_code",
        "patient_id",
        "practice_setting_code",
        "reference_id_list",
        "service_start_time",
        "service_stop_time",
        "size",
        "source_patient_id",
        "type_code",
    ]
    for name in same:
        assert getattr(back, name) == getattr(entry, name), name
    assert set(entry.source_patient_info) <= set(back.source_patient_info) | {
        "PID-3|" + entry.source_patient_id
    }
    assert parse_xcn(back.legal_authenticator or "") == parse_xcn(entry.legal_authenticator or "")
    [author] = back.author
    [original] = entry.author
    assert parse_xcn(author.person or "") == parse_xcn(original.person or "")
    assert (author.institution, author.role, author.specialty, author.telecom) == (
        original.institution,
        original.role,
        original.specialty,
        original.telecom,
    )


def test_relates_to_and_status() -> None:
    entry = registered_entry(availability_status=v.STATUS_DEPRECATED)
    replace = Association(
        entry_uuid="urn:uuid:2f3c1a4e-5b6d-4e7f-8a9b-0c1d2e3f4a5b",
        association_type=v.RPLC,
        source_object=ENTRY_UUID,
        target_object=OTHER_UUID,
    )
    resource = docref.document_reference(entry, LINKS, patient_id=None, associations=[replace])
    check_resource(resource)
    assert resource["status"] == "superseded"
    assert resource["relatesTo"] == [
        {"code": "replaces", "target": {"reference": f"DocumentReference/{OTHER_UUID[9:]}"}}
    ]
    assert "reference" not in resource["subject"]  # no Patient id: a logical reference only
    assert resource["subject"]["identifier"]["value"] == "PAT-42"


def test_authors_of_each_shape() -> None:
    shapes = {
        "Practitioner": Author(person="^Welby^Marcus", telecom=["^^Internet^m@h.example"]),
        "Organization": Author(institution=["Some Hospital^^^^^&1.2.3.9.1789&ISO^^^^45"]),
        "PractitionerRole": make_author(),
    }
    for kind, author in shapes.items():
        entry = registered_entry(author=[author])
        resource = docref.document_reference(entry, LINKS, patient_id="PAT-42")
        check_resource(resource)
        target = resource["author"][0]["reference"][1:]
        [found] = [r for r in resource["contained"] if r["id"] == target]
        assert found["resourceType"] == kind
        back, _url, _rel = docref.document_entry_of(
            resource,
            entry_uuid=ENTRY_UUID,
            patient_id=PATIENT_ID,
            resolve=resolver(resource),
            where="d",
        )
        assert dataclasses.replace(back.author[0], person=None) == dataclasses.replace(
            author, person=None
        )
        assert (
            parse_xcn(back.author[0].person) == parse_xcn(author.person) if author.person else True
        )


def test_submission_set_round_trip() -> None:
    submission_set = make_submission_set(
        entry_uuid=ENTRY_UUID,
        availability_status=v.STATUS_APPROVED,
        intended_recipient=["|^Welby^Marcus|^^Internet^m@h.example"],
        comments="a note",
    )
    resource = lists.submission_set_list(
        submission_set, LINKS, patient_id="PAT-42", members=[("DocumentReference", OTHER_UUID)]
    )
    check_resource(resource)
    assert resource["entry"] == [{"item": {"reference": f"DocumentReference/{OTHER_UUID[9:]}"}}]
    back = lists.submission_set_of(
        resource,
        entry_uuid=ENTRY_UUID,
        patient_id=PATIENT_ID,
        resolve=resolver(resource),
        where="l",
    )
    for name in [
        "unique_id",
        "source_id",
        "content_type_code",
        "submission_time",
        "title",
        "comments",
        "patient_id",
        "intended_recipient",
    ]:
        assert getattr(back, name) == getattr(submission_set, name), name
    assert lists.list_kind(resource) == "submissionset"


def test_folder_round_trip() -> None:
    folder = make_folder(
        entry_uuid=ENTRY_UUID,
        availability_status=v.STATUS_DEPRECATED,
        last_update_time="20240102030405",
        comments="folder note",
    )
    resource = lists.folder_list(folder, LINKS, patient_id="PAT-42", members=[OTHER_UUID])
    check_resource(resource)
    assert resource["status"] == "retired"
    back = lists.folder_of(resource, entry_uuid=ENTRY_UUID, patient_id=PATIENT_ID, where="f")
    for name in ("unique_id", "code_list", "title", "comments", "patient_id"):
        assert getattr(back, name) == getattr(folder, name), name
    assert lists.list_kind(resource) == "folder"
