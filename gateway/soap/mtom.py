"""Streaming MTOM/XOP codec: a multipart/related body in, a multipart/related body out.

Reading never holds a large part in memory. The body is pulled from the stream in fixed-size
reads, the next delimiter is searched with ``bytearray.find`` across read edges, and each part's
bytes go to a sink that keeps small parts in memory and spools the rest to a 0600 temporary
file, computing SHA-1 and size on the way. Base64 parts are decoded while streaming.

Standards: W3C XOP 1.0 (REC 2005-01-25) §2 (xop:Include), §3.2 (interpreting packages), §4.1
(MIME Multipart/Related packages); SOAP 1.2 MTOM (REC 2005-01-25) §3 and §4.3 (HTTP SOAP
Transmission Optimization Feature); RFC 2387 (multipart/related: ``type``, ``start``,
``start-info``); RFC 2046 §5.1.1 (delimiters, preamble, epilogue, transport padding; the CRLF
before a delimiter belongs to the delimiter); RFC 2045 §5.1 (Content-Type syntax), §2.8 and
§6 (Content-Transfer-Encoding); RFC 2392 (cid: URLs); RFC 3902 (``action`` parameter of
application/soap+xml).
"""

from __future__ import annotations

import binascii
import hashlib
import os
import re
import tempfile
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from lxml import etree

from gateway.soap import ns
from gateway.soap.message import Attachment, cid_from_href, new_content_id, xop_include

READ_SIZE = 128 * 1024  # one read from the stream; the parse buffer stays near this size
MAX_HEADER_LINES = 64  # per part
MAX_HEADER_LINE = 8 * 1024
MAX_HEADER_BYTES = 32 * 1024  # one part's whole header block
MAX_PADDING = 1024  # RFC 2046 transport padding after a boundary
DEFAULT_MAX_PARTS = 100_000  # a RAD-69 response may carry a whole study, one part per instance
DEFAULT_MEMORY_BUDGET = 16 * 1024 * 1024  # all in-memory attachments of one message together
ROOT_DEFAULT_CONTENT_TYPE = "text/plain; charset=us-ascii"  # RFC 2045 §5.2
PART_DEFAULT_CONTENT_TYPE = "application/octet-stream"
_IDENTITY_ENCODINGS = frozenset({"binary", "8bit", "7bit"})
_LF = 0x0A


class MultipartError(ValueError):
    """The multipart body is malformed, truncated or too large (a Sender fault)."""


class InlineBinaryError(ValueError):
    """Inline base64 content of a binary element is not valid base64 (a Sender fault)."""


class _Base64Invalid(ValueError):
    """Raised by the streaming decoder; callers translate it to their own error."""


# --------------------------------------------------------------------------- Content-Type

_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_MEDIA_TYPE = re.compile(rf"{_TOKEN}/{_TOKEN}")
_BCHARS = re.compile(r"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")


def parse_content_type(value: str) -> tuple[str, dict[str, str]]:
    """Split a Content-Type into the lower-cased media type and its parameters.

    Parameter names are lower-cased, quoted values unquoted (backslash quoted-pairs resolved);
    the first occurrence of a repeated parameter wins; a parameter without ``=`` is ignored.

    Standard: RFC 2045 §5.1 (syntax), RFC 822 §3.3 (quoted-string).

    Raises:
        MultipartError: the media type is not ``type/subtype`` or a quoted string is unterminated.
    """
    media, _, rest = value.partition(";")
    media = media.strip().lower()
    if not _MEDIA_TYPE.fullmatch(media):
        raise MultipartError(f"malformed Content-Type {value!r}")
    return media, _parse_params(rest)


def _parse_params(text: str) -> dict[str, str]:
    params: dict[str, str] = {}
    i, n = 0, len(text)
    while i < n:
        eq, semi = text.find("=", i), text.find(";", i)
        if eq < 0:
            break
        if 0 <= semi < eq:  # "; novalue;" - skip it
            i = semi + 1
            continue
        name = text[i:eq].strip().lower()
        value, i = _param_value(text, eq + 1)
        if name:
            params.setdefault(name, value)
    return params


