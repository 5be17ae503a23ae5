"""The DICOM listener as a secure node: TLS, the access check per association, transfer audit.

:class:`DicomSecurity` is handed to :class:`gateway.imaging.storescp.StoreSCP`: its
``ssl_context`` secures the listener (handshake in the association thread), the
``EVT_REQUESTED`` handler rejects an association whose certificate the access rules do not grant
``C-STORE``, and the instances stored over each association are audited when it ends (one DICOM
Instances Transferred record per patient).

Standards: DICOM PS3.15 Annex B.1/B.9 (TLS profiles), PS3.8 §9.3.4 (A-ASSOCIATE-RJ: result 1
rejected-permanent, source 1 service-user, reason 1 no-reason-given), PS3.15 A.5.3.7 (DICOM
Instances Transferred); ITI TF-1 §9.4 (access control by the secure node).
"""

from __future__ import annotations

import logging
import ssl
import threading
from collections import defaultdict
from typing import Any

from pynetdicom import evt

from gateway.audit import codes, events
from gateway.audit.model import RESPONDER, StudyRef
from gateway.imaging.association_log import log_refused, peer_of
from gateway.imaging.index import InstanceRecord
from gateway.security.access import AccessRules
from gateway.security.peer import peer_from_ssl

log = logging.getLogger("gateway.imaging")

TRANSACTION = "C-STORE"


class DicomSecurity:
    """TLS context, access rules and audit trail of one DICOM listener."""

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext | None,
        rules: AccessRules | None,
        trail: Any | None,
        ae_title: str,
    ) -> None:
        self.ssl_context = ssl_context
        self.rules = rules
        self.trail = trail
        self.ae_title = ae_title
        self._lock = threading.Lock()
        self._stored: dict[int, list[InstanceRecord]] = defaultdict(list)

    def handlers(self) -> list[Any]:
        """pynetdicom notification handlers to add to the listener's."""
        handlers: list[Any] = []
        if self.rules is not None:
            handlers.append((evt.EVT_REQUESTED, self.on_requested))
        if self.trail is not None:
            handlers.append((evt.EVT_RELEASED, self.on_ended))
            handlers.append((evt.EVT_ABORTED, self.on_ended))
        return handlers

    def on_requested(self, event: evt.Event) -> None:
        """Reject (PS3.8 §9.3.4) an association the access rules do not grant C-STORE."""
        assert self.rules is not None
        assoc = event.assoc
        sock = getattr(getattr(assoc.dul, "socket", None), "socket", None)
        peer = peer_from_ssl(sock if isinstance(sock, ssl.SSLSocket) else None)
        if self.rules.allowed(peer, TRANSACTION):
            return
        reason = self.rules.explain(peer, TRANSACTION)
        calling = str(getattr(assoc.requestor.primitive, "calling_ae_title", "") or "")
        log_refused(calling, peer_of(assoc), f"access rules: {reason}", level=logging.WARNING)
        if self.trail is not None:
            self.trail.record(
                events.access_refused(
                    transaction=TRANSACTION,
                    remote_host=assoc.requestor.address,
                    peer_subject=peer.subject if peer else None,
                    local=self.trail.local_participant(self.ae_title),
                    reason=reason,
                )
            )
        assoc.acse.send_reject(0x01, 0x01, 0x01)
        assoc.kill()  # without it the reject never leaves (pynetdicom waits for its own reply)

    def stored(self, assoc: Any, record: InstanceRecord) -> None:
        """Remember an instance stored over ``assoc`` (called by the C-STORE handler)."""
        if self.trail is None:
            return
        with self._lock:
            self._stored[id(assoc)].append(record)

    def on_ended(self, event: evt.Event) -> None:
        """Audit the instances received over the association that just ended, per patient."""
        assert self.trail is not None
        with self._lock:
            records = self._stored.pop(id(event.assoc), [])
        if not records:
            return
        aborted = event.event is evt.EVT_ABORTED
        by_patient: dict[str | None, list[InstanceRecord]] = defaultdict(list)
        for record in records:
            by_patient[record.patient_id].append(record)
        assoc = event.assoc
        for patient_id, items in by_patient.items():
            self.trail.record(
                events.dicom_transfer(
                    side=RESPONDER,
                    calling_ae=assoc.requestor.ae_title,
                    called_ae=assoc.acceptor.ae_title or self.ae_title,
                    calling_host=assoc.requestor.address,
                    called_host=assoc.acceptor.address,
                    patient_id=patient_id,
                    studies=study_refs(items),
                    outcome=codes.MINOR_FAILURE if aborted else codes.SUCCESS,
                    outcome_description="association aborted" if aborted else None,
                )
            )


def study_refs(records: list[InstanceRecord]) -> list[StudyRef]:
    """Group stored instances by study (PS3.15 A.5.3.7: one ParticipantObject per study)."""
    studies: dict[str, list[InstanceRecord]] = defaultdict(list)
    for record in records:
        studies[record.study_instance_uid].append(record)
    return [
        StudyRef(
            study_uid=study_uid,
            series_uids=tuple(dict.fromkeys(r.series_instance_uid for r in items)),
            instances=tuple((r.sop_class_uid, r.sop_instance_uid) for r in items),
        )
        for study_uid, items in studies.items()
    ]
