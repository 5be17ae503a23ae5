"""MIME pieces of MTOM/XOP: limits, errors, Content-Type parsing and a streaming base64 decoder.

Standards: RFC 2045 §5.1 (Content-Type syntax), §6.8 (base64), RFC 2387 (multipart/related
parameters), RFC 3902 (``action`` parameter of application/soap+xml), SOAP 1.2 MTOM §4.3.
"""

from __future__ import annotations

import binascii
import re

from gateway.soap import ns

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


class BodyTooLarge(MultipartError):
    """A size limit was exceeded: the whole body, the root part, or the parts before the root."""


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
