"""The HTTP server under the SOAP endpoints: cheroot, a production threaded WSGI server.

cheroot (CherryPy's server) serves many requests at once from a thread pool, streams iterable
responses chunk by chunk, reads chunked request bodies, and takes an ``ssl.SSLContext`` for TLS
(ITI-19, used by the security issue). This module only wires it: start on a host/port (0 =
ephemeral), report the bound address, and stop gracefully (requests in flight are finished within
``shutdown_timeout``).
"""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cheroot import wsgi

log = logging.getLogger("gateway.http")


@dataclass(frozen=True, slots=True, kw_only=True)
class TlsFiles:
    """Server certificate and key, and the CA bundle trusted for client certificates (PEM)."""

    certificate: str
    private_key: str
    ca_file: str | None = None
    require_client_cert: bool = True


def _ssl_adapter(tls: TlsFiles) -> Any:
    from cheroot.ssl.builtin import BuiltinSSLAdapter

    adapter = BuiltinSSLAdapter(tls.certificate, tls.private_key, tls.ca_file)
    context = adapter.context
    context.minimum_version = ssl.TLSVersion.TLSv1_2  # BCP 195: TLS 1.2 or newer only
    if tls.ca_file:
        context.load_verify_locations(cafile=tls.ca_file)
        context.verify_mode = ssl.CERT_REQUIRED if tls.require_client_cert else ssl.CERT_OPTIONAL
    return adapter


class HttpServer:
    """A threaded WSGI server running in a background thread."""

    def __init__(
        self,
        app: Callable[..., Any],
        *,
        host: str,
        port: int,
        threads: int = 32,
        request_timeout: int = 60,
        shutdown_timeout: int = 30,
        tls: TlsFiles | None = None,
        ssl_adapter: Any | None = None,
    ) -> None:
        """``ssl_adapter``: a ready cheroot SSL adapter (the gateway passes
        ``gateway.security.https.GatewaySSLAdapter``); ``tls``: plain files, for tests and tools.
        """
        self._server = wsgi.Server(
            (host, port),
            app,
            numthreads=threads,
            request_queue_size=128,
            timeout=request_timeout,
            shutdown_timeout=shutdown_timeout,
            server_name="xdsi-gateway",
        )
        if ssl_adapter is None and tls is not None:
            ssl_adapter = _ssl_adapter(tls)
        if ssl_adapter is not None:
            self._server.ssl_adapter = ssl_adapter
        self._thread: threading.Thread | None = None
        self.scheme = "https" if ssl_adapter is not None else "http"

    def start(self) -> tuple[str, int]:
        """Bind and start serving in a background thread; return the bound (host, port)."""
        self._server.prepare()
        self._thread = threading.Thread(target=self._server.serve, name="http-server", daemon=True)
        self._thread.start()
        host, port = self._server.bind_addr[:2]
        log.info("HTTP listening on %s://%s:%d", self.scheme, host, port)
        return host, port

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.bind_addr[:2]
        return host, port

    def stop(self) -> None:
        """Stop accepting, finish requests in flight (up to shutdown_timeout), then return."""
        self._server.stop()
        if self._thread is not None:
            self._thread.join(timeout=5)
        log.info("HTTP server stopped")
