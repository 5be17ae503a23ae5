"""ITI-42 rules that need the registry's content, checked inside the registering transaction.

``gateway.metadata.validate`` has already checked everything the submission alone can tell
(attributes, formats, references between its own objects, one patient, SubmissionSetStatus).
Here, against the database (ITI TF-2 §3.42.4.1.3, ITI TF-3 §4.2.2, codes ITI TF-3
Table 4.2.4.1-2, ebRS 3.0 §2.4):

* the patient is known and not merged away: XDSUnknownPatientId (ITI TF-2 §3.8.4.2.3);
* entryUUIDs and uniqueIds do not clash with registry content (``conflicts.py``);
* every reference outside the submission names a registry object: UnresolvedReferenceException;
* HasMember: only the SubmissionSet or a Folder has members; a document joining a Folder belongs
  to the Folder's patient; a Reference member belongs to the SubmissionSet's patient
  (XDSPatientIdDoesNotMatch; NIST 12002);
* RPLC, XFRM, APND, XFRM_RPLC: the original is a registry DocumentEntry of the same patient
  (XDSPatientIdDoesNotMatch; NIST 11998) with availabilityStatus Approved, otherwise
  XDSRegistryDeprecatedDocumentError (NIST 11993, 11994: no addendum or transform of a replaced
  document).

It also plans the lifecycle effects (ITI TF-2 §3.42.4.1.3, ITI TF-3 §4.2.2 with CP-ITI-117):
RPLC/XFRM_RPLC deprecate the original and every Approved addendum (APND) and transform (XFRM) of
it (NIST 12022); the replacement joins every Folder the original is in (NIST 12327); every Folder
that gains a document gets lastUpdateTime = now (NIST 12323).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Connection, select

from gateway.errors import (
    UnresolvedReferenceException,
    XDSError,
    XDSErrorList,
    XDSPatientIdDoesNotMatch,
    XDSRegistryDeprecatedDocumentError,
    XDSRegistryMetadataError,
    XDSUnknownPatientId,
)
from gateway.metadata import vocabulary as v
from gateway.metadata.model import Association, Submission
from gateway.registry.conflicts import (
    DOCUMENT_ENTRY,
    FOLDER,
    SUBMISSION_SET,
    Found,
    document_unique_ids,
    find_objects,
    registered_document_unique_ids,
    registry_conflicts,
)
from gateway.registry.patients import PatientStatus, resolve_in, state_in
from gateway.registry.schema import association, document_entry, folder

__all__ = ["LIFECYCLE_TYPES", "Plan", "check_submission"]

LIFECYCLE_TYPES = frozenset({v.RPLC, v.XFRM, v.APND, v.XFRM_RPLC})
# Documents that depend on an original and are deprecated with it when it is replaced (CP-ITI-117).
_DEPENDENT_TYPES = (v.APND, v.XFRM)


@dataclass(slots=True)
class Plan:
    """What registering the submission changes besides inserting its objects."""

    # DocumentEntry uniqueIds absent when checked: this submission inserts their
    # document_unique_id row (a concurrent insert then fails on the primary key; NIST 12004)
    new_document_unique_ids: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)  # originals of RPLC / XFRM_RPLC
    dependents: list[str] = field(default_factory=list)  # their Approved APND/XFRM documents
    folder_links: list[tuple[str, str]] = field(default_factory=list)  # (folder, replacement)
    touched_folders: list[str] = field(default_factory=list)  # lastUpdateTime = now


def _short(status: str) -> str:
    return status.rsplit(":", 1)[-1]


class _Checker:
    """Checks one submission against the registry and plans its lifecycle effects."""

    def __init__(self, conn: Connection, submission: Submission) -> None:
        assert submission.submission_set is not None  # validation requires one
        self.conn = conn
        self.submission = submission
        self.ss_id = submission.submission_set.entry_uuid
        self.pid = submission.submission_set.patient_id or ""
        self.errors: list[XDSError] = []
        self.plan = Plan()
        self.local = {obj.entry_uuid: type(obj).__name__ for obj in submission.objects()}
        for ref in submission.object_refs:
            self.local.pop(ref.entry_uuid, None)  # an ObjectRef names a registry object
        self.found: dict[str, Found] = {}
        self._resolved: dict[str, str] = {}

    def same_patient(self, a: str | None, b: str | None) -> bool:
        """Compare patient ids through merges (a document registered before a merge keeps
        the subsumed id; ITI TF-2 §3.8.4.2.3)."""
        return a is not None and b is not None and self.resolve(a) == self.resolve(b)

    def resolve(self, pid: str) -> str:
        if pid not in self._resolved:
            self._resolved[pid] = resolve_in(self.conn, pid) or pid
        return self._resolved[pid]

    def patient(self) -> None:
        """ITI TF-2 §3.42.4.1.3: the patientId must be known (fed by ITI-8) and not subsumed."""
        state = state_in(self.conn, self.pid)
        if state.status is PatientStatus.UNKNOWN:
            self.errors.append(
                XDSUnknownPatientId(
                    f"patientId {self.pid} is not known to the registry (no Patient Identity "
                    "Feed received for it)",
                    location=self.ss_id,
                )
            )
        elif state.status is PatientStatus.MERGED:
            self.errors.append(
                XDSUnknownPatientId(
                    f"patientId {self.pid} was merged into {state.merged_into}; submit under "
                    "the surviving patientId",
                    location=self.ss_id,
                )
            )

    def references(self) -> None:
        """Every association end outside the submission must be a registry object (ebRS 3.0
        §2.4 UnresolvedReferenceException)."""
        wanted: set[str] = set()
        for assoc in self.submission.associations:
            wanted.update(
                ref
                for ref in (assoc.source_object, assoc.target_object)
                if ref and ref not in self.local
            )
        self.found = find_objects(self.conn, wanted, lock=True)
        for assoc in self.submission.associations:
            for ref in (assoc.source_object, assoc.target_object):
                if ref and ref not in self.local and ref not in self.found:
                    self.errors.append(
                        UnresolvedReferenceException(
                            f"Association {assoc.entry_uuid}: {ref} is neither in the submission "
                            "nor in the registry",
                            location=assoc.entry_uuid,
                        )
                    )

    def kind(self, ref: str) -> str | None:
        if ref in self.local:
            return self.local[ref]
        found = self.found.get(ref)
        return found.kind if found else None

    def patient_of(self, ref: str) -> str | None:
        if ref in self.local:
            return self.pid  # validation made every object of the submission the SS's patient
        found = self.found.get(ref)
        return found.patient_id if found else None

    def has_member(self, assoc: Association) -> None:
        """ITI TF-3 §4.2.2.1: SubmissionSet or Folder membership."""
        source, target = assoc.source_object, assoc.target_object
        source_kind, target_kind = self.kind(source), self.kind(target)
        if source_kind is None or target_kind is None:
            return  # unresolved, reported already
        if source == self.ss_id:
            if target not in self.local and target_kind in (DOCUMENT_ENTRY, FOLDER):
                self.patient_match(assoc, target, self.pid, "the SubmissionSet")
            elif target_kind == SUBMISSION_SET:
                self.metadata(assoc, "a SubmissionSet cannot be a member of a SubmissionSet")
            return
        if source_kind != FOLDER:
            self.metadata(
                assoc,
                f"HasMember from a {source_kind}: only the SubmissionSet of this submission "
                "or a Folder can have members",
            )
            return
        if target_kind != DOCUMENT_ENTRY:
            self.metadata(
                assoc, f"a Folder can only have DocumentEntries as members, not a {target_kind}"
            )
            return
        self.patient_match(assoc, target, self.patient_of(source), f"Folder {source}")
        self.touch(source)

    def patient_match(self, assoc: Association, ref: str, pid: str | None, owner: str) -> None:
        patient = self.patient_of(ref)
        if not self.same_patient(patient, pid):
            self.errors.append(
                XDSPatientIdDoesNotMatch(
                    f"Association {assoc.entry_uuid}: {self.kind(ref)} {ref} has patientId "
                    f"{patient}, {owner} has patientId {pid}",
                    location=assoc.entry_uuid,
                )
            )

    def relationship(self, assoc: Association) -> None:
        """RPLC/XFRM/APND/XFRM_RPLC/signs between a new document and an existing one
        (ITI TF-3 §4.2.2, ITI TF-2 §3.42.4.1.3, CP-ITI-117)."""
        name = v.lookup(assoc.association_type)
        label = name.name if name else assoc.association_type
        target = assoc.target_object
        if target in self.local:
            if assoc.association_type in LIFECYCLE_TYPES:
                self.metadata(
                    assoc,
                    f"{label} must target a document already in the registry, not "
                    f"{target} of this submission",
                )
            return
        found = self.found.get(target)
        if found is None:
            return
        if found.kind != DOCUMENT_ENTRY:
            self.metadata(assoc, f"{label} must target a DocumentEntry, not a {found.kind}")
            return
        self.patient_match(assoc, target, self.pid, f"the {label} DocumentEntry")
        if assoc.association_type not in LIFECYCLE_TYPES:
            return
        if found.status != v.STATUS_APPROVED:
            self.errors.append(
                XDSRegistryDeprecatedDocumentError(
                    f"Association {assoc.entry_uuid}: {label} targets DocumentEntry {target} "
                    f"whose availabilityStatus is {_short(found.status)}; only an Approved "
                    "document can be replaced, transformed or appended",
                    location=assoc.entry_uuid,
                )
            )
        elif assoc.association_type in v.REPLACEMENT_TYPES:
            self.replacement(assoc, target, assoc.source_object)

    def replacement(self, assoc: Association, original: str, replacement: str) -> None:
        if original in self.plan.replaced:
            self.metadata(assoc, f"DocumentEntry {original} is replaced twice in one submission")
            return
        self.plan.replaced.append(original)
        dependents = self.conn.execute(
            select(association.c.source_id)
            .join(document_entry, document_entry.c.id == association.c.source_id)
            .where(
                association.c.target_id == original,
                association.c.association_type.in_(_DEPENDENT_TYPES),
                document_entry.c.status == v.STATUS_APPROVED,
            )
        ).scalars()
        self.plan.dependents.extend(d for d in dependents if d not in self.plan.dependents)
        folders = self.conn.execute(
            select(association.c.source_id)
            .join(folder, folder.c.id == association.c.source_id)
            .where(
                association.c.target_id == original,
                association.c.association_type == v.HAS_MEMBER,
                association.c.status == v.STATUS_APPROVED,
            )
            .order_by(association.c.seq)
        ).scalars()
        for folder_id in dict.fromkeys(folders):
            if not self.submitted_link(folder_id, replacement):
                self.plan.folder_links.append((folder_id, replacement))
            self.touch(folder_id)

    def submitted_link(self, folder_id: str, entry_id: str) -> bool:
        return any(
            a.association_type == v.HAS_MEMBER
            and a.source_object == folder_id
            and a.target_object == entry_id
            for a in self.submission.associations
        )

    def touch(self, folder_id: str) -> None:
        if folder_id not in self.local and folder_id not in self.plan.touched_folders:
            self.plan.touched_folders.append(folder_id)

    def metadata(self, assoc: Association, message: str) -> None:
        self.errors.append(
            XDSRegistryMetadataError(
                f"Association {assoc.entry_uuid}: {message}", location=assoc.entry_uuid
            )
        )


def check_submission(conn: Connection, submission: Submission) -> Plan:
    """Check a validated submission (``urn:uuid:`` ids assigned) against the registry and plan
    its lifecycle effects, inside the caller's write transaction.

    Standard: ITI TF-2 §3.42.4.1.3; ITI TF-3 §4.2.2; CP-ITI-117.
    Raises: XDSErrorList of XDSUnknownPatientId, XDSRegistryMetadataError,
    UnresolvedReferenceException, XDSDuplicateUniqueIdInRegistry, XDSNonIdenticalHash,
    XDSNonIdenticalSize, XDSPatientIdDoesNotMatch, XDSRegistryDeprecatedDocumentError.
    """
    checker = _Checker(conn, submission)
    checker.patient()
    # One read decides both whether a uniqueId conflicts and whether this submission inserts
    # its row: under READ COMMITTED two reads could disagree.
    wanted = document_unique_ids(submission)
    registered = registered_document_unique_ids(conn, wanted)
    checker.errors.extend(registry_conflicts(conn, submission, registered))
    checker.plan.new_document_unique_ids = sorted(wanted - registered.keys())
    checker.references()
    for assoc in submission.associations:
        if assoc.association_type == v.HAS_MEMBER:
            checker.has_member(assoc)
        elif assoc.association_type in v.RELATIONSHIP_TYPES:
            checker.relationship(assoc)
    if checker.errors:
        raise XDSErrorList(checker.errors)
    return checker.plan
