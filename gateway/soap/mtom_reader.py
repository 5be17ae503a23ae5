"""Streaming reader of MTOM/XOP multipart/related bodies (the receiving half of ``mtom``).

The body is pulled from the stream in fixed-size reads, the next delimiter is searched with
``bytearray.find`` across read edges, and each part's bytes go to a sink that keeps small parts in
memory and spools the rest to a 0600 temporary file, computing SHA-1 and size on the way.

A server reads a request in two steps (:func:`open_multipart`, then
:meth:`MultipartReader.read_attachments`): first up to and including the root part, so that the
SOAP envelope (its wsa:Action) and the caller can be checked before any attachment is read from
the network; then the rest. :func:`read_multipart` does both at once.

Standards: RFC 2046 §5.1.1 (delimiters, preamble, epilogue, transport padding; the CRLF before a
delimiter belongs to the delimiter), RFC 2387 (``start``), XOP 1.0 §3.2, SOAP 1.2 MTOM §4.3.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from gateway.soap.message import Attachment
from gateway.soap.mime import (
    _IDENTITY_ENCODINGS,
    _LF,
    DEFAULT_MAX_PARTS,
    DEFAULT_MEMORY_BUDGET,
    MAX_HEADER_BYTES,
    MAX_HEADER_LINE,
    MAX_HEADER_LINES,
    MAX_PADDING,
    PART_DEFAULT_CONTENT_TYPE,
    READ_SIZE,
    ROOT_DEFAULT_CONTENT_TYPE,
    BodyTooLarge,
    MultipartError,
    _Base64Decoder,
    _Base64Invalid,
    parse_content_type,
)


class ByteSource(Protocol):
    """What the reader needs of a stream: ``read(n)`` returning at most n bytes, b"" at the end
    (a file, ``wsgi.input``, urllib3's ``HTTPResponse``)."""

    def read(self, size: int, /) -> bytes: ...


class _PartSink:
    """One part's decoded content: in memory up to ``threshold`` bytes, else in a spool file."""

    def __init__(
        self, *, threshold: int, limit: int, spool_dir: Path | None, base64: bool, what: str
    ) -> None:
        self._threshold = threshold
        self._limit = limit  # 0 = none
        self._spool_dir = spool_dir
        self._decoder = _Base64Decoder() if base64 else None
        self._what = what
        self._buf = bytearray()
        self._file: BinaryIO | None = None
        self._sha = hashlib.sha1()
        self.path: Path | None = None
        self.size = 0

    def write(self, raw: bytes | bytearray) -> None:
        self._store(raw if self._decoder is None else self._decoder.feed(raw))

    def finish(self) -> None:
        if self._decoder is not None:
            self._store(self._decoder.finish())
        if self._file is not None:
            self._file.close()
            self._file = None

    def abort(self) -> None:
        """Close and remove the spool file, if any (idempotent)."""
        if self._file is not None:
            self._file.close()
            self._file = None
        if self.path is not None:
            self.path.unlink(missing_ok=True)
            self.path = None

    def data(self) -> bytes:
        return bytes(self._buf)

    def attachment(self, content_id: str, content_type: str) -> Attachment:
        if self.path is not None:
            return Attachment(
                content_id=content_id,
                content_type=content_type,
                size=self.size,
                path=self.path,
                owned=True,
                sha1=self._sha.hexdigest(),
            )
        return Attachment(
            content_id=content_id,
            content_type=content_type,
            size=self.size,
            data=bytes(self._buf),
            sha1=self._sha.hexdigest(),
        )

    def _store(self, data: bytes | bytearray) -> None:
        if not data:
            return
        self.size += len(data)
        if self._limit and self.size > self._limit:
            raise BodyTooLarge(f"{self._what} exceeds the limit of {self._limit} bytes")
        self._sha.update(data)
        if self._file is None and self.size <= self._threshold:
            self._buf += data
            return
        if self._file is None:
            self._spool()
        assert self._file is not None
        self._file.write(data)

    def _spool(self) -> None:
        if self._spool_dir is None:  # pragma: no cover - the root sink never spools
            raise MultipartError(f"{self._what} is too large to keep in memory")
        fd, name = tempfile.mkstemp(prefix="mtom-", suffix=".part", dir=self._spool_dir)
        self.path = Path(name)  # set first so abort() removes it whatever happens next
        self._file = os.fdopen(fd, "wb")
        self._file.write(self._buf)
        self._buf = bytearray()


# --------------------------------------------------------------------------- reading


@dataclass(slots=True, kw_only=True)
class MultipartMessage:
    """A parsed multipart/related request: the root part (the SOAP envelope) and the others."""

    root: bytes
    root_content_type: str
    root_content_id: str | None
    attachments: dict[str, Attachment]

    def discard(self) -> None:
        """Remove every temporary file behind the attachments."""
        for attachment in self.attachments.values():
            attachment.discard()


class _Source:
    """``wsgi.input`` reads that never pass Content-Length and count against the total limit."""

    def __init__(self, stream: ByteSource, content_length: int | None, max_total: int) -> None:
        if content_length is not None and content_length < 0:
            raise MultipartError("negative Content-Length")
        if max_total and content_length is not None and content_length > max_total:
            raise BodyTooLarge(
                f"request body of {content_length} bytes exceeds the limit of {max_total} bytes"
            )
        self._stream = stream
        self._left = content_length
        self._max_total = max_total
        self._eof = False
        self.total = 0

    def read(self) -> bytes:
        if self._eof:
            return b""
        want = READ_SIZE if self._left is None else min(READ_SIZE, self._left)
        data = self._stream.read(want) if want > 0 else b""
        if not data:
            self._eof = True
            return b""
        if self._left is not None:
            self._left -= len(data)
        self.total += len(data)
        if self._max_total and self.total > self._max_total:
            raise BodyTooLarge(f"request body exceeds the limit of {self._max_total} bytes")
        return data


@dataclass(slots=True, kw_only=True)
class _Limits:
    spool_dir: Path
    memory_threshold: int
    memory_budget: int
    max_root_bytes: int
    max_parts: int
    max_before_root: int  # parts a peer puts before the root part, together; 0 = no limit


class _Parser:
    """The RFC 2046 §5.1.1 grammar over a sliding buffer; one instance per message."""

    def __init__(self, source: _Source, boundary: bytes, start: str | None, limits: _Limits):
        self._src = source
        self._dash = b"--" + boundary
        self._eol = b"\r\n"  # fixed by the first delimiter line (see _boundary_tail)
        self._start = start
        self._limits = limits
        self._buf = bytearray()
        self._pos = 0
        self._memory_used = 0
        self._before_root = 0  # bytes of the parts read before the root part
        self._closed = False  # the close delimiter has been read
        self._sink: _PartSink | None = None
        self._anonymous = False  # parts need no Content-ID (iter_parts: plain multipart/related)
        self.root: bytes | None = None
        self.root_content_type = ROOT_DEFAULT_CONTENT_TYPE
        self.root_content_id: str | None = None
        self.attachments: dict[str, Attachment] = {}

    # -- buffer

    def _fill(self) -> bool:
        data = self._src.read()
        self._buf += data
        return bool(data)

    def _have(self, end: int) -> bool:
        """Read until the buffer holds ``end`` bytes; False at end of input."""
        while len(self._buf) < end:
            if not self._fill():
                return False
        return True

    def _compact(self) -> None:
        del self._buf[: self._pos]  # O(1) for a bytearray: CPython moves its start pointer
        self._pos = 0

    # -- grammar

    def parse_root(self) -> None:
        """Read up to and including the root part; parts before it become attachments."""
        try:
            self._skip_preamble()
            while self.root is None:
                if self._closed:
                    raise MultipartError(f"the start parameter <{self._start}> names no part")
                self._closed = self._part(index=len(self.attachments))
        except BaseException:
            self.abort()
            raise

    def parse_rest(self) -> None:
        """Read the parts after the root up to the close delimiter, then the epilogue."""
        try:
            while not self._closed:
                self._closed = self._part(index=len(self.attachments) + 1)
            while self._src.read():  # the epilogue is ignored (RFC 2046 §5.1.1), but consumed
                pass
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        """Remove every temporary file of this message (idempotent)."""
        if self._sink is not None:
            self._sink.abort()
            self._sink = None
        for attachment in self.attachments.values():
            attachment.discard()

    def _skip_preamble(self) -> None:
        buf, dash, search = self._buf, self._dash, 0
        at_body_start = True
        while True:
            i = buf.find(dash, search)
            if i >= 0:
                if (i == 0 and at_body_start) or (i > 0 and buf[i - 1] == _LF):
                    kind, end = self._boundary_tail(i + len(dash), first=True)
                    if kind == "part":
                        self._pos = end
                        return
                    if kind == "close":
                        raise MultipartError("multipart body has no parts")
                search = i + 1
                continue
            keep = len(dash) + 1
            if len(buf) > keep:
                del buf[: len(buf) - keep]
                at_body_start, search = False, 0
            if not self._fill():
                raise MultipartError("no boundary delimiter found in the multipart body")

    def _boundary_tail(self, j: int, *, first: bool) -> tuple[str | None, int]:
        """Classify what follows ``--boundary`` at ``j``: ("close"|"part"|None, end of line).

        None means "not a delimiter after all" (body data that merely starts like one). The first
        delimiter line also fixes the line break: CRLF as RFC 2046 requires, or, leniently, a
        bare LF for peers that send one (then LF is expected before every later delimiter too).
        """
        if not self._have(j + 2):
            raise MultipartError("multipart body is truncated inside a boundary line")
        buf = self._buf
        if buf[j : j + 2] == b"--":
            return "close", j + 2
        k = j
        while buf[k] in (0x20, 0x09):  # transport padding
            k += 1
            if k - j > MAX_PADDING:
                return None, k
            if not self._have(k + 2):
                raise MultipartError("multipart body is truncated inside a boundary line")
        if first and buf[k] == _LF:
            self._eol = b"\n"
        elif first and buf[k : k + 2] == b"\r\n":
            self._eol = b"\r\n"
        elif first or buf[k : k + len(self._eol)] != self._eol:
            return None, k
        return "part", k + len(self._eol)

    def _part(self, index: int) -> bool:
        """Read one part (headers, then body up to the next delimiter); True after the last."""
        if index >= self._limits.max_parts:
            raise MultipartError(f"more than {self._limits.max_parts} MIME parts")
        headers = self._headers()
        cid = _strip_angle(headers.get("content-id"))
        content_type = headers.get("content-type")
        encoding = headers.get("content-transfer-encoding", "binary").strip().lower()
        if encoding not in _IDENTITY_ENCODINGS and encoding != "base64":
            raise MultipartError(f"unsupported Content-Transfer-Encoding {encoding!r}")
        if cid is not None and (cid in self.attachments or cid == self.root_content_id):
            raise MultipartError(f"duplicate Content-ID <{cid}>")
        is_root = self.root is None and (cid == self._start if self._start else index == 0)
        if not is_root and cid is None:
            if not self._anonymous:
                raise MultipartError("a MIME part other than the root has no Content-ID")
            cid = f"part-{index + 1}"
        self._sink = sink = self._new_sink(is_root=is_root, base64=encoding == "base64")
        closed = self._body(sink)
        try:
            sink.finish()
        except _Base64Invalid as exc:
            raise MultipartError(f"part <{cid}>: {exc}") from exc
        if is_root:
            self.root, self.root_content_id = sink.data(), cid
            self.root_content_type = content_type or ROOT_DEFAULT_CONTENT_TYPE
        else:
            assert cid is not None
            attachment = sink.attachment(cid, content_type or PART_DEFAULT_CONTENT_TYPE)
            self.attachments[cid] = attachment
            if attachment.data is not None:
                self._memory_used += attachment.size
            if self.root is None:
                self._before_root += attachment.size
        self._sink = None
        return closed

    def _new_sink(self, *, is_root: bool, base64: bool) -> _PartSink:
        lim = self._limits
        if is_root:  # the envelope is parsed as a whole anyway: memory only, bounded
            root_cap = lim.max_root_bytes if lim.max_root_bytes > 0 else 1 << 62
            return _PartSink(
                threshold=root_cap,
                limit=lim.max_root_bytes,
                spool_dir=None,
                base64=base64,
                what="the root part",
            )
        room = max(0, lim.memory_budget - self._memory_used)
        limit, what = 0, "a MIME part"
        if self.root is None and lim.max_before_root:  # a server has not checked the caller yet
            limit = max(1, lim.max_before_root - self._before_root)
            what = "the MIME parts before the root part (send the SOAP envelope first)"
        return _PartSink(
            threshold=min(lim.memory_threshold, room),
            limit=limit,
            spool_dir=lim.spool_dir,
            base64=base64,
            what=what,
        )

    def _headers(self) -> dict[str, str]:
        self._compact()
        eol, scan = self._eol, 0
        while True:
            if self._buf.startswith(eol):  # no headers at all (RFC 2046 allows it)
                self._pos = len(eol)
                return {}
            i = self._buf.find(eol + eol, scan)
            if 0 <= i <= MAX_HEADER_BYTES:
                self._pos = i + 2 * len(eol)
                return self._header_block(bytes(self._buf[:i]))
            if i > MAX_HEADER_BYTES or len(self._buf) > MAX_HEADER_BYTES + 2 * len(eol):
                raise MultipartError(f"MIME part headers exceed {MAX_HEADER_BYTES} bytes")
            scan = max(0, len(self._buf) - 2 * len(eol) + 1)  # a trickling peer costs O(n)
            if not self._fill():
                raise MultipartError("multipart body is truncated inside the headers of a part")

    def _header_block(self, block: bytes) -> dict[str, str]:
        lines = block.decode("latin-1").split(self._eol.decode("ascii"))
        if len(lines) > MAX_HEADER_LINES:
            raise MultipartError(f"a MIME part has more than {MAX_HEADER_LINES} header lines")
        dash = self._dash.decode("latin-1")
        headers: dict[str, str] = {}
        last: str | None = None
        for line in lines:
            if len(line) > MAX_HEADER_LINE:
                raise MultipartError(f"a MIME header line exceeds {MAX_HEADER_LINE} bytes")
            if line.startswith(dash):
                raise MultipartError("a MIME part has no blank line between headers and body")
            if line[:1] in (" ", "\t") and last is not None:  # folded (RFC 822 §3.1.1)
                headers[last] += " " + line.strip()
                continue
            name, sep, value = line.partition(":")
            name = name.strip().lower()
            if not sep or not name or " " in name:
                raise MultipartError(f"malformed MIME header line {line[:80]!r}")
            last = name
            if name not in headers:
                headers[name] = value.strip()
            else:
                last = None  # a repeated header is ignored, its continuation lines too
        return headers

    def _body(self, sink: _PartSink) -> bool:
        """Stream body bytes to ``sink`` up to the next delimiter; True if it was the close one."""
        delim = self._eol + self._dash
        start = search = self._pos
        if self._have(start + len(self._dash)) and self._buf.startswith(self._dash, start):
            # "headers CRLF" then the delimiter: the blank line was the delimiter's own CRLF,
            # so this part has no body (RFC 2046 §5.1.1: body-part := headers [CRLF *OCTET]).
            kind, end = self._boundary_tail(start + len(self._dash), first=False)
            if kind is not None:
                self._pos = end
                return kind == "close"
        while True:
            i = self._buf.find(delim, search)
            if i >= 0:
                kind, end = self._boundary_tail(i + len(delim), first=False)
                if kind is None:
                    search = i + 1
                    continue
                self._write(sink, start, i)
                self._pos = end
                return kind == "close"
            safe = len(self._buf) - len(delim) + 1  # the tail may be a delimiter's beginning
            if safe > start:
                self._write(sink, start, safe)
                self._pos = safe
                self._compact()
                start = search = 0
            else:
                search = start
            if not self._fill():
                raise MultipartError("multipart body is truncated (no close delimiter)")

    def _write(self, sink: _PartSink, start: int, end: int) -> None:
        try:
            sink.write(self._buf[start:end])
        except _Base64Invalid as exc:
            raise MultipartError(f"a base64 MIME part: {exc}") from exc


def _strip_angle(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if value.startswith("<") and value.endswith(">"):
        value = value[1:-1].strip()
    return value or None


class MultipartReader:
    """A multipart/related body read in two steps: the root part first, the other parts later.

    Made by :func:`open_multipart`, which has read the body up to and including the root part;
    :meth:`read_attachments` reads the rest. A server checks the SOAP envelope and the caller in
    between, so a refused request is answered before its attachments are read.
    """

    def __init__(self, parser: _Parser) -> None:
        self._parser = parser
        assert parser.root is not None
        self.root: bytes = parser.root
        self.root_content_type = parser.root_content_type
        self.root_content_id = parser.root_content_id

    def read_attachments(self) -> dict[str, Attachment]:
        """Read the rest of the body; return every part but the root, keyed by Content-ID.

        Raises:
            MultipartError: as :func:`read_multipart` (no temporary file is left behind).
        """
        self._parser.parse_rest()
        return self._parser.attachments

    def discard(self) -> None:
        """Remove every temporary file read so far (for a request refused half-way)."""
        self._parser.abort()


def open_multipart(
    stream: ByteSource,
    content_type: str,
    *,
    content_length: int | None,
    spool_dir: Path,
    memory_threshold: int,
    max_root_bytes: int,
    max_total_bytes: int = 0,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    max_parts: int = DEFAULT_MAX_PARTS,
    max_before_root: int = 0,
) -> MultipartReader:
    """Read a multipart/related body from ``stream`` up to and including its root part.

    The options are those of :func:`read_multipart`; ``max_before_root`` (0 = none) bounds the
    parts a peer sends before the root (RFC 2387 lets ``start`` name a later part, XOP 1.0 §4.1
    and every MTOM stack put the root first): a server sets it so that a caller it has not yet
    checked cannot make it spool much.

    Standard: RFC 2387 §3.2 (the root part), XOP 1.0 §4.1.

    Raises:
        MultipartError: as :func:`read_multipart`; BodyTooLarge for a size limit.
    """
    parser = _parser_for(
        stream,
        content_type,
        content_length=content_length,
        max_total_bytes=max_total_bytes,
        limits=_Limits(
            spool_dir=Path(spool_dir),
            memory_threshold=memory_threshold,
            memory_budget=max(memory_budget, memory_threshold),
            max_root_bytes=max_root_bytes,
            max_parts=max_parts,
            max_before_root=max_before_root,
        ),
    )
    parser.parse_root()
    return MultipartReader(parser)


def _parser_for(
    stream: ByteSource,
    content_type: str,
    *,
    content_length: int | None,
    max_total_bytes: int,
    limits: _Limits,
) -> _Parser:
    media, params = parse_content_type(content_type)
    if not media.startswith("multipart/"):
        raise MultipartError(f"expected a multipart/related body, got {media}")
    boundary = params.get("boundary", "")
    if not boundary:
        raise MultipartError("multipart Content-Type without boundary parameter")
    if len(boundary) > 200 or any(ch in boundary for ch in "\r\n"):
        raise MultipartError("invalid multipart boundary")
    source = _Source(stream, content_length, max_total_bytes)
    return _Parser(source, boundary.encode("latin-1"), _strip_angle(params.get("start")), limits)


def read_multipart(
    stream: ByteSource,
    content_type: str,
    *,
    content_length: int | None,
    spool_dir: Path,
    memory_threshold: int,
    max_root_bytes: int,
    max_total_bytes: int = 0,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    max_parts: int = DEFAULT_MAX_PARTS,
) -> MultipartMessage:
    """Parse a multipart/related body from ``stream`` without holding large parts in memory.

    The root is the part named by the ``start`` parameter, else the first part (RFC 2387 §3.2).
    Other parts become :class:`Attachment` objects keyed by Content-ID (angle brackets removed):
    in memory while at most ``memory_threshold`` bytes and while all in-memory parts together
    stay within ``memory_budget``, else in an owned 0600 file in ``spool_dir``. Part bodies are
    byte-exact; ``base64`` parts are decoded while streaming, binary/8bit/7bit kept as they are.
    Never reads past ``content_length``; with None, reads to end of input. ``max_root_bytes``
    (0 = none) bounds the root, ``max_total_bytes`` (0 = none) the whole body. On any error no
    temporary file is left behind.

    Standard: RFC 2387 §3; RFC 2046 §5.1.1; RFC 2045 §6; XOP 1.0 §4.1; SOAP MTOM §4.3.

    Raises:
        MultipartError: not multipart, no boundary, malformed/truncated body, duplicate
            Content-ID, a non-root part without Content-ID, bad base64; its subclass
            BodyTooLarge when a size limit is exceeded.
    """
    reader = open_multipart(
        stream,
        content_type,
        content_length=content_length,
        spool_dir=spool_dir,
        memory_threshold=memory_threshold,
        max_root_bytes=max_root_bytes,
        max_total_bytes=max_total_bytes,
        memory_budget=memory_budget,
        max_parts=max_parts,
    )
    attachments = reader.read_attachments()
    return MultipartMessage(
        root=reader.root,
        root_content_type=reader.root_content_type,
        root_content_id=reader.root_content_id,
        attachments=attachments,
    )


def iter_parts(
    stream: ByteSource,
    content_type: str,
    *,
    content_length: int | None,
    spool_dir: Path,
    max_total_bytes: int = 0,
    max_parts: int = DEFAULT_MAX_PARTS,
) -> Iterator[Attachment]:
    """Every part of a plain multipart/related body, in order, each in its own 0600 file in
    ``spool_dir`` as soon as it is complete (a part need not carry a Content-ID; one without
    is named ``part-N``). The caller owns each yielded attachment (``discard`` it or move its
    file); the parts not yet yielded are removed when the body turns out bad or the caller
    stops early. An empty part is an attachment of size 0 without a file.

    Standard: RFC 2387 §3 (no ``start``: no part is special here, e.g. STOW-RS, PS3.18
    §10.5.1.2), RFC 2046 §5.1.1.

    Raises:
        MultipartError: as :func:`read_multipart`; BodyTooLarge past ``max_total_bytes``.
    """
    parser = _parser_for(
        stream,
        content_type,
        content_length=content_length,
        max_total_bytes=max_total_bytes,
        limits=_Limits(
            spool_dir=Path(spool_dir),
            memory_threshold=0,
            memory_budget=0,
            max_root_bytes=0,
            max_parts=max_parts,
            max_before_root=0,
        ),
    )
    parser.root, parser._anonymous = b"", True
    try:
        parser._skip_preamble()
        closed, index = False, 0
        while not closed:
            closed = parser._part(index=index)
            index += 1
            yield parser.attachments.pop(next(reversed(parser.attachments)))
        while parser._src.read():  # the epilogue is ignored, but consumed
            pass
    finally:
        parser.abort()
