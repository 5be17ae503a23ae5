"""The HTTP server under the SOAP endpoints: cheroot, a production threaded WSGI server.

cheroot (CherryPy's server) serves many requests at once from a thread pool, streams iterable
responses chunk by chunk, reads chunked request bodies, and takes an ``ssl.SSLContext`` for TLS
(ITI-19, used by the security issue). This module only wires it: start on a host/port (0 =
ephemeral), report the bound address, and stop gracefully (requests in flight are finished within
``shutdown_timeout``).

Two changes to cheroot's request-body handling (:class:`_WsgiGateway`), so that a request the
application answers without reading its body (a refused caller, a body over the size limit, a
malformed package, an unknown path) costs the server no memory and no disk:

- cheroot reads the unread rest of a request body before answering, to keep the connection
  (``HTTPRequest.send_headers``), in one ``read(remaining)``: a refused 500 MB upload would be
  read into memory. Instead, a rest of at most :data:`DRAIN_LIMIT` bytes is read in small
  pieces and discarded (so that a client which reads the answer only after sending its whole
  body, as urllib3 does, still gets it), and a larger or unknown rest is not read at all: the
  connection is closed after the answer, which says ``Connection: close`` (RFC 9112 §9.6;
  RFC 9110 §15.5.14 for 413). A client that watches for an early answer while sending, as
  RFC 9112 §9.5 asks, stops sending and reads it; one that does not sees the connection end.
- cheroot reads each chunk of a chunked body whole (``read(chunk_size)``), so one chunk
  announced as 2 GB is held in memory before the application sees a byte. Chunks are read in
  pieces of at most :data:`CHUNK_PIECE` bytes instead, and a chunk-size line is bounded.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cheroot import wsgi
from cheroot.server import ChunkedRFile

log = logging.getLogger("gateway.http")

# Idle keep-alive connections a server keeps open (each one a descriptor; silent ones are closed
# after http.request_timeout). Beyond it cheroot closes a connection after its answer. cheroot's
# default, 10, made 16 keep-alive clients, or a load balancer's pool of server connections,
# reconnect (and with TLS, handshake again) for nearly every request.
KEEP_ALIVE_CONNECTIONS = 256

DRAIN_LIMIT = 4 * 1024 * 1024  # unread request bytes still read (and discarded) after an answer
CHUNK_PIECE = 64 * 1024  # largest single read from the socket for a chunked request body
MAX_CHUNK_LINE = 4 * 1024  # chunk-size line with extensions (RFC 9112 §7.1)


class _ChunkedBody(ChunkedRFile):
    """cheroot's chunked request body, reading a chunk's data in bounded pieces.

    Standard: RFC 9112 §7.1 (chunked transfer coding). Trailer fields are left unread, as
    cheroot does.
    """

    def __init__(self, rfile: Any, maxlen: int) -> None:
        super().__init__(rfile, maxlen)
        self._left = 0  # data bytes of the current chunk not read yet

    def _fetch(self) -> None:
        if self.closed:
            return
        if self._left == 0:
            self._left = self._chunk_size()
            if self._left == 0:
                self.closed = True
                return
        data = self.rfile.read(min(self._left, CHUNK_PIECE))
        if not data:
            raise ValueError("the connection closed inside a chunk of the request body")
        self._left -= len(data)
        self.bytes_read += len(data)
        self.buffer += data
        if self._left == 0 and self.rfile.read(2) != b"\r\n":
            raise ValueError("bad chunked transfer coding (no CRLF after a chunk)")

    def _chunk_size(self) -> int:
        line = self.rfile.readline(MAX_CHUNK_LINE + 1)
        self.bytes_read += len(line)
        if len(line) > MAX_CHUNK_LINE or not line.endswith(b"\n"):
            raise ValueError("bad chunked transfer coding (chunk-size line)")
        text = line.split(b";", 1)[0].strip()
        try:
            size = int(text, 16)
        except ValueError:
            raise ValueError(f"bad chunked transfer size {text[:20]!r}") from None
        if size < 0:
            raise ValueError(f"bad chunked transfer size {text[:20]!r}")
        return size


class _WsgiGateway(wsgi.Gateway_10):
    """cheroot's WSGI 1.0 gateway that never drains a large unread request body (see above)."""

    def __init__(self, req: Any) -> None:
        if type(req.rfile) is ChunkedRFile:  # set by HTTPRequest.respond(), before this
            req.rfile = _ChunkedBody(req.conn.rfile, req.rfile.maxlen)
        super().__init__(req)

    def start_response(self, status: str, headers: Any, exc_info: Any = None) -> Any:
        write = super().start_response(status, headers, exc_info)
        self._settle_request_body()
        return write

    def write(self, chunk: bytes) -> None:
        self._settle_request_body()
        super().write(chunk)

    def _settle_request_body(self) -> None:
        """Before the answer goes out: discard a small unread rest, or close instead of reading."""
        req = self.req
        if req.sent_headers or req.close_connection:
            return
        rfile = req.rfile
        chunked = isinstance(rfile, ChunkedRFile)
        if not chunked and getattr(rfile, "remaining", 0) > DRAIN_LIMIT:
            req.close_connection = True  # cheroot then says "Connection: close", reads nothing
            return
        try:
            ended = _discard(rfile, DRAIN_LIMIT)
        except (OSError, ValueError):  # the client is gone or its chunked coding is broken
            ended = False
        if not ended:
            req.close_connection = True


