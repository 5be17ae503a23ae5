"""One association, acceptor side: the PS3.8 §9.2 state machine on the association's own thread.

The thread reads PDUs with blocking reads and acts on each at once: there is no queue between
the socket and the service and no polling. The states an acceptor passes through map onto the
code as follows (PS3.8 Table 9-10):

- Sta2 (transport open, ARTIM running): :meth:`Association._run` waits up to ``artim`` seconds
  for the A-ASSOCIATE-RQ; an A-ABORT ends it (AA-2), any other PDU is answered with A-ABORT
  (AA-1), silence closes the connection (AA-2).
- Sta3 -> Sta6 or Sta13: the request is rejected (over the association limit, by negotiation, or
  by the service's access check) with A-ASSOCIATE-RJ, or accepted with A-ASSOCIATE-AC.
- Sta6 (established): :meth:`Association._serve` takes P-DATA-TF (DIMSE messages, assembled from
  their PDV fragments, PS3.8 Annex E), A-RELEASE-RQ (answered with A-RELEASE-RP, AR-2/AR-4), or
  A-ABORT (AA-3); any other PDU is answered with A-ABORT (AA-8). No PDU for ``idle`` seconds,
  or a malformed one, aborts the association too.
- Sta13 (awaiting the peer's close, ARTIM running): :meth:`Association._linger` after a
  rejection, a release or an abort sent.

A C-STORE data set is handed to the service's :class:`Receiver` fragment by fragment as it
arrives; its response is sent when the receiver is finished, that is when the instance is
stored (or refused). A data set cut off by an abort or a dropped connection is discarded.

Standard: DICOM PS3.8 §9.1.5 (ARTIM), §9.2 (state machine), §9.3 (PDUs), Annex E (message
fragments); PS3.7 §9.3.1 (C-STORE), §9.3.5 (C-ECHO).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from dataclasses import dataclass
from io import BufferedReader
from typing import Protocol, cast

from gateway.imaging.net import dimse, pdu
from gateway.imaging.net.negotiation import AcceptedContext, Policy, Rejection, accept, check

log = logging.getLogger("gateway.imaging")

READ_BUFFER = 64 * 1024  # socket read-ahead: a command PDU and the data PDU behind it in one recv
# Linux only: acknowledge every segment at once instead of delaying the ACK (about 40 ms).
QUICKACK = getattr(socket, "TCP_QUICKACK", None)


@dataclass(frozen=True, slots=True, kw_only=True)
class Timeouts:
    """Seconds the acceptor waits (PS3.8 §9.1.5 ARTIM; idle: no PDU on an open association)."""

    artim: float = 30.0
    idle: float = 60.0


class Receiver(Protocol):
    """Takes one data set as its fragments arrive, then says how the operation ended."""

    def write(self, fragment: memoryview) -> None:
        """One fragment of the data set (the view is valid only during the call)."""

    def finish(self) -> tuple[int, str | None]:
        """The whole data set arrived: (status, error comment) for the response."""

    def discard(self) -> None:
        """The association ended before the last fragment: forget what was received."""

    def after_response(self) -> None:
        """The response is sent (or could not be): work that may follow it."""


class Service(Protocol):
    """What the association asks of the service it carries."""

    def admit(self, association: Association) -> str | None:
        """None to admit the requestor, else the reason to reject it (service user, no reason)."""

    def receiver(
        self, association: Association, context: AcceptedContext, command: dimse.Command
    ) -> Receiver:
        """The receiver of a C-STORE-RQ's data set."""

    def ended(self, association: Association) -> None:
        """The association is over (``association.outcome`` says how)."""


@dataclass(slots=True)
class _Pending:
    """A request whose data set is arriving."""

    context: AcceptedContext
    command: dimse.Command
    response_field: int
    receiver: Receiver


class _Discard:
    """Receiver of a data set nobody wants (an unsupported operation's); answers ``status``."""

    def __init__(self, status: int) -> None:
        self.status = status

    def write(self, fragment: memoryview) -> None:
        """Drop the fragment."""

    def finish(self) -> tuple[int, str | None]:
        """Answer the fixed status."""
        return self.status, None

    def discard(self) -> None:
        """Nothing kept, nothing to forget."""

    def after_response(self) -> None:
        """Nothing to follow."""


