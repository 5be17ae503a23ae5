"""Reading a request in two steps (gateway.soap.intake, mtom.open_multipart): the envelope first,
the attachments only after the access check; size limits as env:Sender faults with HTTP 413.

Streams are in memory and count what was read from them; nothing here opens a socket.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from gateway.config import SoapSettings
from gateway.soap import fault as faults
from gateway.soap import mtom
from gateway.soap.dispatch import Endpoint
from gateway.soap.intake import DEFAULT_MAX_REQUEST_BYTES, Limits, read_head, read_rest
from gateway.soap.message import SoapRequest, SoapResponse
from gateway.soap.mime import READ_SIZE
from gateway.soap.transactions import ITI_41, REPOSITORY_PATH
from tests.support.rawsoap import envelope, mtom_body

ROOT = Path(__file__).resolve().parents[3]
PNR = (
    '<xdsb:ProvideAndRegisterDocumentSetRequest xmlns:xdsb="urn:ihe:iti:xds-b:2007">'
    '<xdsb:Document id="Document01"><xop:Include '
    'xmlns:xop="http://www.w3.org/2004/08/xop/include" href="cid:doc@test"/></xdsb:Document>'
    "</xdsb:ProvideAndRegisterDocumentSetRequest>"
)


class Counted(io.RawIOBase):
    """A ``wsgi.input`` stand-in that remembers how far it was read."""

    def __init__(self, data: bytes) -> None:
        self._data, self.pos = data, 0

    def read(self, n: int = -1) -> bytes:
        assert n is not None and n > 0, "read() without a size would read past the body"
        chunk = self._data[self.pos : self.pos + n]
        self.pos += len(chunk)
        return chunk


class Broken(io.RawIOBase):
    def read(self, n: int = -1) -> bytes:
        raise ValueError("Bad chunked transfer size: b'zz'")


def endpoint() -> Endpoint:
    point = Endpoint(REPOSITORY_PATH)
    point.bind(ITI_41, lambda request, ctx: SoapResponse(body=request.body))
    return point


def pnr_package(document: bytes) -> tuple[str, bytes]:
    root = envelope(PNR, action=ITI_41.action)
    return mtom_body(root, [("doc@test", document)])


def environ(content_type: str, stream: Any, length: int | None) -> dict[str, Any]:
    env = {"CONTENT_TYPE": content_type, "wsgi.input": stream, "REMOTE_ADDR": "127.0.0.1"}
    if length is not None:
        env["CONTENT_LENGTH"] = str(length)
    return env


def limits(tmp_path: Path, **overrides: int) -> Limits:
    spool = tmp_path / "spool"
    spool.mkdir(exist_ok=True)
    return Limits(spool_dir=spool, memory_threshold=64 * 1024, **overrides)


def test_the_head_is_read_without_the_attachments(tmp_path: Path) -> None:
    document = bytes(range(256)) * 16 * 1024  # 4 MiB after the root part
    content_type, body = pnr_package(document)
    stream, lim, state = Counted(body), limits(tmp_path), {}
    head = read_head(environ(content_type, stream, len(body)), endpoint(), lim, state)
    assert head.transaction is ITI_41
    assert state["transaction"] == "ITI-41"
    assert stream.pos <= body.index(b"</env:Envelope>") + READ_SIZE  # one read past the root
    assert list(lim.spool_dir.iterdir()) == []
    request = read_rest(head, environ(content_type, stream, len(body)), endpoint(), lim)
    assert isinstance(request, SoapRequest) and request.mtom
    assert stream.pos == len(body)
    assert request.attachments["doc@test"].read_bytes() == document
    request.discard_attachments()
    assert list(lim.spool_dir.iterdir()) == []


def test_a_refused_head_leaves_nothing_behind(tmp_path: Path) -> None:
    content_type, body = pnr_package(b"x" * (1 << 20))
    lim = limits(tmp_path)
    head = read_head(environ(content_type, Counted(body), len(body)), endpoint(), lim, {})
    head.discard()  # what the boundary does when the access check refuses
    assert list(lim.spool_dir.iterdir()) == []


def test_an_announced_length_over_the_limit_is_refused_unread(tmp_path: Path) -> None:
    content_type, body = pnr_package(b"x" * 1000)
    stream = Counted(body)
    with pytest.raises(faults.SoapFault) as caught:
        read_head(
            environ(content_type, stream, len(body)),
            endpoint(),
            limits(tmp_path, max_request_bytes=len(body) - 1),
            {},
        )
    assert (caught.value.code, caught.value.http_status) == (faults.SENDER, 413)
    assert stream.pos == 0


def test_a_chunked_body_over_the_limit_is_refused_while_read(tmp_path: Path) -> None:
    content_type, body = pnr_package(b"x" * (3 << 20))
    lim = limits(tmp_path, max_request_bytes=1 << 20)
    head = read_head(environ(content_type, Counted(body), None), endpoint(), lim, {})
    with pytest.raises(faults.SoapFault) as caught:
        read_rest(head, environ(content_type, Counted(b""), None), endpoint(), lim)
    assert caught.value.http_status == 413
    assert "exceeds the limit of 1048576 bytes" in caught.value.reason
    assert list(lim.spool_dir.iterdir()) == []


def test_a_plain_envelope_over_its_limit_is_413(tmp_path: Path) -> None:
    data = envelope(PNR.replace("Document01", "D" * 5000), action=ITI_41.action)
    with pytest.raises(faults.SoapFault) as caught:
        read_head(
            environ("application/soap+xml", Counted(data), None),
            endpoint(),
            limits(tmp_path, max_envelope_bytes=4096),
            {},
        )
    assert caught.value.http_status == 413


def test_an_unreadable_body_is_a_sender_fault(tmp_path: Path) -> None:
    content_type, _body = pnr_package(b"")
    with pytest.raises(faults.SoapFault) as caught:
        read_head(environ(content_type, Broken(), None), endpoint(), limits(tmp_path), {})
    assert caught.value.http_status == 400
    assert "could not be read" in caught.value.reason


def test_parts_before_the_root_are_bounded(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    boundary = "B"
    body = (
        b"--B\r\nContent-ID: <big@x>\r\n\r\n" + b"x" * 300_000 + b"\r\n--B\r\n"
        b"Content-ID: <root@x>\r\nContent-Type: application/xop+xml\r\n\r\n<r/>\r\n--B--\r\n"
    )
    content_type = f'multipart/related; type="application/xop+xml"; boundary="{boundary}"; '
    content_type += 'start="<root@x>"'
    options: dict[str, Any] = {
        "content_length": len(body),
        "spool_dir": spool,
        "memory_threshold": 1024,
        "max_root_bytes": 1 << 20,
    }
    with pytest.raises(mtom.BodyTooLarge, match="before the root part"):
        mtom.open_multipart(Counted(body), content_type, max_before_root=100_000, **options)
    assert list(spool.iterdir()) == []
    reader = mtom.open_multipart(Counted(body), content_type, **options)  # no bound: read
    assert reader.root == b"<r/>"
    assert reader.read_attachments()["big@x"].size == 300_000
    reader.discard()
    assert list(spool.iterdir()) == []


def test_the_default_limit_is_the_documented_one() -> None:
    documented = 2 * 1024**3
    assert SoapSettings().max_request_bytes == documented == DEFAULT_MAX_REQUEST_BYTES
    assert Limits(spool_dir=Path("x")).max_request_bytes == documented
    toml = (ROOT / "config" / "gateway.toml").read_text()
    assert f"max_request_bytes = {documented}" in toml
    assert "soap.max_request_bytes" in (ROOT / "README.md").read_text()
