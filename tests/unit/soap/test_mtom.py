"""Tests of the streaming MTOM/XOP codec (gateway.soap.mtom).

Streams are in memory and return short reads; nothing here opens a socket.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import re
import tracemalloc
from pathlib import Path

import pytest
from lxml import etree

from gateway.soap import mtom, ns
from gateway.soap.message import Attachment, cid_from_href, xop_include
from gateway.soap.mtom import (
    InlineBinaryError,
    MultipartError,
    build_mtom,
    inline_to_attachments,
    mime_soap_action,
    parse_content_type,
    read_multipart,
    xop_to_inline_check,
)

B = "b0undary-XYZ"
CT = f'multipart/related; type="application/xop+xml"; boundary="{B}"; start-info="text/xml"'
ROOT = (
    b'<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Body/></env:Envelope>'
)
CONFORMANCE = Path(__file__).resolve().parents[4] / "shared" / "conformance"


class ShortReads(io.RawIOBase):
    """A ``wsgi.input`` stand-in: read(n) returns at most ``step`` bytes and never more than n.

    With ``limit`` set, asking for any byte at or beyond it fails the test (a keep-alive socket
    would block there).
    """

    def __init__(self, data: bytes, step: int = 7, limit: int | None = None) -> None:
        self._data, self._step, self._limit, self.pos = data, step, limit, 0

    def read(self, n: int = -1) -> bytes:
        assert n is not None and n > 0, "read() without a size would read past the body"
        if self._limit is not None:
            assert self.pos + n <= self._limit, "read past Content-Length"
        chunk = self._data[self.pos : self.pos + min(n, self._step)]
        self.pos += len(chunk)
        return chunk


def mime(
    parts: list[tuple[list[str], bytes]],
    *,
    boundary: str = B,
    preamble: bytes = b"",
    epilogue: bytes = b"\r\n",
    eol: bytes = b"\r\n",
    padding: bytes = b"",
) -> bytes:
    """Hand-build a multipart body: each part is (header lines, body bytes)."""
    dash = b"--" + boundary.encode()
    out = [preamble]
    for index, (headers, body) in enumerate(parts):
        out.append((eol if index else b"") + dash + padding + eol)
        out.append(b"".join(h.encode() + eol for h in headers) + eol + body)
    out.append(eol + dash + b"--" + epilogue)
    return b"".join(out)


@pytest.fixture
def spool(tmp_path: Path) -> Path:
    path = tmp_path / "spool"
    path.mkdir()
    return path


def parse(body: bytes, spool: Path, content_type: str = CT, step: int = 7, **kw):
    options = {"memory_threshold": 64, "max_root_bytes": 1 << 20, "content_length": len(body)}
    options.update(kw)
    return read_multipart(ShortReads(body, step), content_type, spool_dir=spool, **options)


def sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


# --------------------------------------------------------------------------- round trips


def test_round_trip_several_attachments_spools_large_ones(spool: Path, tmp_path: Path) -> None:
    big = os.urandom(300_000) + b"\r\n--MIMEBoundary_\r\n"
    source = tmp_path / "big.bin"
    source.write_bytes(big)
    attachments = [
        Attachment.from_bytes(b"\r\nstarts and ends with CRLF\r\n", content_type="text/plain"),
        Attachment.from_file(source, content_type="application/dicom"),
        Attachment.from_bytes(b"", content_type="application/octet-stream"),
        Attachment.from_bytes(b"\n\r", content_type="text/plain"),
    ]
    content_type, length, chunks = build_mtom(ROOT, attachments, soap_action="urn:x:y")
    body = b"".join(chunks)
    assert len(body) == length

    message = parse(body, spool, content_type, step=4093, memory_threshold=1024)

    assert message.root == ROOT
    media, params = parse_content_type(message.root_content_type)
    assert media == "application/xop+xml"
    assert parse_content_type(params["type"]) == ("application/soap+xml", {"action": "urn:x:y"})
    assert f"<{message.root_content_id}>" == parse_content_type(content_type)[1]["start"]
    assert list(message.attachments) == [a.content_id for a in attachments]
    for sent in attachments:
        got = message.attachments[sent.content_id]
        assert got.read_bytes() == sent.read_bytes()
        assert (got.size, got.sha1, got.content_type) == (
            sent.size,
            sent.digest(),
            sent.content_type,
        )
    spooled = message.attachments[attachments[1].content_id]
    assert spooled.path is not None and spooled.owned and spooled.path.parent == spool
    assert spooled.path.stat().st_mode & 0o777 == 0o600
    assert all(message.attachments[a.content_id].data is not None for a in attachments[::2])
    message.discard()
    assert list(spool.iterdir()) == []


def test_build_mtom_headers_follow_xop_and_mtom() -> None:
    attachment = Attachment.from_bytes(b"abc", content_type="application/pdf", content_id="a@b")
    content_type, length, chunks = build_mtom(ROOT, [attachment], soap_action="urn:ihe:iti:2007:X")
    body = b"".join(chunks)
    media, params = parse_content_type(content_type)
    assert media == "multipart/related"
    assert params["type"] == "application/xop+xml"
    assert params["start-info"] == 'application/soap+xml; action="urn:ihe:iti:2007:X"'
    assert params["action"] == "urn:ihe:iti:2007:X"
    boundary = params["boundary"]
    assert body.startswith(b"--" + boundary.encode() + b"\r\n")
    assert body.endswith(b"\r\n--" + boundary.encode() + b"--\r\n")
    root_head = body.split(b"\r\n\r\n", 1)[0].decode()
    assert "Content-Type: application/xop+xml; charset=UTF-8; type=" in root_head
    assert f"Content-ID: {params['start']}" in root_head
    assert "Content-Transfer-Encoding: 8bit" in root_head
    assert b"Content-ID: <a@b>\r\n" in body
    assert b"Content-Type: application/pdf\r\nContent-Transfer-Encoding: binary\r\n" in body
    assert len(body) == length


def test_build_mtom_without_action_and_binary_root() -> None:
    root = b"<?xml version='1.0'?>\n<a/>"  # a bare LF is not 8bit data (RFC 2045 2.8)
    content_type, _, chunks = build_mtom(root, [])
    params = parse_content_type(content_type)[1]
    assert params["start-info"] == "application/soap+xml"
    assert "action" not in params
    head = b"".join(chunks).split(b"\r\n\r\n", 1)[0]
    assert b"Content-Transfer-Encoding: binary" in head
    assert b'type="application/soap+xml"\r\n' in head


def test_build_mtom_rejects_unusable_boundary_and_action() -> None:
    with pytest.raises(ValueError, match="boundary"):
        build_mtom(b"<a>--clash</a>", [], boundary="clash")
    with pytest.raises(ValueError, match="boundary"):
        build_mtom(ROOT, [Attachment.from_bytes(b"x--clash")], boundary="clash")
    with pytest.raises(ValueError, match="boundary"):
        build_mtom(ROOT, [], boundary="has\r\nbreak")
    with pytest.raises(ValueError, match="action"):
        build_mtom(ROOT, [], soap_action='urn:"quoted"')
    with pytest.raises(ValueError, match="share a Content-ID"):
        build_mtom(ROOT, [Attachment.from_bytes(b"1", content_id="same")] * 2)
    with pytest.raises(ValueError, match="header value"):
        build_mtom(ROOT, [Attachment.from_bytes(b"1", content_type="text/plain\r\nX: y")])
    content_type, _, _ = build_mtom(ROOT, [], boundary="fine-1")
    assert parse_content_type(content_type)[1]["boundary"] == "fine-1"


def test_build_mtom_aborts_when_a_file_changed_size(tmp_path: Path) -> None:
    source = tmp_path / "doc.bin"
    source.write_bytes(b"12345")
    attachment = Attachment.from_file(source)
    _, _, chunks = build_mtom(ROOT, [attachment])
    source.write_bytes(b"123")
    with pytest.raises(RuntimeError, match="announced"):
        b"".join(chunks)


# --------------------------------------------------------------------------- delimiters


@pytest.mark.parametrize("step", [1, 2, 3, 7, 64, 1 << 20])
def test_fake_delimiters_and_edge_bytes_are_body_data(spool: Path, step: int) -> None:
    dash = b"\r\n--" + B.encode()
    tricky = b"".join(b"\r\n--" + B[:k].encode() + b"\r\n" for k in range(len(B)))
    tricky += dash + b"X\r\n" + dash + b" x\r\n" + dash + b"\t\tnot-a-line-end" + dash[:-1]
    bodies = [b"\r\n", b"\r", b"\n", b"\r\n\r\n", b"", tricky, b"\r\n" + tricky + b"\r\n"]
    parts = [(["Content-ID: <root>"], ROOT)] + [
        ([f"Content-ID: <p{i}>"], body) for i, body in enumerate(bodies)
    ]
    message = parse(mime(parts), spool, step=step, memory_threshold=40)
    assert message.root == ROOT
    assert [message.attachments[f"p{i}"].read_bytes() for i in range(len(bodies))] == bodies
    message.discard()
    assert list(spool.iterdir()) == []


def test_preamble_padding_and_epilogue_are_ignored(spool: Path) -> None:
    preamble = b"This is a preamble.\r\n--" + B.encode() + b"X is not a delimiter\r\n"
    epilogue = b"  \r\nepilogue --" + B.encode() + b"\r\nContent-ID: <late>\r\n\r\nx\r\n"
    body = mime(
        [(["Content-ID: <r>"], ROOT), (["Content-ID: <a>"], b"data")],
        preamble=preamble,
        epilogue=epilogue,
        padding=b" \t ",
    )
    stream = ShortReads(body, step=5)
    message = read_multipart(
        stream, CT, content_length=len(body), spool_dir=spool, memory_threshold=10,
        max_root_bytes=1000,
    )  # fmt: skip
    assert message.root == ROOT
    assert list(message.attachments) == ["a"]
    assert stream.pos == len(body)  # the epilogue was consumed, not left on the connection
    message.discard()


def test_bare_lf_line_breaks_are_tolerated(spool: Path) -> None:
    body = mime([(["Content-ID: <r>"], ROOT), (["Content-ID: <a>"], b"\r\nx\r")], eol=b"\n")
    message = parse(body, spool)
    assert message.root == ROOT
    assert message.attachments["a"].read_bytes() == b"\r\nx\r"


def test_part_without_headers_may_be_the_root(spool: Path) -> None:
    message = parse(mime([([], ROOT), (["Content-ID: <a>"], b"x")]), spool)
    assert message.root == ROOT
    assert message.root_content_id is None
    assert message.root_content_type == mtom.ROOT_DEFAULT_CONTENT_TYPE


def test_part_with_headers_and_no_body(spool: Path) -> None:
    # "headers CRLF" directly followed by the delimiter: the delimiter's CRLF ends the headers.
    body = b"--" + B.encode() + b"\r\nContent-ID: <r>\r\n\r\n" + ROOT
    body += b"\r\n--" + B.encode() + b"\r\nContent-ID: <a>\r\n"
    body += b"\r\n--" + B.encode() + b"\r\nContent-ID: <b>\r\n\r\nx"
    body += b"\r\n--" + B.encode() + b"--"
    message = parse(body, spool)
    assert message.root == ROOT
    assert message.attachments["a"].read_bytes() == b""
    assert message.attachments["b"].read_bytes() == b"x"


def test_folded_and_repeated_headers(spool: Path) -> None:
    parts = [
        (["Content-ID: <r>", "Content-Type: application/xop+xml;", '\ttype="application/soap+xml"'],
         ROOT),
        (["content-id:<a>", "Content-ID: <ignored>", "X-Other: 1"], b"x"),
    ]  # fmt: skip
    message = parse(mime(parts), spool)
    assert message.root_content_type == 'application/xop+xml; type="application/soap+xml"'
    assert list(message.attachments) == ["a"]


# --------------------------------------------------------------------------- root selection


def test_start_parameter_names_a_later_part(spool: Path) -> None:
    body = mime([(["Content-ID: <a>"], b"attachment"), (["Content-ID: <root@x>"], ROOT)])
    message = parse(body, spool, CT + '; start="<root@x>"')
    assert message.root == ROOT
    assert message.root_content_id == "root@x"
    assert message.attachments["a"].read_bytes() == b"attachment"


def test_start_parameter_naming_no_part_is_an_error(spool: Path) -> None:
    body = mime([(["Content-ID: <a>"], b"x" * 100), (["Content-ID: <b>"], ROOT)])
    with pytest.raises(MultipartError, match="start"):
        parse(body, spool, CT + "; start=<nothing>")
    assert list(spool.iterdir()) == []


# --------------------------------------------------------------------------- encodings


def test_base64_parts_are_decoded(spool: Path) -> None:
    small, large = b"\x00\xff small \r\n", os.urandom(10_000)
    encoded_large = base64.encodebytes(large).replace(b"\n", b"\r\n")  # 76-column lines
    parts = [
        (["Content-ID: <r>", "Content-Transfer-Encoding: base64"], base64.b64encode(ROOT)),
        (["Content-ID: <s>", "Content-Transfer-Encoding: BASE64"], base64.b64encode(small)),
        (["Content-ID: <l>", "Content-Transfer-Encoding: base64"], encoded_large),
        (["Content-ID: <n>", "Content-Transfer-Encoding: base64"], b"YWJj ZA"),  # unpadded
    ]
    message = parse(mime(parts), spool, step=999)
    assert message.root == ROOT
    assert message.attachments["s"].read_bytes() == small
    got = message.attachments["l"]
    assert got.path is not None and got.read_bytes() == large
    assert (got.size, got.sha1) == (len(large), sha1(large))
    assert message.attachments["n"].read_bytes() == b"abcd"
    message.discard()
    assert list(spool.iterdir()) == []


@pytest.mark.parametrize("payload", [b"not base64!", b"QQ==QUJD", b"QUJDR", b"QQ==\r\nQUJD"])
def test_invalid_base64_is_an_error_and_leaves_no_file(spool: Path, payload: bytes) -> None:
    parts = [
        (["Content-ID: <r>"], ROOT),
        (["Content-ID: <big>"], b"y" * 500),
        (["Content-ID: <bad>", "Content-Transfer-Encoding: base64"], payload),
    ]
    with pytest.raises(MultipartError, match="base64"):
        parse(mime(parts), spool)
    assert list(spool.iterdir()) == []


def test_unsupported_transfer_encoding(spool: Path) -> None:
    parts = [(["Content-ID: <r>", "Content-Transfer-Encoding: quoted-printable"], ROOT)]
    with pytest.raises(MultipartError, match="Content-Transfer-Encoding"):
        parse(mime(parts), spool)


# --------------------------------------------------------------------------- errors


def small_message() -> bytes:
    return mime(
        [
            (["Content-ID: <r>", "Content-Type: application/xop+xml"], b"<a/>"),
            (["Content-ID: <big>"], b"B" * 90),
            (["Content-ID: <c>", "Content-Transfer-Encoding: base64"], b"QUJD\r\nREVG"),
        ],
        epilogue=b"\r\n",
    )


def test_small_message_parses(spool: Path) -> None:
    message = parse(small_message(), spool, memory_threshold=40)
    assert message.attachments["big"].path is not None
    assert message.attachments["c"].read_bytes() == b"ABCDEF"
    message.discard()


def test_every_truncation_point_is_an_error_and_leaves_no_file(spool: Path) -> None:
    body = small_message()
    complete = len(body) - len(b"\r\n")  # the close delimiter ends here; the rest is epilogue
    for cut in range(complete):
        for content_length in (None, len(body)):  # a peer that hangs up early, or lies
            with pytest.raises(MultipartError):
                parse(body[:cut], spool, step=1 + cut % 5, content_length=content_length,
                      memory_threshold=40)  # fmt: skip
            assert list(spool.iterdir()) == [], f"file left behind at cut {cut}"
    parse(body[:complete], spool, memory_threshold=40).discard()


def test_content_length_shorter_than_body_truncates(spool: Path) -> None:
    body = small_message()
    with pytest.raises(MultipartError, match="truncated"):
        parse(body, spool, content_length=len(body) - 10, memory_threshold=40)
    assert list(spool.iterdir()) == []


def test_never_reads_past_content_length(spool: Path) -> None:
    body = small_message()
    stream = ShortReads(body + b"POST /next HTTP/1.1\r\n", step=3, limit=len(body))
    message = read_multipart(
        stream, CT, content_length=len(body), spool_dir=spool, memory_threshold=10,
        max_root_bytes=100,
    )  # fmt: skip
    assert stream.pos == len(body)
    message.discard()


def test_oversize_root(spool: Path) -> None:
    body = mime([(["Content-ID: <a>"], b"x" * 200), (["Content-ID: <r>"], b"<a>" + b" " * 5000)])
    with pytest.raises(MultipartError, match="root part exceeds"):
        parse(body, spool, CT + "; start=<r>", max_root_bytes=4096)
    assert list(spool.iterdir()) == []
    assert parse(body, spool, CT + "; start=<r>", max_root_bytes=0).root.startswith(b"<a>")


def test_oversize_total(spool: Path) -> None:
    body = small_message()
    with pytest.raises(MultipartError, match="exceeds the limit"):  # announced: no read at all
        read_multipart(
            ShortReads(body, limit=0), CT, content_length=len(body), spool_dir=spool,
            memory_threshold=40, max_root_bytes=100, max_total_bytes=len(body) - 1,
        )  # fmt: skip
    with pytest.raises(MultipartError, match="exceeds the limit"):  # discovered while reading
        parse(body, spool, content_length=None, memory_threshold=40, max_total_bytes=200)
    assert list(spool.iterdir()) == []
    parse(body, spool, memory_threshold=40, max_total_bytes=len(body)).discard()


@pytest.mark.parametrize(
    "content_type",
    [
        "text/xml; charset=utf-8",
        "application/soap+xml",
        "multipart/related; type=application/xop+xml",
        'multipart/related; boundary=""',
        'multipart/related; boundary="unterminated',
        "not a media type",
        "",
    ],
)
def test_bad_content_types(spool: Path, content_type: str) -> None:
    with pytest.raises(MultipartError):
        parse(small_message(), spool, content_type)


def test_body_without_the_boundary(spool: Path) -> None:
    with pytest.raises(MultipartError, match="no boundary"):
        parse(small_message(), spool, 'multipart/related; boundary="other"')
    with pytest.raises(MultipartError, match="no parts"):
        parse(b"--" + B.encode() + b"--\r\n", spool)


def test_duplicate_content_id(spool: Path) -> None:
    parts = [
        (["Content-ID: <r>"], ROOT),
        (["Content-ID: <d>"], b"z" * 500),
        (["Content-ID: <d>"], b""),
    ]
    with pytest.raises(MultipartError, match="duplicate Content-ID"):
        parse(mime(parts), spool)
    assert list(spool.iterdir()) == []
    with pytest.raises(MultipartError, match="duplicate Content-ID"):
        parse(mime([(["Content-ID: <r>"], ROOT), (["Content-ID: <r>"], b"")]), spool)


@pytest.mark.parametrize(
    ("raw_part", "message"),
    [
        (b"Content-ID: <a>\r\nno blank line", "truncated inside the headers"),
        (b"Content-ID: <a>\r\n--" + B.encode() + b"\r\nContent-ID: <c>\r\n\r\n", "no blank line"),
        (b"Content-ID <a>\r\n\r\nbody", "malformed MIME header"),
        (b"Content-Type: text/plain\r\n\r\nbody", "no Content-ID"),
    ],
)
def test_malformed_parts(spool: Path, raw_part: bytes, message: str) -> None:
    head = mime([(["Content-ID: <r>"], b"x" * 100)], epilogue=b"")[: -len(B) - 6]
    tail = b"" if "truncated" in message else b"\r\n--" + B.encode() + b"--"
    body = head + b"\r\n--" + B.encode() + b"\r\n" + raw_part + tail
    with pytest.raises(MultipartError, match=message):
        parse(body, spool, memory_threshold=10)
    assert list(spool.iterdir()) == []


def test_header_limits(spool: Path) -> None:
    many = [f"X-H{i}: v" for i in range(mtom.MAX_HEADER_LINES + 1)]
    with pytest.raises(MultipartError, match="header lines"):
        parse(mime([(["Content-ID: <r>", *many], ROOT)]), spool)
    long_line = "X-Long: " + "v" * mtom.MAX_HEADER_LINE
    with pytest.raises(MultipartError, match="header line exceeds"):
        parse(mime([(["Content-ID: <r>", long_line], ROOT)]), spool)
    endless = b"--" + B.encode() + b"\r\nX: " + b"v" * (mtom.MAX_HEADER_BYTES + 10)
    with pytest.raises(MultipartError, match="headers exceed"):
        parse(endless, spool, step=4096)


def test_max_parts_and_memory_budget(spool: Path) -> None:
    parts = [(["Content-ID: <r>"], ROOT)] + [([f"Content-ID: <{i}>"], b"m" * 50) for i in range(6)]
    with pytest.raises(MultipartError, match="more than 4 MIME parts"):
        parse(mime(parts), spool, max_parts=4)
    message = parse(mime(parts), spool, memory_threshold=60, memory_budget=120)
    in_memory = [a for a in message.attachments.values() if a.data is not None]
    assert len(in_memory) == 2  # 2 x 50 fit the budget of 120; the rest went to disk
    assert len(list(spool.iterdir())) == 4
    assert all(a.read_bytes() == b"m" * 50 for a in message.attachments.values())
    message.discard()


# --------------------------------------------------------------------------- streaming


class GeneratedBody(io.RawIOBase):
    """A large multipart body produced on the fly: head, ``size`` bytes of a block, tail."""

    def __init__(self, head: bytes, block: bytes, size: int, tail: bytes) -> None:
        self._pieces = [head, *([block] * (size // len(block))), block[: size % len(block)], tail]
        self._current, self._offset = 0, 0

    def read(self, n: int = -1) -> bytes:
        while self._current < len(self._pieces):
            piece = self._pieces[self._current]
            if self._offset < len(piece):
                chunk = piece[self._offset : self._offset + min(n, 50_000)]
                self._offset += len(chunk)
                return chunk
            self._current, self._offset = self._current + 1, 0
        return b""


def test_50_mb_part_streams_with_bounded_memory(spool: Path) -> None:
    size = 50 * 1024 * 1024
    block = os.urandom(65_521) + b"\r\n--" + B.encode()[:-1]  # near-delimiters on every block
    expected = hashlib.sha1()
    for _ in range(size // len(block)):
        expected.update(block)
    expected.update(block[: size % len(block)])
    head = mime([(["Content-ID: <r>"], ROOT)], epilogue=b"")[: -len(B) - 4]
    head += b"\r\n--" + B.encode() + b"\r\nContent-ID: <big>\r\n\r\n"
    stream = GeneratedBody(head, block, size, b"\r\n--" + B.encode() + b"--\r\n")

    tracemalloc.start()
    try:
        message = read_multipart(
            stream, CT, content_length=None, spool_dir=spool, memory_threshold=1 << 20,
            max_root_bytes=1 << 20,
        )  # fmt: skip
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    big = message.attachments["big"]
    assert (big.size, big.sha1) == (size, expected.hexdigest())
    assert big.path is not None and big.path.stat().st_size == size
    assert peak < 10 * 1024 * 1024, f"peak {peak} bytes"
    message.discard()
    assert list(spool.iterdir()) == []


# --------------------------------------------------------------------------- Content-Type


def test_parse_content_type() -> None:
    value = (
        'Multipart/Related ; Boundary="a;b\\"c" ;type=application/xop+xml; start-info='
        '"application/soap+xml; action=\\"urn:a\\""; novalue; type=ignored;\r\n  start=<x@y> '
    )
    media, params = parse_content_type(value)
    assert media == "multipart/related"
    assert params == {
        "boundary": 'a;b"c',
        "type": "application/xop+xml",
        "start-info": 'application/soap+xml; action="urn:a"',
        "start": "<x@y>",
    }
    assert parse_content_type("text/plain") == ("text/plain", {})


@pytest.mark.parametrize(
    ("content_type", "root_type", "action"),
    [
        ('application/soap+xml; charset=UTF-8; action="urn:plain"', None, "urn:plain"),
        ('multipart/related; type="application/xop+xml"; action="urn:axis2"', None, "urn:axis2"),
        (
            'multipart/related; start-info="application/soap+xml; action=\\"urn:cxf\\""',
            'application/xop+xml; type="application/soap+xml; action=\\"urn:other\\""',
            "urn:cxf",
        ),
        (
            'multipart/related; start-info="application/soap+xml"',
            'application/xop+xml; type="application/soap+xml; action=\\"urn:root\\""',
            "urn:root",
        ),
        ('multipart/related; start-info="application/soap+xml"', None, None),
        ("application/soap+xml", None, None),
        ("garbage", None, None),
    ],
)
def test_mime_soap_action(content_type: str, root_type: str | None, action: str | None) -> None:
    assert mime_soap_action(content_type, root_type) == action


# --------------------------------------------------------------------------- XOP infoset


def test_xop_to_inline_check() -> None:
    root = etree.Element("{urn:t}Doc")
    root.append(xop_include("a b@x"))  # percent-encoded in the href (RFC 2392)
    attachments = {"a b@x": Attachment.from_bytes(b"1", content_id="a b@x")}
    xop_to_inline_check(root, attachments)
    with pytest.raises(MultipartError, match="names no MIME part"):
        xop_to_inline_check(root, {})
    etree.SubElement(root, ns.qname(ns.XOP, "Include"))
    with pytest.raises(MultipartError, match="without href"):
        xop_to_inline_check(root, attachments)


def _request(documents: dict[str, str]) -> etree._Element:
    body = etree.Element(ns.qname(ns.XDSB, "ProvideAndRegisterDocumentSetRequest"))
    for doc_id, text in documents.items():
        etree.SubElement(body, ns.qname(ns.XDSB, "Document"), id=doc_id).text = text
    return body


def test_inline_to_attachments_turns_base64_into_the_same_bytes(spool: Path) -> None:
    small, large = b"hello \x00\xff", os.urandom(5000)
    body = _request({
        "small": base64.b64encode(small).decode(),
        "large": "\n" + base64.encodebytes(large).decode(),  # line breaks as many peers send
        "empty": "",
    })  # fmt: skip
    document = ns.qname(ns.XDSB, "Document")
    body.find(document).set(ns.qname(ns.XMIME, "contentType"), "text/plain")
    mtom_doc = etree.SubElement(body, document, id="mtom")
    mtom_doc.append(xop_include("already@x"))

    attachments = inline_to_attachments(body, [document], spool_dir=spool, memory_threshold=1000)

    got = {}
    for element in body.iter(document):
        include = element.find(ns.qname(ns.XOP, "Include"))
        assert include is not None and element.text is None
        cid = cid_from_href(include.get("href"))
        if element.get("id") != "mtom":
            got[element.get("id")] = attachments[cid]
    assert len(attachments) == 3
    assert got["small"].read_bytes() == small and got["small"].content_type == "text/plain"
    assert got["large"].read_bytes() == large and got["large"].path is not None
    assert (got["large"].size, got["large"].sha1) == (len(large), sha1(large))
    assert got["empty"].read_bytes() == b""
    xop_to_inline_check(body, {**attachments, "already@x": Attachment.from_bytes(b"")})
    for attachment in attachments.values():
        attachment.discard()
    assert list(spool.iterdir()) == []
    assert inline_to_attachments(body, [], spool_dir=spool, memory_threshold=10) == {}


@pytest.mark.parametrize("text", ["not*base64", "QUJD=QUJD", "QUJDR", "ÄÖÜ="])
def test_inline_invalid_base64(spool: Path, text: str) -> None:
    body = _request({"ok": base64.b64encode(os.urandom(3000)).decode(), "bad": text})
    with pytest.raises(InlineBinaryError):
        inline_to_attachments(
            body, [ns.qname(ns.XDSB, "Document")], spool_dir=spool, memory_threshold=100
        )
    assert list(spool.iterdir()) == []


def test_inline_request_and_mtom_request_reach_the_same_infoset(spool: Path) -> None:
    payload = os.urandom(2048)
    body = _request({"d": base64.b64encode(payload).decode()})
    document = ns.qname(ns.XDSB, "Document")
    attachments = inline_to_attachments(body, [document], spool_dir=spool, memory_threshold=10)
    content_type, length, chunks = build_mtom(etree.tostring(body), list(attachments.values()))
    wire = b"".join(chunks)
    assert len(wire) == length
    message = parse(wire, spool, content_type, memory_threshold=10)
    root = etree.fromstring(message.root)
    xop_to_inline_check(root, message.attachments)
    include = root.find(document).find(ns.qname(ns.XOP, "Include"))
    assert message.attachments[cid_from_href(include.get("href"))].read_bytes() == payload
    message.discard()
    for attachment in attachments.values():
        attachment.discard()
    assert list(spool.iterdir()) == []


# --------------------------------------------------------------------------- real peers


@pytest.mark.skipif(not CONFORMANCE.is_dir(), reason="../shared/conformance is not present")
@pytest.mark.parametrize("case", ["Xop", "encodedURL", "NoXop", "dicom"])
def test_nist_pnr_bodies(spool: Path, case: str) -> None:
    """Axis2 bodies (bare LF, padding after the boundary) and a WCF body from the NIST kit."""
    folder = CONFORMANCE / "nist-testkit" / "tests" / "PnrXop" / case
    content_type = re.search(r"Content-Type: (.*)", (folder / "testplan.xml").read_text())[1]
    body = (folder / "body.txt").read_bytes()
    message = parse(body, spool, content_type.strip(), step=1000, max_root_bytes=1 << 22)
    root = etree.fromstring(message.root)
    assert root.tag == ns.qname(ns.SOAP12, "Envelope")
    xop_to_inline_check(root, message.attachments)
    assert mime_soap_action(content_type) == "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b"
    message.discard()
