"""TLS contexts for every listener and every outbound connection (ITI-19 Authenticate Node).

One policy for all of them: TLS 1.2 or newer, the BCP 195 (RFC 9325) cipher suites for TLS 1.2
(TLS 1.3 suites are all AEAD and are left to OpenSSL), no TLS compression, no renegotiation,
certificates verified against the affinity domain's CA bundle, and mutual authentication (a
listener asks for and checks the client certificate unless told otherwise).

Standards: IHE ITI TF-2 §3.19 (Authenticate Node, "STX: TLS 1.2 Floor using BCP195 Option");
RFC 9325 §3.1.1 (TLS 1.2 floor), §3.3 (no compression), §3.5 (renegotiation), §4.2 (recommended
cipher suites); RFC 8996 (TLS 1.0/1.1 deprecated).
"""

from __future__ import annotations

import logging
import os
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import requests

# RFC 9325 §4.2: the RECOMMENDED TLS 1.2 cipher suites (ECDHE key exchange, AES-GCM), in OpenSSL
# names. Both ECDSA and RSA certificates are covered, so certs made with either key type work.
BCP195_TLS12_CIPHERS = ":".join(
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",  # TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
        "ECDHE-RSA-AES128-GCM-SHA256",  # TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
        "ECDHE-ECDSA-AES256-GCM-SHA384",  # TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
        "ECDHE-RSA-AES256-GCM-SHA384",  # TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384
    )
)

log = logging.getLogger("gateway.security")

_HARDENING = ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION | ssl.OP_CIPHER_SERVER_PREFERENCE


class TlsConfigError(ValueError):
    """A certificate, key or CA file is missing or unreadable (start-up stops)."""


def _check_file(kind: str, path: str | os.PathLike[str] | None) -> str:
    if path is None or not str(path):
        raise TlsConfigError(f"TLS {kind} file is not configured")
    text = os.fspath(path)
    if not os.path.isfile(text):
        raise TlsConfigError(f"TLS {kind} file {text!r} does not exist")
    return text


def _harden(context: ssl.SSLContext, ciphers: str | None) -> ssl.SSLContext:
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= _HARDENING
    context.set_ciphers(ciphers or BCP195_TLS12_CIPHERS)
    return context


def server_context(
    cert: str | os.PathLike[str],
    key: str | os.PathLike[str],
    ca: str | os.PathLike[str] | None,
    *,
    require_client_cert: bool = True,
    ciphers: str | None = None,
) -> ssl.SSLContext:
    """A listener's TLS context: our certificate, the CA bundle clients must chain to.

    With ``require_client_cert`` (the default) a client without a certificate, or with one that
    does not chain to ``ca``, fails the handshake (mutual authentication, ITI TF-2 §3.19.6.1);
    otherwise a certificate is asked for and checked when sent, but not required.
    Standard: ITI TF-2 §3.19; RFC 9325 §3, §4.2.
    Raises:
        TlsConfigError: a file is missing or unusable.
    """
    context = _harden(TlsContext(ssl.PROTOCOL_TLS_SERVER), ciphers)
    _load_chain(context, cert, key)
    if ca is not None and str(ca):
        _load_ca(context, ca)
        context.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_OPTIONAL
    elif require_client_cert:
        raise TlsConfigError("TLS CA file is required to authenticate clients")
    return context


def client_context(
    ca: str | os.PathLike[str],
    cert: str | os.PathLike[str] | None = None,
    key: str | os.PathLike[str] | None = None,
    *,
    check_hostname: bool = True,
    ciphers: str | None = None,
) -> ssl.SSLContext:
    """An outbound connection's TLS context: verify the server against ``ca``, present ``cert``.

    The server's certificate must chain to ``ca`` and (with ``check_hostname``) name the host
    dialled in its subjectAltName. ``cert``/``key`` are the node's own certificate, sent when the
    server asks (every gateway listener does).
    Standard: ITI TF-2 §3.19; RFC 9325 §3, §4.2; RFC 6125 (server identity).
    Raises:
        TlsConfigError: a file is missing or unusable.
    """
    context = _harden(TlsContext(ssl.PROTOCOL_TLS_CLIENT), ciphers)
    _load_ca(context, ca)
    context.check_hostname = check_hostname
    context.verify_mode = ssl.CERT_REQUIRED
    if cert is not None and str(cert):
        _load_chain(context, cert, key or cert)
    return context


