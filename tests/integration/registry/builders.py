"""Submissions for registry tests, built from ``tests.factories`` with fresh uniqueIds.

Every builder returns a valid ITI-42 submission whose uniqueIds are new (``2.25.<uuid>`` OIDs),
so tests can register many of them against one database.
"""

from __future__ import annotations

import uuid
from typing import Any

from gateway.metadata import vocabulary as v
from gateway.metadata.model import Association, ObjectRef, Submission
from tests.factories import (
    PATIENT_ID,
    make_document_entry,
    make_folder,
    make_has_member,
    make_submission,
    make_submission_set,
)

OTHER_PATIENT_ID = "PAT-43^^^&1.3.6.1.4.1.21367.13.20.1000&ISO"


def new_uid() -> str:
    """A fresh OID (ITU-T X.667 UUID arc 2.25)."""
    return f"2.25.{uuid.uuid4().int}"


def fresh(submission: Submission, *, patient_id: str | None = None) -> Submission:
    """Give every SubmissionSet, Folder and DocumentEntry of ``submission`` a new uniqueId
    (and ``patient_id`` when given); returns the same object."""
    objects = [submission.submission_set, *submission.folders, *submission.document_entries]
    for obj in objects:
        if obj is None:
            continue
        obj.unique_id = new_uid()
        if patient_id is not None:
            obj.patient_id = patient_id
    return submission


def documents(count: int = 1, *, folder: bool = False, **entry: Any) -> Submission:
    """SubmissionSet + ``count`` new DocumentEntries (+ a new Folder holding them)."""
    submission = make_submission(entries=count, folder=folder)
    for document in submission.document_entries:
        for key, value in entry.items():
            setattr(document, key, value)
    return fresh(submission)


def empty_folder(**overrides: Any) -> Submission:
    """SubmissionSet + one new empty Folder."""
    submission = Submission(
        submission_set=make_submission_set(),
        folders=[make_folder(**overrides)],
        associations=[make_has_member("SubmissionSet01", "Folder01", submission_set_status=None)],
    )
    return fresh(submission)


def related(target: str, association_type: str, **entry: Any) -> Submission:
    """One new DocumentEntry with an RPLC/XFRM/APND/XFRM_RPLC/signs association to ``target``."""
    submission = documents(1, **entry)
    submission.associations.append(
        Association(
            entry_uuid="Relation01",
            association_type=association_type,
            source_object="Document01",
            target_object=target,
        )
    )
    submission.object_refs.append(ObjectRef(entry_uuid=target))
    return submission


def replace(target: str, **entry: Any) -> Submission:
    """A replacement (RPLC) of ``target``."""
    return related(target, v.RPLC, **entry)


def add_to_folder(folder_id: str, document_id: str | None = None, **entry: Any) -> Submission:
    """Put a new DocumentEntry (or the registered ``document_id``) into the registered Folder
    ``folder_id``: Folder HasMember document, SubmissionSet HasMember that association."""
    if document_id is None:
        submission = documents(1, **entry)
        target = "Document01"
    else:
        submission = fresh(Submission(submission_set=make_submission_set()))
        target = document_id
        submission.object_refs.append(ObjectRef(entry_uuid=document_id))
    link = make_has_member(folder_id, target, entry_uuid="FolderLink01", submission_set_status=None)
    submission.associations += [
        link,
        make_has_member("SubmissionSet01", "FolderLink01", submission_set_status=None),
    ]
    submission.object_refs.append(ObjectRef(entry_uuid=folder_id))
    return submission


def reference(document_id: str) -> Submission:
    """A SubmissionSet listing the registered ``document_id`` as a Reference member."""
    submission = fresh(Submission(submission_set=make_submission_set()))
    submission.associations.append(
        make_has_member(
            "SubmissionSet01",
            document_id,
            submission_set_status=v.SUBMISSION_SET_STATUS_REFERENCE,
        )
    )
    return submission


def entry(**overrides: Any) -> Any:
    """A DocumentEntry with a fresh uniqueId (for hand-made submissions)."""
    values: dict[str, Any] = {"unique_id": new_uid(), "patient_id": PATIENT_ID}
    values.update(overrides)
    return make_document_entry(**values)
