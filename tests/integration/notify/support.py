"""Peers for the notify tests: an HTTP receiver that can be down, a gateway on a data folder."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from gateway.app import Gateway
from gateway.config import load_settings
from gateway.hl7.mllp import send_messages

DOMAIN = "1.3.6.1.4.1.21367.13.20.1000"


@dataclass(frozen=True, slots=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    """A real HTTP server on 127.0.0.1 recording every POST; :meth:`down` closes its socket
    (connections are refused), :meth:`up` listens again on the same port."""

    def __init__(self, answer: Callable[[Received], tuple[int, bytes, str]] | None = None) -> None:
        self.received: list[Received] = []
        self.answer = answer or (lambda _r: (200, b"", "text/plain"))
        self.port = 0
        self._server: ThreadingHTTPServer | None = None
        self.up()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def up(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                got = Received(self.path, dict(self.headers.items()), self.rfile.read(length))
                receiver.received.append(got)
                status, body, kind = receiver.answer(got)
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = server.server_address[1]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self._server = server

    def down(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return list(self.received)


def start_gateway(data_dir: Path, **extra: str) -> Gateway:
    """A whole gateway (every actor) on ephemeral ports over ``data_dir``, started."""
    settings = load_settings(
        environ={
            "XDSI_GATEWAY_DATA_DIR": str(data_dir),
            "XDSI_HTTP_PORT": "0",
            "XDSI_HL7_MLLP_PORT": "0",
            "XDSI_IMAGING_SOURCE_DICOM_PORT": "0",
            "XDSI_IMAGING_SOURCE_STUDY_IDLE_SECONDS": "3600",
            "XDSI_NOTIFY_RETRY_INITIAL_SECONDS": "1",
            "XDSI_NOTIFY_RETRY_MAX_SECONDS": "2",
            **extra,
        }
    )
    gw = Gateway(settings)
    gw.start()
    return gw


def feed(gw: Gateway, patient: str, control_id: str = "MSG-1") -> str:
    """ITI-8: make ``patient`` known in the affinity domain; return its CX."""
    adt = (
        f"MSH|^~\\&|ADT|HOSP|XDS|REGION|20240102101500||ADT^A01^ADT_A01|{control_id}|P|2.3.1\r"
        "EVN|A01|20240102101500\r"
        f"PID|||{patient}^^^&{DOMAIN}&ISO||Synthetic^Patient||19700101|O\r"
        "PV1||O\r"
    ).encode()
    assert gw.mllp_address is not None
    host, port = gw.mllp_address
    [ack] = send_messages(host, port, [adt])
    assert f"MSA|AA|{control_id}".encode() in ack
    return f"{patient}^^^&{DOMAIN}&ISO"


def outbox_settles(
    gw: Gateway, kind: str, expected: dict[str, int], timeout: float = 15.0
) -> dict[str, int]:
    """The gateway's outbox counts of ``kind`` once they equal ``expected`` (or at the timeout):
    a receiver records a request before it answers, the sender records the answer after."""
    assert gw.notifier is not None
    deadline = time.monotonic() + timeout
    while True:
        counts = gw.notifier.health().get("outbox", {}).get(kind, {})
        if counts == expected or time.monotonic() >= deadline:
            return dict(counts)
        time.sleep(0.05)
