"""The listening sockets of a gateway: bound once, in one place, with one wording for failures.

Every listener (HTTP for the SOAP endpoints, MLLP for ITI-8, DICOM for C-STORE) gets its socket
from :func:`make_listener`; the servers only accept on a socket they are given. ``serve`` binds
them all before anything else starts, so a port in use stops start-up with one line and nothing
half-started.

``serve --workers N`` binds them in the supervisor too, with ``SO_REUSEPORT`` (Linux), but does not
listen on them: they only hold the ports (and resolve port 0). Each worker binds a socket of its
own to the same address, also with ``SO_REUSEPORT``, and listens on it; the kernel spreads new
connections over the workers' sockets by a hash of the connection's addresses, so connections
opened at the same instant (keep-alive HTTP clients, MLLP feeds, DICOM associations) are spread
over the workers instead of all going to whichever worker was waiting in ``accept`` first. A
worker that dies takes its socket with it: new connections go to the others at once, and those
still queued on its socket, not yet accepted, are reset (Linux 5.14 and later can hand them on
instead: ``sysctl net.ipv4.tcp_migrate_req=1``). Where ``SO_REUSEPORT`` does not exist, the
supervisor listens and hands the same sockets to every worker, which all accept on them.

Where each listener ended up (port 0 = an ephemeral port) is logged in these forms, which
scripts and tests may parse::

    HTTP listening on http://127.0.0.1:8080        (https:// with TLS)
    MLLP listening on 127.0.0.1:2575
    DICOM listener XDSI_SOURCE on 127.0.0.1:11112
"""

from __future__ import annotations

import errno
import logging
import socket
from dataclasses import dataclass

from gateway.config import Settings
from gateway.errors import StartupError

log = logging.getLogger("gateway")

BACKLOG = 128  # connections the kernel queues while every worker is busy (capped by somaxconn)


@dataclass(frozen=True, slots=True)
class _Kind:
    purpose: str
    host_key: str
    port_key: str


KINDS = {
    "HTTP": _Kind("SOAP endpoints", "http.host", "http.port"),
    "MLLP": _Kind("ITI-8 patient identity feed", "hl7.host", "hl7.mllp_port"),
    "DICOM": _Kind("C-STORE", "imaging_source.host", "imaging_source.dicom_port"),
}


class ListenError(StartupError):
    """A listener cannot be bound; the message names it, the address and the setting to change."""


def _where(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _reason(exc: OSError, kind: _Kind) -> str:
    if isinstance(exc, socket.gaierror):
        return f"unknown host name (set {kind.host_key})"
    if exc.errno == errno.EADDRINUSE:
        return (
            f"address already in use (another gateway or program is using it; set {kind.port_key})"
        )
    if exc.errno == errno.EACCES:
        return f"permission denied (ports below 1024 need privileges; set {kind.port_key})"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"no interface of this machine has that address (set {kind.host_key})"
    return f"{(exc.strerror or str(exc)).lower()} (check {kind.host_key} and {kind.port_key})"


REUSE_PORT = hasattr(socket, "SO_REUSEPORT")  # Linux 3.9+, the BSDs (not Windows)


def make_listener(
    host: str, port: int, name: str, *, reuse_port: bool = False, listen: bool = True
) -> socket.socket:
    """A TCP socket bound to (host, port) and listening, for the listener ``name``.

    ``name`` is one of :data:`KINDS` (HTTP, MLLP, DICOM). Port 0 binds an ephemeral port (read it
    back with ``getsockname()``). The socket is not inheritable; ``serve --workers`` passes it
    on explicitly. ``reuse_port``: with ``SO_REUSEPORT``, so that other sockets of this user may
    bind the same address (each worker's own); ``listen=False`` only binds (the supervisor's
    socket that holds the port).
    Raises:
        ListenError: ``cannot listen on 127.0.0.1:8080 for HTTP (SOAP endpoints): address
            already in use (another gateway or program is using it; set http.port)``.
    """
    kind = KINDS[name]
    try:
        family, kind_type, proto, _name, address = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind_type, proto)
    except OSError as exc:
        raise ListenError(_message(host, port, name, _reason(exc, kind))) from exc
    except UnicodeError as exc:  # a name the IDNA codec refuses, such as "a..b"
        reason = f"not a valid host name (set {kind.host_key})"
        raise ListenError(_message(host, port, name, reason)) from exc
    try:
        if port:  # not for port 0: SO_REUSEADDR could hand out a port another socket uses
            # A restart must not wait for the previous run's connections in TIME_WAIT.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted connections inherit it: small answers are not held back by Nagle's
        # algorithm waiting for the peer's delayed ACK (about 40 ms per keep-alive request).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
        if listen:
            sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        raise ListenError(_message(host, port, name, _reason(exc, kind))) from exc
    return sock


