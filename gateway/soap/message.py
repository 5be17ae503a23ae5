"""What a SOAP handler sees and returns: request, response and attachments.

Binary content travels as :class:`Attachment` objects whether the peer sent it as an MTOM/XOP
part or inline as base64 (the dispatcher normalises inline content of the transaction's binary
elements into attachments, so a handler cannot tell the two apart; XOP 1.0 §1 makes them the same
infoset). Large attachments live in temporary files, never wholly in memory.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, TypeAlias

from lxml import etree

from gateway.soap import ns

CHUNK = 256 * 1024

Element: TypeAlias = etree._Element
"""An XML element as the ``soap/`` and ``metadata/`` codecs build and read it. Actors annotate the
bodies they pass between a codec and a client with this name and never look inside (XML stays in
the codecs; ARCHITECTURE.md, "Where XML lives")."""


@dataclass(slots=True, kw_only=True)
class Attachment:
    """One binary part: in memory (``data``) or in a file (``path``).

    ``owned`` means the file is a temporary the gateway created for this message and removes in
    :meth:`discard`; files served from storage are not owned and are never removed here.
    """

    content_id: str
    content_type: str = "application/octet-stream"
    data: bytes | None = None
    path: Path | None = None
    size: int = -1
    sha1: str | None = None
    owned: bool = False

    def __post_init__(self) -> None:
        if (self.data is None) == (self.path is None):
            raise ValueError("an Attachment holds exactly one of data or path")
        if self.size < 0:
            if self.data is not None:
                self.size = len(self.data)
            else:
                assert self.path is not None  # exactly one of the two, checked above
                self.size = os.path.getsize(self.path)

    @classmethod
    def from_bytes(
        cls,
        data: bytes,
        *,
        content_type: str = "application/octet-stream",
        content_id: str | None = None,
    ) -> Attachment:
        """Wrap bytes in memory as an attachment with a fresh Content-ID."""
        return cls(
            content_id=content_id or new_content_id(),
            content_type=content_type,
            data=data,
            sha1=hashlib.sha1(data).hexdigest(),
        )

    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike[str],
        *,
        content_type: str = "application/octet-stream",
        content_id: str | None = None,
        owned: bool = False,
    ) -> Attachment:
        """Reference a file on disk (streamed when sent; removed on discard only if ``owned``)."""
        return cls(
            content_id=content_id or new_content_id(),
            content_type=content_type,
            path=Path(path),
            owned=owned,
        )

    def open(self) -> BinaryIO:
        """Open the content for reading from the start."""
        if self.data is not None:
            return io.BytesIO(self.data)
        assert self.path is not None
        return open(self.path, "rb")

    def read_bytes(self) -> bytes:
        """Return the whole content; use :meth:`chunks` for anything that may be large."""
        if self.data is not None:
            return self.data
        assert self.path is not None
        return self.path.read_bytes()

    def chunks(self, size: int = CHUNK) -> Iterator[bytes]:
        """Yield the content in chunks of at most ``size`` bytes."""
        if self.data is not None:
            view = memoryview(self.data)
            for start in range(0, len(view), size):
                yield bytes(view[start : start + size])
            return
        with self.open() as handle:
            while block := handle.read(size):
                yield block

    def digest(self) -> str:
        """SHA-1 of the content in lower-case hex (XDS ``hash``, ITI TF-3 §4.2.3.2.10)."""
        if self.sha1 is None:
            sha = hashlib.sha1()
            for block in self.chunks():
                sha.update(block)
            self.sha1 = sha.hexdigest()
        return self.sha1

    def save_to(self, dest: str | os.PathLike[str]) -> None:
        """Place the content at ``dest``: a rename when the temporary file is ours, else a copy."""
        dest = Path(dest)
        if self.path is not None and self.owned:
            os.replace(self.path, dest)
            self.path, self.owned = dest, False
            return
        with open(dest, "wb") as out:
            if self.data is not None:
                out.write(self.data)
            else:
                assert self.path is not None
                with open(self.path, "rb") as src:
                    shutil.copyfileobj(src, out, CHUNK)

    def discard(self) -> None:
        """Remove the temporary file behind this attachment, if the gateway owns it."""
        if self.path is not None and self.owned:
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass
            self.owned = False


def new_content_id() -> str:
    """A globally unique Content-ID (RFC 2392 form without angle brackets)."""
    return f"{uuid.uuid4().hex}@xdsi-gateway"


@dataclass(slots=True, kw_only=True)
class Addressing:
    """The WS-Addressing 1.0 message addressing properties of a request (Core §3.1)."""

    action: str | None = None
    message_id: str | None = None
    to: str | None = None
    reply_to: str | None = None
    relates_to: str | None = None


@dataclass(slots=True, kw_only=True)
class SoapRequest:
    """A parsed SOAP 1.2 request as a handler receives it."""

    path: str
    addressing: Addressing
    body: etree._Element
    headers: list[etree._Element] = field(default_factory=list)
    attachments: dict[str, Attachment] = field(default_factory=dict)
    mtom: bool = False
    remote_addr: str | None = None

    @property
    def action(self) -> str | None:
        return self.addressing.action

    def attachment_for(self, element: etree._Element) -> Attachment:
        """Return the attachment an element's ``xop:Include`` child points at.

        Raises:
            KeyError: the element carries no xop:Include or it names no part of this message.
        """
        return included_attachment(element, self.attachments)

    def discard_attachments(self) -> None:
        """Remove every temporary file this request created."""
        for attachment in self.attachments.values():
            attachment.discard()


@dataclass(slots=True, kw_only=True)
class SoapResponse:
    """A handler's answer: a body element and the attachments its xop:Include elements name."""

    body: etree._Element
    attachments: list[Attachment] = field(default_factory=list)
    action: str | None = None  # defaults to the transaction's response action
    mtom: bool | None = None  # None: MTOM when there are attachments or the request was MTOM


def cid_from_href(href: str) -> str:
    """Turn an ``xop:Include/@href`` (``cid:...``, URL-encoded per RFC 2392) into a Content-ID."""
    from urllib.parse import unquote

    value = href[4:] if href.lower().startswith("cid:") else href
    return unquote(value).strip("<>")


def included_attachment(
    element: etree._Element, attachments: Mapping[str, Attachment]
) -> Attachment:
    """The part an element's ``xop:Include`` child names, among ``attachments`` (by Content-ID).

    Standard: XOP 1.0 §2.1 (xop:Include/@href, a ``cid:`` URL of RFC 2392).
    Raises:
        KeyError: the element carries no xop:Include or it names no part of ``attachments``.
    """
    include = element.find(ns.qname(ns.XOP, "Include"))
    if include is None:
        raise KeyError(f"{element.tag} has no xop:Include")
    return attachments[cid_from_href(include.get("href", ""))]


def xop_include(content_id: str) -> etree._Element:
    """Build an ``xop:Include`` element referring to a part (XOP 1.0 §2.1)."""
    from urllib.parse import quote

    element = etree.Element(ns.qname(ns.XOP, "Include"), nsmap={"xop": ns.XOP})
    element.set("href", "cid:" + quote(content_id, safe="@.-_!$&'()*+,;=:~"))
    return element
