"""ITI-57 Update Document Set (XDS Metadata Update option): the Document Registry side.

One request, one SubmissionSet, one transaction, all or nothing. The operations it may carry
(ITI TF-2b §3.57.4.1.3):

- **Update DocumentEntry / Folder metadata**: a DocumentEntry or Folder whose ``lid`` is the
  logicalID of an object in the registry and whose ``id`` is new, the member of the
  SubmissionSet by a HasMember association with ``SubmissionSetStatus=Original`` and
  ``PreviousVersion`` = the version the sender saw. The registry stores it as version
  ``PreviousVersion + 1`` with the previous version's availabilityStatus and deprecates the
  previous version (ITI TF-3 §4.1.x versioning: logicalID shared, ``version`` counts from 1).
  The uniqueId stays the logical object's. With ``AssociationPropagation`` other than ``no``
  the Folder memberships of the previous version are given to the new one.
- **Update availabilityStatus**: an ``UpdateAvailabilityStatus`` association from the
  SubmissionSet to the latest version of a DocumentEntry or Folder, or to an Association, with
  slots ``OriginalStatus`` and ``NewStatus`` (Approved / Deprecated).
- **Submit Association**: an association between objects already registered (a Folder
  membership, a document relationship), itself a HasMember member of the SubmissionSet.

Errors (ITI TF-3 Table 4.2.4.1-2): ``XDSMetadataUpdateOperationError`` (an operation's slots or
form are wrong), ``XDSMetadataVersionError`` (no such logical object, or PreviousVersion or the
target is not the latest version), ``XDSMetadataUpdateError`` (the update is not allowed: a
first version sent with ITI-57, two operations on one logical object, a SubmissionSet target,
a status that is not the original one, an association to a deprecated object),
``XDSMetadataIdentifierError`` (the uniqueId of a new version is not the logical object's),
``XDSPatientIDReconciliationError`` (a new patient id for an object that Folders or relationships
tie to its patient; an association between two patients' objects), and the ITI-42 codes for the
metadata itself (XDSRegistryMetadataError, XDSPatientIdDoesNotMatch, XDSUnknownPatientId,
UnresolvedReferenceException).

Standard: ITI TF-2b §3.57 (Update Document Set), ITI TF-3 §4.1.x (metadata versioning),
§4.2.3.2/§4.2.3.4 (logicalID, version); audit §3.57.5.1.
"""

from __future__ import annotations

import copy
import functools
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Table, insert, or_, select, update

from gateway.errors import (
    UnresolvedReferenceException,
    XDSDuplicateUniqueIdInRegistry,
    XDSError,
    XDSErrorList,
    XDSMetadataIdentifierError,
    XDSMetadataUpdateError,
    XDSMetadataUpdateOperationError,
    XDSMetadataVersionError,
    XDSPatientIDReconciliationError,
    XDSRegistryBusy,
    XDSRegistryMetadataError,
    XDSUnknownPatientId,
)
from gateway.metadata import ebrim
from gateway.metadata import vocabulary as v
from gateway.metadata.codes import CodeSet
from gateway.metadata.datatypes import format_dtm
from gateway.metadata.model import Association, DocumentEntry, Folder, Submission
from gateway.metadata.retrieve import build_registry_response, failure_body, status_for
from gateway.metadata.validate import ITI_42 as ITI_42_RULES
from gateway.metadata.validate import Rules, assign_uuids, validate_submission
from gateway.registry import rows
from gateway.registry.database import Database
from gateway.registry.patients import PatientStatus, state_in
from gateway.registry.schema import (
    association,
    document_entry,
    document_unique_id,
    folder,
    object_author,
    object_code,
    reference_id,
    submission_set,
)
from gateway.registry.store import busy_as_xds
from gateway.soap.dispatch import Context, Endpoint
from gateway.soap.message import Element, SoapRequest, SoapResponse
from gateway.soap.transactions import ITI_57

TRANSACTION = ITI_57
ACTION = ITI_57.action  # urn:ihe:iti:2010:UpdateDocumentSet

log = logging.getLogger(__name__)

__all__ = ["ACTION", "ITI_57_RULES", "TRANSACTION", "MetadataUpdater", "UpdateResult", "bind"]

