"""Links between the objects of one submission (used by ``gateway.metadata.validate``).

Standard: ITI TF-3 §4.1.2 and §4.2.2 (rev. 19.0): HasMember from the SubmissionSet to every
DocumentEntry, Folder and Folder-membership Association it submits, with SubmissionSetStatus
``Original``/``Reference`` on SubmissionSet-to-DocumentEntry links (§4.2.2); relationship
associations (RPLC, XFRM, APND, XFRM_RPLC, signs) start at a DocumentEntry of the submission
(ITI TF-2 §3.42.4.1.3). References that are neither an object of the request nor a
``urn:uuid:`` cannot resolve anywhere: UnresolvedReferenceException (ebRS 3.0 §2.4).
"""

from __future__ import annotations

from gateway.errors import UnresolvedReferenceException, XDSError
from gateway.metadata import vocabulary as v
from gateway.metadata.datatypes import is_uuid_urn
from gateway.metadata.model import Association, DocumentEntry, Folder, Submission

_SS, _FOLDER, _ENTRY, _ASSOCIATION = "SubmissionSet", "Folder", "DocumentEntry", "Association"


class _Links:
    def __init__(self, submission: Submission, metadata_error: type[XDSError]) -> None:
        self.metadata_error = metadata_error
        self.errors: list[XDSError] = []
        self.external: set[str] = set()
        self.kinds: dict[str, str] = {}
        if submission.submission_set is not None:
            self._declare(submission.submission_set.entry_uuid, _SS)
        for folder in submission.folders:
            self._declare(folder.entry_uuid, _FOLDER)
        for entry in submission.document_entries:
            self._declare(entry.entry_uuid, _ENTRY)
        for association in submission.associations:
            if association.entry_uuid:  # an Association without id can be nobody's target
                self._declare(association.entry_uuid, _ASSOCIATION)

    def _declare(self, entry_uuid: str, kind: str) -> None:
        if not entry_uuid:
            return  # reported as a missing entryUUID by the attribute checks
        if entry_uuid in self.kinds:
            self.metadata(f"{kind} {entry_uuid}", "the same id is used by two objects")
        self.kinds[entry_uuid] = kind

    def metadata(self, where: str, message: str) -> None:
        self.errors.append(self.metadata_error(f"{where}: {message}", location=where))

    def resolve(self, reference: str, where: str) -> str | None:
        """The kind of the referenced submission object, or None (external or unresolvable)."""
        if reference in self.kinds:
            return self.kinds[reference]
        if is_uuid_urn(reference):
            self.external.add(reference)
        else:
            self.errors.append(
                UnresolvedReferenceException(
                    f"{where}: {reference!r} names no object of the submission and is not a UUID",
                    location=where,
                )
            )
        return None

    def association(self, association: Association) -> None:
        where = f"Association {association.entry_uuid or '(without id)'}"
        source = self.resolve(association.source_object, where)
        target = self.resolve(association.target_object, where)
        if association.source_object == association.target_object:
            self.metadata(where, "sourceObject and targetObject are the same object")
        if association.entry_uuid in (association.source_object, association.target_object):
            self.metadata(where, "an Association cannot refer to itself")
        if association.association_type == v.HAS_MEMBER:
            self._has_member(association, source, target, where)
        elif association.association_type in v.RELATIONSHIP_TYPES:
            if source != _ENTRY:
                self.metadata(where, "the sourceObject must be a DocumentEntry of this submission")
            if target not in (_ENTRY, None):
                self.metadata(where, f"the targetObject must be a DocumentEntry, not a {target}")

    def _has_member(
        self, association: Association, source: str | None, target: str | None, where: str
    ) -> None:
        if source == _SS:
            if target in (_FOLDER, _ASSOCIATION, _SS):
                return
            status = association.submission_set_status
            if status not in v.SUBMISSION_SET_STATUSES:
                self.metadata(
                    where,
                    "HasMember from the SubmissionSet to a DocumentEntry needs "
                    "the SubmissionSetStatus slot Original or Reference",
                )
            elif target == _ENTRY and status != v.SUBMISSION_SET_STATUS_ORIGINAL:
                self.metadata(where, "a DocumentEntry of this submission is an Original member")
            elif target is None and status != v.SUBMISSION_SET_STATUS_REFERENCE:
                self.metadata(where, "a DocumentEntry submitted earlier is a Reference member")
        elif source in (_ENTRY, _ASSOCIATION):
            self.metadata(where, f"HasMember cannot start at a {source}")
        elif target not in (_ENTRY, None):
            self.metadata(
                where, f"a Folder can only have DocumentEntries as members, not a {target}"
            )


def check_references(
    submission: Submission, metadata_error: type[XDSError]
) -> tuple[list[XDSError], frozenset[str]]:
    """Check the associations of a submission; return ``(errors, external_uuids)``.

    Standard: ITI TF-3 §4.1.2, §4.2.2; ITI TF-2 §3.42.4.1.3. Errors: XDSRegistryMetadataError
    (or the repository variant passed in), UnresolvedReferenceException.
    """
    links = _Links(submission, metadata_error)
    ss_id = submission.submission_set.entry_uuid if submission.submission_set else None
    members: set[str] = set()
    for association in submission.associations:
        links.association(association)
        if association.association_type == v.HAS_MEMBER and association.source_object == ss_id:
            members.add(association.target_object)
    if ss_id is None:
        return links.errors, frozenset(links.external)
    # Everything the request adds is a member of its SubmissionSet, including the Folder
    # membership Associations (ITI TF-3 §4.2.2: SubmissionSet HasMember Association).
    folder_links = [
        association
        for association in submission.associations
        if association.association_type == v.HAS_MEMBER and association.source_object != ss_id
    ]
    added: list[DocumentEntry | Folder | Association] = [
        *submission.document_entries,
        *submission.folders,
        *folder_links,
    ]
    for obj in added:
        if obj.entry_uuid not in members:
            kind = type(obj).__name__
            name = obj.entry_uuid or "(without id)"
            links.metadata(f"{kind} {name}", "is not a HasMember of the SubmissionSet")
    return links.errors, frozenset(links.external)
