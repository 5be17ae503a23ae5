"""The listening socket of the DICOM acceptor: one thread per association, a limit on how many
run at once, TLS, and an orderly stop.

Each accepted connection gets TCP_NODELAY (a C-STORE-RSP is one small segment: with Nagle's
algorithm it would wait for the peer's delayed ACK, about 40 ms on Linux) and, when the listener
is secured, is wrapped in TLS in its own thread (the handshake of the gateway's DICOM context is
deferred to the first read, so one silent client never stalls the accept loop). Beyond
``max_associations`` at once, a requestor still gets an answer: its A-ASSOCIATE-RQ is read and
rejected as transient, local-limit-exceeded (PS3.8 Table 9-21), so it can try again later.

Standard: DICOM PS3.8 §9.1 (TCP transport), §9.3.4; PS3.15 Annex B (TLS).
"""

from __future__ import annotations

import logging
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Callable

from gateway.imaging.net.association import Association
from gateway.security.tls import wrap_socket

log = logging.getLogger("gateway.imaging")

# (socket, remote address, over the limit) -> an association ready to run
AssociationFactory = Callable[[socket.socket, tuple[str, int], bool], Association]


class AssociationServer:
    """Accepts TCP connections and runs an :class:`Association` for each on its own thread."""

    def __init__(
        self,
        host: str,
        port: int,
        factory: AssociationFactory,
        *,
        max_associations: int = 10,
        ssl_context: ssl.SSLContext | None = None,
        backlog: int = 64,
        listener: socket.socket | None = None,
    ) -> None:
        """``listener``: a socket bound and listening elsewhere (``serve --workers``: every
        worker accepts on the one socket the supervisor bound); else ``host`` and ``port`` are
        bound here."""
        self.factory = factory
        self.max_associations = max_associations
        self.ssl_context = ssl_context
        self._lock = threading.Lock()
        self._threads: dict[threading.Thread, Association | None] = {}
        if listener is None:
            listener = socket.create_server(
                (host, port), family=_family(host), backlog=backlog, reuse_port=False
            )
        # Non-blocking: a connection another process accepted first must not block accept().
        listener.setblocking(False)
        self._listener = listener
        self._waker_r, self._waker_w = socket.socketpair()
        self._stopping = threading.Event()
        self._acceptor: threading.Thread | None = None

    @property
    def server_address(self) -> tuple[str, int]:
        """The bound (host, port)."""
        host, port = self._listener.getsockname()[:2]
        return str(host), int(port)

    @property
    def associations(self) -> list[Association]:
        """The associations running now (those past their TLS wrapping)."""
        with self._lock:
            return [a for a in self._threads.values() if a is not None]

    def start(self) -> None:
        """Accept connections on a background thread."""
        self._acceptor = threading.Thread(
            target=self._accept_loop, name="dicom-listener", daemon=True
        )
        self._acceptor.start()

    def _accept_loop(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._listener, selectors.EVENT_READ)
            selector.register(self._waker_r, selectors.EVENT_READ)
            while not self._stopping.is_set():
                for key, _events in selector.select():
                    if key.fileobj is self._listener and not self._stopping.is_set():
                        self._accept_one()

    def _accept_one(self) -> None:
        try:
            conn, address = self._listener.accept()
        except BlockingIOError:
            return  # another process sharing the socket took the connection
        except OSError as exc:  # e.g. EMFILE, or the peer reset before accept
            log.warning("DICOM listener could not accept a connection: %s", exc)
            time.sleep(0.05)  # let a burst of descriptor exhaustion pass instead of spinning
            return
        conn.setblocking(True)  # accepted sockets inherit O_NONBLOCK from the listener on BSDs
        with self._lock:
            over = len(self._threads) >= self.max_associations
            thread = threading.Thread(
                target=self._serve,
                args=(conn, (str(address[0]), int(address[1])), over),
                name=f"dicom-association-{address[0]}:{address[1]}",
                daemon=True,
            )
            self._threads[thread] = None
        thread.start()

    def _serve(self, conn: socket.socket, address: tuple[str, int], over: bool) -> None:
        me = threading.current_thread()
        try:
            try:
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError as exc:  # e.g. the peer is already gone
                log.debug("TCP_NODELAY not set: %s", exc)
            if self.ssl_context is not None:
                conn = wrap_socket(self.ssl_context, conn, server_side=True)
            association = self.factory(conn, address, over)
            with self._lock:
                self._threads[me] = association
            if self._stopping.is_set():
                association.abort("the DICOM listener is stopping")
            association.run()
        except Exception:
            log.exception("DICOM connection from %s:%d failed", *address)
            conn.close()
        finally:
            with self._lock:
                self._threads.pop(me, None)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop accepting, let the associations finish for up to ``timeout`` seconds, then abort
        those still running and wait for their threads."""
        self._stopping.set()
        self._waker_w.send(b"x")
        if self._acceptor is not None:
            self._acceptor.join()
        self._listener.close()
        deadline = time.monotonic() + timeout
        for thread in self._running():
            thread.join(max(0.0, deadline - time.monotonic()))
        for association in self.associations:
            association.abort("the DICOM listener is stopping")
        for thread in self._running():
            thread.join(timeout)
        self._waker_r.close()
        self._waker_w.close()

    def _running(self) -> list[threading.Thread]:
        with self._lock:
            return list(self._threads)


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET
