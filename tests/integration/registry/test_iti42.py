"""ITI-42 Register Document Set-b against a real database (SQLite and PostgreSQL): what is stored,
and one test per rule and error code (ITI TF-2 §3.42.4.1.3, ITI TF-3 Table 4.2.4.1-2)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.config import load_settings
from gateway.errors import ConfigError
from gateway.metadata import ebrim
from gateway.metadata import vocabulary as v
from gateway.metadata.codes import CodeSet
from gateway.metadata.datatypes import Code, is_uuid_urn
from gateway.metadata.model import Association, Submission
from gateway.metadata.retrieve import Status
from gateway.registry import store as store_module
from gateway.registry.database import Database
from gateway.registry.iti42 import Registry
from gateway.registry.schema import object_author, object_code, reference_id
from gateway.repository.registry_client import InProcessRegistryClient, model_register
from gateway.soap import ns
from tests.factories import PATIENT_ID, make_document_entry, make_has_member, make_submission_set
from tests.integration.registry import builders
from tests.integration.registry.support import column, count_rows, load, refused, rows_where

CODES_XML = """<Codes>
  <CodeType name="classCode" classScheme="urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a">
    <Code code="IMAGES" codingScheme="1.3.6.1.4.1.19376.1.2.6.1" display="Images"/>
  </CodeType>