def _load_chain(
    context: ssl.SSLContext, cert: str | os.PathLike[str], key: str | os.PathLike[str]
) -> None:
    cert_path, key_path = _check_file("certificate", cert), _check_file("private key", key)
    try:
        context.load_cert_chain(cert_path, key_path)
    except (ssl.SSLError, OSError) as exc:
        raise TlsConfigError(f"cannot load certificate {cert_path!r} with its key: {exc}") from exc


def _load_ca(context: ssl.SSLContext, ca: str | os.PathLike[str]) -> None:
    ca_path = _check_file("CA", ca)
    try:
        context.load_verify_locations(cafile=ca_path)
    except (ssl.SSLError, OSError) as exc:
        raise TlsConfigError(f"cannot load CA bundle {ca_path!r}: {exc}") from exc


HandshakeFailure = Callable[[str | None, str], None]  # (remote address, reason)
HANDSHAKE_TIMEOUT = 30.0  # seconds a peer may take over its part of the TLS handshake
# Handshake errors that are no authentication attempt: plain HTTP on the TLS port, a dropped
# connection (port scanners, health probes).
_NOT_AUTHENTICATION = {"HTTP_REQUEST", "UNEXPECTED_EOF_WHILE_READING"}


def report_failure(report: HandshakeFailure | None, peer: str | None, reason: str) -> None:
    """Call ``report``; its errors are logged, never raised into the listener."""
    if report is None:
        return
    try:
        report(peer, reason)
    except Exception:
        log.exception("TLS handshake failure report failed")


def authentication_failure(exc: BaseException) -> str | None:
    """The reason to audit when a handshake failed on authentication, else ``None``.

    Certificate verification failures, a missing client certificate and a refused protocol
    version or cipher count (ITI TF-2 §3.20.4.1.1.1 "Node-authentication-failure"); a peer that
    merely hung up, or spoke plain HTTP, does not.
    """
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"certificate verify failed: {exc.verify_message}"
    if isinstance(exc, ssl.SSLEOFError | ssl.SSLZeroReturnError | ssl.SSLWantReadError):
        return None
    if isinstance(exc, ssl.SSLError):
        reason = exc.reason or ""
        if reason in _NOT_AUTHENTICATION:
            return None
        return reason.replace("_", " ").lower() if reason else str(exc)
    return None


def _close_half_made(exc: BaseException) -> None:
    """Close the ``SSLSocket`` that a failed ``wrap_socket`` made and dropped unclosed.

    CPython before 3.11.8 / 3.12.2 (gh-113280) detaches the plain socket, then raises without
    closing the new ``SSLSocket`` when the peer reset the connection before the handshake
    (``getpeername`` ENOTCONN, then ``recv`` ECONNRESET): its descriptor stays open until the
    garbage collector finds it. The half-made socket is the ``self`` of a frame of the
    exception's traceback (``SSLSocket._create``); closing it again is harmless.
    """
    trace = exc.__traceback__
    while trace is not None:
        made = trace.tb_frame.f_locals.get("self")
        if isinstance(made, ssl.SSLSocket):
            made.close()
        trace = trace.tb_next


