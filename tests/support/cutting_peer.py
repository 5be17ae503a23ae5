"""An HTTP peer on 127.0.0.1 (ephemeral port) whose answers can be cut short, on raw sockets.

Each connection carries one request: the peer reads it (request line, headers, a Content-Length
body), makes the answer (forwarded to ``target``, a base URL, with the same path; or made by
``answer``), and asks ``cut(number, size)`` (``number`` counts requests from 0, ``size`` is the
answer body's length) how much of it to send:
``None`` sends it whole; an int sends the status line and the headers announcing the whole body,
then only that many body bytes, and closes the connection. That is a peer that sends its
headers and then drops the connection, which no HTTP client can mistake for a complete answer:
the Content-Length (or, with ``chunked``, the missing last chunk) says more was due.
"""

from __future__ import annotations

import http.client
import socketserver
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO
from urllib.parse import urlsplit

Cut = Callable[[int, int], int | None]
_HOP_BY_HOP = {"connection", "content-length", "keep-alive", "transfer-encoding"}


@dataclass(slots=True)
class Answer:
    """An HTTP answer to send (or to cut short)."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes
    reason: str = "OK"


@dataclass(slots=True)
class Received:
    """One request as the peer read it, and how much of its answer went out."""

    path: str
    headers: dict[str, str]
    body: bytes
    sent: int = -1  # body bytes of the answer sent; -1: all of them
    answer_size: int = 0


@dataclass
class CuttingPeer:
    """The peer. ``start()`` returns its base URL; ``received`` lists the requests in order."""

    target: str | None = None
    answer: Callable[[Received], Answer] | None = None
    cut: Cut = lambda _number, _size: None
    chunked: bool = False
    received: list[Received] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: socketserver.ThreadingTCPServer | None = None

    def start(self) -> str:
        peer = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                request = peer._read(self.rfile)
                if request is not None:
                    peer._respond(request, self.wfile)

        server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self._server = server
        threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        host, port = server.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def cuts(self) -> list[Received]:
        """The requests whose answer was cut short."""
        return [r for r in self.received if r.sent >= 0]

    # -- one connection ---------------------------------------------------------------------------
    def _read(self, rfile: BinaryIO) -> Received | None:
        line = rfile.readline()
        if not line:
            return None
        _method, path, _version = line.decode("latin-1").split(" ", 2)
        headers: dict[str, str] = {}
        while (header := rfile.readline().decode("latin-1").strip()) != "":
            name, _, value = header.partition(":")
            headers[name.strip().lower()] = value.strip()
        body = rfile.read(int(headers.get("content-length", "0")))
        return Received(path=path, headers=headers, body=body)

    def _respond(self, request: Received, wfile: BinaryIO) -> None:
        with self._lock:
            number = len(self.received)
            self.received.append(request)
        answer = self._forward(request) if self.target else self._made(request)
        keep = self.cut(number, len(answer.body))
        request.answer_size = len(answer.body)
        body = answer.body if keep is None else answer.body[:keep]
        request.sent = -1 if keep is None else len(body)
        head = [f"HTTP/1.1 {answer.status} {answer.reason}"]
        head += [f"{name}: {value}" for name, value in answer.headers]
        head += ["Connection: close"]
        head += (
            ["Transfer-Encoding: chunked"]
            if self.chunked
            else [f"Content-Length: {len(answer.body)}"]
        )
        out = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
        if self.chunked:
            out += f"{len(answer.body):x}\r\n".encode() + body
            if keep is None:
                out += b"\r\n0\r\n\r\n"
        else:
            out += body
        wfile.write(out)
        wfile.flush()

    def _made(self, request: Received) -> Answer:
        assert self.answer is not None, "a CuttingPeer needs a target or an answer"
        return self.answer(request)

    def _forward(self, request: Received) -> Answer:
        assert self.target is not None
        parts = urlsplit(self.target)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        try:
            headers = {"Content-Type": request.headers.get("content-type", "")}
            conn.request("POST", request.path, body=request.body, headers=headers)
            response = conn.getresponse()
            body = response.read()
            kept = [(k, v) for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP]
            return Answer(response.status, kept, body, response.reason)
        finally:
            conn.close()
