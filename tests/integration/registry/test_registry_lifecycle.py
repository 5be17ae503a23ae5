"""Document lifecycle and Folders in ITI-42: RPLC, XFRM, APND, XFRM_RPLC, CP-ITI-117, Folder
creation, membership and lastUpdateTime (ITI TF-2 §3.42.4.1.3, ITI TF-3 §4.2.2)."""

from __future__ import annotations

import pytest

from gateway.hl7.adt import Demographics
from gateway.metadata import vocabulary as v
from gateway.metadata.model import Association
from gateway.registry.database import Database
from gateway.registry.iti42 import Registry
from tests.factories import PATIENT_ID, make_has_member
from tests.integration.registry import builders
from tests.integration.registry.support import Clock, column, load, refused, rows_where


def _status(db: Database, entry_id: str) -> str:
    return column(db, "document_entry", entry_id, "status")


def _one_document(registry: Registry, **kwargs: object) -> str:
    return registry.register_with_result(builders.documents(1, **kwargs)).document_entry_ids[0]


def _folder_members(db: Database, folder_id: str) -> set[str]:
    return {
        row["target_id"]
        for row in rows_where(db, "association", source_id=folder_id)
        if row["association_type"] == v.HAS_MEMBER
    }


# -- replacement ---------------------------------------------------------------------------------
@pytest.mark.parametrize("association_type", [v.RPLC, v.XFRM_RPLC])
def test_replacement_deprecates_the_original(
    registry: Registry, db: Database, association_type: str
) -> None:
    """NIST 11992 (RPLC), 11995 (XFRM_RPLC)."""
    original = _one_document(registry)
    result = registry.register_with_result(builders.related(original, association_type))
    replacement = result.document_entry_ids[0]
    assert _status(db, original) == v.STATUS_DEPRECATED
    assert _status(db, replacement) == v.STATUS_APPROVED
    assert result.deprecated == [original]
    relation = [
        load(db, "Association", a)
        for a in result.association_ids
        if load(db, "Association", a).association_type == association_type
    ]
    assert [(r.source_object, r.target_object) for r in relation] == [(replacement, original)]
    # the original's body is untouched: the status column wins when it is read
    assert load(db, "DocumentEntry", original).availability_status == v.STATUS_DEPRECATED


@pytest.mark.parametrize("association_type", [v.XFRM, v.APND, v.SIGNS])
def test_transform_addendum_signature_keep_the_original(
    registry: Registry, db: Database, association_type: str
) -> None:
    original = _one_document(registry)
    result = registry.register_with_result(builders.related(original, association_type))
    assert result.deprecated == []
    assert _status(db, original) == v.STATUS_APPROVED
    assert _status(db, result.document_entry_ids[0]) == v.STATUS_APPROVED


@pytest.mark.parametrize("association_type", [v.RPLC, v.XFRM_RPLC, v.XFRM, v.APND])
def test_lifecycle_of_a_deprecated_document_is_refused(
    registry: Registry, db: Database, association_type: str
) -> None:
    """NIST 11993 (apnd_rplc), 11994 (xfrm_rplc): the original must be Approved."""
    original = _one_document(registry)
    registry.register_document_set(builders.replace(original))
    codes = refused(registry, builders.related(original, association_type))
    assert codes == ["XDSRegistryDeprecatedDocumentError"]


def test_cp117_replacement_deprecates_addenda_and_transforms(
    registry: Registry, db: Database
) -> None:
    """NIST 12022 / CP-ITI-117: replacing doc01 deprecates its APND and XFRM documents, not
    doc02 nor documents that merely sign doc01."""
    doc01 = _one_document(registry)
    doc02 = _one_document(registry)
    addendum = registry.register_with_result(builders.related(doc01, v.APND))
    transform = registry.register_with_result(builders.related(doc01, v.XFRM))
    signature = registry.register_with_result(builders.related(doc01, v.SIGNS))
    other_addendum = registry.register_with_result(builders.related(doc02, v.APND))
    result = registry.register_with_result(builders.replace(doc01))
    apnd_id = addendum.document_entry_ids[0]
    xfrm_id = transform.document_entry_ids[0]
    assert set(result.deprecated) == {doc01, apnd_id, xfrm_id}
    for entry in (doc01, apnd_id, xfrm_id):
        assert _status(db, entry) == v.STATUS_DEPRECATED
    for entry in (doc02, signature.document_entry_ids[0], other_addendum.document_entry_ids[0]):
        assert _status(db, entry) == v.STATUS_APPROVED
    assert _status(db, result.document_entry_ids[0]) == v.STATUS_APPROVED