def _discard(rfile: Any, limit: int) -> bool:
    """Read and drop up to ``limit`` bytes of a request body; True if it ended within them."""
    total = 0
    while total <= limit:
        data = rfile.read(min(CHUNK_PIECE, limit + 1 - total))
        if not data:
            return True
        total += len(data)
    return False


class _Server(wsgi.Server):
    """cheroot's WSGI server, able to serve on a socket bound and listening elsewhere.

    ``serve --workers N`` binds each listening socket once, in the supervisor, and every worker
    accepts on it: with ``listener`` set, cheroot's ``prepare()`` takes that socket instead of
    creating and binding its own.
    """

    listener: socket.socket | None = None

    def bind(self, family: int, type: int, proto: int = 0) -> Any:
        if self.listener is None:
            return super().bind(family, type, proto)
        self.socket = self.listener
        self.bind_addr = self.resolve_real_bind_addr(self.socket)
        return self.socket


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
        self._server = _Server(
            (host, port),
            app,
            numthreads=threads,
            request_queue_size=128,
            timeout=request_timeout,
            shutdown_timeout=shutdown_timeout,
            server_name="xdsi-gateway",
        )
        self._server.gateway = _WsgiGateway
        self._server.keep_alive_conn_limit = KEEP_ALIVE_CONNECTIONS
        if ssl_adapter is None and tls is not None:
            ssl_adapter = _ssl_adapter(tls)
        if ssl_adapter is not None:
            self._server.ssl_adapter = ssl_adapter
        self._thread: threading.Thread | None = None
        self.scheme = "https" if ssl_adapter is not None else "http"

    def start(self, sock: socket.socket | None = None) -> tuple[str, int]:
        """Start serving in a background thread; return the bound (host, port).

        ``sock``: a socket already bound and listening (the gateway binds its listeners in one
        place, :mod:`gateway.serving.listeners`); without it the server binds host and port.
        """
        if sock is not None:
            self._server.listener = sock
            self._server.bind_addr = sock.getsockname()[:2]
        self._server.prepare()
        if sock is not None:
            # Other worker processes may accept on the same socket: when one of them takes the
            # connection that woke this server up, accept() must fail at once (cheroot ignores
            # EAGAIN) instead of blocking the connection manager for cheroot's 1 s timeout.
            self._server.socket.setblocking(False)
        self._thread = threading.Thread(target=self._server.serve, name="http-server", daemon=True)
        self._thread.start()
        host, port = self._server.bind_addr[:2]
        if sock is None:
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