def _param_value(text: str, i: int) -> tuple[str, int]:
    n = len(text)
    while i < n and text[i] in " \t\r\n":
        i += 1
    if i < n and text[i] == '"':
        out: list[str] = []
        i += 1
        while i < n:
            ch = text[i]
            if ch == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 2
                continue
            if ch == '"':
                end = text.find(";", i + 1)
                return "".join(out), n if end < 0 else end + 1
            out.append(ch)
            i += 1
        raise MultipartError("unterminated quoted string in Content-Type")
    end = text.find(";", i)
    if end < 0:
        return text[i:].strip(), n
    return text[i:end].strip(), end + 1


def _quote(value: str) -> str:
    """A quoted-string (RFC 822 §3.3) for a parameter value."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def mime_soap_action(content_type: str, root_content_type: str | None = None) -> str | None:
    """Return the SOAP 1.2 action a request's MIME headers carry, or None.

    Plain SOAP: the ``action`` parameter of application/soap+xml (SOAP 1.2 Part 2 §7.1.4,
    RFC 3902). MTOM: peers disagree on its place, so all are read, in this order: an ``action``
    parameter on multipart/related (Axis2, WCF), inside ``start-info`` (CXF, Metro; RFC 2387
    §3.3), inside the root part's ``type`` parameter (XOP 1.0 §4.1 / application/xop+xml).
    """
    try:
        media, params = parse_content_type(content_type)
        if media == ns.SOAP12_MEDIA_TYPE or "action" in params:
            return params.get("action") or None
        candidates = [params.get("start-info")]
        if root_content_type:
            candidates.append(parse_content_type(root_content_type)[1].get("type"))
        for inner in candidates:
            if inner:
                action = parse_content_type(inner)[1].get("action")
                if action:
                    return action
    except MultipartError:
        return None
    return None


# --------------------------------------------------------------------------- part sinks


class _Base64Decoder:
    """Incremental base64 decoding that tolerates line breaks anywhere (RFC 2045 §6.8)."""

    __slots__ = ("_done", "_pending")

    def __init__(self) -> None:
        self._pending = b""
        self._done = False  # a padded quantum was seen: nothing may follow

    def feed(self, data: bytes | bytearray) -> bytes:
        data = self._pending + data.translate(None, b" \t\r\n")
        usable = len(data) - len(data) % 4
        self._pending = data[usable:]
        return self._decode(data[:usable])

    def finish(self) -> bytes:
        rest, self._pending = self._pending, b""
        if not rest:
            return b""
        if len(rest) == 1:
            raise _Base64Invalid("base64 data ends with a lone character")
        return self._decode(rest + b"=" * (4 - len(rest)))  # tolerate missing padding

    def _decode(self, quanta: bytes) -> bytes:
        if not quanta:
            return b""
        if self._done:
            raise _Base64Invalid("base64 data continues after padding")
        try:
            out = binascii.a2b_base64(quanta, strict_mode=True)
        except binascii.Error as exc:
            raise _Base64Invalid(f"invalid base64 data: {exc}") from exc
        self._done = quanta.endswith(b"=")
        return out


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
        common = {"content_id": content_id, "content_type": content_type, "size": self.size}
        if self.path is not None:
            return Attachment(path=self.path, owned=True, sha1=self._sha.hexdigest(), **common)
        return Attachment(data=bytes(self._buf), sha1=self._sha.hexdigest(), **common)

    def _store(self, data: bytes | bytearray) -> None:
        if not data:
            return
        self.size += len(data)
        if self._limit and self.size > self._limit:
            raise MultipartError(f"{self._what} exceeds the limit of {self._limit} bytes")
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

    def __init__(self, stream: BinaryIO, content_length: int | None, max_total: int) -> None:
        if content_length is not None and content_length < 0:
            raise MultipartError("negative Content-Length")
        if max_total and content_length is not None and content_length > max_total:
            raise MultipartError(f"request body exceeds the limit of {max_total} bytes")
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
            raise MultipartError(f"request body exceeds the limit of {self._max_total} bytes")
        return data


@dataclass(slots=True, kw_only=True)
class _Limits:
    spool_dir: Path
    memory_threshold: int
    memory_budget: int
    max_root_bytes: int
    max_parts: int


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
        self._sink: _PartSink | None = None
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

    def parse(self) -> None:
        try:
            self._skip_preamble()
            closed = False
            while not closed:
                closed = self._part(index=len(self.attachments) + (self.root is not None))
            if self.root is None:
                raise MultipartError(f"the start parameter <{self._start}> names no part")
            while self._src.read():  # the epilogue is ignored (RFC 2046 §5.1.1), but consumed
                pass
        except BaseException:
            if self._sink is not None:
                self._sink.abort()
            for attachment in self.attachments.values():
                attachment.discard()
            raise

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
            raise MultipartError("a MIME part other than the root has no Content-ID")
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
        return _PartSink(
            threshold=min(lim.memory_threshold, room),
            limit=0,
            spool_dir=lim.spool_dir,
            base64=base64,
            what="a MIME part",
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


def read_multipart(
    stream: BinaryIO,
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
        MultipartError: not multipart, no boundary, malformed/truncated body, a limit exceeded,
            duplicate Content-ID, a non-root part without Content-ID, bad base64.
    """
    media, params = parse_content_type(content_type)
    if not media.startswith("multipart/"):
        raise MultipartError(f"expected a multipart/related body, got {media}")
    boundary = params.get("boundary", "")
    if not boundary:
        raise MultipartError("multipart Content-Type without boundary parameter")
    if len(boundary) > 200 or any(ch in boundary for ch in "\r\n"):
        raise MultipartError("invalid multipart boundary")
    limits = _Limits(
        spool_dir=Path(spool_dir),
        memory_threshold=memory_threshold,
        memory_budget=max(memory_budget, memory_threshold),
        max_root_bytes=max_root_bytes,
        max_parts=max_parts,
    )
    source = _Source(stream, content_length, max_total_bytes)
    parser = _Parser(source, boundary.encode("latin-1"), _strip_angle(params.get("start")), limits)
    parser.parse()
    assert parser.root is not None
    return MultipartMessage(
        root=parser.root,
        root_content_type=parser.root_content_type,
        root_content_id=parser.root_content_id,
        attachments=parser.attachments,
    )


