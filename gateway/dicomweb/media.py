"""Media types of DICOMweb: Accept negotiation, transfer syntax parameters, multipart writing.

- Acceptable media types come from the ``accept`` query parameter if present, else the Accept
  header field (PS3.18 §8.3.3.1, §8.7.5), ordered by quality value and then as written
  (RFC 9110 §12.5.1); none at all means ``*/*``.
- ``transfer-syntax`` is a parameter of the media type (PS3.18 §8.7.3.5); without it the
  default of Table 8.7.3-2 applies: Explicit VR Little Endian for ``application/dicom`` and for
  ``application/octet-stream``; ``*`` lets the origin server choose (we send what is stored).
- Responses of several parts are ``multipart/related`` (RFC 2387) with a ``type`` parameter and a
  random boundary; each part carries its own Content-Type with the transfer syntax of the part
  (PS3.18 §8.6.1.2, §8.7.3.7).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field

from gateway.soap.mime import MultipartError, parse_content_type

EXPLICIT_VR_LE = "1.2.840.10008.1.2.1"
DICOM = "application/dicom"
DICOM_JSON = "application/dicom+json"
OCTET_STREAM = "application/octet-stream"
MULTIPART = "multipart/related"

# PS3.18 Table 8.7.3-4/-5: the single-frame media type of each compressed transfer syntax.
FRAME_MEDIA_TYPES: dict[str, str] = {
    "1.2.840.10008.1.2.4.50": "image/jpeg",
    "1.2.840.10008.1.2.4.51": "image/jpeg",
    "1.2.840.10008.1.2.4.57": "image/jpeg",
    "1.2.840.10008.1.2.4.70": "image/jpeg",
    "1.2.840.10008.1.2.4.80": "image/jls",
    "1.2.840.10008.1.2.4.81": "image/jls",
    "1.2.840.10008.1.2.4.90": "image/jp2",
    "1.2.840.10008.1.2.4.91": "image/jp2",
    "1.2.840.10008.1.2.4.92": "image/jpx",
    "1.2.840.10008.1.2.4.93": "image/jpx",
    "1.2.840.10008.1.2.4.201": "image/jphc",
    "1.2.840.10008.1.2.4.202": "image/jphc",
    "1.2.840.10008.1.2.4.203": "image/jphc",
    "1.2.840.10008.1.2.5": "image/dicom-rle",
}


class NotAcceptable(ValueError):
    """No acceptable media type can be produced (HTTP 406, PS3.18 §8.7.5)."""


@dataclass(frozen=True, slots=True)
class MediaRange:
    """One acceptable media type: ``type/subtype`` in lower case, its parameters, its quality."""

    media: str
    params: dict[str, str] = field(default_factory=dict)
    q: float = 1.0

    def matches(self, media: str) -> bool:
        """Does this range cover ``media`` (``*/*``, ``image/*`` or the type itself)?"""
        if self.media in ("*/*", media):
            return True
        kind, _, sub = self.media.partition("/")
        return sub == "*" and media.startswith(kind + "/")

    @property
    def inner(self) -> str | None:
        """The ``type`` parameter of a multipart range (lower case), None when absent."""
        value = self.params.get("type")
        return value.strip().lower() if value else None

    @property
    def transfer_syntax(self) -> str | None:
        value = self.params.get("transfer-syntax")
        return value.strip() if value else None


def _split(header: str) -> list[str]:
    """Split an Accept value at commas outside quoted strings."""
    items: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in header:
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            items.append("".join(current))
            current = []
            continue
        current.append(char)
    items.append("".join(current))
    return [item.strip() for item in items if item.strip()]


def acceptable(header: str | None, query: Sequence[str] = ()) -> list[MediaRange]:
    """The acceptable media types, best first (PS3.18 §8.7.5; RFC 9110 §12.5.1).

    Raises: ValueError for a malformed media range or quality value (answered 400).
    """
    raw = [item for value in query for item in _split(value)] or _split(header or "")
    ranges: list[tuple[float, int, MediaRange]] = []
    for index, item in enumerate(raw):
        try:
            media, params = parse_content_type(item)
        except MultipartError as exc:
            raise ValueError(f"malformed media range {item!r} in Accept") from exc
        try:
            q = float(params.pop("q", "1"))
        except ValueError:
            raise ValueError(f"malformed quality value in {item!r}") from None
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"quality value out of range in {item!r}")
        if q > 0:
            ranges.append((-q, index, MediaRange(media, params, q)))
    if not raw:
        return [MediaRange("*/*")]
    return [r for _, _, r in sorted(ranges, key=lambda t: (t[0], t[1]))]


def new_boundary() -> str:
    """A boundary that cannot occur in the parts in practice (RFC 2046 §5.1.1)."""
    return f"xdsi-{secrets.token_hex(16)}"


def multipart_content_type(inner: str, boundary: str, transfer_syntax: str | None = None) -> str:
    """``multipart/related; type="..."; boundary=...`` (RFC 2387 §3.1; PS3.18 §8.6.1.2)."""
    ts = f"; transfer-syntax={transfer_syntax}" if transfer_syntax else ""
    return f'{MULTIPART}; type="{inner}"{ts}; boundary={boundary}'


def part_head(
    boundary: str, content_type: str, *, first: bool, location: str | None = None
) -> bytes:
    """The delimiter and header fields of one part (the CRLF before a delimiter belongs to it)."""
    lines = [f"--{boundary}", f"Content-Type: {content_type}"]
    if location:
        lines.append(f"Content-Location: {location}")
    head = "\r\n".join(lines) + "\r\n\r\n"
    return (b"" if first else b"\r\n") + head.encode("ascii")


def closing(boundary: str, *, empty: bool = False) -> bytes:
    """The close delimiter (RFC 2046 §5.1.1)."""
    return (b"" if empty else b"\r\n") + f"--{boundary}--\r\n".encode("ascii")