SLOT_ORIGINAL_STATUS = "OriginalStatus"
SLOT_NEW_STATUS = "NewStatus"
_STATUSES = frozenset({v.STATUS_APPROVED, v.STATUS_DEPRECATED})
# Relationships that tie a DocumentEntry to others (its patient cannot change alone).
_RELATIONSHIPS = frozenset({v.RPLC, v.XFRM, v.APND, v.XFRM_RPLC, v.SIGNS})

# ITI-57 carries the metadata of ITI-42 plus the Metadata Update association type.
ITI_57_RULES = Rules(
    transaction="ITI-57",
    document_entry=ITI_42_RULES.document_entry,
    submission_set=ITI_42_RULES.submission_set,
    folder=ITI_42_RULES.folder,
    object_types=ITI_42_RULES.object_types,
    association_types=ITI_42_RULES.association_types
    | {v.UPDATE_AVAILABILITY_STATUS, v.SUBMIT_ASSOCIATION},
)


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True, kw_only=True)
class UpdateResult:
    """What one committed update did."""

    submission_set_id: str
    new_versions: dict[str, int] = field(default_factory=dict)  # entryUUID -> version
    deprecated: list[str] = field(default_factory=list)  # previous versions
    status_changes: dict[str, str] = field(default_factory=dict)  # entryUUID -> new status
    associations: list[str] = field(default_factory=list)  # submitted + propagated
    patient_ids: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Version:
    """A new version to insert: the object, its number, status, the version it deprecates."""

    obj: DocumentEntry | Folder
    number: int
    status: str
    previous: str
    propagate: bool


@dataclass(slots=True)
class _Plan:
    versions: list[_Version] = field(default_factory=list)
    status_changes: list[tuple[Table, str, str, str]] = field(default_factory=list)
    propagated: list[Association] = field(default_factory=list)
    touched_folders: set[str] = field(default_factory=set)
    initial_status: dict[str, str] = field(default_factory=dict)  # submitted association -> status


