"""Reading a SOAP request in two steps, so that a caller can be refused before its body is read.

:func:`read_head` reads the request up to its SOAP envelope (the whole body of a plain SOAP
message; the root part of an MTOM/XOP package, which comes first), parses the envelope and
checks its WS-Addressing headers: after it, the transaction (wsa:Action) is known. The boundary
then runs the access check, and only for an authorised caller :func:`read_rest` reads the
attachments (spooling large ones) and turns inline base64 into attachments.

Size limits are enforced while streaming, with or without a Content-Length: an announced
length over ``max_request_bytes`` is refused before anything is read; a chunked body is
counted as it arrives; the envelope is bounded by ``max_envelope_bytes``; parts an MTOM peer
puts before the root count against that same bound. Every limit answers an env:Sender fault
with HTTP 413 (:func:`gateway.soap.fault.too_large`). A failure while reading the body from
the network (peer gone, bad chunked coding) is a Sender fault too.

Standards: SOAP 1.2 Part 2 §7 (HTTP binding; §7.1.4 the ``action`` media type parameter),
WS-Addressing 1.0 SOAP Binding §6, XOP 1.0 §4.1 and SOAP MTOM §4.3 (packaging), RFC 2387 §3.2
(the root part), ITI TF-2 Appendix V §V.3.2.1 (wsa:Action and wsa:MessageID required).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol, TypeVar

from lxml import etree

from gateway.soap import envelope as env
from gateway.soap import fault as faults
from gateway.soap import mtom, ns
from gateway.soap.message import Addressing, Attachment, SoapRequest
from gateway.soap.safexml import UnsafeXMLError, parse_bytes
from gateway.soap.transactions import Transaction


class Endpoint(Protocol):
    """What intake needs of ``dispatch.Endpoint`` (a Protocol: intake does not import dispatch)."""

    @property
    def path(self) -> str: ...
    @property
    def known(self) -> Mapping[str, Transaction]:  # wsa:Action -> transaction
        ...
    @property
    def handlers(self) -> Mapping[str, object]:  # wsa:Action -> bound handler
        ...


T = TypeVar("T")
READ_CHUNK = 64 * 1024
# Twice the largest document this gateway is tested with (1 GiB through ITI-41 and RAD-69);
# config.SoapSettings.max_request_bytes has the same default (see config/gateway.toml).
DEFAULT_MAX_REQUEST_BYTES = 2 * 1024 * 1024 * 1024


@dataclass(slots=True, kw_only=True)
class Limits:
    """Safety limits for incoming messages (config section ``soap``)."""

    spool_dir: Path
    max_envelope_bytes: int = 32 * 1024 * 1024
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES  # 0 = no limit
    max_xml_depth: int = 256
    memory_threshold: int = 1024 * 1024


@dataclass(slots=True, kw_only=True)
class RequestHead:
    """A request read up to its SOAP envelope: what the access check needs, nothing more."""

    transaction: Transaction
    addressing: Addressing
    body: etree._Element
    headers: list[etree._Element]
    reader: mtom.MultipartReader | None  # the rest of an MTOM package, not read yet

    def discard(self) -> None:
        """Remove the temporary files of parts read so far (a request refused half-way)."""
        if self.reader is not None:
            self.reader.discard()


class _BodyUnreadable(Exception):
    """The request body could not be read from the network (a foreign error, translated)."""


class _RequestBody:
    """``wsgi.input`` whose network and transfer-coding errors become :class:`_BodyUnreadable`."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream

    def read(self, size: int, /) -> bytes:
        try:
            return self._stream.read(size)
        except (OSError, ValueError) as exc:  # socket error or timeout; bad chunked coding
            raise _BodyUnreadable(str(exc) or type(exc).__name__) from exc


