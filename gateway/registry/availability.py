"""The registry's narrow in-process interface for an availability status change.

:func:`deprecate_document` sets one Approved DocumentEntry to Deprecated, the change that the XDS
Metadata Update option makes by ITI-57 Update Document Set with an ``UpdateAvailabilityStatus``
association (ITI TF-2b §3.57.4.1.3.3.2; ITI TF-3 §4.1.x availabilityStatus). The imaging
document source uses it in-process when every instance of a published study was rejected
(IHE RAD IOCM; ``gateway.imaging.rejection``): the manifest stops being found by ITI-18 with the
default status Approved. It writes no SubmissionSet and no association: the trail of the change
is the imaging source's log. Where an ITI-57 client exists, the source should go through it.
"""

from __future__ import annotations

from sqlalchemy import update

from gateway.metadata import vocabulary as v
from gateway.registry.database import Database
from gateway.registry.schema import document_entry


def deprecate_document(db: Database, entry_uuid: str) -> bool:
    """Set an Approved DocumentEntry (by entryUUID) to Deprecated in one transaction; True when
    it changed, False when it was not Approved (already Deprecated, or unknown).

    Standard: ITI TF-3 §4.2.3.2.x availabilityStatus; ITI TF-2b §3.57 (UpdateAvailabilityStatus).
    """
    with db.write() as conn:
        changed = conn.execute(
            update(document_entry)
            .where(document_entry.c.id == entry_uuid)
            .where(document_entry.c.status == v.STATUS_APPROVED)
            .values(status=v.STATUS_DEPRECATED)
        )
        return bool(changed.rowcount == 1)