class MetadataUpdater:
    """The Metadata Update side of the Document Registry actor (ITI-57)."""

    def __init__(
        self,
        db: Database,
        *,
        code_set: CodeSet | None = None,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.db = db
        self.code_set = code_set
        self.clock = clock

    def update(self, submission: Submission) -> UpdateResult:
        """Validate and apply an Update Document Set request, all or nothing.

        Standard: ITI TF-2b §3.57.4.1.3. Raises: XDSErrorList (see the module docstring),
        XDSRegistryBusy (a concurrent change to the same objects; try again).
        """
        submission = copy.deepcopy(submission)
        statuses = _take_status_slots(submission)
        invalid = _validation_errors(submission, self.code_set)
        mapping = assign_uuids(submission)
        statuses = {mapping.get(key, key): value for key, value in statuses.items()}
        assert submission.submission_set is not None
        now = self.clock()
        stamp = format_dtm(now)
        submission.submission_set.availability_status = v.STATUS_APPROVED
        for new_folder in submission.folders:
            new_folder.last_update_time = stamp
        if invalid:
            # Invalid metadata is refused; the update rules are judged too, so that the answer
            # names every problem (a Metadata Update code besides the metadata error).
            with self.db.read() as conn:
                raise XDSErrorList(invalid + _update_errors(conn, submission, statuses))
        with busy_as_xds(), self.db.write(snapshot=True) as conn:
            plan = _plan(conn, submission, statuses)
            result = _apply(conn, submission, plan, stamp)
        log.info(
            "ITI-57 SubmissionSet %s: %d new versions, %d status changes, %d associations",
            result.submission_set_id,
            len(result.new_versions),
            len(result.status_changes),
            len(result.associations),
        )
        return result


def _submitted_associations(submission: Submission) -> set[str]:
    """Ids of the associations a Submit Association operation adds (between objects already
    registered) and of the SubmissionSet's links to them."""
    ss_id = submission.submission_set.entry_uuid if submission.submission_set else ""
    carried = {e.entry_uuid for e in submission.document_entries}
    carried |= {f.entry_uuid for f in submission.folders}
    added = {
        a.entry_uuid
        for a in submission.associations
        if a.source_object != ss_id
        and a.source_object not in carried
        and a.association_type != v.UPDATE_AVAILABILITY_STATUS
    }
    links = {
        a.entry_uuid
        for a in submission.associations
        if a.source_object == ss_id
        and a.target_object in added
        and a.association_type != v.UPDATE_AVAILABILITY_STATUS
    }
    return added | links


def _validation_errors(submission: Submission, code_set: CodeSet | None) -> list[XDSError]:
    """The ITI-42 metadata rules for what the request carries (its SubmissionSet, new versions,
    UpdateAvailabilityStatus associations); submitted associations between registered objects
    and the SubmissionSet's links to them (HasMember or SubmitAssociation) are checked here for
    their type only, and against the registry by the planner.

    Standard: ITI TF-2b §3.57.4.1.3; ITI TF-3 §4.2.2. Returns the errors found.
    """
    submitted = _submitted_associations(submission)
    checked = copy.copy(submission)
    checked.associations = [
        a
        for a in submission.associations
        if a.entry_uuid not in submitted and a.target_object not in submitted
    ]
    errors: list[XDSError] = []
    for assoc in submission.associations:
        if assoc.entry_uuid not in submitted:
            continue
        allowed = v.RELATIONSHIP_TYPES | {v.HAS_MEMBER, v.SUBMIT_ASSOCIATION}
        if assoc.association_type not in allowed:
            errors.append(
                XDSRegistryMetadataError(
                    f"Association {assoc.entry_uuid}: associationType "
                    f"{assoc.association_type} cannot be submitted",
                    location=assoc.entry_uuid,
                )
            )
    try:
        validate_submission(checked, rules=ITI_57_RULES, code_set=code_set)
    except XDSErrorList as exc:
        errors.extend(exc.errors)
    return errors


def _take_status_slots(submission: Submission) -> dict[str, tuple[str, str]]:
    """Move OriginalStatus/NewStatus out of the UpdateAvailabilityStatus associations' extra
    slots (they are the operation's, not extra metadata); check their form.

    Standard: ITI TF-2b §3.57.4.1.3.3.1 (both slots, one value each, Approved/Deprecated URNs,
    different). Raises: XDSErrorList of XDSMetadataUpdateOperationError.
    """
    found: dict[str, tuple[str, str]] = {}
    errors: list[XDSError] = []
    for assoc in submission.associations:
        if assoc.association_type != v.UPDATE_AVAILABILITY_STATUS:
            continue
        where = f"UpdateAvailabilityStatus association {assoc.entry_uuid}"
        original = assoc.extra_slots.pop(SLOT_ORIGINAL_STATUS, None)
        new = assoc.extra_slots.pop(SLOT_NEW_STATUS, None)
        problem = ""
        if original is None or new is None:
            problem = "needs both slots OriginalStatus and NewStatus"
        elif len(original) != 1 or len(new) != 1:
            problem = "OriginalStatus and NewStatus take one value each"
        elif original[0] not in _STATUSES or new[0] not in _STATUSES:
            problem = "OriginalStatus and NewStatus must be the Approved or Deprecated status URN"
        elif original[0] == new[0]:
            problem = "OriginalStatus and NewStatus are the same"
        elif assoc.extra_slots or assoc.previous_version or assoc.submission_set_status:
            problem = "carries slots other than OriginalStatus and NewStatus"
        if problem:
            errors.append(
                XDSMetadataUpdateOperationError(f"{where}: {problem}", location=assoc.entry_uuid)
            )
            continue
        assert original is not None and new is not None
        found[assoc.entry_uuid] = (original[0], new[0])
    if errors:
        raise XDSErrorList(errors)
    return found


class _Planner:
    """Checks the operations of one request against the registry (one snapshot)."""

    def __init__(
        self, conn: Connection, submission: Submission, statuses: dict[str, tuple[str, str]]
    ) -> None:
        assert submission.submission_set is not None
        self.conn = conn
        self.submission = submission
        self.ss = submission.submission_set
        self.statuses = statuses
        self.errors: list[XDSError] = []
        self.plan = _Plan()
        self.logical_seen: set[str] = set()
        self.new_versions: dict[str, DocumentEntry | Folder] = {
            e.entry_uuid: e for e in submission.document_entries
        }
        self.new_versions.update({f.entry_uuid: f for f in submission.folders})
        self.local = {e.entry_uuid for e in submission.document_entries}
        self.local |= {f.entry_uuid for f in submission.folders}
        self.local |= {a.entry_uuid for a in submission.associations}
        self.members = {
            a.target_object: a
            for a in submission.associations
            if a.association_type in {v.HAS_MEMBER, v.SUBMIT_ASSOCIATION}
            and a.source_object == self.ss.entry_uuid
        }

    def run(self) -> _Plan:
        self.patient()
        taken = self.conn.execute(
            select(submission_set.c.id).where(submission_set.c.unique_id == self.ss.unique_id)
        ).first()
        if taken is not None:
            self.errors.append(
                XDSDuplicateUniqueIdInRegistry(
                    f"SubmissionSet uniqueId {self.ss.unique_id} is already registered",
                    location=self.ss.entry_uuid,
                )
            )
        versioned: list[DocumentEntry | Folder] = [
            *self.submission.document_entries,
            *self.submission.folders,
        ]
        for obj in versioned:
            self.new_version(obj)
        operations = len(self.submission.document_entries) + len(self.submission.folders)
        for assoc in self.submission.associations:
            if assoc.association_type == v.UPDATE_AVAILABILITY_STATUS:
                self.status_change(assoc)
                operations += 1
            elif assoc.source_object == self.ss.entry_uuid and assoc.target_object in self.local:
                continue  # the SubmissionSet's membership of what it carries
            else:
                self.submitted_association(assoc)
                operations += 1
        if not operations:
            self.errors.append(
                XDSMetadataUpdateError(
                    "the request carries no update operation (new version, "
                    "UpdateAvailabilityStatus or association)",
                    location=self.ss.entry_uuid,
                )
            )
        if self.errors:
            raise XDSErrorList(self.errors)
        return self.plan

    def patient(self) -> None:
        """ITI TF-2b §3.57.4.1.3 (as ITI-42): the SubmissionSet's patient is known, not merged."""
        pid = self.ss.patient_id or ""
        if state_in(self.conn, pid).status is not PatientStatus.ACTIVE:
            self.errors.append(
                XDSUnknownPatientId(
                    f"patientId {pid} is not an active patient of the registry",
                    location=self.ss.entry_uuid,
                )
            )

    def _once(self, logical_id: str, where: str) -> bool:
        if logical_id in self.logical_seen:
            self.errors.append(
                XDSMetadataUpdateError(
                    f"{where}: a second operation on logical object {logical_id} in one request",
                    location=logical_id,
                )
            )
            return False
        self.logical_seen.add(logical_id)
        return True

    def new_version(self, obj: DocumentEntry | Folder) -> None:
        """ITI TF-2b §3.57.4.1.3.3.1/.3.3.2 (Update DocumentEntry / Folder metadata)."""
        kind = type(obj).__name__
        where = f"{kind} {obj.entry_uuid}"
        lid = obj.logical_id
        if not lid or lid == obj.entry_uuid:
            self.errors.append(
                XDSMetadataUpdateError(
                    f"{where}: a first version is registered with ITI-42; ITI-57 submits new "
                    "versions (lid = the logicalID of a registered object, id new)",
                    location=obj.entry_uuid,
                )
            )
            return
        member = self.members.get(obj.entry_uuid)
        problem = _membership_problem(member)
        if problem or member is None:
            self.errors.append(
                XDSMetadataUpdateOperationError(f"{where}: {problem}", location=obj.entry_uuid)
            )
            return
        assert member.previous_version is not None
        table = document_entry if isinstance(obj, DocumentEntry) else folder
        versions = self.conn.execute(
            select(table.c.id, table.c.version, table.c.status, table.c.unique_id,
                   table.c.patient_id)
            .where(table.c.logical_id == lid)
            .order_by(table.c.version.desc())
        ).all()  # fmt: skip
        if not versions:
            self.errors.append(
                XDSMetadataVersionError(
                    f"{where}: no {kind} with logicalID {lid} in the registry", location=lid
                )
            )
            return
        latest = versions[0]
        if int(member.previous_version) != latest.version:
            self.errors.append(
                XDSMetadataVersionError(
                    f"{where}: PreviousVersion {member.previous_version} is not the latest "
                    f"version ({latest.version}) of {lid}",
                    location=lid,
                )
            )
            return
        if not self._once(lid, where):
            return
        if obj.unique_id != latest.unique_id:
            self.errors.append(
                XDSMetadataIdentifierError(
                    f"{where}: uniqueId {obj.unique_id} is not the uniqueId {latest.unique_id} "
                    f"of logical object {lid}",
                    location=obj.entry_uuid,
                )
            )
            return
        if obj.patient_id != latest.patient_id:
            self.patient_change(obj, [str(r.id) for r in versions], where)
        propagate = (member.association_propagation or "yes").lower() != "no"
        self.plan.versions.append(
            _Version(obj, latest.version + 1, str(latest.status), str(latest.id), propagate)
        )
        if propagate:
            self.propagate(obj, str(latest.id))

    def patient_change(
        self, obj: DocumentEntry | Folder, version_ids: list[str], where: str
    ) -> None:
        """ITI TF-2b §3.57.4.1.3.3.1.1: a new patientId only for an object no Folder membership
        or document relationship ties to other objects."""
        a = association.c
        if isinstance(obj, DocumentEntry):
            ties = or_(
                a.source_id.in_(select(folder.c.id)),
                a.association_type.in_(_RELATIONSHIPS),
            )
            ends = or_(a.target_id.in_(version_ids), a.source_id.in_(version_ids))
        else:
            ties = a.association_type == v.HAS_MEMBER
            ends = a.source_id.in_(version_ids)
        tied = self.conn.execute(select(a.id).where(ends, ties).limit(1)).first()
        if tied is not None:
            self.errors.append(
                XDSPatientIDReconciliationError(
                    f"{where}: patientId cannot change from that of {obj.logical_id}: the object "
                    f"is tied to others (association {tied.id})",
                    location=obj.entry_uuid,
                )
            )

    def propagate(self, obj: DocumentEntry | Folder, previous: str) -> None:
        """AssociationPropagation (default yes): the previous version's Folder memberships
        (Folder -> DocumentEntry HasMember) are made for the new version. ITI TF-2b
        §3.57.4.1.3.3.1."""
        a = association.c
        if isinstance(obj, DocumentEntry):
            query = select(a.source_id).where(
                a.target_id == previous,
                a.association_type == v.HAS_MEMBER,
                a.status == v.STATUS_APPROVED,
                a.source_id.in_(select(folder.c.id)),
            )
            pairs = [(str(s), obj.entry_uuid) for s in self.conn.execute(query).scalars()]
        else:
            query = select(a.target_id).where(
                a.source_id == previous,
                a.association_type == v.HAS_MEMBER,
                a.status == v.STATUS_APPROVED,
                a.target_id.in_(select(document_entry.c.id)),
            )
            pairs = [(obj.entry_uuid, str(t)) for t in self.conn.execute(query).scalars()]
        for source, target in pairs:
            self.plan.propagated.append(
                Association(
                    entry_uuid=f"urn:uuid:{uuid.uuid4()}",
                    association_type=v.HAS_MEMBER,
                    source_object=source,
                    target_object=target,
                    availability_status=v.STATUS_APPROVED,
                )
            )
            self.plan.touched_folders.add(source)

    def status_change(self, assoc: Association) -> None:
        """ITI TF-2b §3.57.4.1.3.3.3 (Update availabilityStatus)."""
        where = f"UpdateAvailabilityStatus association {assoc.entry_uuid}"
        original, new = self.statuses[assoc.entry_uuid]
        if assoc.source_object != self.ss.entry_uuid:
            self.errors.append(
                XDSMetadataUpdateOperationError(
                    f"{where}: its sourceObject must be the SubmissionSet",
                    location=assoc.entry_uuid,
                )
            )
            return
        target = assoc.target_object
        if target in self.local:
            self.local_status_change(assoc, original, new, where)
            return
        kind, row = self._find(target)
        if kind == "":
            self.errors.append(
                UnresolvedReferenceException(f"{where}: no object {target}", location=target)
            )
            return
        if kind == "SubmissionSet":
            self.errors.append(
                XDSMetadataUpdateError(
                    f"{where}: a SubmissionSet's availabilityStatus cannot be changed",
                    location=target,
                )
            )
            return
        table = {"DocumentEntry": document_entry, "Folder": folder, "Association": association}[
            kind
        ]
        logical = target
        if kind != "Association":
            logical = str(row.logical_id)
            newest = self.conn.execute(
                select(table.c.version)
                .where(table.c.logical_id == logical)
                .order_by(table.c.version.desc())
                .limit(1)
            ).scalar()
            if newest != row.version:
                self.errors.append(
                    XDSMetadataVersionError(
                        f"{where}: {target} is version {row.version}, not the latest ({newest}) "
                        f"of {logical}",
                        location=target,
                    )
                )
                return
        if not self._once(logical, where):
            return
        if row.status != original:
            self.errors.append(
                XDSMetadataUpdateError(
                    f"{where}: {target} is {_short(str(row.status))}, not "
                    f"{_short(original)} (OriginalStatus)",
                    location=target,
                )
            )
            return
        self.plan.status_changes.append((table, target, original, new))

    def local_status_change(self, assoc: Association, original: str, new: str, where: str) -> None:
        """UpdateAvailabilityStatus of an object this request submits: an association or a new
        version is registered with NewStatus when OriginalStatus is the status it would have
        (ITI TF-2b §3.57.4.1.3.3.3; NIST 20003, 20004, 20005), else XDSMetadataUpdateError."""
        target = assoc.target_object
        version = next((p for p in self.plan.versions if p.obj.entry_uuid == target), None)
        if target in self.new_versions:
            if version is None:
                return  # the new version itself was refused: its error is reported
            if version.status != original:
                self.errors.append(
                    XDSMetadataUpdateError(
                        f"{where}: the new version {target} is {_short(version.status)}, not "
                        f"{_short(original)} (OriginalStatus)",
                        location=target,
                    )
                )
                return
            version.status = new  # NIST 20004: a new version deprecated in the same request
            return
        if target in self.plan.initial_status or original != v.STATUS_APPROVED:
            self.errors.append(
                XDSMetadataUpdateError(
                    f"{where}: association {target} is submitted Approved, once",
                    location=target,
                )
            )
            return
        self.plan.initial_status[target] = new

    def submitted_association(self, assoc: Association) -> None:
        """ITI TF-2b §3.57.4.1.3.3.4 (Submit Association): between registered, Approved objects
        of one patient; the association a member of the SubmissionSet."""
        where = f"Association {assoc.entry_uuid}"
        if not self._submittable(assoc, where):
            return
        patients: list[str] = []
        for end in (assoc.source_object, assoc.target_object):
            if end in self.new_versions:
                patient = self._new_version_end(end, assoc, where)
                if patient is None:
                    return
                patients.append(patient)
                continue
            kind, row = self._find(end)
            if kind == "":
                self.errors.append(
                    UnresolvedReferenceException(f"{where}: no object {end}", location=end)
                )
                return
            if kind in {"DocumentEntry", "Folder"}:
                if row.status != v.STATUS_APPROVED:
                    self.errors.append(
                        XDSMetadataUpdateError(
                            f"{where}: {end} is {_short(str(row.status))}; associations are made "
                            "between Approved objects",
                            location=end,
                        )
                    )
                    return
                patients.append(str(row.patient_id))
                if kind == "Folder":
                    self.plan.touched_folders.add(end)
        if self._duplicate(assoc, where):
            return
        if len(set(patients)) > 1 or (patients and patients[0] != self.ss.patient_id):
            self.errors.append(
                XDSPatientIDReconciliationError(
                    f"{where}: its ends and the SubmissionSet belong to different patients "
                    f"({', '.join(dict.fromkeys([*patients, self.ss.patient_id or '']))})",
                    location=assoc.entry_uuid,
                )
            )

    def _submittable(self, assoc: Association, where: str) -> bool:
        """The form of a submitted association: not a replacement, a member of the
        SubmissionSet without versions. False (with the error) otherwise."""
        problem: XDSError | None = None
        member = self.members.get(assoc.entry_uuid)
        if assoc.association_type in {v.RPLC, v.XFRM_RPLC}:
            problem = XDSMetadataUpdateError(
                f"{where}: a replacement is registered with ITI-42, not submitted as an "
                "association",
                location=assoc.entry_uuid,
            )
        elif member is None:
            problem = XDSMetadataUpdateOperationError(
                f"{where}: a submitted association is a HasMember member of the SubmissionSet",
                location=assoc.entry_uuid,
            )
        elif member.previous_version is not None:
            problem = XDSMetadataUpdateOperationError(
                f"{where}: associations have no versions (PreviousVersion on its membership)",
                location=assoc.entry_uuid,
            )
        if problem is not None:
            self.errors.append(problem)
        return problem is None

    def _duplicate(self, assoc: Association, where: str) -> bool:
        """True (an XDSMetadataUpdateError) when the registry holds the same association
        (type, source, target) and it is not Deprecated (NIST 20008)."""
        a = association.c
        same = self.conn.execute(
            select(a.id).where(
                a.association_type == assoc.association_type,
                a.source_id == assoc.source_object,
                a.target_id == assoc.target_object,
                a.status != v.STATUS_DEPRECATED,
            )
        ).first()
        if same is None:
            return False
        self.errors.append(
            XDSMetadataUpdateError(
                f"{where}: the registry holds this association already ({same.id})",
                location=assoc.entry_uuid,
            )
        )
        return True

    def _new_version_end(self, end: str, assoc: Association, where: str) -> str | None:
        """The patient of a new version an association of this request refers to, or None
        (an error) unless that version is submitted with AssociationPropagation no (NIST
        20006)."""
        member = self.members.get(end)
        if member is None or (member.association_propagation or "yes").lower() != "no":
            self.errors.append(
                XDSMetadataUpdateOperationError(
                    f"{where}: an association to the new version {end} is submitted with "
                    "AssociationPropagation no on that version",
                    location=assoc.entry_uuid,
                )
            )
            return None
        return self.new_versions[end].patient_id or ""

    def _find(self, object_id: str) -> tuple[str, Any]:
        for kind, table in (
            ("DocumentEntry", document_entry),
            ("Folder", folder),
            ("Association", association),
            ("SubmissionSet", submission_set),
        ):
            row = self.conn.execute(select(table).where(table.c.id == object_id)).first()
            if row is not None:
                return kind, row
        return "", None


def _membership_problem(member: Association | None) -> str:
    """What is wrong with the HasMember that makes a new version a SubmissionSet member."""
    if member is None:
        return "a new version is a HasMember member of the SubmissionSet"
    if member.association_type != v.HAS_MEMBER:
        return "a new version is a HasMember member of the SubmissionSet"
    status = member.submission_set_status
    if status is not None and status != v.SUBMISSION_SET_STATUS_ORIGINAL:
        return "its HasMember association has SubmissionSetStatus Original"
    previous = member.previous_version
    if previous is None:
        return "its HasMember association needs the PreviousVersion slot"
    if not previous.isdigit() or int(previous) < 1:
        return f"PreviousVersion {previous!r} is not a version number"
    propagation = member.association_propagation
    if propagation is not None and propagation.lower() not in {"yes", "no"}:
        return f"AssociationPropagation {propagation!r} is neither yes nor no"
    return ""


def _short(status: str) -> str:
    return status.rsplit(":", 1)[-1]


def _plan(conn: Connection, submission: Submission, statuses: dict[str, tuple[str, str]]) -> _Plan:
    return _Planner(conn, submission, statuses).run()


def _update_errors(
    conn: Connection, submission: Submission, statuses: dict[str, tuple[str, str]]
) -> list[XDSError]:
    """The Metadata Update errors of a request whose metadata is invalid (best effort: what
    the planner can judge of it; nothing when it cannot)."""
    try:
        _plan(conn, submission, statuses)
    except XDSErrorList as exc:
        return [e for e in exc.errors if e.code.startswith(("XDSMetadata", "XDSPatientID"))]
    except (TypeError, ValueError, AttributeError):
        return []
    return []


def _apply(conn: Connection, submission: Submission, plan: _Plan, stamp: str) -> UpdateResult:
    """Write the request's rows and the plan's effects, inside the caller's transaction."""
    assert submission.submission_set is not None
    ss = submission.submission_set
    seq = time.time_ns()
    result = UpdateResult(submission_set_id=ss.entry_uuid)
    conn.execute(insert(submission_set), [rows.submission_set_row(ss, seq=seq)])
    side: dict[Table, list[dict[str, str]]] = {object_code: [], object_author: [], reference_id: []}
    side[object_code].extend(rows.code_rows(ss))
    side[object_author].extend(rows.author_rows(ss))
    for version in plan.versions:
        seq += 1
        obj = version.obj
        obj.availability_status = version.status
        obj.version = str(version.number)
        if isinstance(obj, DocumentEntry):
            row = rows.document_entry_row(obj, submission_set_id=ss.entry_uuid, seq=seq)
            side[object_author].extend(rows.author_rows(obj))
            side[reference_id].extend(rows.reference_id_rows(obj))
            table = document_entry
            if obj.hash and obj.unique_id:
                conn.execute(
                    update(document_unique_id)
                    .where(document_unique_id.c.unique_id == obj.unique_id)
                    .values(hash=obj.hash.lower(), size=obj.size)
                )
        else:
            row = rows.folder_row(obj, seq=seq)
            table = folder
        row["version"] = version.number
        row["status"] = version.status
        conn.execute(insert(table), [row])
        side[object_code].extend(rows.code_rows(obj))
        _set_status(conn, table, version.previous, version.status, v.STATUS_DEPRECATED)
        result.new_versions[obj.entry_uuid] = version.number
        result.deprecated.append(version.previous)
    assoc_rows = []
    for assoc in [*submission.associations, *plan.propagated]:
        seq += 1
        assoc.availability_status = plan.initial_status.get(
            assoc.entry_uuid, assoc.availability_status or v.STATUS_APPROVED
        )
        assoc_rows.append(rows.association_row(assoc, seq=seq))
        result.associations.append(assoc.entry_uuid)
    if assoc_rows:
        conn.execute(insert(association), assoc_rows)
    for table, target, original, new in plan.status_changes:
        _set_status(conn, table, target, original, new)
        result.status_changes[target] = new
    for table, values in side.items():
        if values:
            conn.execute(insert(table), values)
    if plan.touched_folders:
        conn.execute(
            update(folder)
            .where(folder.c.id.in_(plan.touched_folders))
            .values(last_update_time=stamp)
        )
    result.patient_ids = list(dict.fromkeys(p for p in submission.patient_ids() if p))
    return result


def _set_status(conn: Connection, table: Table, object_id: str, original: str, new: str) -> None:
    """Change one object's availabilityStatus if it is still ``original`` (else a concurrent
    update won: XDSRegistryBusy, the whole request rolls back)."""
    changed = conn.execute(
        update(table).where(table.c.id == object_id, table.c.status == original).values(status=new)
    )
    if changed.rowcount != 1:
        raise XDSRegistryBusy(f"{object_id} changed meanwhile; send the update again")


def update_in_process(updater: MetadataUpdater, request: Element) -> Element:
    """ITI-57 from an actor of this process (the imaging source deprecating a manifest, IOCM):
    lcm:SubmitObjectsRequest in, rs:RegistryResponse out, XDS errors answered as a Failure
    RegistryResponse as the SOAP boundary answers them. Same rules as over SOAP.

    Standard: ITI TF-2b §3.57.4.1, §3.57.4.2.
    """
    try:
        updater.update(ebrim.parse_submit_objects_request(request))
    except XDSError as error:
        return failure_body(TRANSACTION, [error])
    return build_registry_response(status_for([]), [])


def handle(request: SoapRequest, ctx: Context, *, updater: MetadataUpdater) -> SoapResponse:
    """Serve one ITI-57 request: lcm:SubmitObjectsRequest in, rs:RegistryResponse out.

    Errors propagate as XDSError to the SOAP boundary (a Failure RegistryResponse).
    Standard: ITI TF-2b §3.57.4.1, §3.57.4.2.
    """
    submission = ebrim.parse_submit_objects_request(request.body)
    ctx.audit.update(submission.audit_facts(), reply_to=request.addressing.reply_to)
    updater.update(submission)
    return SoapResponse(body=build_registry_response(status_for([]), []))


def bind(endpoint: Endpoint, updater: MetadataUpdater) -> None:
    """Bind the ITI-57 handler at the registry endpoint (``/xds/registry``)."""
    endpoint.bind(TRANSACTION, functools.partial(handle, updater=updater))
