"""Large request bodies for tests: made while sent, by a client that watches for an answer.

:class:`LazyUpload` is an MTOM ITI-41 request whose document part is generated while it is sent
(never held in memory); :func:`post_watching` sends a body the way RFC 9112 §9.5 asks of a
client, watching the connection for an answer and stopping when one arrives; :class:`SpoolWatch`
samples a folder while a request runs.
"""

from __future__ import annotations

import select
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from gateway.security.tls import wrap_socket
from gateway.soap import ns
from gateway.soap.transactions import ITI_41
from tests.support.rawsoap import envelope, mtom_body

MIB = 1024 * 1024


@dataclass
class Answer:
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    sent: int = 0  # request bytes the client had sent when it stopped
    sent_everything: bool = False


def post_watching(
    context: ssl.SSLContext | None, url: str, headers: dict[str, str], body: Iterable[bytes]
) -> Answer:
    """POST (over TLS with ``context``) as RFC 9112 §9.5 asks of a client: watch the connection
    for an answer while sending the body, and stop sending once one arrives."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    sock: socket.socket = socket.create_connection((host, port), timeout=30)
    if context is not None:
        sock = wrap_socket(context, sock, server_hostname=host)
    lines = [f"POST {parts.path} HTTP/1.1", f"Host: {host}:{port}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    sock.setblocking(False)
    answer, received = Answer(), bytearray()
    source, pending, sending = iter(body), b"", True
    deadline = time.monotonic() + 120
    try:
        while not _complete(received, answer) and time.monotonic() < deadline:
            readable, writable, _ = select.select([sock], [sock] if sending else [], [], 1.0)
            if readable or (isinstance(sock, ssl.SSLSocket) and sock.pending()):
                data = _receive(sock)
                if data == b"":
                    break  # the server closed the connection
                if data:
                    received += data
                    sending = False  # an answer came: stop sending (RFC 9112 §9.5)
            if sending and writable:
                if not pending:
                    pending = next(source, b"")
                    if not pending:
                        sending, answer.sent_everything = False, True
                        continue
                try:
                    count = sock.send(pending[: 16 * 1024])
                except (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError):
                    continue
                except (BrokenPipeError, ConnectionResetError, ssl.SSLEOFError):
                    sending = False
                    continue
                answer.sent += count
                pending = pending[count:]
    finally:
        sock.close()
    return answer


def _receive(sock: socket.socket) -> bytes | None:
    try:
        return sock.recv(64 * 1024)
    except (ssl.SSLWantReadError, BlockingIOError):
        return None
    except (ssl.SSLEOFError, ConnectionResetError):
        return b""


def _complete(received: bytearray, answer: Answer) -> bool:
    """Parse what has arrived into ``answer``; True once the whole answer is there."""
    head, sep, body = bytes(received).partition(b"\r\n\r\n")
    if not sep:
        return False
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    answer.status = int(status_line.split()[1])
    answer.headers = {
        name.strip().lower(): value.strip()
        for name, _, value in (line.partition(":") for line in header_lines)
    }
    answer.body = body
    return len(body) >= int(answer.headers.get("content-length", "0"))


def chunked(blocks: Iterable[bytes]) -> Iterator[bytes]:
    """The chunked transfer coding of a body (RFC 9112 §7.1)."""
    for block in blocks:
        yield f"{len(block):x}\r\n".encode() + block + b"\r\n"
    yield b"0\r\n\r\n"


class LazyUpload:
    """An MTOM ITI-41 request whose document part (``size`` zero bytes) is made while sent.

    Acts as a sized file (``read`` and ``len``: requests sends a Content-Length) or, through
    :meth:`chunks`, as an iterator (requests sends it chunked). ``produced`` counts the bytes
    handed to the HTTP client so far.
    """

    def __init__(self, size: int, *, to: str) -> None:
        body = (
            f'<xdsb:ProvideAndRegisterDocumentSetRequest xmlns:xdsb="{ns.XDSB}">'
            f'<lcm:SubmitObjectsRequest xmlns:lcm="{ns.LCM}"/>'
            '<xdsb:Document id="Document01"><xop:Include '
            'xmlns:xop="http://www.w3.org/2004/08/xop/include" href="cid:doc@test"/>'
            "</xdsb:Document></xdsb:ProvideAndRegisterDocumentSetRequest>"
        )
        root = envelope(body, action=ITI_41.action, to=to)
        self.content_type, head = mtom_body(root, [("doc@test", b"")])
        self._prefix, self._suffix = head.rsplit(b"\r\n--", 1)
        self._suffix = b"\r\n--" + self._suffix
        self._size = size
        self._sent = 0  # of the part's bytes
        self._stage = 0
        self.produced = 0

    def __len__(self) -> int:
        return len(self._prefix) + self._size + len(self._suffix)

    def read(self, n: int = -1) -> bytes:
        if n < 0:
            raise ValueError("LazyUpload is read in pieces only")
        data = b""
        if self._stage == 0:
            data, self._stage = self._prefix, 1
        elif self._stage == 1:
            step = min(n, MIB, self._size - self._sent)
            data = bytes(step)
            self._sent += step
            if self._sent == self._size:
                self._stage = 2
        elif self._stage == 2:
            data, self._stage = self._suffix, 3
        self.produced += len(data)
        return data

    def chunks(self) -> Iterator[bytes]:
        while block := self.read(MIB):
            yield block


class SpoolWatch:
    """Samples a folder while a request runs: the most bytes and files it ever held."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.max_bytes = 0
        self.max_files = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            files = [p for p in self.folder.iterdir() if p.is_file()]
            size = 0
            for path in files:
                try:
                    size += path.stat().st_size
                except FileNotFoundError:
                    pass
            self.max_bytes = max(self.max_bytes, size)
            self.max_files = max(self.max_files, len(files))
            self.samples += 1
            self._stop.wait(0.002)

    def __enter__(self) -> SpoolWatch:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()


def wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)  # polling a condition with a deadline
    return condition()
