"""What patient consent (IHE BPPC, ``gateway.consent``) needs to know of the registry: read-only.

- :meth:`ConsentView.owners`: for registry objects (DocumentEntry, SubmissionSet, Folder) by id,
  their patient, the sourceId of the SubmissionSet that registered them (who published them) and
  whether they are BPPC consent documents;
- :meth:`ConsentView.documents`: the same for DocumentEntries by uniqueId (ITI-43 retrievals),
  of the latest version;
- :meth:`ConsentView.consents`: a patient's Approved BPPC consent documents with the policy OIDs
  of their eventCodeList, newest first.

BPPC consent documents are those with formatCode ``urn:ihe:iti:bppc:2007`` or
``urn:ihe:iti:bppc-sd:2007`` (ITI TF-3 §5.1.2.3.x, BPPC content; ITI TF-1 §19.2.2); their
eventCodeList carries the policy OIDs the patient acknowledged (ITI TF-3 §5.1.2.4.x).

Registry operations change what these say, as they change every query: a version made by ITI-57
(a consent document or a report moved to another patient) is the object's patient from then on,
the previous version being Deprecated (ITI TF-2b §3.57; a Deprecated consent document no longer
counts); an object ITI-62 removed is gone, its consent with it. Who published an object stays
the sourceId of the SubmissionSet that registered its first version: a correction sent with
ITI-57 by someone else (a registry operator) does not take the document from its publisher.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from gateway.metadata import vocabulary as v
from gateway.registry.database import Database
from gateway.registry.schema import association, document_entry, folder, object_code, submission_set

BPPC_FORMAT_CODES = frozenset({"urn:ihe:iti:bppc:2007", "urn:ihe:iti:bppc-sd:2007"})
_CHUNK = 500


@dataclass(frozen=True, slots=True, kw_only=True)
class Owner:
    """Whose a registry object is, as consent sees it."""

    patient_id: str
    source_id: str | None  # SubmissionSet.sourceId of the submission that registered it
    consent: bool = False  # a BPPC consent DocumentEntry


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsentDocument:
    """One registered BPPC consent document of a patient."""

    entry_uuid: str
    unique_id: str
    creation_time: str  # normalised DTM (registry.schema), "" when absent
    seq: int  # registration order
    policies: frozenset[str]  # eventCodeList code values


def _chunks(values: Sequence[str]) -> Iterable[list[str]]:
    for start in range(0, len(values), _CHUNK):
        yield list(values[start : start + _CHUNK])


def _entries_with_publisher() -> Any:
    """DocumentEntries joined with the SubmissionSet that registered their first version (the
    publisher), or their own when that version is gone."""
    de, ss = document_entry.c, submission_set.c
    first = document_entry.alias("first_version")
    return document_entry.outerjoin(
        first, (first.c.logical_id == de.logical_id) & (first.c.version == 1)
    ).outerjoin(
        submission_set, ss.id == func.coalesce(first.c.submission_set_id, de.submission_set_id)
    )


class ConsentView:
    """Read-only look-ups over the registry's tables for ``gateway.consent``."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def owners(self, ids: Iterable[str]) -> dict[str, Owner]:
        """DocumentEntries, SubmissionSets and Folders by id (entryUUID); unknown ids left out."""
        wanted = sorted(set(ids))
        found: dict[str, Owner] = {}
        de, ss, fd, a = document_entry.c, submission_set.c, folder.c, association.c
        first_fd = folder.alias("first_folder")
        with self.db.read() as conn:
            for chunk in _chunks(wanted):
                rows = conn.execute(
                    select(de.id, de.patient_id, de.format_code, ss.source_id)
                    .select_from(_entries_with_publisher())
                    .where(de.id.in_(chunk))
                ).all()
                for row in rows:
                    found[row.id] = Owner(
                        patient_id=row.patient_id,
                        source_id=row.source_id,
                        consent=row.format_code in BPPC_FORMAT_CODES,
                    )
                for sset in conn.execute(
                    select(ss.id, ss.patient_id, ss.source_id).where(ss.id.in_(chunk))
                ):
                    found[sset.id] = Owner(patient_id=sset.patient_id, source_id=sset.source_id)
                folders = conn.execute(
                    select(fd.id, fd.patient_id, ss.source_id)
                    .select_from(
                        folder.outerjoin(
                            first_fd,
                            (first_fd.c.logical_id == fd.logical_id) & (first_fd.c.version == 1),
                        )
                        .outerjoin(
                            association,
                            (a.target_id == func.coalesce(first_fd.c.id, fd.id))
                            & (a.association_type == str(v.HAS_MEMBER))
                            & (a.submission_set_status == "Original"),
                        )
                        .outerjoin(submission_set, ss.id == a.source_id)
                    )
                    .where(fd.id.in_(chunk))
                ).all()
                for item in folders:
                    found.setdefault(
                        item.id, Owner(patient_id=item.patient_id, source_id=item.source_id)
                    )
        return found

    def documents(self, unique_ids: Iterable[str]) -> dict[str, Owner]:
        """DocumentEntries by uniqueId, as their latest version says (the versions of one
        document share its uniqueId; ITI-57 may have moved it to another patient)."""
        wanted = sorted(set(unique_ids))
        found: dict[str, Owner] = {}
        de, ss = document_entry.c, submission_set.c
        with self.db.read() as conn:
            for chunk in _chunks(wanted):
                rows = conn.execute(
                    select(de.unique_id, de.patient_id, de.format_code, ss.source_id)
                    .select_from(_entries_with_publisher())
                    .where(de.unique_id.in_(chunk))
                    .order_by(de.version)  # the latest version is read last and stays
                ).all()
                for row in rows:
                    found[row.unique_id] = Owner(
                        patient_id=row.patient_id,
                        source_id=row.source_id,
                        consent=row.format_code in BPPC_FORMAT_CODES,
                    )
        return found

    def consents(self, patient_ids: Iterable[str]) -> dict[str, list[ConsentDocument]]:
        """Each patient's Approved BPPC consent documents, newest first (creationTime, then
        registration order). Standard: ITI TF-1 §19.2 (the most recent consent applies)."""
        wanted = sorted(set(patient_ids))
        found: dict[str, list[ConsentDocument]] = {p: [] for p in wanted}
        de, oc = document_entry.c, object_code.c
        with self.db.read() as conn:
            for chunk in _chunks(wanted):
                rows = conn.execute(
                    select(de.id, de.unique_id, de.patient_id, de.creation_time, de.seq)
                    .where(de.patient_id.in_(chunk))
                    .where(de.status == str(v.STATUS_APPROVED))
                    .where(de.format_code.in_(sorted(BPPC_FORMAT_CODES)))
                ).all()
                ids = [row.id for row in rows]
                codes: dict[str, set[str]] = {i: set() for i in ids}
                for sub in _chunks(ids):
                    for code in conn.execute(
                        select(oc.object_id, oc.code)
                        .where(oc.object_id.in_(sub))
                        .where(oc.attribute == "eventCodeList")
                    ):
                        codes[code.object_id].add(code.code)
                for row in rows:
                    found[row.patient_id].append(
                        ConsentDocument(
                            entry_uuid=row.id,
                            unique_id=row.unique_id,
                            creation_time=row.creation_time or "",
                            seq=row.seq,
                            policies=frozenset(codes[row.id]),
                        )
                    )
        for documents in found.values():
            documents.sort(key=lambda d: (d.creation_time, d.seq), reverse=True)
        return found