# --------------------------------------------------------------------------- writing


def _root_transfer_encoding(xml: bytes) -> str:
    """``8bit`` when the XML meets RFC 2045 §2.8 (no NUL, CRLF-only lines <= 998), else ``binary``.

    SOAP MTOM's examples label the root 8bit, but XML as lxml writes it (bare LF, one long
    line) is binary data in RFC 2045's sense (§2.9), and receivers treat both the same.
    """
    crlf = xml.count(b"\r\n")
    clean = b"\0" not in xml and xml.count(b"\n") == crlf and xml.count(b"\r") == crlf
    if clean and all(len(line) <= 998 for line in xml.split(b"\r\n")):
        return "8bit"
    return "binary"


def _part_head(boundary: str, headers: Sequence[tuple[str, str]], *, first: bool) -> bytes:
    """The delimiter line (CRLF belongs to it, except before the first) and a part's headers."""
    lines = ["--" + boundary if first else "\r\n--" + boundary]
    for name, value in headers:
        if any(ch in value for ch in "\r\n\0") or not value.isascii():
            raise ValueError(f"invalid MIME header value for {name}: {value!r}")
        lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


def _check_boundary(boundary: str, root_xml: bytes, attachments: Sequence[Attachment]) -> bool:
    """True when ``boundary`` is RFC 2046 §5.1.1 syntax and absent from the in-memory parts."""
    if not _BCHARS.fullmatch(boundary):
        return False
    needle = b"--" + boundary.encode("ascii")
    in_memory = [root_xml, *(a.data for a in attachments if a.data is not None)]
    return not any(needle in data for data in in_memory)


