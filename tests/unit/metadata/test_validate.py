"""Validation of submissions: every error code, every required attribute, every format rule."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from gateway.errors import (
    UnresolvedReferenceException,
    XDSError,
    XDSErrorList,
    XDSPatientIdDoesNotMatch,
    XDSRegistryDuplicateUniqueIdInMessage,
    XDSRegistryMetadataError,
    XDSRepositoryDuplicateUniqueIdInMessage,
    XDSRepositoryMetadataError,
)
from gateway.metadata import vocabulary as v
from gateway.metadata.codes import CodeSet
from gateway.metadata.datatypes import Code, is_uuid_urn
from gateway.metadata.ebrim import build_submit_objects_request, parse_submit_objects_request
from gateway.metadata.model import Association, ObjectRef, Submission
from gateway.metadata.validate import (
    ITI_41,
    ITI_42,
    TRANSACTION_RULES,
    assign_uuids,
    check_submission,
    validate_submission,
)
from gateway.soap.safexml import parse_bytes
from tests.factories import (
    make_author,
    make_document_entry,
    make_folder,
    make_has_member,
    make_submission,
)

CONFORMANCE = Path(__file__).resolve().parents[4] / "shared" / "conformance"
NIST_CODES = CONFORMANCE / "nist-testkit" / "toolkitx" / "environment" / "default" / "codes.xml"
MESSAGES = CONFORMANCE / "samples" / "nist-messagevalidator"
OLD_DOC = "urn:uuid:8c7e2d1a-3f4b-4c5d-9e6f-7a8b9c0d1e2f"


def _errors(submission: Submission, **kwargs: Any) -> list[XDSError]:
    errors, _ = check_submission(submission, **kwargs)
    return errors


def _only(submission: Submission, code: type[XDSError], text: str, **kwargs: Any) -> XDSError:
    """Assert the submission has exactly one problem, of this class, mentioning ``text``."""
    errors = _errors(submission, **kwargs)
    assert len(errors) == 1, [error.context for error in errors]
    assert isinstance(errors[0], code) and errors[0].code == code.code
    assert text in errors[0].context, errors[0].context
    return errors[0]


# --- valid submissions ---------------------------------------------------------------------------


@pytest.mark.parametrize("rules", [ITI_41, ITI_42], ids=lambda rules: rules.transaction)
@pytest.mark.parametrize("kwargs", [{}, {"entries": 3, "folder": True}])
def test_factories_are_valid(rules: Any, kwargs: dict[str, Any]) -> None:
    assert validate_submission(make_submission(**kwargs), rules=rules) == frozenset()


def test_transaction_table() -> None:
    assert TRANSACTION_RULES["ITI-41"] is ITI_41 and TRANSACTION_RULES["ITI-42"] is ITI_42
    assert ITI_42.document_entry - ITI_41.document_entry == {"hash", "size", "repository_unique_id"}


def test_iti41_does_not_need_what_the_repository_computes() -> None:
    entry = make_document_entry(hash=None, size=None, repository_unique_id=None)
    submission = make_submission(document_entries=[entry])
    assert _errors(submission, rules=ITI_41) == []
    assert len(_errors(submission, rules=ITI_42)) == 3


# --- required attributes -------------------------------------------------------------------------


def _cleared(attr: str, value: Any) -> Any:
    return [] if isinstance(value, list) else None


@pytest.mark.parametrize("rules", [ITI_41, ITI_42], ids=lambda rules: rules.transaction)
@pytest.mark.parametrize("attr", sorted(ITI_42.document_entry - {"entry_uuid"}))
def test_document_entry_required(rules: Any, attr: str) -> None:
    entry = make_document_entry()
    setattr(entry, attr, _cleared(attr, getattr(entry, attr)))
    submission = make_submission(document_entries=[entry])
    if attr not in rules.document_entry:
        assert _errors(submission, rules=rules) == []
        return
    error = _only(submission, XDSRegistryMetadataError, "is missing", rules=rules)
    assert error.context.startswith("DocumentEntry Document01:")


@pytest.mark.parametrize("attr", sorted(ITI_42.submission_set - {"entry_uuid"}))
def test_submission_set_required(attr: str) -> None:
    submission = make_submission()
    assert submission.submission_set is not None
    setattr(submission.submission_set, attr, None)
    _only(submission, XDSRegistryMetadataError, "is missing")


@pytest.mark.parametrize("attr", sorted(ITI_42.folder - {"entry_uuid"}))
def test_folder_required(attr: str) -> None:
    submission = make_submission(folder=True)
    folder = submission.folders[0]
    setattr(folder, attr, _cleared(attr, getattr(folder, attr)))
    _only(submission, XDSRegistryMetadataError, "Folder Folder01")


def test_missing_attribute_names_the_xds_attribute() -> None:
    entry = make_document_entry(healthcare_facility_type_code=None)
    error = _only(make_submission(document_entries=[entry]), XDSRegistryMetadataError, "is missing")
    assert "healthcareFacilityTypeCode is missing" in error.context
    assert error.location == "DocumentEntry Document01"


def test_missing_entry_uuid_and_submission_set() -> None:
    submission = make_submission()
    submission.document_entries[0].entry_uuid = ""
    codes = {error.context.split(":")[0] for error in _errors(submission)}
    assert "DocumentEntry " in codes
    no_set = make_submission(submission_set=None, associations=[])
    assert any("there is no SubmissionSet" in error.context for error in _errors(no_set))


def test_association_needs_type_source_and_target() -> None:
    association = make_has_member("SubmissionSet01", "Document01")
    association.association_type = ""
    submission = make_submission(associations=[association])
    assert any("associationType is missing" in e.context for e in _errors(submission))


# --- formats -------------------------------------------------------------------------------------

ENTRY_FORMATS: list[tuple[str, Any, str]] = [
    ("patient_id", "PAT-42^^^&1.2.3&L", "patientId"),
    ("patient_id", "PAT-42", "patientId"),
    ("source_patient_id", "MRN-7", "sourcePatientId"),
    ("creation_time", "2024-01-02", "creationTime"),
    ("service_start_time", "20241301", "serviceStartTime"),
    ("service_stop_time", "202401021", "serviceStopTime"),
    ("hash", "xyz", "hash"),
    ("language_code", "english please", "languageCode"),
    ("legal_authenticator", "^^^^Jr", "legalAuthenticator"),
    ("mime_type", "pdf", "mimeType"),
    ("repository_unique_id", "repo-1", "repositoryUniqueId"),
    ("home_community_id", "1.2.3", "homeCommunityId"),
    ("logical_id", "Document01", "logicalID"),
    ("availability_status", "Approved", "availabilityStatus"),
    ("document_availability", "Online", "documentAvailability"),
    ("unique_id", "Document01", "uniqueId"),
    ("unique_id", "1.2.3^" + "x" * 17, "uniqueId"),
    ("reference_id_list", ["ACC-1^^^&1.2&ISO"], "referenceIdList"),
    ("source_patient_info", ["Doe^Jane"], "sourcePatientInfo"),
    ("size", -1, "size"),
    ("object_type", v.DOCUMENT_ENTRY_ON_DEMAND, "objectType"),
    ("limited_metadata", True, "limitedMetadata"),
    ("class_code", Code("", "1.2.3", "x"), "no code"),
    ("class_code", Code("IMAGES", "", "Images"), "no codingScheme"),
    ("type_code", Code("18748-4", "2.16.840.1.113883.6.1"), "no display name"),
    ("event_code_list", [Code("CT", "", "CT")], "eventCodeList"),
    ("author", [make_author(person=None, institution=[], telecom=[])], "authorPerson, author"),
    ("author", [make_author(person="^^^^^Dr")], "authorPerson"),
    ("author", [make_author(institution=["^^^^^&1.2&ISO"])], "authorInstitution"),
    ("author", [make_author(telecom=["^^Internet^nobody"])], "authorTelecommunication"),
    ("author", [make_author(role=["r" * 257])], "longer than 256"),
    ("extra_slots", {"localSlot": ["x"]}, "must be named by a URN"),
    ("extra_slots", {"creationTime": ["2024"]}, "not allowed on this object"),
    ("extra_slots", {"urn:x:long": ["x" * 257]}, "longer than 256"),
    ("entry_uuid", "urn:uuid:not-a-uuid", "entryUUID"),
]


@pytest.mark.parametrize(
    ("attr", "value", "text"), ENTRY_FORMATS, ids=[f"{a}-{t}" for a, _, t in ENTRY_FORMATS]
)
def test_document_entry_formats(attr: str, value: Any, text: str) -> None:
    submission = make_submission()
    entry = submission.document_entries[0]
    setattr(entry, attr, value)
    if attr == "entry_uuid":  # keep the HasMember pointing at it
        submission.associations[0].target_object = value
    if attr == "patient_id":  # the same (bad) patient everywhere: only the format is wrong
        assert submission.submission_set is not None
        submission.submission_set.patient_id = value
        errors = _errors(submission)
        assert [type(error) for error in errors] == [XDSRegistryMetadataError] * 2
        assert [error.context.split(":")[:2] for error in errors] == [
            ["SubmissionSet SubmissionSet01", " patientId"],
            ["DocumentEntry Document01", " patientId"],
        ]
        return
    _only(submission, XDSRegistryMetadataError, text)


@pytest.mark.parametrize(
    ("attr", "value", "text"),
    [
        ("submission_time", "20240102T0304", "submissionTime"),
        ("source_id", "source-1", "sourceId"),
        ("unique_id", "1.2.3^4", "uniqueId"),
        ("intended_recipient", ["^^^^^^^^^"], "intendedRecipient"),
        ("intended_recipient", ["Hospital^^^^^^^^^local|x"], "XON.6"),
        ("intended_recipient", ["|^^^^^Dr"], "intendedRecipient"),
        ("intended_recipient", ["||^^Internet^x"], "email"),
        ("limited_metadata", True, "limitedMetadata"),
        ("content_type_code", Code("x", "y"), "no display name"),
    ],
)
def test_submission_set_formats(attr: str, value: Any, text: str) -> None:
    submission = make_submission()
    setattr(submission.submission_set, attr, value)
    _only(submission, XDSRegistryMetadataError, text)


@pytest.mark.parametrize(
    ("attr", "value", "text"),
    [
        ("last_update_time", "yesterday", "lastUpdateTime"),
        ("unique_id", "folder-1", "uniqueId"),
        ("code_list", [Code("Referrals", "1.3.6.1.4.1.21367.2017.3")], "no display name"),
        ("logical_id", "Folder01", "logicalID"),
    ],
)
def test_folder_formats(attr: str, value: Any, text: str) -> None:
    submission = make_submission(folder=True)
    setattr(submission.folders[0], attr, value)
    _only(submission, XDSRegistryMetadataError, text)


def test_valid_optional_values_pass() -> None:
    entry = make_document_entry(
        entry_uuid="urn:uuid:5a3c0dff-b5a6-4d4b-9a8c-0a4c1b1d6c01",
        logical_id="urn:uuid:5a3c0dff-b5a6-4d4b-9a8c-0a4c1b1d6c01",
        home_community_id="urn:oid:1.2.3",
        availability_status=v.STATUS_APPROVED,
        document_availability=v.DOCUMENT_AVAILABILITY_OFFLINE,
        unique_id="1.2.3^abc",
        extra_slots={"urn:nist:extraDESlot": ["importantvalue"]},
    )
    submission = make_submission(
        document_entries=[entry],
        associations=[make_has_member("SubmissionSet01", entry.entry_uuid)],
    )
    assert _errors(submission) == []


def test_repository_uses_repository_codes() -> None:
    entry = make_document_entry(mime_type=None)
    submission = make_submission(document_entries=[entry, make_document_entry(entry_uuid="D2")])
    submission.associations.append(make_has_member("SubmissionSet01", "D2"))
    errors = _errors(submission, repository=True, rules=ITI_41)
    assert {type(error) for error in errors} == {
        XDSRepositoryMetadataError,
        XDSRepositoryDuplicateUniqueIdInMessage,
    }


# --- XDSPatientIdDoesNotMatch --------------------------------------------------------------------


def test_document_entry_patient_must_match_submission_set() -> None:
    other = "OTHER^^^&1.3.6.1.4.1.21367.13.20.1000&ISO"
    submission = make_submission(entries=2)
    submission.document_entries[1].patient_id = other
    error = _only(submission, XDSPatientIdDoesNotMatch, other)
    assert error.location == "Document02"


def test_folder_patient_must_match() -> None:
    submission = make_submission(folder=True)
    submission.folders[0].patient_id = "OTHER^^^&1.2.3&ISO"
    _only(submission, XDSPatientIdDoesNotMatch, "Folder Folder01")


def test_patient_ids_compared_without_submission_set_patient() -> None:
    submission = make_submission(entries=2)
    assert submission.submission_set is not None
    submission.submission_set.patient_id = None
    submission.document_entries[1].patient_id = "OTHER^^^&1.2.3&ISO"
    errors = _errors(submission)
    assert [type(e) for e in errors].count(XDSPatientIdDoesNotMatch) == 1
    assert [type(e) for e in errors].count(XDSRegistryMetadataError) == 1  # SS patientId missing


# --- duplicate uniqueIds -------------------------------------------------------------------------


def test_unique_id_twice_in_the_message() -> None:
    submission = make_submission(entries=2)
    submission.document_entries[1].unique_id = submission.document_entries[0].unique_id
    error = _only(submission, XDSRegistryDuplicateUniqueIdInMessage, "Document01 and Document02")
    assert error.location == "Document02"


def test_unique_id_shared_by_submission_set_and_folder() -> None:
    submission = make_submission(folder=True)
    assert submission.submission_set is not None
    submission.folders[0].unique_id = submission.submission_set.unique_id
    _only(submission, XDSRegistryDuplicateUniqueIdInMessage, "SubmissionSet01 and Folder01")


def test_repository_duplicate_code() -> None:
    submission = make_submission(entries=2)
    submission.document_entries[1].unique_id = submission.document_entries[0].unique_id
    _only(submission, XDSRepositoryDuplicateUniqueIdInMessage, "uniqueId", repository=True)


# --- references and associations -----------------------------------------------------------------


def test_unresolved_symbolic_reference() -> None:
    submission = make_submission()
    submission.associations.append(
        Association(
            entry_uuid="rplc",
            association_type=v.RPLC,
            source_object="Document01",
            target_object="Document99",
        )
    )
    submission.associations.append(
        make_has_member("SubmissionSet01", "rplc", submission_set_status=None)
    )
    error = _only(submission, UnresolvedReferenceException, "'Document99'")
    assert error.code == "UnresolvedReferenceException"


def test_external_uuids_are_returned_for_the_registry() -> None:
    submission = make_submission()
    submission.associations.append(
        Association(
            entry_uuid="rplc",
            association_type=v.RPLC,
            source_object="Document01",
            target_object=OLD_DOC,
        )
    )
    assert validate_submission(submission) == frozenset({OLD_DOC})


def test_reference_member_and_existing_folder() -> None:
    folder = "urn:uuid:1b2c3d4e-5f60-4718-8a9b-0c1d2e3f4a5b"
    submission = make_submission()
    submission.associations += [
        make_has_member("SubmissionSet01", OLD_DOC, submission_set_status="Reference"),
        make_has_member(folder, "Document01", entry_uuid="fd", submission_set_status=None),
        make_has_member("SubmissionSet01", "fd", submission_set_status=None),
    ]
    submission.object_refs.append(ObjectRef(entry_uuid=folder))
    assert validate_submission(submission) == frozenset({OLD_DOC, folder})


@pytest.mark.parametrize(
    ("status", "target", "text"),
    [
        (None, "Document01", "needs the SubmissionSetStatus"),
        ("Copy", "Document01", "needs the SubmissionSetStatus"),
        ("Reference", "Document01", "is an Original member"),
        ("Original", OLD_DOC, "is a Reference member"),
    ],
)
def test_submission_set_status(status: str | None, target: str, text: str) -> None:
    submission = make_submission()
    association = submission.associations[0]
    association.submission_set_status = status
    association.target_object = target
    if target != "Document01":
        submission.associations.append(
            make_has_member("SubmissionSet01", "Document01", entry_uuid="x")
        )
    errors = [error for error in _errors(submission) if text in error.context]
    assert len(errors) == 1 and isinstance(errors[0], XDSRegistryMetadataError)


def test_every_entry_folder_and_folder_link_is_a_member() -> None:
    submission = make_submission(folder=True)
    submission.associations = [
        association
        for association in submission.associations
        if association.source_object != "SubmissionSet01"
    ]
    errors = _errors(submission)
    assert sorted(error.context for error in errors) == [
        "Association HasMember-Folder01-Document01: is not a HasMember of the SubmissionSet",
        "DocumentEntry Document01: is not a HasMember of the SubmissionSet",
        "Folder Folder01: is not a HasMember of the SubmissionSet",
    ]


@pytest.mark.parametrize(
    ("association", "text"),
    [
        (make_has_member("Document01", "Document01"), "the same object"),
        (make_has_member("SubmissionSet01", "self", entry_uuid="self"), "refer to itself"),
        (make_has_member("Document01", "SubmissionSet01", entry_uuid="x"), "cannot start at"),
        (
            Association(
                entry_uuid="r",
                association_type=v.RPLC,
                source_object=OLD_DOC,
                target_object="Document01",
            ),
            "sourceObject must be a DocumentEntry",
        ),
        (
            Association(
                entry_uuid="r",
                association_type=v.XFRM,
                source_object="Document01",
                target_object="Folder01",
            ),
            "targetObject must be a DocumentEntry",
        ),
        (
            make_has_member("Folder01", "SubmissionSet01", entry_uuid="x"),
            "only have DocumentEntries",
        ),
        (
            Association(
                entry_uuid="u",
                association_type=v.UPDATE_AVAILABILITY_STATUS,
                source_object="SubmissionSet01",
                target_object=OLD_DOC,
            ),
            "not allowed",
        ),
    ],
)
def test_association_shapes(association: Association, text: str) -> None:
    submission = make_submission(folder=True)
    submission.associations.append(association)
    matching = [error for error in _errors(submission) if text in error.context]
    assert matching and all(isinstance(e, XDSRegistryMetadataError) for e in matching)


def test_duplicate_ids_and_symbolic_object_ref() -> None:
    submission = make_submission(folder=True)
    submission.folders[0].entry_uuid = "Document01"
    submission.object_refs.append(ObjectRef(entry_uuid="Folder77"))
    contexts = [error.context for error in _errors(submission)]
    assert any("the same id is used by two objects" in c for c in contexts)
    assert any("the id of an ObjectRef must be a UUID" in c for c in contexts)


def test_every_problem_is_reported_at_once() -> None:
    submission = make_submission(entries=2, folder=True)
    submission.document_entries[0].class_code = None
    submission.document_entries[0].creation_time = "bad"
    submission.document_entries[1].patient_id = "OTHER^^^&1.2.3&ISO"
    submission.document_entries[1].unique_id = submission.document_entries[0].unique_id
    submission.associations.append(make_has_member("Folder01", "Nowhere", entry_uuid="n"))
    with pytest.raises(XDSErrorList) as caught:
        validate_submission(submission)
    codes = [error.code for error in caught.value]
    assert codes.count("XDSRegistryMetadataError") >= 3
    for code in (
        "XDSPatientIdDoesNotMatch",
        "XDSRegistryDuplicateUniqueIdInMessage",
        "UnresolvedReferenceException",
    ):
        assert code in codes


# --- code set ------------------------------------------------------------------------------------


def _code_set(tmp_path: Path) -> CodeSet:
    path = tmp_path / "codes.xml"
    path.write_text(
        "<Codes>"
        f'<CodeType name="classCode" classScheme="{v.DOCUMENT_ENTRY_CLASS_CODE}">'
        '<Code code="IMAGES" display="Images" codingScheme="1.3.6.1.4.1.19376.1.2.6.1"/>'
        "</CodeType>"
        '<CodeType name="mimeType"><Code code="application/dicom"/></CodeType>'
        "</Codes>"
    )
    return CodeSet.load(path)


def test_code_set_from_file(tmp_path: Path) -> None:
    code_set = _code_set(tmp_path)
    assert code_set.knows(v.DOCUMENT_ENTRY_CLASS_CODE)
    assert not code_set.knows(v.DOCUMENT_ENTRY_TYPE_CODE)
    assert code_set.allows(v.DOCUMENT_ENTRY_TYPE_CODE, Code("anything", "x"))
    assert _errors(make_submission(), code_set=code_set) == []
    entry = make_document_entry(
        class_code=Code("IMAGES", "LOINC", "Images"), mime_type="text/plain"
    )
    errors = _errors(make_submission(document_entries=[entry]), code_set=code_set)
    assert sorted(error.context.split(": ")[1].split(" ")[0] for error in errors) == [
        "classCode",
        "mimeType",
    ]


def test_code_set_refuses_other_documents(tmp_path: Path) -> None:
    path = tmp_path / "other.xml"
    path.write_text("<NotCodes/>")
    with pytest.raises(ValueError, match="not a code set"):
        CodeSet.load(path)


@pytest.mark.skipif(not NIST_CODES.is_file(), reason="../shared/conformance NIST codes.xml absent")
def test_factories_pass_the_nist_connectathon_code_set() -> None:
    code_set = CodeSet.load(NIST_CODES)
    assert (
        code_set.knows(v.DOCUMENT_ENTRY_FORMAT_CODE) and "application/dicom" in code_set.mime_types
    )
    assert _errors(make_submission(entries=2, folder=True), code_set=code_set) == []
    entry = make_document_entry(
        class_code=Code("History and Physical", "Connect-a-thon classCodes", "H&P")
    )
    _only(
        make_submission(document_entries=[entry]),
        XDSRegistryMetadataError,
        "classCode",
        code_set=code_set,
    )


# --- NIST message-validator fixtures -------------------------------------------------------------


def _sample(name: str) -> Submission:
    return parse_submit_objects_request(parse_bytes((MESSAGES / name).read_bytes()))


@pytest.mark.skipif(not MESSAGES.is_dir(), reason="../shared/conformance samples absent")
def test_nist_fixtures() -> None:
    assert _errors(_sample("pnr.xml"), rules=ITI_41) == []
    self_reference = _errors(_sample("pnr-assoc-to-self.xml"), rules=ITI_41)
    assert any("refer to itself" in error.context for error in self_reference)
    limited = _errors(_sample("pnr-limited.xml"), rules=ITI_41)
    assert any("limitedMetadata" in error.context for error in limited)


# --- assign_uuids --------------------------------------------------------------------------------


def test_assign_uuids_rewrites_every_reference() -> None:
    submission = make_submission(entries=2, folder=True)
    submission.document_entries[0].logical_id = "Document01"
    submission.associations.append(
        Association(
            entry_uuid="",
            association_type=v.RPLC,
            source_object="Document02",
            target_object=OLD_DOC,
        )
    )
    submission.associations.append(
        make_has_member(
            "SubmissionSet01", OLD_DOC, entry_uuid="ref", submission_set_status="Reference"
        )
    )
    counter = itertools.count(1)
    mapping = assign_uuids(
        submission, new_uuid=lambda: f"urn:uuid:00000000-0000-4000-8000-{next(counter):012d}"
    )
    assert set(mapping) == {
        "SubmissionSet01",
        "Folder01",
        "Document01",
        "Document02",
        *(a.entry_uuid for a in make_submission(entries=2, folder=True).associations),
        "ref",
    }
    assert all(is_uuid_urn(uuid) for uuid in mapping.values())
    ids = {obj.entry_uuid for obj in submission.objects()}
    assert all(is_uuid_urn(entry_uuid) for entry_uuid in ids) and len(ids) == len(mapping) + 1
    assert submission.document_entries[0].logical_id == mapping["Document01"]
    for association in submission.associations:
        assert association.source_object in ids
        assert association.target_object in ids | {OLD_DOC}
    assert validate_submission(submission) == frozenset({OLD_DOC})
    # still writes and reads back the same
    element = build_submit_objects_request(submission)
    assert parse_submit_objects_request(element) == submission


def test_assign_uuids_keeps_uuids_and_is_stable() -> None:
    entry_uuid = "urn:uuid:5a3c0dff-b5a6-4d4b-9a8c-0a4c1b1d6c01"
    submission = make_submission(
        document_entries=[make_document_entry(entry_uuid=entry_uuid)],
        associations=[make_has_member("SubmissionSet01", entry_uuid, entry_uuid="a")],
        folders=[make_folder(entry_uuid="urn:uuid:5a3c0dff-b5a6-4d4b-9a8c-0a4c1b1d6c02")],
    )
    mapping = assign_uuids(submission)
    assert set(mapping) == {"SubmissionSet01", "a"}
    assert submission.document_entries[0].entry_uuid == entry_uuid
    assert submission.associations[0].target_object == entry_uuid
    assert assign_uuids(submission) == {}
