"""Why a connection to a peer failed, in one plain line for a person.

A failed connection surfaces as a chain of exceptions: ``requests`` wraps urllib3, which wraps
the socket error (``ConnectionRefusedError``, ``socket.gaierror``, ``ssl.SSLError`` ...); an MLLP
or DICOM client sees the socket error itself. :func:`diagnose` walks the chain (causes, contexts,
arguments and urllib3's ``reason``) to the error that names the cause, and :func:`explain` says it
with the address and what to check::

    connection refused: is the gateway running at http://127.0.0.1:8080/xds/registry?

Kinds in :data:`LASTING` do not go away by asking again at once (nothing listens, the name does
not resolve, the certificates do not match, the URL's path is wrong); the others may (a
timeout, a reset, a server error).

Standard library only, so every room can use it (the SOAP client, ``feed``, the consumer).
"""

from __future__ import annotations

import errno
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass

REFUSED = "refused"
NAME = "name"  # the host name does not resolve (DNS)
CONNECT_TIMEOUT = "connect-timeout"
UNREACHABLE = "unreachable"  # no route to the host's network
TLS = "tls"
TIMEOUT = "timeout"  # connected, but no (complete) answer in time
RESET = "reset"  # the peer closed or reset the connection
OTHER = "other"
HTTP_CLIENT = "http-client"  # an HTTP 4xx error page instead of SOAP: a wrong path, a proxy

LASTING = frozenset({REFUSED, NAME, TLS, HTTP_CLIENT})


@dataclass(frozen=True, slots=True)
class NetworkProblem:
    """What went wrong (``kind``, one of the constants above) and its detail (a TLS reason)."""

    kind: str
    detail: str = ""


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception it wraps, outermost first, each once."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        wrapped = [getattr(current, "reason", None), current.__cause__, current.__context__]
        wrapped.extend(current.args)
        todo.extend(e for e in wrapped if isinstance(e, BaseException))


def _named(exc: BaseException, *names: str) -> bool:
    # urllib3's and requests' timeout classes, recognised without importing either library; by
    # the class's own name (urllib3's NewConnectionError subclasses ConnectTimeoutError)
    return type(exc).__name__ in names


def diagnose(exc: BaseException, *, connecting: bool = False) -> NetworkProblem:
    """The cause of a network failure; ``connecting``: ``exc`` came while connecting (a bare
    timeout is then a connect timeout)."""
    chain = list(_chain(exc))
    for item in chain:
        if isinstance(item, ConnectionRefusedError):
            return NetworkProblem(REFUSED)
        if isinstance(item, socket.gaierror):
            return NetworkProblem(NAME, str(item.strerror or item))
        if isinstance(item, ssl.SSLCertVerificationError):
            return NetworkProblem(TLS, f"certificate verify failed: {item.verify_message}")
        if isinstance(item, ssl.SSLError):
            return NetworkProblem(TLS, str(item.reason or item))
        if isinstance(item, OSError) and item.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
            return NetworkProblem(UNREACHABLE, str(item.strerror or item))
    for item in chain:
        if _named(item, "ConnectTimeoutError", "ConnectTimeout"):
            return NetworkProblem(CONNECT_TIMEOUT)
    for item in chain:
        if isinstance(item, TimeoutError) or _named(item, "ReadTimeoutError", "ReadTimeout"):
            return NetworkProblem(CONNECT_TIMEOUT if connecting else TIMEOUT)
        if isinstance(item, ConnectionResetError | ConnectionAbortedError | BrokenPipeError):
            return NetworkProblem(RESET)
    return NetworkProblem(OTHER, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)


_TLS_HINTS = (
    ("WRONG_VERSION_NUMBER", "is it a listener without TLS? then use http://"),
    ("certificate verify failed", "check the CA bundle: tls.ca_file or --ca-file"),
    ("CERTIFICATE_REQUIRED", "the peer wants a client certificate: tls.certificate or --cert"),
    ("UNKNOWN_CA", "the peer does not trust our certificate's CA"),
)


def explain(exc: BaseException, where: str, *, peer: str = "the gateway") -> str:
    """One line: the cause of ``exc`` at ``where`` (a URL or host:port) and what to check.

    ``peer`` names what should be listening there (``the gateway``, ``an MLLP listener`` ...).
    """
    problem = diagnose(exc)
    return describe(problem, where, peer=peer)


def describe(problem: NetworkProblem, where: str, *, peer: str = "the gateway") -> str:
    """The line :func:`explain` gives, for an already diagnosed problem."""
    kind = problem.kind
    if kind == REFUSED:
        return f"connection refused: is {peer} running at {where}?"
    if kind == NAME:
        return f"host name not found ({problem.detail}): check the address {where}"
    if kind == UNREACHABLE:
        return f"{problem.detail.lower()}: no route from here to {where}"
    if kind == CONNECT_TIMEOUT:
        return f"no connection to {where} within the timeout: is the host up and the port open?"
    if kind == TLS:
        hints = [hint for marker, hint in _TLS_HINTS if marker.lower() in problem.detail.lower()]
        return f"TLS failure with {where}: {problem.detail}" + (f" ({hints[0]})" if hints else "")
    if kind == TIMEOUT:
        return f"no answer from {where} within the timeout"
    if kind == RESET:
        return f"the connection to {where} was closed by the peer"
    return f"{where}: {problem.detail}"