def _choose_boundary(
    boundary: str | None, root_xml: bytes, attachments: Sequence[Attachment]
) -> str:
    if boundary is not None:
        if not _check_boundary(boundary, root_xml, attachments):
            raise ValueError(f"unusable MIME boundary {boundary!r}")
        return boundary
    while True:  # 128 random bits: a clash with file content is not a practical concern
        candidate = f"MIMEBoundary_{uuid.uuid4().hex}"
        if _check_boundary(candidate, root_xml, attachments):
            return candidate


def build_mtom(
    root_xml: bytes,
    attachments: Sequence[Attachment],
    *,
    soap_action: str | None = None,
    boundary: str | None = None,
) -> tuple[str, int, Iterator[bytes]]:
    """Serialize an XOP package as multipart/related: (Content-Type, Content-Length, chunks).

    Root part: ``application/xop+xml; charset=UTF-8; type="application/soap+xml"`` (XOP 1.0
    §4.1, SOAP MTOM §4.3), Content-Transfer-Encoding 8bit when the XML qualifies (RFC 2045 §2.8)
    else binary; attachments binary, each with its ``Content-ID: <...>`` (RFC 2392). The SOAP
    action (RFC 3902) is written where each family of peers reads it: in ``start-info`` and the
    root ``type`` (CXF, Metro) and as an ``action`` parameter of multipart/related (Axis2, WCF);
    RFC 2387 receivers ignore the parameters they do not know. The length is computed from the
    attachment sizes up front; file attachments are streamed with :meth:`Attachment.chunks`.

    Raises:
        ValueError: a given boundary is unusable, two attachments share a Content-ID, or an
            action/header value cannot be written in a MIME header.
    """
    if soap_action is not None and any(ch in soap_action for ch in '"\\\r\n'):
        raise ValueError(f"SOAP action cannot be carried in a MIME parameter: {soap_action!r}")
    if len({a.content_id for a in attachments}) != len(attachments):
        raise ValueError("two attachments share a Content-ID")  # XOP 1.0 §4.1: one part each
    boundary = _choose_boundary(boundary, root_xml, attachments)
    root_cid = new_content_id()
    soap_type = ns.SOAP12_MEDIA_TYPE
    if soap_action:
        soap_type += f"; action={_quote(soap_action)}"
    root_head = _part_head(
        boundary,
        [
            ("Content-Type", f"{ns.XOP_MEDIA_TYPE}; charset=UTF-8; type={_quote(soap_type)}"),
            ("Content-Transfer-Encoding", _root_transfer_encoding(root_xml)),
            ("Content-ID", f"<{root_cid}>"),
        ],
        first=True,
    )
    heads = [
        _part_head(
            boundary,
            [
                ("Content-Type", attachment.content_type),
                ("Content-Transfer-Encoding", "binary"),
                ("Content-ID", f"<{attachment.content_id}>"),
            ],
            first=False,
        )
        for attachment in attachments
    ]
    close = b"\r\n--" + boundary.encode("ascii") + b"--\r\n"
    length = len(root_head) + len(root_xml) + len(close)
    length += sum(len(head) for head in heads) + sum(a.size for a in attachments)
    params = [
        ("type", ns.XOP_MEDIA_TYPE),
        ("boundary", boundary),
        ("start", f"<{root_cid}>"),
        ("start-info", soap_type),
    ]
    if soap_action:
        params.append(("action", soap_action))
    content_type = "multipart/related; " + "; ".join(f"{k}={_quote(v)}" for k, v in params)
    chunks = _mtom_chunks(root_head, root_xml, list(zip(heads, attachments, strict=True)), close)
    return content_type, length, chunks