def read_head(
    environ: dict[str, Any], endpoint: Endpoint, limits: Limits, state: dict[str, Any]
) -> RequestHead:
    """Read the envelope and check its addressing; the attachments are not read yet.

    ``state`` receives ``message_id``, ``action`` and ``transaction`` as soon as they are
    known (for the fault answer and the access log).

    Raises:
        SoapFault: a media type, size, XML, envelope or WS-Addressing problem.
    """
    content_type = environ.get("CONTENT_TYPE", "")
    media, params = _media_type(content_type)
    length = _content_length(environ)
    if limits.max_request_bytes and length is not None and length > limits.max_request_bytes:
        raise faults.too_large(
            f"Request of {length} bytes exceeds the limit of {limits.max_request_bytes}"
        )
    stream = _RequestBody(environ["wsgi.input"])
    reader: mtom.MultipartReader | None = None
    if media == "multipart/related":
        reader = _open_multipart(stream, content_type, params, length, limits)
        root_bytes = reader.root
        http_action = mtom.mime_soap_action(content_type, reader.root_content_type)
    elif media in {ns.SOAP12_MEDIA_TYPE, "text/xml", "application/xml"}:
        root_bytes = _guarded(lambda: _read_limited(stream, length, limits.max_envelope_bytes))
        http_action = params.get("action")
    else:
        raise faults.SoapFault(
            code=faults.SENDER,
            reason=f"Unsupported media type {media!r}: "
            "send application/soap+xml or MTOM multipart/related",
            action=ns.WSA_SOAP_FAULT_ACTION,
            status=415,
        )
    try:
        return _check_envelope(root_bytes, http_action, endpoint, limits, state, reader)
    except BaseException:
        if reader is not None:
            reader.discard()
        raise


def read_rest(
    head: RequestHead, environ: dict[str, Any], endpoint: Endpoint, limits: Limits
) -> SoapRequest:
    """Read the attachments of an authorised request; return the request a handler gets.

    Raises:
        SoapFault: a malformed package, a size limit, bad binary content.
    """
    attachments: dict[str, Attachment] = {}
    try:
        if head.reader is not None:
            attachments = _guarded(head.reader.read_attachments)
        _normalise_binary(head.body, head.transaction, attachments, limits)
    except BaseException:
        for attachment in attachments.values():
            attachment.discard()
        head.discard()
        raise
    return SoapRequest(
        path=endpoint.path,
        addressing=head.addressing,
        body=head.body,
        headers=head.headers,
        attachments=attachments,
        mtom=head.reader is not None,
        remote_addr=environ.get("REMOTE_ADDR"),
    )


def _media_type(content_type: str) -> tuple[str, dict[str, str]]:
    try:
        return mtom.parse_content_type(content_type)
    except mtom.MultipartError as exc:  # missing or unparseable Content-Type
        raise faults.SoapFault(
            code=faults.SENDER,
            reason=f"Missing or malformed Content-Type {content_type!r}: {exc}",
            action=ns.WSA_SOAP_FAULT_ACTION,
            status=415,
        ) from exc


def _open_multipart(
    stream: _RequestBody,
    content_type: str,
    params: dict[str, str],
    length: int | None,
    limits: Limits,
) -> mtom.MultipartReader:
    if params.get("type", "").lower() != ns.XOP_MEDIA_TYPE:
        raise faults.sender_fault(
            f'multipart/related requests must be MTOM/XOP (type="{ns.XOP_MEDIA_TYPE}")'
        )
    limits.spool_dir.mkdir(parents=True, exist_ok=True)
    return _guarded(
        lambda: mtom.open_multipart(
            stream,
            content_type,
            content_length=length,
            spool_dir=limits.spool_dir,
            memory_threshold=limits.memory_threshold,
            max_root_bytes=limits.max_envelope_bytes,
            max_total_bytes=limits.max_request_bytes,
            max_before_root=limits.max_envelope_bytes,
        )
    )


def _guarded(read: Callable[[], T]) -> T:
    """Run a body read, translating its failures into the Sender faults they stand for."""
    try:
        result = read()
    except mtom.BodyTooLarge as exc:
        raise faults.too_large(f"Request too large: {exc}") from exc
    except mtom.MultipartError as exc:
        raise faults.sender_fault(f"Malformed MTOM/XOP package: {exc}") from exc
    except _BodyUnreadable as exc:
        raise faults.sender_fault(f"The request body could not be read: {exc}") from exc
    return result