def wrap_socket(context: ssl.SSLContext, sock: socket.socket, **kwargs: Any) -> ssl.SSLSocket:
    """``context.wrap_socket(sock, **kwargs)`` that leaves no socket open when it fails.

    On failure both ``sock`` and any half-made ``SSLSocket`` are closed (see
    :func:`_close_half_made`), then the exception propagates. Every TLS connection the gateway
    opens or accepts itself is wrapped here (ITI TF-2 §3.19).
    """
    try:
        return context.wrap_socket(sock, **kwargs)
    except BaseException as exc:
        _close_half_made(exc)
        sock.close()
        raise


class _DeferredSSLSocket(ssl.SSLSocket):
    """A server-side SSLSocket that does its handshake on first use and reports failures."""

    _report: HandshakeFailure | None = None
    _handshaken = False

    def _handshake_once(self) -> None:
        # No TLS object yet: ``SSLSocket._create`` probes an unconnected socket with recv(1)
        # before making one; that probe must reach the plain socket (and see ECONNRESET).
        if self._handshaken or getattr(self, "_sslobj", None) is None:
            return
        self._handshaken = True
        try:
            peer: str | None = self.getpeername()[0]
        except OSError:
            peer = None
        previous = self.gettimeout()
        if previous is None:  # a peer stalling mid-handshake must not hold its thread forever
            self.settimeout(HANDSHAKE_TIMEOUT)
        try:
            self.do_handshake()
        except (ssl.SSLError, OSError) as exc:
            reason = authentication_failure(exc)
            if reason:
                report_failure(type(self)._report, peer, reason)
            raise
        finally:
            if previous is None:
                self.settimeout(None)

    def recv(self, buflen: int = 1024, flags: int = 0) -> bytes:
        self._handshake_once()
        return super().recv(buflen, flags)

    def recv_into(self, buffer: Any, nbytes: int | None = None, flags: int = 0) -> int:
        self._handshake_once()
        return super().recv_into(buffer, nbytes, flags)

    def read(self, len: int = 1024, buffer: Any = None) -> Any:
        self._handshake_once()
        return super().read(len, buffer)

    def send(self, data: Any, flags: int = 0) -> int:
        self._handshake_once()
        return super().send(data, flags)

    def sendall(self, data: Any, flags: int = 0) -> None:
        self._handshake_once()
        super().sendall(data, flags)