def _mtom_chunks(
    root_head: bytes, root_xml: bytes, parts: list[tuple[bytes, Attachment]], close: bytes
) -> Iterator[bytes]:
    yield root_head
    yield root_xml
    for head, attachment in parts:
        yield head
        sent = 0
        for chunk in attachment.chunks():
            sent += len(chunk)
            yield chunk
        if sent != attachment.size:  # the announced Content-Length is now wrong: abort
            raise RuntimeError(
                f"attachment <{attachment.content_id}> is {sent} bytes, {attachment.size} announced"
            )
    yield close


# --------------------------------------------------------------------------- XOP infoset


def xop_to_inline_check(root: etree._Element, attachments: dict[str, Attachment]) -> None:
    """Check that every ``xop:Include`` names a part of the package.

    Standard: XOP 1.0 §2.1-2.2 (xop:Include and its href, a cid: URL per RFC 2392), §3.2
    (a reader replaces each xop:Include by the part it names; one naming no part is an error).

    Raises:
        MultipartError: an xop:Include without href, or whose href names no part.
    """
    for include in root.iter(ns.qname(ns.XOP, "Include")):
        href = include.get("href")
        if not href:
            raise MultipartError("xop:Include without href attribute")
        if cid_from_href(href) not in attachments:
            raise MultipartError(f"xop:Include href {href!r} names no MIME part")


def inline_to_attachments(
    body: etree._Element,
    binary_qnames: Iterable[str],
    *,
    spool_dir: Path,
    memory_threshold: int,
) -> dict[str, Attachment]:
    """Move the base64 text of the named elements into attachments, leaving xop:Include children.

    After this an inline request looks to a handler exactly like an MTOM one (XOP 1.0 §1: both
    are the same infoset). ``binary_qnames`` are Clark names (``{ns}local``). Elements that
    already hold an xop:Include are left alone. Content larger than ``memory_threshold`` is
    decoded slice by slice into an owned temporary file in ``spool_dir``. The content type
    comes from ``xmime:contentType`` when present (Describing Media Content of Binary Data in
    XML, W3C Note 2005-05-04, §2.1), else application/octet-stream.

    Raises:
        InlineBinaryError: an element's text is not valid base64 (nothing is left on disk).
    """
    targets = set(binary_qnames)
    if not targets:
        return {}
    include_tag = ns.qname(ns.XOP, "Include")
    created: dict[str, Attachment] = {}
    try:
        for element in list(body.iter(*targets)):
            if element.find(include_tag) is not None:
                continue
            attachment = _inline_attachment(element, Path(spool_dir), memory_threshold)
            created[attachment.content_id] = attachment
            element.text = None
            element.append(xop_include(attachment.content_id))
    except BaseException:
        for attachment in created.values():
            attachment.discard()
        raise
    return created


def _inline_attachment(element: etree._Element, spool_dir: Path, threshold: int) -> Attachment:
    text = element.text or ""
    sink = _PartSink(
        threshold=threshold, limit=0, spool_dir=spool_dir, base64=True, what="inline content"
    )
    try:
        step = 4 * READ_SIZE  # bounded extra memory while decoding a large text node
        for offset in range(0, len(text), step):
            sink.write(text[offset : offset + step].encode("ascii"))
        sink.finish()
    except (_Base64Invalid, UnicodeEncodeError) as exc:
        sink.abort()
        raise InlineBinaryError(f"{element.tag} does not hold valid base64: {exc}") from exc
    except BaseException:
        sink.abort()
        raise
    content_type = element.get(ns.qname(ns.XMIME, "contentType")) or PART_DEFAULT_CONTENT_TYPE
    return sink.attachment(new_content_id(), content_type)
