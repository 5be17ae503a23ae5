"""Audit destinations and their sender threads: syslog over TLS, syslog over UDP, a local file.

A :class:`Sender` thread per destination takes the destination's records from the durable queue,
oldest first, writes them, and acknowledges them (deletes them from the queue) once written:

- TLS (RFC 5425): after ``sendall`` returned *and* the connection was still open
  ``settle_seconds`` later (a receiver that stopped reading or went away closes or resets the
  connection, and everything since the last settled point is sent again on a new connection).
  Syslog over TLS has no application acknowledgement, so a receiver that read a record and then
  crashed before storing it loses it; nothing in RFC 5425 can tell. Delivery is otherwise at
  least once: duplicates are possible after a reconnect, losses are not.
- UDP (RFC 5426): a datagram handed to the network counts as delivered; UDP itself may drop it.
- File: after the line was written and fsynced.

While a destination is unreachable its records stay queued; the sender retries with
exponential backoff (``retry_min_seconds`` doubling to ``retry_max_seconds``) and never blocks
the transactions that produce records.

Standards: RFC 5425 §4 (TLS transport, octet counting), §5.1-5.2 (mutual certificate
authentication; ITI TF-2 §3.20.4.2 requires it for the Audit Record Repository); RFC 5426 §3
(UDP); ITI TF-2 §3.20.4.1 (transport choices).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import select
import socket
import ssl
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from gateway.audit import syslog
from gateway.audit.queue import AuditQueue
from gateway.security.tls import wrap_socket

log = logging.getLogger("gateway.audit")

DEFAULT_TLS_PORT = 6514  # RFC 5425 §4.1
DEFAULT_UDP_PORT = 514  # RFC 5426 §3.3
MAX_UDP_PAYLOAD = 65507


class Destination(Protocol):
    """Where records go. ``write`` raises OSError when the destination is unreachable."""

    name: str
    settles: bool  # True: written records need a later :meth:`settled` check before ack

    def write(self, messages: Sequence[bytes]) -> None: ...

    def settled(self) -> bool: ...

    def close(self) -> None: ...


class TlsSyslog:
    """Syslog over TLS (RFC 5425) to an Audit Record Repository, mutual authentication."""

    settles = True

    def __init__(
        self,
        host: str,
        port: int,
        context: ssl.SSLContext,
        *,
        connect_timeout: float = 10.0,
        send_timeout: float = 30.0,
    ) -> None:
        self.host, self.port, self.context = host, port, context
        self.connect_timeout, self.send_timeout = connect_timeout, send_timeout
        self.name = f"tls://{host}:{port}"
        self._sock: ssl.SSLSocket | None = None

    def _connect(self) -> ssl.SSLSocket:
        raw = socket.create_connection((self.host, self.port), timeout=self.connect_timeout)
        sock = wrap_socket(self.context, raw, server_hostname=self.host)
        sock.settimeout(self.send_timeout)
        log.info("audit: connected to %s (%s)", self.name, sock.version())
        return sock

    def write(self, messages: Sequence[bytes]) -> None:
        if self._sock is None:
            self._sock = self._connect()
        self._sock.sendall(b"".join(syslog.octet_counted(m) for m in messages))

    def settled(self) -> bool:
        """Is the connection still open? (A closed or reset one may have lost what we sent.)"""
        sock = self._sock
        if sock is None:
            return False
        try:
            readable, _w, _x = select.select([sock], [], [], 0)
            if not readable and not sock.pending():
                return True
            sock.setblocking(False)
            try:
                data = sock.recv(4096)
            finally:
                sock.settimeout(self.send_timeout)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return True  # TLS housekeeping (e.g. TLS 1.3 session tickets), no application data
        except (OSError, ValueError):
            return False
        return bool(data)  # b"": the receiver closed the connection

    def close(self) -> None:
        if self._sock is not None:
            sock, self._sock = self._sock, None
            with contextlib.suppress(OSError, ValueError):
                sock.settimeout(2.0)
                sock.unwrap().close()  # close_notify first: a clean end of the TLS session
            with contextlib.suppress(OSError):
                sock.close()


class UdpSyslog:
    """Syslog over UDP (RFC 5426): one message per datagram, no delivery feedback."""

    settles = False

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.name = f"udp://{host}:{port}"
        self._sock: socket.socket | None = None
        self._address: tuple[str, int] | None = None

    def write(self, messages: Sequence[bytes]) -> None:
        if self._sock is None or self._address is None:
            family, _type, _proto, _name, address = socket.getaddrinfo(
                self.host, self.port, type=socket.SOCK_DGRAM
            )[0]
            self._sock = socket.socket(family, socket.SOCK_DGRAM)
            # (host, port) of an AF_INET or AF_INET6 address; getaddrinfo's typing also allows
            # the (int, bytes) form of AF_UNIX-like families, which a host name never gives.
            self._address = (str(address[0]), int(address[1]))
        for message in messages:
            if len(message) > MAX_UDP_PAYLOAD:
                log.error("audit: record of %d bytes is too large for UDP; dropped", len(message))
                continue
            try:
                self._sock.sendto(message, self._address)
            except OSError as exc:
                if exc.errno == errno.EMSGSIZE:
                    log.error("audit: record of %d bytes exceeds the path MTU", len(message))
                    continue
                raise

    def settled(self) -> bool:
        return True

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


class FileDestination:
    """A local audit file (0600): one RFC 5424 message per line, fsynced after each batch."""

    settles = False

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.name = f"file:{self.path}"

    def write(self, messages: Sequence[bytes]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, b"".join(syslog.file_line(m) for m in messages))
            os.fsync(fd)
        finally:
            os.close(fd)

    def settled(self) -> bool:
        return True

    def close(self) -> None:
        return None


def parse_destination(
    url: str, *, tls_context: ssl.SSLContext | None, base_dir: str | os.PathLike[str]
) -> Destination:
    """A destination from its configured URL.

    ``tls://host[:6514]`` (needs ``tls_context``), ``udp://host[:514]``, ``file:PATH`` (relative
    paths below ``base_dir``).
    Raises:
        ValueError: unknown scheme, missing host, or TLS without a context.
    """
    text = url.strip()
    if text.startswith("file:"):
        path = Path(text[5:]).expanduser()
        return FileDestination(path if path.is_absolute() else Path(base_dir) / path)
    parts = urlsplit(text)
    if parts.scheme not in {"tls", "udp"} or not parts.hostname:
        raise ValueError(
            f"audit destination {url!r}: use tls://host:port, udp://host:port or file:"
        )
    if parts.scheme == "tls":
        if tls_context is None:
            raise ValueError(f"audit destination {url!r}: TLS needs the node's certificate (tls.*)")
        return TlsSyslog(parts.hostname, parts.port or DEFAULT_TLS_PORT, tls_context)
    return UdpSyslog(parts.hostname, parts.port or DEFAULT_UDP_PORT)


class Sender(threading.Thread):
    """Moves one destination's queued records to it; retries while it is unreachable."""

    def __init__(
        self,
        queue: AuditQueue,
        destination: Destination,
        *,
        wake: threading.Event,
        batch: int = 100,
        settle_seconds: float = 1.0,
        retry_min_seconds: float = 0.5,
        retry_max_seconds: float = 60.0,
    ) -> None:
        super().__init__(name=f"audit-sender {destination.name}", daemon=True)
        self.queue, self.destination, self.wake = queue, destination, wake
        self.batch, self.settle_seconds = batch, settle_seconds
        self.retry_min, self.retry_max = retry_min_seconds, retry_max_seconds
        self._stopping = threading.Event()
        self._inflight: list[tuple[int, float]] = []  # written, not yet acknowledged
        self._cursor = 0  # highest record id written on the current connection
        self._backoff = retry_min_seconds
        self.delivered = 0  # records acknowledged since start (tests, health)
        self.failures = 0  # failed attempts since start
        self._consecutive = 0  # failed attempts since the last success

    def stop(self, timeout: float = 5.0) -> None:
        """Stop after the current round; what is not yet acknowledged stays queued."""
        self._stopping.set()
        self.wake.set()
        self.join(timeout)
        self.destination.close()

    def run(self) -> None:
        while not self._stopping.is_set():
            self.wake.clear()  # a record queued from here on wakes the wait below
            try:
                pause = self._step()
            except Exception as exc:  # OSError, TLS errors: the destination is unreachable
                # Back off without listening to new records: they would only hammer a dead peer.
                self._stopping.wait(self._failed(exc))
                continue
            if pause > 0:
                self.wake.wait(pause)

    def _step(self) -> float:
        """One round: settle what was written, write what waits; return how long to rest."""
        if self._inflight:
            self._settle()
        rows = self.queue.peek(self.destination.name, after=self._cursor, limit=self.batch)
        if rows:
            self.destination.write([message for _id, message in rows])
            self._cursor = rows[-1][0]
            if self.destination.settles:
                now = time.monotonic()
                self._inflight.extend((record_id, now) for record_id, _m in rows)
            else:
                self._acknowledge([record_id for record_id, _m in rows])
            self._recovered()
            return 0.0
        if self.queue.claim_orphans_now_and_then():  # records of a process that is gone
            return 0.0
        return self.settle_seconds if self._inflight else 5.0

    def _settle(self) -> None:
        if not self.destination.settled():
            raise ConnectionError(f"{self.destination.name} closed the connection")
        ripe = time.monotonic() - self.settle_seconds
        done = [record_id for record_id, written in self._inflight if written <= ripe]
        if done:
            self._acknowledge(done)
            self._inflight = self._inflight[len(done) :]

    def _acknowledge(self, ids: list[int]) -> None:
        self.queue.ack(self.destination.name, ids)
        self.delivered += len(ids)

    def _recovered(self) -> None:
        if self._consecutive:
            log.info("audit: %s reachable again", self.destination.name)
        self._consecutive = 0
        self._backoff = self.retry_min

    def _failed(self, exc: Exception) -> float:
        self.failures += 1
        self._consecutive += 1
        first_or_20th = self._consecutive == 1 or self._consecutive % 20 == 0
        level = logging.WARNING if first_or_20th else logging.DEBUG
        log.log(
            level,
            "audit: %s unreachable (%s); %d records wait, retry in %.1fs",
            self.destination.name,
            exc,
            self.queue.pending(self.destination.name),
            self._backoff,
        )
        self.destination.close()
        self._inflight.clear()  # sent again on the next connection (at least once)
        self._cursor = 0
        pause, self._backoff = self._backoff, min(self._backoff * 2, self.retry_max)
        return pause