</Codes>"""


# -- what is stored ------------------------------------------------------------------------------
def test_register_single_document(registry: Registry, db: Database) -> None:
    """NIST 11990: SubmissionSet with one DocumentEntry; both Approved; ids become UUIDs."""
    submission = builders.documents(1)
    result = registry.register_with_result(submission)
    assert is_uuid_urn(result.submission_set_id)
    [entry_id] = result.document_entry_ids
    entry = load(db, "DocumentEntry", entry_id)
    assert entry.availability_status == v.STATUS_APPROVED
    assert entry.unique_id == submission.document_entries[0].unique_id
    assert entry.title == "CT chest"
    ss = load(db, "SubmissionSet", result.submission_set_id)
    assert ss.availability_status == v.STATUS_APPROVED
    assert column(db, "document_entry", entry_id, "submission_set_id") == ss.entry_uuid
    assert column(db, "document_entry", entry_id, "patient_id") == PATIENT_ID
    [member] = [load(db, "Association", a) for a in result.association_ids]
    assert (member.source_object, member.target_object) == (ss.entry_uuid, entry_id)
    assert member.submission_set_status == "Original"
    assert member.availability_status == v.STATUS_APPROVED
    assert submission.document_entries[0].entry_uuid == "Document01", "caller's model changed"


def test_register_two_documents_and_side_tables(registry: Registry, db: Database) -> None:
    """NIST 11991; the side tables that stored queries match on are filled."""
    result = registry.register_with_result(builders.documents(2))
    assert len(result.document_entry_ids) == 2
    counts = count_rows(db)
    assert counts["document_entry"] == 2
    assert counts["document_unique_id"] == 2
    assert counts["association"] == 2
    with db.read() as conn:
        attributes = set(
            conn.execute(
                select(object_code.c.attribute).where(
                    object_code.c.object_id == result.document_entry_ids[0]
                )
            ).scalars()
        )
        authors = conn.execute(select(object_author.c.person)).scalars().all()
        refs = conn.execute(select(reference_id.c.value)).scalars().all()
    assert attributes == {
        "classCode",
        "typeCode",
        "formatCode",
        "practiceSettingCode",
        "healthcareFacilityTypeCode",
        "confidentialityCode",
        "eventCodeList",
    }
    assert len(authors) == 3  # two documents and the SubmissionSet
    assert len(refs) == 2


def test_objects_sent_with_uuids_keep_them(registry: Registry, db: Database) -> None:
    submission = builders.documents(1)
    ids = {
        "SubmissionSet01": "urn:uuid:6f3c2d9a-1b0e-4f43-8c55-000000000001",
        "Document01": "urn:uuid:6f3c2d9a-1b0e-4f43-8c55-000000000002",
        "HasMember-SubmissionSet01-Document01": "urn:uuid:6f3c2d9a-1b0e-4f43-8c55-000000000003",
    }
    submission.submission_set.entry_uuid = ids["SubmissionSet01"]
    submission.document_entries[0].entry_uuid = ids["Document01"]
    assoc = submission.associations[0]
    assoc.entry_uuid = ids[assoc.entry_uuid]
    assoc.source_object, assoc.target_object = ids["SubmissionSet01"], ids["Document01"]
    result = registry.register_with_result(submission)
    assert result.submission_set_id == ids["SubmissionSet01"]
    assert result.document_entry_ids == [ids["Document01"]]


def test_extra_metadata_is_stored_and_returned(registry: Registry, db: Database) -> None:
    """NIST 12379 / ITI TF-3 §4.2.3.1.5: extra slots on DE, SS and Association come back."""
    submission = builders.documents(1, extra_slots={"urn:nist:extraDESlot": ["a", "b"]})
    submission.submission_set.extra_slots = {"urn:nist:extraSSSlot": ["s"]}
    submission.associations[0].extra_slots = {"urn:nist:extraAssocSlot": ["x"]}
    result = registry.register_with_result(submission)
    assert result.warnings == []  # saved, so no XDSExtraMetadataNotSaved
    entry = load(db, "DocumentEntry", result.document_entry_ids[0])
    assert entry.extra_slots == {"urn:nist:extraDESlot": ["a", "b"]}
    ss = load(db, "SubmissionSet", result.submission_set_id)
    assert ss.extra_slots == {"urn:nist:extraSSSlot": ["s"]}
    assoc = load(db, "Association", result.association_ids[0])
    assert assoc.extra_slots == {"urn:nist:extraAssocSlot": ["x"]}


# -- patient identity ----------------------------------------------------------------------------
def test_unknown_patient_is_refused(registry: Registry) -> None:
    """NIST 11996: XDSUnknownPatientId, nothing stored."""
    unknown = "NOBODY^^^&1.3.6.1.4.1.21367.13.20.1000&ISO"
    codes = refused(registry, builders.fresh(builders.documents(1), patient_id=unknown))
    assert codes == ["XDSUnknownPatientId"]


def test_subsumed_patient_is_refused(registry: Registry) -> None:
    """ITI TF-2 §3.8.4.2.3: after a merge the subsumed id takes no new submissions."""
    registry.patients.merge(builders.OTHER_PATIENT_ID, PATIENT_ID)
    codes = refused(registry, builders.documents(1))
    assert codes == ["XDSUnknownPatientId"]
    registry.register_document_set(
        builders.fresh(builders.documents(1), patient_id=builders.OTHER_PATIENT_ID)
    )


def test_submission_set_and_document_patient_mismatch(registry: Registry) -> None:
    """NIST 11997: XDSPatientIdDoesNotMatch, nothing stored."""
    submission = builders.documents(1)
    submission.document_entries[0].patient_id = builders.OTHER_PATIENT_ID
    assert "XDSPatientIdDoesNotMatch" in refused(registry, submission)


# -- metadata validation -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "attribute",
    [
        "class_code",
        "confidentiality_code",
        "creation_time",
        "format_code",
        "healthcare_facility_type_code",
        "language_code",
        "practice_setting_code",
        "source_patient_id",
        "type_code",
        "hash",
        "size",
        "repository_unique_id",
    ],
)
def test_missing_required_attribute_is_refused(registry: Registry, attribute: str) -> None:
    """NIST 11998a (and ITI-42's hash/size/repositoryUniqueId): XDSRegistryMetadataError."""
    submission = builders.documents(1)
    empty = [] if attribute == "confidentiality_code" else None
    setattr(submission.document_entries[0], attribute, empty)
    assert refused(registry, submission) == ["XDSRegistryMetadataError"]


def test_all_or_nothing_when_one_document_is_bad(registry: Registry) -> None:
    """NIST 12084: two documents, the second without repositoryUniqueId: nothing stored."""
    submission = builders.documents(2)
    submission.document_entries[1].repository_unique_id = None
    assert "XDSRegistryMetadataError" in refused(registry, submission)


def test_all_or_nothing_when_a_late_step_fails(
    registry: Registry, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure after every row was inserted (in the lifecycle step) rolls all of them back."""

    def explode(*_args: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(store_module, "_apply_lifecycle", explode)
    before = count_rows(db)
    with pytest.raises(RuntimeError):
        registry.register_document_set(builders.documents(2, folder=True))
    assert count_rows(db) == before


def test_has_member_to_document_needs_submission_set_status(registry: Registry) -> None:
    submission = builders.documents(1)
    submission.associations[0].submission_set_status = None
    assert refused(registry, submission) == ["XDSRegistryMetadataError"]


def test_logical_id_other_than_entry_uuid_is_refused(registry: Registry) -> None:
    submission = builders.documents(1)
    submission.document_entries[0].logical_id = "urn:uuid:00000000-0000-4000-8000-000000000001"
    assert refused(registry, submission) == ["XDSRegistryMetadataError"]


def test_strict_code_validation_with_a_code_set(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "codes.xml"
    path.write_text(CODES_XML)
    strict = Registry(db, code_set=CodeSet.load(path))
    strict.patients.register(PATIENT_ID, None, other_ids=[])  # type: ignore[arg-type]
    strict.register_document_set(builders.documents(1))
    other = builders.documents(1, class_code=Code("NOT-IN-SET", "1.2.3", "x"))
    assert refused(strict, other) == ["XDSRegistryMetadataError"]


# -- uniqueness ----------------------------------------------------------------------------------
def test_submission_set_unique_id_reuse(registry: Registry) -> None:
    first = builders.documents(1)
    registry.register_document_set(first)
    second = builders.documents(1)
    second.submission_set.unique_id = first.submission_set.unique_id
    assert refused(registry, second) == ["XDSDuplicateUniqueIdInRegistry"]


def test_folder_unique_id_reuse(registry: Registry) -> None:
    first = builders.empty_folder()
    registry.register_document_set(first)
    second = builders.empty_folder()
    second.folders[0].unique_id = first.folders[0].unique_id
    assert refused(registry, second) == ["XDSDuplicateUniqueIdInRegistry"]


def test_entry_uuid_reuse_is_refused_and_original_kept(registry: Registry, db: Database) -> None:
    """NIST 15806: a second submission with the same DocumentEntry UUID fails; the first stays."""
    first = builders.documents(1)
    first.document_entries[0].entry_uuid = "urn:uuid:1e0e1e0e-2b2b-4c4c-8d8d-9e9e9e9e9e9e"
    first.associations[0].target_object = first.document_entries[0].entry_uuid
    registry.register_document_set(first)
    second = builders.fresh(copy.deepcopy(first))
    second.document_entries[0].title = "Other"
    assert refused(registry, second) == ["XDSRegistryMetadataError"]
    assert load(db, "DocumentEntry", first.document_entries[0].entry_uuid).title == "CT chest"


def test_identical_document_resubmission_is_accepted(registry: Registry, db: Database) -> None:
    """NIST 12004: the same DocumentEntry uniqueId with the same hash and size: two entries."""
    first = builders.documents(1)
    registry.register_document_set(first)
    again = builders.documents(1)
    again.document_entries[0].unique_id = first.document_entries[0].unique_id
    registry.register_document_set(again)
    uid = first.document_entries[0].unique_id
    assert len(rows_where(db, "document_entry", unique_id=uid)) == 2
    assert len(rows_where(db, "document_unique_id", unique_id=uid)) == 1


@pytest.mark.parametrize(
    ("change", "codes"),
    [
        ({"hash": "0" * 40}, ["XDSNonIdenticalHash"]),
        ({"size": 99}, ["XDSNonIdenticalSize"]),
        ({"hash": "1" * 40, "size": 7}, ["XDSNonIdenticalHash", "XDSNonIdenticalSize"]),
    ],
)
def test_document_unique_id_reuse_with_other_content(
    registry: Registry, change: dict[str, object], codes: list[str]
) -> None:
    """NIST 12004 (resubmit_doc_diff_hash): XDSNonIdenticalHash / XDSNonIdenticalSize."""
    first = builders.documents(1)
    registry.register_document_set(first)
    again = builders.documents(1, **change)
    again.document_entries[0].unique_id = first.document_entries[0].unique_id
    assert refused(registry, again) == codes


def test_hash_comparison_ignores_case(registry: Registry) -> None:
    first = builders.documents(1, hash="DA39A3EE5E6B4B0D3255BFEF95601890AFD80709")
    registry.register_document_set(first)
    again = builders.documents(1)
    again.document_entries[0].unique_id = first.document_entries[0].unique_id
    registry.register_document_set(again)


# -- references ----------------------------------------------------------------------------------
def test_reference_to_unknown_object(registry: Registry) -> None:
    """ebRS 3.0 §2.4: UnresolvedReferenceException."""
    submission = builders.related("urn:uuid:0fffffff-ffff-4fff-bfff-ffffffffffff", v.APND)
    assert refused(registry, submission) == ["UnresolvedReferenceException"]


def test_symbolic_reference_to_nothing(registry: Registry) -> None:
    submission = builders.related("NotThere", v.APND)
    submission.object_refs.clear()
    assert "UnresolvedReferenceException" in refused(registry, submission)


def test_existing_document_as_reference_member(registry: Registry, db: Database) -> None:
    """ITI TF-3 §4.2.2.2: a SubmissionSet may list a registered document as a Reference."""
    first = registry.register_with_result(builders.documents(1))
    result = registry.register_with_result(builders.reference(first.document_entry_ids[0]))
    [assoc_id] = result.association_ids
    assert column(db, "association", assoc_id, "submission_set_status") == "Reference"


def test_reference_member_of_another_patient(registry: Registry) -> None:
    first = registry.register_with_result(builders.documents(1))
    other = builders.fresh(
        builders.reference(first.document_entry_ids[0]), patient_id=builders.OTHER_PATIENT_ID
    )
    assert refused(registry, other) == ["XDSPatientIdDoesNotMatch"]


def test_reference_member_must_say_reference(registry: Registry) -> None:
    first = registry.register_with_result(builders.documents(1))
    submission = builders.reference(first.document_entry_ids[0])
    submission.associations[0].submission_set_status = v.SUBMISSION_SET_STATUS_ORIGINAL
    assert refused(registry, submission) == ["XDSRegistryMetadataError"]


def test_has_member_from_a_registered_document(registry: Registry) -> None:
    first = registry.register_with_result(builders.documents(1))
    submission = builders.documents(1)
    link = make_has_member(
        first.document_entry_ids[0], "Document01", entry_uuid="Bad", submission_set_status=None
    )
    submission.associations += [
        link,
        make_has_member("SubmissionSet01", "Bad", submission_set_status=None),
    ]
    assert refused(registry, submission) == ["XDSRegistryMetadataError"]


def test_has_member_from_another_submission_set(registry: Registry) -> None:
    first = registry.register_with_result(builders.documents(1))
    submission = builders.documents(1)
    submission.associations.append(
        make_has_member(first.submission_set_id, "Document01", entry_uuid="Bad")
    )
    assert "XDSRegistryMetadataError" in refused(registry, submission)


def test_folder_cannot_hold_a_folder(registry: Registry) -> None:
    first = registry.register_with_result(builders.empty_folder())
    submission = builders.empty_folder()
    submission.associations += [
        make_has_member(
            first.folder_ids[0], "Folder01", entry_uuid="F2F", submission_set_status=None
        ),
        make_has_member("SubmissionSet01", "F2F", submission_set_status=None),
    ]
    assert "XDSRegistryMetadataError" in refused(registry, submission)


# -- construction and the client interface -------------------------------------------------------
def test_registry_from_settings_upgrades_and_loads_codes(tmp_path: Path) -> None:
    (tmp_path / "codes.xml").write_text(CODES_XML)
    settings = load_settings(
        environ={
            "XDSI_GATEWAY_DATA_DIR": str(tmp_path),
            "XDSI_REGISTRY_CODES_FILE": "codes.xml",
        }
    )
    registry = Registry.from_settings(settings)
    try:
        assert registry.code_set is not None
        assert (tmp_path / "registry.sqlite").exists()
        registry.patients.register(PATIENT_ID, None, other_ids=[])  # type: ignore[arg-type]
        registry.register_document_set(builders.documents(1))
    finally:
        registry.close()


def test_registry_from_settings_with_unreadable_codes(tmp_path: Path) -> None:
    settings = load_settings(
        environ={
            "XDSI_GATEWAY_DATA_DIR": str(tmp_path),
            "XDSI_REGISTRY_CODES_FILE": "missing.xml",
        }
    )
    with pytest.raises(ConfigError, match=r"registry\.codes_file"):
        Registry.from_settings(settings, upgrade=False)


def test_repository_in_process_client(registry: Registry) -> None:
    """The repository's in-process RegistryClient wraps register_document_set: element in,
    RegistryResponse out, the caller's submission untouched, errors as a Failure response."""
    client = InProcessRegistryClient(model_register(registry.register_document_set))
    submission = builders.documents(1)
    request = ebrim.build_submit_objects_request(submission)
    response = client.register(request)
    assert response.get("status") == Status.SUCCESS
    assert submission.submission_set.entry_uuid == "SubmissionSet01"
    again = client.register(request)  # the same uniqueIds again
    assert again.get("status") == Status.FAILURE
    codes = [e.get("errorCode") for e in again.iter(ns.qname(ns.RS, "RegistryError"))]
    assert codes == ["XDSDuplicateUniqueIdInRegistry"]


def test_hand_made_submission_with_two_relations(registry: Registry, db: Database) -> None:
    """A document that is both an addendum and a signature of registered documents."""
    a = registry.register_with_result(builders.documents(1))
    b = registry.register_with_result(builders.documents(1))
    submission = Submission(
        submission_set=make_submission_set(unique_id=builders.new_uid()),
        document_entries=[make_document_entry(unique_id=builders.new_uid())],
        associations=[
            make_has_member("SubmissionSet01", "Document01"),
            Association(
                entry_uuid="A1",
                association_type=v.APND,
                source_object="Document01",
                target_object=a.document_entry_ids[0],
            ),
            Association(
                entry_uuid="S1",
                association_type=v.SIGNS,
                source_object="Document01",
                target_object=b.document_entry_ids[0],
            ),
        ],
    )
    result = registry.register_with_result(submission)
    assert result.deprecated == []
    assert column(db, "document_entry", a.document_entry_ids[0], "status") == v.STATUS_APPROVED