def test_replacement_of_another_patients_document(registry: Registry, db: Database) -> None:
    """NIST 11998: the replacement's patientId must be the original's; nothing changes."""
    original = _one_document(registry)
    replacement = builders.fresh(builders.replace(original), patient_id=builders.OTHER_PATIENT_ID)
    assert refused(registry, replacement) == ["XDSPatientIdDoesNotMatch"]
    assert _status(db, original) == v.STATUS_APPROVED


def test_replacement_across_a_patient_merge(registry: Registry, db: Database) -> None:
    """A document registered under an id later merged away can be replaced under the
    surviving id (ITI TF-2 §3.8.4.2.3)."""
    original = _one_document(registry)
    registry.patients.merge(builders.OTHER_PATIENT_ID, PATIENT_ID)
    replacement = builders.fresh(builders.replace(original), patient_id=builders.OTHER_PATIENT_ID)
    registry.register_document_set(replacement)
    assert _status(db, original) == v.STATUS_DEPRECATED


def test_lifecycle_target_must_be_a_registered_document(registry: Registry) -> None:
    folder_id = registry.register_with_result(builders.empty_folder()).folder_ids[0]
    assert refused(registry, builders.replace(folder_id)) == ["XDSRegistryMetadataError"]


def test_lifecycle_target_inside_the_submission_is_refused(registry: Registry) -> None:
    submission = builders.documents(2)
    submission.associations.append(
        Association(
            entry_uuid="R",
            association_type=v.RPLC,
            source_object="Document02",
            target_object="Document01",
        )
    )
    assert refused(registry, submission) == ["XDSRegistryMetadataError"]


def test_one_original_replaced_twice_in_one_submission(registry: Registry) -> None:
    original = _one_document(registry)
    submission = builders.replace(original)
    second = builders.documents(1).document_entries[0]
    second.entry_uuid = "Document02"
    submission.document_entries.append(second)
    submission.associations += [
        make_has_member("SubmissionSet01", "Document02"),
        Association(
            entry_uuid="R2",
            association_type=v.RPLC,
            source_object="Document02",
            target_object=original,
        ),
    ]
    assert refused(registry, submission) == ["XDSRegistryMetadataError"]


# -- folders -------------------------------------------------------------------------------------
def test_create_empty_folder(registry: Registry, db: Database, clock: Clock) -> None:
    """NIST 11999; 12323 no_time/has_time: lastUpdateTime is the registration time, whatever
    the source sent."""
    submission = builders.empty_folder(last_update_time="19990101")
    result = registry.register_with_result(submission)
    [folder_id] = result.folder_ids
    folder = load(db, "Folder", folder_id)
    assert folder.availability_status == v.STATUS_APPROVED
    assert folder.last_update_time == "20240601120000"
    assert column(db, "folder", folder_id, "last_update_time") == "20240601120000"


def test_create_folder_with_initial_document(registry: Registry, db: Database) -> None:
    """NIST 12000: Folder, document, Folder HasMember document, SS HasMember both + the link."""
    result = registry.register_with_result(builders.documents(1, folder=True))
    [folder_id] = result.folder_ids
    assert _folder_members(db, folder_id) == set(result.document_entry_ids)
    assert len(result.association_ids) == 4


def test_add_new_document_to_existing_folder(
    registry: Registry, db: Database, clock: Clock
) -> None:
    """NIST 12001, 12323 add_to_folder: the Folder gets the document and a new lastUpdateTime."""
    folder_id = registry.register_with_result(builders.empty_folder()).folder_ids[0]
    clock.advance(5)
    result = registry.register_with_result(builders.add_to_folder(folder_id))
    assert _folder_members(db, folder_id) == set(result.document_entry_ids)
    assert column(db, "folder", folder_id, "last_update_time") == "20240601120005"
    assert result.updated_folders == [folder_id]


