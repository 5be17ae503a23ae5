"""The DICOM listener of the imaging document source (pynetdicom): C-ECHO and C-STORE SCP.

Every storage SOP class is accepted with the uncompressed transfer syntaxes and the usual
compressed ones, and data are stored in the transfer syntax they arrive in (no coercion,
PS3.4 §B.4.1). Which syntax is accepted in each presentation context is decided by
``gateway.imaging.negotiation``: by default the first one the sender proposed among those
supported, so a sender that proposes JPEG Lossless before Explicit VR Little Endian in one
context sends, and we store, its compressed data unchanged.

Data sets are received into files, never into memory (``gateway.imaging.receive``): pynetdicom
writes each one, as its fragments arrive, to a file in the store's ``.tmp/incoming`` folder, and
the handler moves that file into place (``Ingest.store_received``).

TCP_NODELAY: pynetdicom leaves Nagle's algorithm on, so each small C-STORE-RSP waits for the
peer's delayed ACK (about 40 ms on Linux loopback) and a sender that waits for every response
stalls at a few instances per second. The least invasive hook is a notification handler for
``EVT_CONN_OPEN`` (fired for each accepted connection before the association starts) that sets
the option on ``event.assoc.dul.socket.socket``.

Standards: DICOM PS3.4 Annex A (Verification), Annex B (Storage; statuses Table B.2-1), PS3.7
§9.1.1 (C-STORE), §9.1.5 (C-ECHO), PS3.8 §9.3 (association negotiation).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)
from pynetdicom import AE, AllStoragePresentationContexts, evt
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]
from pynetdicom.transport import ThreadedAssociationServer

from gateway.imaging import negotiation, receive
from gateway.imaging.association_log import AssociationLog
from gateway.imaging.index import InstanceRecord
from gateway.imaging.ingest import STATUS_SUCCESS, Ingest, InstanceRejected
from gateway.metadata import transfer_syntaxes

log = logging.getLogger("gateway.imaging")

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

DEFAULT_MAX_PDU = 1024 * 1024  # what peers may send us in one P-DATA PDU (PS3.8 §D.1)


def set_nodelay(event: evt.Event) -> None:
    """EVT_CONN_OPEN handler: switch Nagle's algorithm off on the association's socket."""
    sock = getattr(getattr(event.assoc.dul, "socket", None), "socket", None)
    if isinstance(sock, socket.socket):
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError as exc:  # e.g. the peer is already gone
            log.debug("TCP_NODELAY not set: %s", exc)


def handle_echo(event: evt.Event) -> int:
    """C-ECHO: always Success (PS3.4 §A.4, PS3.7 §9.1.5)."""
    return STATUS_SUCCESS


def handle_store(
    event: evt.Event,
    ingest: Ingest,
    notify: Callable[[InstanceRecord], None] | None = None,
    security: Any | None = None,
    associations: AssociationLog | None = None,
) -> int:
    """C-STORE: keep the data set as received, index it, answer with a PS3.4 Table B.2-1 status.

    Refused data sets (not parseable: 0xC000, a missing UID: 0xC001, not the request's SOP
    Instance: 0xC002, not the request's SOP Class: 0xA900) are not stored; storage or database
    trouble answers 0xA700/0xA701 (Refused: Out of Resources).
    """
    request = cast(C_STORE, event.request)
    calling = event.assoc.requestor.ae_title if event.assoc else "?"
    path = _received_file(event)
    try:
        record = _store(event, request, ingest, path)
    except InstanceRejected as exc:
        log.warning(
            "C-STORE from %s of %s refused (0x%04X): %s",
            calling,
            request.AffectedSOPInstanceUID,
            exc.status,
            exc,
        )
        if associations is not None:
            associations.refused(event.assoc)
        return exc.status
    finally:
        if path is not None:
            receive.done(event.assoc, path)  # moved into place, or pynetdicom removes it now
    log.debug("C-STORE from %s: stored %s", calling, record.sop_instance_uid)
    if notify is not None:
        notify(record)
    if security is not None:  # DicomSecurity: audited when the association ends
        security.stored(event.assoc, record)
    if associations is not None:  # one INFO line when the association ends
        associations.stored(event.assoc, record.size)
    return STATUS_SUCCESS


def _received_file(event: evt.Event) -> Path | None:
    """The file pynetdicom received the data set into, or None when it kept it in memory."""
    try:
        path = event.dataset_path
    except AttributeError:  # chunked receiving is off (a handler called outside the listener)
        return None
    return Path(path) if path is not None else None


def _store(event: evt.Event, request: C_STORE, ingest: Ingest, path: Path | None) -> InstanceRecord:
    sop_class_uid = str(request.AffectedSOPClassUID or "") or None
    sop_instance_uid = str(request.AffectedSOPInstanceUID or "") or None
    if path is not None:
        return ingest.store_received(
            path, sop_class_uid=sop_class_uid, sop_instance_uid=sop_instance_uid
        )
    return ingest.store_encoded(
        event.encoded_dataset(include_meta=True),
        sop_class_uid=sop_class_uid,
        sop_instance_uid=sop_instance_uid,
    )


class _SharedListenerServer(ThreadedAssociationServer):
    """pynetdicom's association server on a socket bound and listening elsewhere.

    ``serve --workers N`` binds the DICOM port once, in the supervisor, and every worker accepts
    on that socket. pynetdicom's server binds its own socket in ``TCPServer.__init__``
    (``server_bind``/``server_activate``) and closes it with ``shutdown(SHUT_RDWR)`` first,
    which on Linux stops the listening socket for every process sharing it; both are replaced.
    """

    def __init__(self, listener: socket.socket, ae: AE, handlers: list[Any], context: Any) -> None:
        self._listener = listener
        address = listener.getsockname()[:2]
        super().__init__(
            ae, address, ae.ae_title, ae.supported_contexts, context, evt_handlers=handlers
        )

    def server_bind(self) -> None:
        if self.socket is not None:
            self.socket.close()  # the unbound socket TCPServer.__init__ made
        self.socket = self._listener
        # A connection another worker accepted first must not block this one in accept().
        self.socket.setblocking(False)
        self.server_address = self.socket.getsockname()[:2]

    def server_activate(self) -> None:
        """Nothing to do: the socket is listening already."""

    def server_close(self) -> None:
        if self.socket is not None:
            self.socket.close()  # never shutdown(): see the class docstring


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
        notify: Callable[[InstanceRecord], None] | None = None,
        security: Any | None = None,
        transfer_syntax_order: Sequence[str] = (),
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
        self.ae = AE(ae_title=ae_title)
        self.ae.maximum_pdu_size = maximum_pdu_size
        self.ae.require_called_aet = require_called_aet
        self.ae.add_supported_context(Verification, list(UNCOMPRESSED_TRANSFER_SYNTAXES[:2]))
        for context in AllStoragePresentationContexts:
            assert context.abstract_syntax is not None  # pynetdicom's table names each one
            self.ae.add_supported_context(
                context.abstract_syntax, [UID(ts) for ts in ACCEPTED_TRANSFER_SYNTAXES]
            )
        self.chooser = negotiation.SyntaxChooser(
            negotiation.supported_by(self.ae.supported_contexts), tuple(transfer_syntax_order)
        )
        self.associations = AssociationLog(ae_title)
        self._server: ThreadedAssociationServer | None = None
        self._lock = threading.Lock()

    def start(
        self, sock: socket.socket | None = None, *, incoming_dir: Path | None = None
    ) -> tuple[str, int]:
        """Listen (port 0 = ephemeral); return the bound (host, port).

        ``sock``: a socket already bound and listening (possibly shared with other processes
        accepting on it); without it the listener binds host and port. ``incoming_dir``: where
        data sets are received (this process's own folder on the store's file system);
        default the store's ``.tmp/incoming``.
        """
        with self._lock:
            if self._server is None:
                incoming = incoming_dir or self.ingest.store.incoming_dir
                receive.install()
                receive.register(self.ae, incoming)
                receive.sweep(incoming)
                handlers: list[Any] = [
                    (evt.EVT_CONN_OPEN, set_nodelay),
                    (evt.EVT_REQUESTED, self.chooser.on_requested),
                    (evt.EVT_C_ECHO, handle_echo),
                    (
                        evt.EVT_C_STORE,
                        handle_store,
                        [self.ingest, self.notify, self.security, self.associations],
                    ),
                    (evt.EVT_RELEASED, receive.forget),
                    (evt.EVT_ABORTED, receive.forget),
                    *self.associations.handlers(),
                ]
                context = None
                if self.security is not None:
                    handlers.extend(self.security.handlers())
                    context = self.security.ssl_context
                if sock is None:
                    server = self.ae.start_server(
                        (self.host, self.port),
                        block=False,
                        evt_handlers=handlers,
                        ssl_context=context,
                    )
                    assert server is not None
                    host, port = server.server_address[:2]
                    log.info("DICOM listener %s on %s:%d", self.ae_title, host, port)
                else:
                    server = self._serve_on(sock, handlers, context)
                self._server = server
        return self.address

    def _serve_on(
        self, sock: socket.socket, handlers: list[Any], context: Any
    ) -> ThreadedAssociationServer:
        """What ``AE.start_server(block=False)`` does, on a socket bound elsewhere."""
        server = _SharedListenerServer(sock, self.ae, handlers, context)
        self.ae._servers.append(server)  # AssociationServer.shutdown() removes it from there
        thread = threading.Thread(
            target=server.serve_forever, name=f"dicom-listener {self.ae_title}", daemon=True
        )
        thread.start()
        return server

    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port). Raises RuntimeError before :meth:`start`."""
        if self._server is None:
            raise RuntimeError("the DICOM listener is not started")
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def server(self) -> ThreadedAssociationServer | None:
        """The pynetdicom server while running (tests inspect its associations)."""
        return self._server

    def stop(self, *, timeout: float = 10.0) -> None:
        """Stop accepting, let associations in flight finish (up to ``timeout``), then abort."""
        with self._lock:
            server, self._server = self._server, None
        if server is None:
            return
        remaining = list(server.active_associations)
        server.shutdown()
        deadline = time.monotonic() + timeout
        for assoc in remaining:
            assoc.join(max(0.0, deadline - time.monotonic()))
            if assoc.is_alive():
                assoc.abort()
        receive.unregister(self.ae)
