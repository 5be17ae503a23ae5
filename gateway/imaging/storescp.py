"""The DICOM listener of the imaging document source: C-ECHO and C-STORE SCP.

Every storage SOP class is accepted with the uncompressed transfer syntaxes and the usual
compressed ones, and data are stored in the transfer syntax they arrive in (no coercion,
PS3.4 §B.4.1). Which syntax is accepted in each proposed presentation context is decided by one
function, ``gateway.imaging.negotiation.SyntaxChooser.choose``: by default the first one the
sender proposed among those supported, so a sender that proposes JPEG Lossless before Explicit
VR Little Endian in one context sends, and we store, its compressed data unchanged; or the
operator's order (``imaging_source.transfer_syntax_preference``).

The protocol runs on the gateway's own acceptor (:mod:`gateway.imaging.net`; why not pynetdicom
is told there), one thread per association: a data set is received fragment by fragment into
memory or a file of the store (:mod:`gateway.imaging.cstore`), checked and put in place
(:class:`gateway.imaging.ingest.Ingest`), and its C-STORE-RSP leaves once the instance survives a
power loss: its file flushed, its index row flushed too or, for a new instance on SQLite, covered
by the journal and committed right after the answer (:mod:`gateway.imaging.journal`). Each
association ends with one INFO log line: who sent how many instances, and how it ended.

Standards: DICOM PS3.4 Annex A (Verification), Annex B (Storage; statuses Table B.2-1), PS3.7
§9.1.1 (C-STORE), §9.1.5 (C-ECHO), PS3.8 §9.3 (association negotiation).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)
from pynetdicom import AllStoragePresentationContexts, evt

from gateway.imaging import cstore, negotiation
from gateway.imaging.association_log import log_received, log_refused, rejection_reason
from gateway.imaging.index import InstanceRecord
from gateway.imaging.ingest import Ingest
from gateway.imaging.net import dimse, pdu
from gateway.imaging.net.association import Association, Receiver, Timeouts
from gateway.imaging.net.negotiation import AcceptedContext, Policy
from gateway.imaging.net.server import AssociationServer
from gateway.metadata import transfer_syntaxes
from gateway.owners import StagingFolder, new_owner_id

log = logging.getLogger("gateway.imaging")

VERIFICATION = "1.2.840.10008.1.1"  # PS3.4 Annex A
UNCOMPRESSED_TRANSFER_SYNTAXES: tuple[str, ...] = (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
)
# PS3.5 Annex A / PS3.6 Annex A: JPEG, JPEG-LS, JPEG 2000, HTJ2K, RLE and the video syntaxes.
COMPRESSED_TRANSFER_SYNTAXES: tuple[str, ...] = transfer_syntaxes.COMPRESSED
ACCEPTED_TRANSFER_SYNTAXES: tuple[str, ...] = (
    UNCOMPRESSED_TRANSFER_SYNTAXES + COMPRESSED_TRANSFER_SYNTAXES
)
# Every storage SOP Class of PS3.4 Annex B (pynetdicom's table of them), and Verification.
STORAGE_SOP_CLASSES: frozenset[str] = frozenset(
    str(context.abstract_syntax) for context in AllStoragePresentationContexts
)
SUPPORTED: dict[str, frozenset[str]] = {
    **{sop_class: frozenset(ACCEPTED_TRANSFER_SYNTAXES) for sop_class in STORAGE_SOP_CLASSES},
    VERIFICATION: frozenset(UNCOMPRESSED_TRANSFER_SYNTAXES[:2]),
}

DEFAULT_MAX_PDU = 1024 * 1024  # what peers may send us in one P-DATA PDU (PS3.8 §D.1)
DEFAULT_MAX_ASSOCIATIONS = 64  # imaging_source.max_associations


def set_nodelay(event: evt.Event) -> None:
    """pynetdicom EVT_CONN_OPEN handler for the gateway's and the tests' SCUs: switch Nagle's
    algorithm off, so a sender waiting for each response does not wait for delayed ACKs too."""
    sock = getattr(getattr(event.assoc.dul, "socket", None), "socket", None)
    if isinstance(sock, socket.socket):
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError as exc:  # e.g. the peer is already gone
            log.debug("TCP_NODELAY not set: %s", exc)


@dataclass(slots=True)
class _Tally:
    """What one association stored (for its log line)."""

    instances: int = 0
    bytes: int = 0
    refused: int = 0


class StoreSCP:
    """A running (or startable) DICOM listener bound to an :class:`Ingest`."""

    def __init__(
        self,
        ingest: Ingest,
        *,
        ae_title: str,
        host: str = "127.0.0.1",
        port: int = 11112,
        maximum_pdu_size: int = DEFAULT_MAX_PDU,
        require_called_aet: bool = True,
        notify: Callable[[InstanceRecord, str], None] | None = None,
        security: Any | None = None,
        transfer_syntax_order: Sequence[str] = (),
        max_associations: int = DEFAULT_MAX_ASSOCIATIONS,
        timeouts: Timeouts | None = None,
    ) -> None:
        """``security``: a :class:`gateway.imaging.dicom_security.DicomSecurity` (TLS, access
        check, transfer audit), or None for a plain listener. ``transfer_syntax_order``: the
        listener's order of preference per presentation context; empty = the sender's order
        (``gateway.imaging.negotiation``)."""
        self.ingest = ingest
        self.security = security
        self.ae_title = ae_title
        self.host, self.port = host, port
        self.notify = notify
        self.max_associations = max_associations
        self.timeouts = timeouts or Timeouts()
        self.memory_limit = cstore.MEMORY_LIMIT  # a bigger data set is received into a file
        self.incoming_dir = ingest.store.incoming_dir  # where such a file is received (start())
        self.chooser = negotiation.SyntaxChooser(SUPPORTED, tuple(transfer_syntax_order))
        self.policy = Policy(
            ae_title=ae_title,
            abstract_syntaxes=frozenset(SUPPORTED),
            choose=self.chooser.choose,
            max_pdu=maximum_pdu_size,
            implementation_class_uid=cstore.IMPLEMENTATION_CLASS_UID,
            implementation_version_name=cstore.IMPLEMENTATION_VERSION_NAME,
            require_called_aet=require_called_aet,
        )
        self._server: AssociationServer | None = None
        self._staging: StagingFolder | None = None  # the incoming folder made by start()
        self._lock = threading.Lock()
        self._tallies: dict[int, _Tally] = {}

    def start(
        self, sock: socket.socket | None = None, *, incoming_dir: Path | None = None
    ) -> tuple[str, int]:
        """Listen (port 0 = ephemeral); return the bound (host, port). Raises: OSError.

        ``sock``: a socket already bound and listening (possibly shared with other processes
        accepting on it); without it the listener binds host and port. ``incoming_dir``: where
        data sets too big for memory are received, this process's own folder on the store's
        file system (the gateway passes ``<storage_dir>/.tmp/incoming/<owner>``); without it
        the listener makes that folder itself (``gateway.owners.StagingFolder``: removed at
        :meth:`stop`, and by the next start of any process once this one is gone), so
        processes sharing the storage folder never remove each other's files.
        """
        with self._lock:
            if self._server is None:
                self._start(sock, incoming_dir)
        return self.address

    def _start(self, sock: socket.socket | None, incoming_dir: Path | None) -> None:
        if incoming_dir is None:
            owner = self.ingest.index.owner or new_owner_id()
            self._staging = StagingFolder(self.ingest.store.incoming_dir, owner)
            incoming_dir = self._staging.path
        try:
            self.incoming_dir = incoming_dir
            self.incoming_dir.mkdir(parents=True, exist_ok=True)
            cstore.sweep(self.ingest.store.incoming_dir)  # loose files of earlier versions
            self.ingest.open_journal()  # re-indexes what a crash lost, before any C-STORE
            try:
                server = AssociationServer(
                    self.host,
                    self.port,
                    self._association,
                    max_associations=self.max_associations,
                    ssl_context=self.security.ssl_context if self.security else None,
                    listener=sock,
                )
                server.start()
            except BaseException:
                self.ingest.close_journal()
                raise
        except BaseException:
            self._close_staging()
            raise
        self._server = server
        log.info("DICOM listener %s on %s:%d", self.ae_title, *server.server_address)

    def _close_staging(self) -> None:
        staging, self._staging = self._staging, None
        if staging is not None:
            staging.close()

    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port). Raises RuntimeError before :meth:`start`."""
        if self._server is None:
            raise RuntimeError("the DICOM listener is not started")
        return self._server.server_address

    @property
    def server(self) -> AssociationServer | None:
        """The acceptor while running (tests inspect its associations)."""
        return self._server

    def stop(self, *, timeout: float = 10.0) -> None:
        """Stop accepting, let associations in flight finish (up to ``timeout``), then abort."""
        with self._lock:
            server, self._server = self._server, None
        if server is not None:
            server.stop(timeout)
            self.ingest.close_journal()
            self._close_staging()

    # -- the service the associations call (gateway.imaging.net.association.Service) ---------------
    def _association(self, sock: Any, remote: tuple[str, int], over_limit: bool) -> Association:
        return Association(
            sock,
            remote,
            policy=self.policy,
            service=self,
            timeouts=self.timeouts,
            over_limit=over_limit,
        )

    def admit(self, association: Association) -> str | None:
        """The access rules' word on the requestor (None: admitted; a refusal is logged and
        audited by the security)."""
        if self.security is None:
            return None
        host, port = association.remote[:2]
        reason: str | None = self.security.admit(
            association.sock, f"{host}:{port}", calling_ae=association.calling_ae
        )
        return reason

    def receiver(
        self, association: Association, context: AcceptedContext, command: dimse.Command
    ) -> Receiver:
        """A receiver storing the C-STORE-RQ's data set (PS3.7 §9.3.1.1)."""

        def stored(record: InstanceRecord) -> None:
            with self._lock:
                tally = self._tallies.setdefault(id(association), _Tally())
                tally.instances += 1
                tally.bytes += record.size
            log.debug("C-STORE from %s: stored %s", association.calling_ae, record.sop_instance_uid)
            if self.notify is not None:  # (record, calling AE title): ImagingSource's hook
                self.notify(record, association.calling_ae)
            if self.security is not None:  # audited when the association ends
                self.security.stored(association, record)

        def refused() -> None:
            with self._lock:
                self._tallies.setdefault(id(association), _Tally()).refused += 1

        return cstore.DataSetReceiver(
            self.ingest,
            sop_class_uid=command.uid(dimse.AFFECTED_SOP_CLASS_UID),
            sop_instance_uid=command.uid(dimse.AFFECTED_SOP_INSTANCE_UID),
            transfer_syntax_uid=context.transfer_syntax,
            calling_ae=association.calling_ae,
            on_stored=stored,
            memory_limit=self.memory_limit,
            incoming_dir=self.incoming_dir,
            on_refused=refused,
        )

    def ended(self, association: Association) -> None:
        """Log the association's outcome in one line (``gateway.imaging.association_log``);
        audit what it stored."""
        with self._lock:
            tally = self._tallies.pop(id(association), _Tally())
        host, port = association.remote[:2]
        peer = f"{host}:{port}"
        rejection = association.rejection
        if rejection is not None:
            if (rejection.source, rejection.reason) != (pdu.RJ_SERVICE_USER, pdu.NO_REASON_GIVEN):
                reason = rejection_reason(
                    rejection.source,
                    rejection.reason,
                    called_ae=association.called_ae,
                    our_ae=self.ae_title,
                )
                log_refused(association.calling_ae, peer, reason)
            # (1, 1, 1) is the access rules' refusal: the security logged and audited it
        elif not association.established:
            log.debug("DICOM connection from %s closed: %s", peer, association.detail)
        else:
            log_received(
                association.calling_ae,
                peer,
                stored=tally.instances,
                refused=tally.refused,
                nbytes=tally.bytes,
                seconds=time.monotonic() - association.started,
                aborted=association.outcome != "released",
            )
        if self.security is not None and association.established:
            self.security.ended(
                association,
                calling_ae=association.calling_ae,
                called_ae=association.called_ae,
                calling_host=host,
                called_host=association.local[0],
                aborted=association.outcome != "released",
            )
