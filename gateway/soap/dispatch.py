"""The SOAP boundary: a WSGI application that dispatches by path, wsa:Action and body element.

Every request gets a standard answer: a response, an XDS failure body (RegistryResponse with
RegistryErrors) when a handler raises :class:`~gateway.errors.XDSError`, or a SOAP 1.2 fault for an
envelope, addressing or packaging problem. Nothing else leaves this module: unexpected
exceptions are logged with a request id and answered as XDSRegistryError/XDSRepositoryError,
never a stack trace.

Standards: SOAP 1.2 Part 2 §7 (HTTP binding: media type, status codes of Table 20), WS-Addressing
1.0 SOAP Binding §6, XOP 1.0 and SOAP MTOM §4 (packaging), ITI TF-2 Appendix V (XDS.b web services).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from lxml import etree

from gateway import mount as mounting
from gateway.errors import XDSError, XDSRegistryError, XDSRepositoryError
from gateway.metadata.retrieve import failure_body, read_errors
from gateway.soap import envelope as env
from gateway.soap import fault as faults
from gateway.soap import intake, mtom, ns
from gateway.soap.intake import Limits
from gateway.soap.message import Attachment, SoapRequest, SoapResponse
from gateway.soap.transactions import REGISTRY_PATH, Transaction

log = logging.getLogger("gateway.soap")

__all__ = ["Context", "Endpoint", "Handler", "Limits", "SoapApplication", "TransactionCompleted"]
# WS-Security 1.1 SOAP Message Security §12 (Error Handling): the fault code of a caller whose
# security token (here: its TLS client certificate) is not authorized.
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
FAILED_AUTHENTICATION = ns.qname(WSSE, "FailedAuthentication")
Authorize = Callable[[dict[str, Any], str], bool]  # (WSGI environ, transaction name) -> allowed


@dataclass(slots=True, kw_only=True)
class Context:
    """What a handler may know about the call besides the message itself."""

    transaction: Transaction
    request_id: str
    remote_addr: str | None = None
    peer_subject: str | None = None  # TLS client certificate subject DN, when authenticated
    # Facts a handler records for the audit trail (ITI-20): patient ids, document uniqueIds,
    # submission set uniqueId, query id and parameters. Read by TransactionCompleted observers.
    audit: dict[str, Any] = field(default_factory=dict)


Handler = Callable[[SoapRequest, Context], SoapResponse]


@dataclass(slots=True, kw_only=True)
class TransactionCompleted:
    """Notification sent to observers (logging, metrics, audit) once a response is fully sent."""

    path: str
    transaction: str | None  # "ITI-42", or None when the request never got that far
    action: str | None
    outcome: str  # "Success", "PartialSuccess", "Failure" or "Fault"
    http_status: int
    duration_ms: float
    request_id: str
    message_id: str | None
    remote_addr: str | None
    error_codes: tuple[str, ...] = ()
    bytes_sent: int = 0
    peer_subject: str | None = None
    audit: dict[str, Any] = field(default_factory=dict)  # Context.audit of the handler


Observer = Callable[[TransactionCompleted], None]


@dataclass(slots=True)
class Endpoint:
    """One SOAP endpoint path and the handler bound to each of its transactions."""

    path: str
    known: dict[str, Transaction] = field(default_factory=dict)  # action -> transaction
    handlers: dict[str, Handler] = field(default_factory=dict)

    def bind(self, transaction: Transaction, handler: Handler) -> None:
        """Bind the one handler of a transaction (by its wsa:Action) at this endpoint."""
        if transaction.action in self.handlers:
            raise ValueError(f"{transaction.name} already has a handler at {self.path}")
        self.known[transaction.action] = transaction
        self.handlers[transaction.action] = handler


@dataclass(slots=True, kw_only=True)
class _Outcome:
    status: int
    headers: list[tuple[str, str]]
    chunks: Iterable[bytes]
    outcome: str
    error_codes: tuple[str, ...] = ()
    cleanup: list[Attachment] = field(default_factory=list)


class SoapApplication:
    """WSGI application serving SOAP endpoints, their WSDLs and ``/health``."""

    def __init__(
        self,
        limits: Limits,
        *,
        public_url: str = "",
        health: Callable[[], tuple[bool, dict[str, Any]]] | None = None,
        observers: Iterable[Observer] = (),
        authorize: Authorize | None = None,
    ) -> None:
        """``authorize(environ, transaction_name)``: the secure node's access check, called once
        the transaction is known and before its handler; False answers a Sender fault
        ``wsse:FailedAuthentication`` (HTTP 400) and the handler never runs.
        """
        self.limits = limits
        self.authorize = authorize
        self.public_url = public_url.rstrip("/")
        self.health = health or (lambda: (True, {}))
        self.observers: list[Observer] = list(observers)
        self.endpoints: dict[str, Endpoint] = {}
        self.mounts: list[mounting.Mount] = []

    def endpoint(self, path: str, transactions: Iterable[Transaction] = ()) -> Endpoint:
        """Return the endpoint at ``path``, creating it with its standard transactions."""
        endpoint = self.endpoints.setdefault(path, Endpoint(path))
        for transaction in transactions:
            endpoint.known.setdefault(transaction.action, transaction)
        return endpoint

    def mount(self, prefix: str, app: mounting.WsgiApp) -> None:
        """Serve a plain WSGI application below ``prefix`` (``gateway.mount``): FHIR, DICOMweb.

        It gets the same access check as a SOAP call (``environ["xdsi.exchange"].authorize``)
        and its requests reach the same observers (access log, audit) once answered.
        Raises: ValueError for a prefix already mounted or one naming a SOAP endpoint.
        """
        clean = mounting.check_prefix(prefix, [m.prefix for m in self.mounts])
        if any(mounting.Mount(clean, app).matches(path) for path in self.endpoints):
            raise ValueError(f"{clean} would hide a SOAP endpoint")
        self.mounts.append(mounting.Mount(clean, app))

    # -- WSGI ---------------------------------------------------------------------------------
    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "") or "/"
        method = environ.get("REQUEST_METHOD", "GET")
        if path == "/health":
            return self._health(method, start_response)
        mounted = mounting.find_mount(self.mounts, path) if self.mounts else None
        if mounted is not None:
            return self._mounted(mounted, environ, start_response)
        endpoint = self.endpoints.get(path)
        if endpoint is None:
            return _plain(start_response, "404 Not Found", b"no endpoint at this path\n")
        if method in {"GET", "HEAD"}:
            query = environ.get("QUERY_STRING", "")
            if query.lower().startswith("wsdl"):
                return self._wsdl(environ, path, start_response)
            if query.startswith("xsd="):
                return self._xsd(query, start_response)
            return _plain(
                start_response,
                "405 Method Not Allowed",
                b"SOAP endpoint: POST a SOAP 1.2 message, or GET ?wsdl\n",
                [("Allow", "POST")],
            )
        if method != "POST":
            return _plain(
                start_response, "405 Method Not Allowed", b"use POST\n", [("Allow", "POST")]
            )
        return self._soap(environ, endpoint, start_response)

    def _mounted(
        self, mounted: mounting.Mount, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        """Call a mounted application; report the request to the observers once answered."""
        path = environ.get("PATH_INFO", "") or "/"
        authorize = self.authorize
        exchange = mounting.Exchange(
            request_id=uuid.uuid4().hex[:12],
            remote_addr=environ.get("REMOTE_ADDR"),
            peer_subject=environ.get("SSL_CLIENT_S_DN") or None,
            # The hook sees the request as sent (its log and audit name the whole path).
            authorize=(
                (lambda name: authorize(dict(environ, PATH_INFO=path), name))
                if authorize
                else lambda _n: True
            ),
        )

        def finished(done: mounting.Exchange, status: int, sent: int, duration: float) -> None:
            event = TransactionCompleted(
                path=path,
                transaction=done.transaction,
                action=None,
                outcome=done.outcome,
                http_status=status,
                duration_ms=duration,
                request_id=done.request_id,
                message_id=None,
                remote_addr=done.remote_addr,
                error_codes=done.error_codes,
                bytes_sent=sent,
                peer_subject=done.peer_subject,
                audit=done.audit,
            )
            for observer in self.observers:
                try:
                    observer(event)
                except Exception:  # observers must never break a response
                    log.exception("transaction observer failed")

        return mounting.call_mounted(mounted, environ, start_response, exchange, finished)

    def _health(self, method: str, start_response: Callable[..., Any]) -> Iterable[bytes]:
        import json

        ready, details = self.health()
        body = json.dumps({"status": "ready" if ready else "starting", **details}).encode()
        status = "200 OK" if ready else "503 Service Unavailable"
        start_response(
            status,
            [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(body))),
                ("Cache-Control", "no-store"),
            ],
        )
        return [] if method == "HEAD" else [body]

    def _wsdl(
        self, environ: dict[str, Any], path: str, start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        from gateway.soap.wsdl import render_wsdl

        base = self.public_url or f"{environ.get('wsgi.url_scheme', 'http')}://{_host(environ)}"
        try:
            document: bytes | None = render_wsdl(path, base + path)
        except ValueError:  # an endpoint without a WSDL of its own (/dsub/broker, /xdr/recipient)
            document = None
        if document is None:
            return _plain(start_response, "404 Not Found", b"no WSDL for this endpoint\n")
        start_response(
            "200 OK",
            [("Content-Type", "text/xml; charset=UTF-8"), ("Content-Length", str(len(document)))],
        )
        return [document]

    def _xsd(self, query: str, start_response: Callable[..., Any]) -> Iterable[bytes]:
        # ?xsd=NAME: one of the schemas the WSDLs import (gateway/soap/wsdl.py). The name is
        # looked up among the gateway's own few; nothing from the request reaches a file path.
        from gateway.soap.wsdl import render_schema

        document = render_schema(unquote(query[len("xsd=") :]))
        if document is None:
            return _plain(start_response, "404 Not Found", b"no schema of that name here\n")
        start_response(
            "200 OK",
            [("Content-Type", "text/xml; charset=UTF-8"), ("Content-Length", str(len(document)))],
        )
        return [document]

    def _soap(
        self, environ: dict[str, Any], endpoint: Endpoint, start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        started = time.perf_counter()
        request_id = uuid.uuid4().hex[:12]
        remote = environ.get("REMOTE_ADDR")
        peer = environ.get("SSL_CLIENT_S_DN") or None  # set by the TLS adapter (cheroot)
        state: dict[str, Any] = {"transaction": None, "message_id": None, "action": None}
        audit: dict[str, Any] = {}
        head: intake.RequestHead | None = None
        request: SoapRequest | None = None
        try:
            head = intake.read_head(environ, endpoint, self.limits, state)
            # Who may call what is known now, before any attachment is read from the network.
            self._check_access(environ, head.transaction)
            request = intake.read_rest(head, environ, endpoint, self.limits)
            ctx = Context(
                transaction=head.transaction,
                request_id=request_id,
                remote_addr=remote,
                peer_subject=peer,
                audit=audit,
            )
            result = self._invoke(endpoint, head.transaction, request, ctx)
        except Exception as exc:  # the boundary: never a stack trace to the peer
            if head is not None:
                head.discard()
            if request is not None:
                request.discard_attachments()
                request = None
            if isinstance(exc, faults.SoapFault):
                fault = exc
            else:
                log.exception("request %s to %s failed before dispatch", request_id, endpoint.path)
                fault = faults.receiver_fault(f"Internal error (request {request_id})")
            result = _fault_outcome(fault, state["message_id"])
        start_response(_status_line(result.status), result.headers)
        return _ResponseBody(
            self,
            result,
            request,
            TransactionCompleted(
                path=endpoint.path,
                transaction=state["transaction"],
                action=state["action"],
                outcome=result.outcome,
                http_status=result.status,
                duration_ms=0.0,
                request_id=request_id,
                message_id=state["message_id"],
                remote_addr=remote,
                error_codes=result.error_codes,
                peer_subject=peer,
                audit=audit,
            ),
            started,
        )

    def _check_access(self, environ: dict[str, Any], transaction: Transaction) -> None:
        """Refuse a caller the access rules do not grant ``transaction``.

        Called as soon as the envelope's wsa:Action is known, before the attachments of an MTOM
        request are read: a refused caller cannot make the gateway read or spool its upload
        (the server then closes the connection instead of draining the body).

        Standard: WS-Security 1.1 (SOAP Message Security) §12, fault code
        wsse:FailedAuthentication ("The security token could not be authenticated or
        authorized"); the SOAP 1.2 Sender fault maps to HTTP 400 (SOAP 1.2 Part 2 §7.5.2.2).
        """
        if self.authorize is None or self.authorize(environ, transaction.name):
            return
        raise faults.sender_fault(
            f"{transaction.name} is not permitted for this client certificate",
            FAILED_AUTHENTICATION,
        )

    # -- handler ------------------------------------------------------------------------------
    def _invoke(
        self, endpoint: Endpoint, transaction: Transaction, request: SoapRequest, ctx: Context
    ) -> _Outcome:
        handler = endpoint.handlers[transaction.action]
        request_id = ctx.request_id
        relates = request.addressing.message_id
        try:
            response = handler(request, ctx)
        except faults.SoapFault:
            raise
        except XDSError as error:
            body = failure_body(transaction, error)
            codes = tuple(e.code for e in error)
            log.info(
                "request %s %s failed: %s",
                request_id,
                transaction.name,
                "; ".join(f"{e.code}: {e.context}" for e in error),
            )
            response = SoapResponse(body=body)
            return self._encode(transaction, request, response, relates, "Failure", codes)
        except Exception:
            log.exception("request %s: %s handler failed", request_id, transaction.name)
            # A query (ITI-18, ITI-38) or registration fails as the registry, a retrieve or a
            # provide as the repository (ITI TF-3 Table 4.2.4.1-2).
            registry_like = endpoint.path == REGISTRY_PATH or (
                transaction.response_qname == ns.ADHOC_QUERY_RESPONSE
            )
            internal = XDSRegistryError if registry_like else XDSRepositoryError
            failure = internal(
                f"Internal error while processing {transaction.name} (request id {request_id})"
            )
            body = failure_body(transaction, failure)
            return self._encode(
                transaction, request, SoapResponse(body=body), relates, "Failure", (failure.code,)
            )
        return self._encode(transaction, request, response, relates, _outcome_of(response.body), ())

    def _encode(
        self,
        transaction: Transaction,
        request: SoapRequest,
        response: SoapResponse,
        relates: str | None,
        outcome: str,
        codes: tuple[str, ...],
    ) -> _Outcome:
        action = response.action or transaction.response_action
        envelope = env.build_envelope(response.body, action=action, relates_to=relates)
        xml = env.serialize(envelope)
        use_mtom = response.mtom
        if use_mtom is None:
            use_mtom = bool(response.attachments) or (request.mtom and transaction.mtom)
        owned = [a for a in response.attachments if a.owned]
        chunks: Iterable[bytes]
        if use_mtom:
            content_type, length, chunks = mtom.build_mtom(
                xml, response.attachments, soap_action=action
            )
        else:
            content_type = f'{ns.SOAP12_MEDIA_TYPE}; charset=UTF-8; action="{action}"'
            length, chunks = len(xml), [xml]
        headers = [("Content-Type", content_type), ("Content-Length", str(length))]
        return _Outcome(
            status=200,
            headers=headers,
            chunks=chunks,
            outcome=outcome,
            error_codes=codes or _error_codes(response.body),
            cleanup=owned,
        )


class _ResponseBody:
    """The WSGI response iterable: streams chunks, then cleans up and notifies observers."""

    def __init__(
        self,
        app: SoapApplication,
        result: _Outcome,
        request: SoapRequest | None,
        event: TransactionCompleted,
        started: float,
    ) -> None:
        self._app, self._result, self._request = app, result, request
        self._event, self._started = event, started
        self._closed = False

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._result.chunks:
            self._event.bytes_sent += len(chunk)
            yield chunk

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        close = getattr(self._result.chunks, "close", None)
        if close is not None:
            close()
        if self._request is not None:
            self._request.discard_attachments()
        for attachment in self._result.cleanup:
            attachment.discard()
        self._event.duration_ms = (time.perf_counter() - self._started) * 1000
        for observer in self._app.observers:
            try:
                observer(self._event)
            except Exception:  # observers must never break a response
                log.exception("transaction observer failed")


def _fault_outcome(fault: faults.SoapFault, relates_to: str | None) -> _Outcome:
    xml = env.serialize(env.fault_envelope(fault, relates_to=relates_to))
    media = "text/xml; charset=UTF-8" if fault.soap11 else f"{ns.SOAP12_MEDIA_TYPE}; charset=UTF-8"
    codes = tuple(ns.split_qname(c)[1] for c in (fault.code, *fault.subcodes))
    return _Outcome(
        status=fault.http_status,
        outcome="Fault",
        error_codes=codes,
        headers=[("Content-Type", media), ("Content-Length", str(len(xml)))],
        chunks=[xml],
    )


def _outcome_of(body: etree._Element) -> str:
    status = body.get("status")
    if status is None:
        inner = body.find(ns.qname(ns.RS, "RegistryResponse"))
        status = inner.get("status") if inner is not None else None
    if status is None:
        return "Success"
    return status.rsplit(":", 1)[-1]


def _error_codes(body: etree._Element) -> tuple[str, ...]:
    return tuple(error.code for error in read_errors(body))


def _status_line(status: int) -> str:
    from http import HTTPStatus

    return f"{status} {HTTPStatus(status).phrase}"


def _plain(
    start_response: Callable[..., Any],
    status: str,
    body: bytes,
    extra: list[tuple[str, str]] | None = None,
) -> list[bytes]:
    start_response(
        status,
        [
            ("Content-Type", "text/plain; charset=UTF-8"),
            ("Content-Length", str(len(body))),
            *(extra or []),
        ],
    )
    return [body]


def _host(environ: dict[str, Any]) -> str:
    host = environ.get("HTTP_HOST")
    if host:
        return host
    return f"{environ.get('SERVER_NAME', '127.0.0.1')}:{environ.get('SERVER_PORT', '80')}"
