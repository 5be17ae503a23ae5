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

import uuid
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from lxml import etree

from gateway.soap import ns
from gateway.soap.message import Attachment, cid_from_href, new_content_id, xop_include
from gateway.soap.mime import (
    _BCHARS,
    MAX_HEADER_BYTES,
    MAX_HEADER_LINE,
    MAX_HEADER_LINES,
    PART_DEFAULT_CONTENT_TYPE,
    READ_SIZE,
    ROOT_DEFAULT_CONTENT_TYPE,
    BodyTooLarge,
    InlineBinaryError,
    MultipartError,
    _Base64Invalid,
    _quote,
    mime_soap_action,
    parse_content_type,
)
from gateway.soap.mtom_reader import (
    MultipartMessage,
    MultipartReader,
    _PartSink,
    open_multipart,
    read_multipart,
)

__all__ = [
    "MAX_HEADER_BYTES",
    "MAX_HEADER_LINE",
    "MAX_HEADER_LINES",
    "ROOT_DEFAULT_CONTENT_TYPE",
    "BodyTooLarge",
    "InlineBinaryError",
    "MultipartError",
    "MultipartMessage",
    "MultipartReader",
    "build_mtom",
    "inline_to_attachments",
    "mime_soap_action",
    "open_multipart",
    "parse_content_type",
    "read_multipart",
    "xop_to_inline_check",
]

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