def _check_envelope(
    root_bytes: bytes,
    http_action: str | None,
    endpoint: Endpoint,
    limits: Limits,
    state: dict[str, Any],
    reader: mtom.MultipartReader | None,
) -> RequestHead:
    try:
        root = parse_bytes(
            root_bytes, max_bytes=limits.max_envelope_bytes, max_depth=limits.max_xml_depth
        )
    except UnsafeXMLError as exc:
        raise faults.sender_fault(f"The message is not acceptable XML: {exc}") from exc
    parsed = env.parse_envelope(root)
    addressing = parsed.addressing
    state["message_id"], state["action"] = addressing.message_id, addressing.action
    _check_addressing(endpoint, addressing, http_action)
    transaction = endpoint.known[addressing.action or ""]
    state["transaction"] = transaction.name
    if parsed.body.tag != transaction.request_qname:
        raise faults.sender_fault(
            f"{transaction.name} expects body element {transaction.request_qname}, "
            f"got {parsed.body.tag}"
        )
    return RequestHead(
        transaction=transaction,
        addressing=addressing,
        body=parsed.body,
        headers=parsed.headers,
        reader=reader,
    )


def _check_addressing(endpoint: Endpoint, addressing: Addressing, http_action: str | None) -> None:
    # ITI TF-2 Appendix V §V.3.2.1: wsa:Action and wsa:MessageID are required on every request.
    if not addressing.action:
        raise faults.wsa_header_required("Action")
    if not addressing.message_id:
        raise faults.wsa_header_required("MessageID")
    if http_action and http_action != addressing.action:
        raise faults.wsa_invalid_header(
            "Action",
            f"HTTP action {http_action!r} does not match wsa:Action {addressing.action!r}",
            faults.WSA_ACTION_MISMATCH,
        )
    env.check_reply_to(addressing)
    if addressing.action not in endpoint.known:
        raise faults.wsa_action_not_supported(addressing.action)
    if addressing.action not in endpoint.handlers:
        transaction = endpoint.known[addressing.action]
        raise faults.wsa_action_not_supported(
            addressing.action,
            f"{transaction.name} {transaction.title} is not available at {endpoint.path} "
            "(its actor is not enabled or not implemented in this version)",
        )


def _normalise_binary(
    body: etree._Element,
    transaction: Transaction,
    attachments: dict[str, Attachment],
    limits: Limits,
) -> None:
    try:
        mtom.xop_to_inline_check(body, attachments)
        inline = mtom.inline_to_attachments(
            body,
            transaction.binary_qnames,
            spool_dir=limits.spool_dir,
            memory_threshold=limits.memory_threshold,
        )
    except (mtom.MultipartError, mtom.InlineBinaryError) as exc:
        raise faults.sender_fault(f"Bad binary content: {exc}") from exc
    attachments.update(inline)


def _content_length(environ: dict[str, Any]) -> int | None:
    raw = environ.get("CONTENT_LENGTH") or ""
    if not raw.strip():
        return None
    try:
        value = int(raw)
    except ValueError as exc:
        raise faults.sender_fault(f"Invalid Content-Length {raw!r}") from exc
    if value < 0:
        raise faults.sender_fault(f"Invalid Content-Length {raw!r}")
    return value


def _read_limited(stream: _RequestBody, length: int | None, limit: int) -> bytes:
    """Read a plain SOAP body, refusing more than ``limit`` bytes without reading them all."""
    if length is not None and length > limit:
        raise mtom.BodyTooLarge(f"SOAP envelope of {length} bytes exceeds the limit of {limit}")
    buffer = bytearray()
    remaining = length
    while remaining is None or remaining > 0:
        want = READ_CHUNK if remaining is None else min(READ_CHUNK, remaining)
        chunk = stream.read(want)
        if not chunk:
            break
        buffer += chunk
        if remaining is not None:
            remaining -= len(chunk)
        if len(buffer) > limit:
            raise mtom.BodyTooLarge(f"SOAP envelope exceeds the limit of {limit} bytes")
    if remaining:
        raise faults.sender_fault("The request body ended before its Content-Length")
    return bytes(buffer)
