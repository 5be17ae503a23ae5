"""Plain WSGI applications mounted on the gateway's HTTP server beside the SOAP endpoints.

The HTTP server runs one WSGI application, the SOAP dispatcher (``gateway.soap.dispatch``).
Services that are not SOAP (FHIR at ``/fhir``, later DICOMweb at ``/dicomweb``, the UI at ``/ui``,
``/metrics``) are mounted on a path prefix with :meth:`SoapApplication.mount
<gateway.soap.dispatch.SoapApplication.mount>` (the assembly calls ``Gateway.mount``). A mounted
application is called with the prefix moved from ``PATH_INFO`` to ``SCRIPT_NAME`` (PEP 3333) and
gets, in ``environ[ENVIRON_KEY]``, the :class:`Exchange` of the request: the same access check
the SOAP boundary uses (the secure node's rules, ITI TF-1 §9.4; a refusal is logged and audited
by the hook) and the place to say which transaction it served, its outcome, its error codes and
its audit facts. Once the answer is sent, the dispatcher reports it to the same observers as a
SOAP transaction (the access log line, the ATNA audit trail).

This module is the contract between the two sides and imports nothing of the gateway, so a
mounted room (``gateway.fhir``) need not import the SOAP stack.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("gateway.http")

ENVIRON_KEY = "xdsi.exchange"

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
Authorize = Callable[[str], bool]  # transaction name -> allowed for this request's peer


def _allow(_transaction: str) -> bool:
    return True


@dataclass(slots=True, kw_only=True)
class Exchange:
    """One request to a mounted application, as the assembly and the application share it.

    Set by the dispatcher: ``request_id``, ``remote_addr``, ``peer_subject`` (TLS client
    certificate subject), ``authorize``. Set by the application: ``transaction`` (e.g.
    ``"ITI-67"``; None = nothing to audit), ``outcome`` (``"Success"``, ``"PartialSuccess"``,
    ``"Failure"``), ``error_codes`` and ``audit`` (facts of ``gateway.audit.model.FACT_KEYS``).
    """

    request_id: str
    remote_addr: str | None = None
    peer_subject: str | None = None
    authorize: Authorize = _allow
    transaction: str | None = None
    outcome: str = "Success"
    error_codes: tuple[str, ...] = ()
    audit: dict[str, Any] = field(default_factory=dict)


def exchange_of(environ: dict[str, Any]) -> Exchange:
    """The exchange of this request; a mounted application served alone (a test, another WSGI
    server) gets a fresh one that allows everything."""
    found = environ.get(ENVIRON_KEY)
    if isinstance(found, Exchange):
        return found
    created = Exchange(request_id=f"{time.monotonic_ns():x}"[-12:], remote_addr=_remote(environ))
    environ[ENVIRON_KEY] = created
    return created


def _remote(environ: dict[str, Any]) -> str | None:
    value = environ.get("REMOTE_ADDR")
    return value if isinstance(value, str) else None


@dataclass(frozen=True, slots=True)
class Mount:
    """A WSGI application served below ``prefix`` (``/fhir`` serves ``/fhir`` and ``/fhir/...``)."""

    prefix: str
    app: WsgiApp

    def matches(self, path: str) -> bool:
        return path == self.prefix or path.startswith(self.prefix + "/")


def check_prefix(prefix: str, taken: Iterable[str]) -> str:
    """A normalised mount prefix (``/name``, no trailing slash) not yet in use.

    Raises: ValueError for an empty, relative or already mounted prefix.
    """
    clean = "/" + prefix.strip("/")
    if clean == "/" or not prefix.startswith("/"):
        raise ValueError(f"mount prefix {prefix!r} must be an absolute path below /")
    if clean in taken:
        raise ValueError(f"{clean} is already mounted")
    return clean


def find_mount(mounts: Sequence[Mount], path: str) -> Mount | None:
    """The mount serving ``path``, the longest prefix first."""
    best: Mount | None = None
    for mount in mounts:
        if mount.matches(path) and (best is None or len(mount.prefix) > len(best.prefix)):
            best = mount
    return best


Finished = Callable[[Exchange, int, int, float], None]  # exchange, HTTP status, bytes, ms


def call_mounted(
    mount: Mount,
    environ: dict[str, Any],
    start_response: StartResponse,
    exchange: Exchange,
    finished: Finished,
) -> Iterable[bytes]:
    """Call ``mount.app`` for this request and report it to ``finished`` once sent.

    ``SCRIPT_NAME``/``PATH_INFO`` are split at the prefix (PEP 3333, "environ Variables"). An
    exception that escapes the application is logged with the request id and answered 500 (no
    stack trace to the peer), as the SOAP boundary does.
    """
    started = time.perf_counter()
    path = environ.get("PATH_INFO", "") or "/"
    environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "").rstrip("/") + mount.prefix
    environ["PATH_INFO"] = path[len(mount.prefix) :]
    environ[ENVIRON_KEY] = exchange
    status: list[int] = [500]

    def recording_start(line: str, headers: Any, exc_info: Any = None) -> Any:
        try:
            status[0] = int(line.split(" ", 1)[0])
        except ValueError:
            status[0] = 500
        return start_response(line, headers, exc_info)

    try:
        body = mount.app(environ, recording_start)
    except Exception:
        log.exception("request %s to %s failed", exchange.request_id, mount.prefix)
        exchange.outcome = "Failure"
        message = f"internal error (request {exchange.request_id})\n".encode()
        recording_start(
            "500 Internal Server Error",
            [("Content-Type", "text/plain; charset=UTF-8"), ("Content-Length", str(len(message)))],
        )
        body = [message]
    return _ReportingBody(body, exchange, status, started, finished)


class _ReportingBody:
    """The response iterable: passes chunks through, then reports the request once closed."""

    def __init__(
        self,
        body: Iterable[bytes],
        exchange: Exchange,
        status: list[int],
        started: float,
        finished: Finished,
    ) -> None:
        self._body, self._exchange, self._status = body, exchange, status
        self._started, self._finished = started, finished
        self._sent = 0
        self._closed = False

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._body:
            self._sent += len(chunk)
            yield chunk

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        close = getattr(self._body, "close", None)
        try:
            if close is not None:
                close()
        finally:
            duration = (time.perf_counter() - self._started) * 1000
            try:
                self._finished(self._exchange, self._status[0], self._sent, duration)
            except Exception:  # reporting must never break a response
                log.exception("reporting request %s failed", self._exchange.request_id)