def _message(host: str, port: int, name: str, reason: str) -> str:
    return f"cannot listen on {_where(host, port)} for {name} ({KINDS[name].purpose}): {reason}"


@dataclass(slots=True)
class Listeners:
    """The bound listening sockets of one gateway (None: that listener is not enabled)."""

    http: socket.socket
    mllp: socket.socket | None = None
    dicom: socket.socket | None = None
    per_worker: bool = False  # bound with SO_REUSEPORT, not listening: each worker binds its own

    def named(self) -> dict[str, socket.socket]:
        """The enabled listeners by name (HTTP, MLLP, DICOM)."""
        found = {"HTTP": self.http, "MLLP": self.mllp, "DICOM": self.dicom}
        return {name: sock for name, sock in found.items() if sock is not None}

    def fds(self) -> dict[str, int]:
        """File descriptor numbers by name, to hand the sockets to a worker process."""
        return {name: sock.fileno() for name, sock in self.named().items()}

    @classmethod
    def from_fds(cls, fds: dict[str, int]) -> Listeners:
        """The sockets a worker inherited (``fds`` as :meth:`fds` gave them)."""
        sockets = {name.lower(): socket.socket(fileno=fd) for name, fd in fds.items()}
        for sock in sockets.values():
            sock.set_inheritable(False)  # not handed on to anything this worker starts
        return cls._of(sockets)

    def addresses(self) -> dict[str, tuple[str, int]]:
        """(host, port) each listener is bound to, by name (port 0 resolved)."""
        return {name: sock.getsockname()[:2] for name, sock in self.named().items()}

    @classmethod
    def of_this_worker(cls, addresses: dict[str, tuple[str, int]]) -> Listeners:
        """A worker's own listening sockets on the supervisor's addresses (``SO_REUSEPORT``).

        Raises:
            ListenError: an address cannot be bound (see :func:`make_listener`).
        """
        bound: dict[str, socket.socket] = {}
        try:
            for name, (host, port) in addresses.items():
                bound[name.lower()] = make_listener(host, port, name, reuse_port=True)
        except BaseException:
            for sock in bound.values():
                sock.close()
            raise
        return cls._of(bound)

    @classmethod
    def _of(cls, bound: dict[str, socket.socket], per_worker: bool = False) -> Listeners:
        return cls(bound["http"], bound.get("mllp"), bound.get("dicom"), per_worker)

    def close(self) -> None:
        for sock in self.named().values():
            sock.close()

    def announce(self, settings: Settings) -> None:
        """Log where each listener is (the forms in this module's docstring)."""
        host, port = self.http.getsockname()[:2]
        scheme = "https" if settings.tls.enabled else "http"
        log.info("HTTP listening on %s://%s", scheme, _where(host, port))
        if self.mllp is not None:
            log.info("MLLP listening on %s", _where(*self.mllp.getsockname()[:2]))
        if self.dicom is not None:
            ae = settings.imaging_source.ae_title
            log.info("DICOM listener %s on %s", ae, _where(*self.dicom.getsockname()[:2]))


def enabled_listeners(settings: Settings) -> dict[str, tuple[str, int]]:
    """(host, port) of every listener these settings switch on, by name.

    Mirrors what :class:`gateway.app.Gateway` starts: HTTP always, MLLP with the registry and
    ``hl7.enabled``, DICOM with the imaging source.
    """
    wanted = {"HTTP": (settings.http.host, settings.http.port)}
    if settings.registry.enabled and settings.hl7.enabled:
        wanted["MLLP"] = (settings.hl7.host, settings.hl7.mllp_port)
    if settings.imaging_source.enabled:
        wanted["DICOM"] = (settings.imaging_source.host, settings.imaging_source.dicom_port)
    return wanted


def bind_listeners(settings: Settings, *, per_worker: bool = False) -> Listeners:
    """Bind every enabled listener, or none: on failure those already bound are closed.

    ``per_worker`` (``serve --workers N``, where ``SO_REUSEPORT`` exists): the sockets only hold
    the ports, each worker listens on its own (:meth:`Listeners.of_this_worker`).
    Raises:
        ListenError: the first listener that cannot be bound (see :func:`make_listener`).
    """
    per_worker = per_worker and REUSE_PORT
    bound: dict[str, socket.socket] = {}
    try:
        for name, (host, port) in enabled_listeners(settings).items():
            if not per_worker:
                bound[name.lower()] = make_listener(host, port, name)
                continue
            # SO_REUSEPORT would let this bind join the sockets of another gateway of this user
            # on the same port: an exclusive bind first proves the port free (and resolves port
            # 0); the port is held again, shared, a moment later.
            with make_listener(host, port, name, listen=False) as probe:
                port = probe.getsockname()[1]
            bound[name.lower()] = make_listener(host, port, name, reuse_port=True, listen=False)
    except BaseException:
        for sock in bound.values():
            sock.close()
        raise
    return Listeners._of(bound, per_worker)