class Association:
    """An accepted connection, served by :meth:`run` on its own thread."""

    def __init__(
        self,
        sock: socket.socket,
        remote: tuple[str, int],
        *,
        policy: Policy,
        service: Service,
        timeouts: Timeouts,
        over_limit: bool = False,
    ) -> None:
        self.sock = sock
        self.remote = remote
        host, port = sock.getsockname()[:2]
        self.local = (str(host), int(port))
        self.policy = policy
        self.service = service
        self.timeouts = timeouts
        self.over_limit = over_limit
        self.request: pdu.AssociateRequest | None = None
        self.contexts: dict[int, AcceptedContext] = {}
        self.established = False
        self.outcome = "closed"  # rejected | released | aborted | closed (connection lost)
        self.detail = ""  # why it was rejected or aborted
        self.rejection: Rejection | None = None  # the A-ASSOCIATE-RJ sent, if any
        self.received_bytes = 0
        self.started = time.monotonic()
        self._send_lock = threading.Lock()
        self._stream = cast(BufferedReader, sock.makefile("rb", buffering=READ_BUFFER))
        self._reader = pdu.PduReader(self._stream, max_pdata=policy.max_pdu)
        self._quickack: int | None = QUICKACK
        self._command = bytearray()
        self._pending: _Pending | None = None

    @property
    def calling_ae(self) -> str:
        """The requestor's AE title ("" before its A-ASSOCIATE-RQ)."""
        return self.request.calling_ae if self.request else ""

    @property
    def called_ae(self) -> str:
        """The AE title the requestor called ("" before its A-ASSOCIATE-RQ)."""
        return self.request.called_ae if self.request else ""

    # -- life cycle ------------------------------------------------------------------------------
    def run(self) -> None:
        """Serve the association to its end; never raises."""
        try:
            self._run()
        except pdu.PduError as exc:
            self._abort(exc.reason, f"protocol error: {exc}")
        except dimse.DimseError as exc:
            self._abort(pdu.REASON_NOT_SPECIFIED, f"bad DIMSE message: {exc}")
        except pdu.PeerClosed as exc:
            self._lost(str(exc))
        except TimeoutError:
            if self.request is None:  # ARTIM expired in Sta2: close, nothing to abort (AA-2)
                self._lost("no A-ASSOCIATE-RQ within the ARTIM timeout")
            else:
                self._abort(pdu.REASON_NOT_SPECIFIED, "timed out waiting for the peer")
        except OSError as exc:  # reset, TLS failure, the listener stopping
            self._lost(f"connection error: {exc}")
        except Exception as exc:  # a bug must not leave the peer waiting
            log.exception("DICOM association from %s failed", self._who())
            self._abort(pdu.REASON_NOT_SPECIFIED, f"internal error: {exc}")
        finally:
            self._close()

    def abort(self, why: str) -> None:
        """Abort from another thread (the listener stopping): A-ABORT, then wake the reader."""
        self.detail = why
        try:
            self._send(pdu.encode_abort(pdu.SOURCE_SERVICE_PROVIDER, pdu.REASON_NOT_SPECIFIED))
        except OSError:
            pass
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _run(self) -> None:
        self.sock.settimeout(self.timeouts.artim)  # Sta2: ARTIM until the A-ASSOCIATE-RQ
        pdu_type, body = self._read()
        if pdu_type == pdu.A_ABORT:
            self.outcome, self.detail = "aborted", "aborted by the peer before associating"
            return
        if pdu_type != pdu.A_ASSOCIATE_RQ:
            name = pdu.PDU_NAMES.get(pdu_type, f"PDU type 0x{pdu_type:02X}")
            raise pdu.PduError(f"{name} before A-ASSOCIATE-RQ", pdu.UNEXPECTED_PDU)
        self.request = pdu.parse_associate_rq(bytes(body))
        rejection = self._rejection(self.request)
        if rejection is not None:
            self.outcome, self.detail, self.rejection = "rejected", rejection.why, rejection
            self._send(rejection.encode())
            self._linger()
            return
        acceptance = accept(self.request, self.policy)
        self.contexts = acceptance.contexts
        self._send(acceptance.accept)
        self.established = True
        self.sock.settimeout(self.timeouts.idle)
        self._serve()

    def _rejection(self, request: pdu.AssociateRequest) -> Rejection | None:
        if self.over_limit:
            return Rejection(
                pdu.REJECTED_TRANSIENT,
                pdu.RJ_SERVICE_PROVIDER_PRESENTATION,
                pdu.LOCAL_LIMIT_EXCEEDED,
                "too many associations at once",
            )
        found = check(request, self.policy)
        if found is not None:
            return found
        refused = self.service.admit(self)
        if refused is not None:
            return Rejection(
                pdu.REJECTED_PERMANENT, pdu.RJ_SERVICE_USER, pdu.NO_REASON_GIVEN, refused
            )
        return None

    def _serve(self) -> None:
        """Sta6: DIMSE messages until the peer releases or aborts."""
        while True:
            pdu_type, body = self._read()
            if pdu_type == pdu.P_DATA_TF:
                for context_id, control, fragment in pdu.pdvs(body):
                    self._pdv(context_id, control, fragment)
            elif pdu_type == pdu.A_RELEASE_RQ:
                self._drop_pending()
                self._send(pdu.encode_release_rp())
                self.outcome = "released"
                self._linger()
                return
            elif pdu_type == pdu.A_ABORT:
                self.outcome, self.detail = "aborted", "aborted by the peer"
                return
            elif pdu_type in pdu.PDU_NAMES:
                raise pdu.PduError(f"unexpected {pdu.PDU_NAMES[pdu_type]}", pdu.UNEXPECTED_PDU)
            else:
                raise pdu.PduError(f"unknown PDU type 0x{pdu_type:02X}", pdu.UNRECOGNIZED_PDU)

    # -- DIMSE ----------------------------------------------------------------------------------
    def _pdv(self, context_id: int, control: int, fragment: memoryview) -> None:
        """One PDV: a command or data set fragment (PS3.8 Annex E.2)."""
        context = self.contexts.get(context_id)
        if context is None:
            raise pdu.PduError(f"PDV on presentation context {context_id}, which is not accepted")
        if control & 0x01:
            self._command_fragment(context, control, fragment)
            return
        pending = self._pending
        if pending is None or self._command:
            raise pdu.PduError("data set fragment without a command", pdu.UNEXPECTED_PDU_PARAMETER)
        if pending.context.context_id != context_id:
            raise pdu.PduError(
                f"data set on context {context_id}, its command on {pending.context.context_id}",
                pdu.UNEXPECTED_PDU_PARAMETER,
            )
        self.received_bytes += len(fragment)
        pending.receiver.write(fragment)
        if control & 0x02:
            self._pending = None
            status, comment = pending.receiver.finish()
            try:
                self._respond(
                    pending.context, pending.command, pending.response_field, status, comment
                )
            finally:  # before the next message is read: the peer prepares it meanwhile
                pending.receiver.after_response()

    def _command_fragment(
        self, context: AcceptedContext, control: int, fragment: memoryview
    ) -> None:
        if self._pending is not None:
            raise pdu.PduError(
                "command fragment while a data set is arriving", pdu.UNEXPECTED_PDU_PARAMETER
            )
        if len(self._command) + len(fragment) > dimse.MAX_COMMAND_BYTES:
            raise dimse.DimseError(f"command set longer than {dimse.MAX_COMMAND_BYTES} bytes")
        self._command += fragment
        if control & 0x02:
            command = dimse.decode_command(bytes(self._command))
            self._command.clear()
            self._dispatch(context, command)

    def _dispatch(self, context: AcceptedContext, command: dimse.Command) -> None:
        """Act on a complete command set (PS3.7 §9.3)."""
        field = command.command_field
        if field & dimse.RESPONSE_BIT:
            raise dimse.DimseError(f"unexpected response 0x{field:04X} (this node sends none)")
        if field == dimse.C_CANCEL_RQ:
            return  # nothing to cancel: every operation here is answered before the next
        with_data = command.has_data_set
        if field == dimse.C_STORE_RQ and with_data:
            receiver = self.service.receiver(self, context, command)
            self._pending = _Pending(context, command, dimse.C_STORE_RSP, receiver)
            return
        if field == dimse.C_STORE_RQ:
            status, comment = 0xC000, "C-STORE-RQ without a data set"  # Cannot understand
        elif field == dimse.C_ECHO_RQ:
            status, comment = dimse.SUCCESS, None
        else:
            status, comment = dimse.UNRECOGNIZED_OPERATION, None
        response = field | dimse.RESPONSE_BIT
        if with_data:  # answered once its (unwanted) data set has gone by
            self._pending = _Pending(context, command, response, _Discard(status))
            return
        self._respond(context, command, response, status, comment)

    def _respond(
        self,
        context: AcceptedContext,
        command: dimse.Command,
        field: int,
        status: int,
        comment: str | None,
    ) -> None:
        assert self.request is not None
        payload = dimse.encode_response(
            field,
            message_id=command.message_id,
            sop_class_uid=command.uid(dimse.AFFECTED_SOP_CLASS_UID) or context.abstract_syntax,
            status=status,
            sop_instance_uid=command.uid(dimse.AFFECTED_SOP_INSTANCE_UID) or None,
            error_comment=comment if status != dimse.SUCCESS else None,
        )
        self._send(pdu.encode_command(context.context_id, payload, self.request.max_length))

    # -- transport ------------------------------------------------------------------------------
    def _read(self) -> tuple[int, memoryview]:
        # A requestor that leaves Nagle's algorithm on (pynetdicom does) sends the data PDU of a
        # C-STORE only once its command PDU is acknowledged; Linux delays that ACK by up to 40 ms
        # unless asked not to, and forgets the request after a while, so it is renewed per PDU.
        if self._quickack is not None:
            try:
                self.sock.setsockopt(socket.IPPROTO_TCP, self._quickack, 1)
            except OSError:
                self._quickack = None  # not a TCP socket (a test's socketpair) or already closed
        return self._reader.read()

    def _send(self, data: bytes) -> None:
        with self._send_lock:
            self.sock.sendall(data)

    def _abort(self, reason: int, why: str) -> None:
        """AA-1/AA-8: send A-ABORT (service provider), then wait for the peer to close."""
        self.outcome, self.detail = "aborted", why
        log.warning("DICOM association from %s aborted: %s", self._who(), why)
        self._drop_pending()
        try:
            self._send(pdu.encode_abort(pdu.SOURCE_SERVICE_PROVIDER, reason))
            self._linger()
        except OSError:
            pass

    def _lost(self, why: str) -> None:
        """The connection ended without a release (AA-4/AA-5: no A-ABORT can be sent)."""
        if self.outcome == "closed":
            self.outcome = "aborted" if self.established else "closed"
            self.detail = self.detail or why
        self._drop_pending()

    def _drop_pending(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.receiver.discard()

    def _linger(self) -> None:
        """Sta13: wait (ARTIM) for the peer to close, so what was sent last is not lost to a
        reset; whatever arrives meanwhile is dropped."""
        deadline = time.monotonic() + self.timeouts.artim
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                if not self.sock.recv(READ_BUFFER):
                    return
            except (TimeoutError, OSError):
                return

    def _close(self) -> None:
        self._drop_pending()
        for closing in (self._stream.close, self.sock.close):
            try:
                closing()
            except OSError:
                pass
        try:
            self.service.ended(self)
        except Exception:  # an audit or log failure must not escape the thread
            log.exception("DICOM association end handler failed")

    def _who(self) -> str:
        host, port = self.remote[:2]
        return f"{self.calling_ae or '?'} ({host}:{port})"
