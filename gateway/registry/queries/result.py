"""From selected rows to the objects of an AdhocQueryResponse: LeafClass or ObjectRef.

LeafClass: every object rebuilt from its ``body`` with the columns that change after registration
applied (``codec.from_row``: availabilityStatus, Folder lastUpdateTime) and the registry's
``lid``/version of DocumentEntries and Folders (ebRIM 3.0 §2.5.1; version 1 as registered by
ITI-42). ObjectRef: the id, and ``home`` when known. SubmissionSets come first, then Folders,
DocumentEntries, Associations.

Standard: ITI TF-2 §3.18.4.1.3 (returnType LeafClass / ObjectRef; XDSResultNotSinglePatient),
ITI TF-2 §3.18.4.1.2.3.8 (homeCommunityId), rev. 19.0.
"""

from __future__ import annotations

from sqlalchemy import Connection

from gateway.errors import XDSResultNotSinglePatient
from gateway.metadata.model import ObjectRef, RegistryObject
from gateway.registry import codec, patients
from gateway.registry.queries.sql import Found

# (model kind, attribute of Found) in response order
_KINDS = (
    ("SubmissionSet", "submission_sets"),
    ("Folder", "folders"),
    ("DocumentEntry", "documents"),
    ("Association", "associations"),
)


def leaf_objects(found: Found, home: str | None = None) -> list[RegistryObject]:
    """The full model objects of the rows (``home`` filled in where none was registered)."""
    objects: list[RegistryObject] = []
    for kind, attribute in _KINDS:
        for row in getattr(found, attribute):
            obj = codec.from_row(kind, row)
            obj.entry_uuid = row["id"]
            if "logical_id" in row:  # DocumentEntry, Folder: lid and version the registry keeps
                obj.logical_id = row["logical_id"]  # type: ignore[union-attr]
                obj.version = str(row["version"])  # type: ignore[union-attr]
            if home and not obj.home_community_id:
                obj.home_community_id = home
            objects.append(obj)
    return objects


def object_refs(found: Found, home: str | None = None) -> list[RegistryObject]:
    """An ``rim:ObjectRef`` per row: id, and ``home`` (registered, else this community's)."""
    refs: list[RegistryObject] = []
    for _kind, attribute in _KINDS:
        for row in getattr(found, attribute):
            home_id = row.get("home_community_id") or home
            refs.append(ObjectRef(entry_uuid=row["id"], home_community_id=home_id))
    return refs


def check_single_patient(conn: Connection, found: Found) -> None:
    """Refuse a LeafClass answer holding metadata of more than one patient.

    Ids merged into one another count as one patient (ITI TF-2 §3.8.4.2.3).
    Standard: ITI TF-2 §3.18.4.1.3 (XDSResultNotSinglePatient; NIST test 12368).
    Raises: XDSResultNotSinglePatient.
    """
    rows = [*found.documents, *found.submission_sets, *found.folders]
    pids = {row["patient_id"] for row in rows}
    if len(pids) < 2:
        return
    survivors = {patients.resolve_in(conn, pid) or pid for pid in pids}
    if len(survivors) > 1:
        raise XDSResultNotSinglePatient(
            f"the LeafClass result would hold metadata of {len(survivors)} patients; "
            "ask for ObjectRef or query one patient at a time"
        )