def test_add_existing_document_to_existing_folder(
    registry: Registry, db: Database, clock: Clock
) -> None:
    """NIST 12326."""
    folder_id = registry.register_with_result(builders.empty_folder()).folder_ids[0]
    document = _one_document(registry)
    clock.advance(60)
    registry.register_document_set(builders.add_to_folder(folder_id, document))
    assert _folder_members(db, folder_id) == {document}
    assert column(db, "folder", folder_id, "last_update_time") == "20240601120100"


def test_add_document_of_another_patient_to_folder(registry: Registry, db: Database) -> None:
    """NIST 12002: XDSPatientIdDoesNotMatch; the Folder stays empty."""
    folder_id = registry.register_with_result(builders.empty_folder()).folder_ids[0]
    submission = builders.fresh(
        builders.add_to_folder(folder_id), patient_id=builders.OTHER_PATIENT_ID
    )
    assert refused(registry, submission) == ["XDSPatientIdDoesNotMatch"]
    assert _folder_members(db, folder_id) == set()


def test_add_existing_document_of_another_patient_to_folder(registry: Registry) -> None:
    folder_id = registry.register_with_result(builders.empty_folder()).folder_ids[0]
    other = builders.fresh(builders.documents(1), patient_id=builders.OTHER_PATIENT_ID)
    document = registry.register_with_result(other).document_entry_ids[0]
    assert "XDSPatientIdDoesNotMatch" in refused(
        registry, builders.add_to_folder(folder_id, document)
    )


def test_replacement_joins_the_originals_folders(
    registry: Registry, db: Database, clock: Clock
) -> None:
    """NIST 12327 and 12323 rplc: a HasMember per Folder of the original, lastUpdateTime set."""
    first = registry.register_with_result(builders.documents(1, folder=True))
    [folder_a] = first.folder_ids
    original = first.document_entry_ids[0]
    folder_b = registry.register_with_result(builders.empty_folder()).folder_ids[0]
    registry.register_document_set(builders.add_to_folder(folder_b, original))
    untouched = registry.register_with_result(builders.empty_folder()).folder_ids[0]
    clock.advance(10)
    result = registry.register_with_result(builders.replace(original))
    replacement = result.document_entry_ids[0]
    for folder_id in (folder_a, folder_b):
        assert _folder_members(db, folder_id) == {original, replacement}
        assert column(db, "folder", folder_id, "last_update_time") == "20240601120010"
    assert _folder_members(db, untouched) == set()
    assert column(db, "folder", untouched, "last_update_time") == "20240601120000"
    created = result.created_associations
    assert {(a.source_object, a.target_object) for a in created} == {
        (folder_a, replacement),
        (folder_b, replacement),
    }
    for assoc in created:
        stored = load(db, "Association", assoc.entry_uuid)
        assert stored.availability_status == v.STATUS_APPROVED
        assert stored.association_type == v.HAS_MEMBER


def test_replacement_already_put_in_the_folder_is_not_linked_twice(
    registry: Registry, db: Database
) -> None:
    first = registry.register_with_result(builders.documents(1, folder=True))
    [folder_id] = first.folder_ids
    original = first.document_entry_ids[0]
    submission = builders.replace(original)
    link = make_has_member(folder_id, "Document01", entry_uuid="Link", submission_set_status=None)
    submission.associations += [
        link,
        make_has_member("SubmissionSet01", "Link", submission_set_status=None),
    ]
    result = registry.register_with_result(submission)
    assert result.created_associations == []
    members = [r for r in rows_where(db, "association", source_id=folder_id)]
    assert len(members) == 2


def test_merged_patients_folder_takes_surviving_patients_document(
    registry: Registry, db: Database
) -> None:
    folder_id = registry.register_with_result(builders.empty_folder()).folder_ids[0]
    registry.patients.merge(builders.OTHER_PATIENT_ID, PATIENT_ID)
    registry.patients.register(builders.OTHER_PATIENT_ID, Demographics(), other_ids=[])
    submission = builders.fresh(
        builders.add_to_folder(folder_id), patient_id=builders.OTHER_PATIENT_ID
    )
    result = registry.register_with_result(submission)
    assert _folder_members(db, folder_id) == set(result.document_entry_ids)