class TlsContext(ssl.SSLContext):
    """An ``SSLContext`` whose ``wrap_socket`` never leaves a half-made socket open.

    Every context of this module is one, so the sockets that cheroot, urllib3 and pynetdicom
    wrap with it are covered too (see :func:`_close_half_made`).
    """

    def wrap_socket(self, sock: Any, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        try:
            return super().wrap_socket(sock, *args, **kwargs)
        except BaseException as exc:  # a peer gone before the handshake
            _close_half_made(exc)
            raise


class DeferredHandshakeContext(TlsContext):
    """A server context whose accepted sockets do the TLS handshake on first use, not in accept().

    A listener that wraps each accepted socket in its accepting thread (pynetdicom's
    ``AssociationServer.get_request`` does) would let one silent client stall every other DICOM
    peer with the default eager handshake. Deferred, the handshake runs in the association's
    thread on its first read or write (bounded by :data:`HANDSHAKE_TIMEOUT`), and authentication
    failures are reported (the gateway's listener, ``gateway.imaging.net.server``, wraps in the
    association's thread anyway).
    """

    def wrap_socket(self, sock: Any, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        if kwargs.get("server_side"):
            kwargs["do_handshake_on_connect"] = False
        return super().wrap_socket(sock, *args, **kwargs)


def dicom_server_context(
    cert: str | os.PathLike[str],
    key: str | os.PathLike[str],
    ca: str | os.PathLike[str] | None,
    *,
    require_client_cert: bool = True,
    ciphers: str | None = None,
    on_handshake_failure: HandshakeFailure | None = None,
) -> ssl.SSLContext:
    """Like :func:`server_context`, with the handshake deferred to the association thread.

    ``on_handshake_failure(remote_address, reason)`` is called (in that thread) when a peer
    fails to authenticate: record a node-authentication-failure audit event there.
    Standard: DICOM PS3.15 Annex B.1 (The Basic TLS Secure Transport Connection Profile) and
    B.9 (BCP 195 TLS Profile); ITI TF-2 §3.19.
    """
    context = _harden(DeferredHandshakeContext(ssl.PROTOCOL_TLS_SERVER), ciphers)
    report = staticmethod(on_handshake_failure) if on_handshake_failure is not None else None
    context.sslsocket_class = type("DeferredSSLSocket", (_DeferredSSLSocket,), {"_report": report})
    _load_chain(context, cert, key)
    if ca is not None and str(ca):
        _load_ca(context, ca)
        context.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_OPTIONAL
    elif require_client_cert:
        raise TlsConfigError("TLS CA file is required to authenticate clients")
    return context


@dataclass(frozen=True, slots=True, kw_only=True)
class TlsFiles:
    """The node's TLS material: its certificate and key, and the affinity domain's CA bundle."""

    certificate: str
    private_key: str
    ca_file: str
    require_client_cert: bool = True
    ciphers: str = ""  # empty = BCP 195

    def server(self) -> ssl.SSLContext:
        """The listener context (HTTPS, MLLP/TLS)."""
        return server_context(
            self.certificate,
            self.private_key,
            self.ca_file,
            require_client_cert=self.require_client_cert,
            ciphers=self.ciphers or None,
        )

    def dicom_server(self, on_handshake_failure: HandshakeFailure | None = None) -> ssl.SSLContext:
        """The DICOM listener context (handshake deferred: :class:`DeferredHandshakeContext`)."""
        return dicom_server_context(
            self.certificate,
            self.private_key,
            self.ca_file,
            require_client_cert=self.require_client_cert,
            ciphers=self.ciphers or None,
            on_handshake_failure=on_handshake_failure,
        )

    def client(self, *, check_hostname: bool = True) -> ssl.SSLContext:
        """The outbound context (audit sender, MLLP client, DICOM SCU)."""
        return client_context(
            self.ca_file,
            self.certificate,
            self.private_key,
            check_hostname=check_hostname,
            ciphers=self.ciphers or None,
        )

    def requests_kwargs(self) -> dict[str, Any]:
        """``verify``/``cert`` for requests and the gateway's SOAP clients (``SoapClient``)."""
        return {"verify": self.ca_file, "cert": (self.certificate, self.private_key)}


def requests_session(context: ssl.SSLContext) -> requests.Session:
    """A ``requests.Session`` whose https connections all use ``context`` (CA and client cert).

    requests would otherwise build its own context (default cipher list, the CA bundle passed
    as ``verify``); mounting this one keeps outbound SOAP calls (ITI-18/41/42/43, RAD-69) on
    the BCP 195 policy. ``verify``/``cert`` arguments given to a request are then ignored:
    the context already holds the CA bundle and the node's certificate.
    Standard: ITI TF-2 §3.19; RFC 9325 §4.2.
    """
    import requests
    from requests.adapters import HTTPAdapter

    class _ContextAdapter(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            kwargs["ssl_context"] = context
            super().init_poolmanager(*args, **kwargs)

        def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
            kwargs["ssl_context"] = context
            return super().proxy_manager_for(proxy, **kwargs)

        def build_connection_pool_key_attributes(
            self, request: Any, verify: Any, cert: Any = None
        ) -> tuple[Any, Any]:
            host_params, _ignored = super().build_connection_pool_key_attributes(
                request, True, None
            )
            return host_params, {"cert_reqs": "CERT_REQUIRED"}

        def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
            conn.cert_reqs = "CERT_REQUIRED"
            conn.ca_certs = conn.ca_cert_dir = None
            conn.cert_file = conn.key_file = None

    session = requests.Session()
    session.mount("https://", _ContextAdapter())
    return session
