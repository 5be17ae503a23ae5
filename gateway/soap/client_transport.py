"""HTTP under the SOAP client: requests sent, answers read, and every network failure mapped once.

:class:`HttpTransport` posts an envelope as plain ``application/soap+xml`` or as an MTOM/XOP
``multipart/related`` package whose file-backed attachments are streamed in chunks with a
Content-Length computed up front, and reads the answer with ``stream=True``: MTOM answers go
through :func:`gateway.soap.mtom.read_multipart`, which spools large parts to files.

Errors (what a caller of :meth:`gateway.soap.client.SoapClient.call` catches; actors translate them
into their own errors where they enter, e.g. XDSRegistryNotAvailable)::

    SoapClientError               a call to a peer failed
     ├── SoapTransportError       no complete answer: transient, the same call may succeed later
     │    └── SoapConnectError    ... and the request never reached the peer (refused, DNS,
     │                            connect timeout, TLS handshake): it certainly had no effect
     ├── SoapProtocolError        an answer, but no usable SOAP 1.2 message (XML, MTOM, body)
     └── SoapFaultError           a SOAP fault: code, subcodes, reason, detail

A :class:`SoapTransportError` that is not a :class:`SoapConnectError` leaves the outcome unknown:
the peer may have acted on the request and lost only its answer (a registration may exist).

:func:`map_transport_errors` is the single place where ``requests``, ``urllib3`` and socket
failures become these exceptions (``raise ... from exc``). It wraps the POST *and* every read of
the answer's body, including the reads that stream and spool MTOM parts, because a peer can send
its headers and then drop the connection (httpx does the same with ``map_httpcore_exceptions``).

Standards: SOAP 1.2 Part 2 §7 (HTTP binding; §7.1.4 the ``action`` media type parameter, RFC 3902);
SOAP MTOM (W3C REC 2005-01-25) §4.3; XOP 1.0 §4.1; RFC 2387 (multipart/related).
"""

from __future__ import annotations

import http.client
import logging
import ssl
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, cast

import requests
import urllib3.exceptions
from lxml import etree

from gateway import netcause
from gateway.soap import mtom, ns
from gateway.soap.message import Attachment
from gateway.soap.safexml import UnsafeXMLError, parse_bytes

log = logging.getLogger("gateway.soap.client")


class SoapClientError(Exception):
    """A call to a peer failed; the subclass says how."""


class SoapTransportError(SoapClientError):
    """No complete SOAP answer: reset, timeout, a body cut short, TLS failure, an HTTP error page.

    Transient: the same call may succeed later. Unless it is a :class:`SoapConnectError`, the
    peer may have acted on the request (only its answer was lost). ``kind`` is the network
    cause (``gateway.netcause``: refused, name, tls, timeout ...), "" for an HTTP error page.
    """

    def __init__(self, message: str, *, kind: str = "") -> None:
        super().__init__(message)
        self.kind = kind


class SoapConnectError(SoapTransportError):
    """The request never reached the peer: connection refused, name not resolved, connect
    timeout or TLS handshake failure. The call had no effect at the peer."""


class SoapProtocolError(SoapClientError):
    """The peer answered, but not with a usable SOAP 1.2 message (bad XML, MTOM, or body)."""


class SoapFaultError(SoapClientError):
    """The peer answered with a SOAP fault.

    ``code`` and ``subcodes`` are Clark-notation QNames (``{http://www.w3.org/2003/05/soap-envelope}
    Sender``), ``reason`` the first env:Reason/env:Text, ``detail`` the env:Detail element if any.
    Standard: SOAP 1.2 Part 1 §5.4 (SOAP 1.1 §4.4 for a 1.1 peer's fault).
    """

    def __init__(
        self,
        *,
        code: str,
        reason: str,
        subcodes: Sequence[str] = (),
        detail: etree._Element | None = None,
        http_status: int | None = None,
    ) -> None:
        super().__init__(f"SOAP fault {code}{''.join(' / ' + s for s in subcodes)}: {reason}")
        self.code = code
        self.subcodes = tuple(subcodes)
        self.reason = reason
        self.detail = detail
        self.http_status = http_status


# Failures of the network below requests: urllib3 wraps most socket errors, but a raw read of a
# streamed body can still surface http.client and socket exceptions. Local disk errors (a full
# spool folder) are other OSErrors and are deliberately not caught here.
_NETWORK_ERRORS: tuple[type[BaseException], ...] = (
    requests.RequestException,
    urllib3.exceptions.HTTPError,
    http.client.HTTPException,
    ConnectionError,
    TimeoutError,
    ssl.SSLError,
)


def _never_sent(exc: BaseException) -> bool:
    """True when ``exc`` (from the POST) shows the request never left this node.

    requests wraps urllib3's MaxRetryError, whose ``reason`` is the failure of the connection
    (NewConnectionError covers refused and unresolved names; ConnectTimeoutError the connect
    timeout); a TLS handshake failure comes before any request byte is written.
    """
    if isinstance(exc, requests.exceptions.ConnectTimeout | requests.exceptions.SSLError):
        return True
    reason = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)
    return isinstance(
        reason, urllib3.exceptions.NewConnectionError | urllib3.exceptions.ConnectTimeoutError
    )


@contextmanager
def map_transport_errors(address: str, *, reading: bool) -> Iterator[None]:
    """Turn network failures inside the block into :class:`SoapTransportError` (``from exc``).

    ``reading``: the block reads an answer's body (the request was delivered, so the outcome is
    unknown); otherwise it sends the request, and failures that happened before anything was
    sent become :class:`SoapConnectError`. Our own exceptions pass unchanged.
    """
    try:
        yield
    except SoapClientError:
        raise
    except _NETWORK_ERRORS as exc:
        # the message is one plain line naming the address and the likely cause
        # (gateway.netcause); the library's own text stays in __cause__ for DEBUG logs
        never_sent = not reading and _never_sent(exc)
        problem = netcause.diagnose(exc, connecting=never_sent)
        plain = netcause.describe(problem, address)
        if never_sent:
            raise SoapConnectError(plain, kind=problem.kind) from exc
        if problem.kind in (netcause.OTHER, netcause.TLS):
            verb = "the answer from {} was cut off" if reading else "POST {} failed"
            plain = f"{verb.format(address)}: {_describe(exc)}"
        raise SoapTransportError(plain, kind=problem.kind) from exc


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class _SizedBody:
    """An iterable body of known length: requests then sends Content-Length, not chunked."""

    def __init__(self, chunks: Iterable[bytes], length: int) -> None:
        self._chunks, self._length = chunks, length

    def __len__(self) -> int:
        return self._length

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._chunks)


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpTransport:
    """How one client talks HTTP: timeout, TLS settings and the limits of what it reads.

    Holds no connection and no session (the caller passes the session of the call), so one
    instance serves any number of threads. Standard: SOAP MTOM §4.3 (HTTP), XOP 1.0 §4.
    """

    timeout: float
    verify: bool | str
    cert: tuple[str, str] | None
    spool_dir: Path
    memory_threshold: int
    max_envelope_bytes: int

    def post(
        self,
        session: requests.Session,
        address: str,
        envelope: etree._Element,
        *,
        soap_action: str,
        attachments: Sequence[Attachment] = (),
        mtom_package: bool = False,
    ) -> requests.Response:
        """Send an envelope, as an MTOM/XOP package when ``mtom_package`` or there are
        attachments; return the response with its body not read yet.

        Standard: SOAP 1.2 Part 2 §7.1.4 (action parameter), SOAP MTOM §4.3, RFC 2387.
        Raises:
            SoapConnectError: the request never reached the peer.
            SoapTransportError: the connection failed after that, or timed out.
        """
        xml = etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")
        body: Any
        if mtom_package or attachments:
            content_type, length, chunks = mtom.build_mtom(
                xml, list(attachments), soap_action=soap_action
            )
            body = _SizedBody(chunks, length)
        else:
            content_type = f'{ns.SOAP12_MEDIA_TYPE}; charset=UTF-8; action="{soap_action}"'
            body = xml
        log.debug("POST %s action=%s (%s)", address, soap_action, content_type.split(";")[0])
        with map_transport_errors(address, reading=False):
            return session.post(
                address,
                data=body,
                headers={"Content-Type": content_type},
                stream=True,
                timeout=self.timeout,
                verify=self.verify,
                cert=self.cert,
            )

    def read_response(
        self, response: requests.Response
    ) -> tuple[etree._Element, dict[str, Attachment]]:
        """Read a (possibly MTOM) answer: the parsed envelope and its attachments, spooled.

        The response is closed afterwards; on any failure no spooled part is left behind.
        Raises:
            SoapTransportError: the body was cut off, or an HTTP error without a SOAP envelope.
            SoapProtocolError: malformed MTOM package or XML.
        """
        with response, map_transport_errors(response.url or "the peer", reading=True):
            if _media_type(response) == "multipart/related":
                root_bytes, attachments = self._read_multipart(response)
            else:
                root_bytes, attachments = self._read_plain(response), {}
            try:
                return self._parse(root_bytes, response), attachments
            except BaseException:
                for attachment in attachments.values():
                    attachment.discard()
                raise

    def _read_multipart(self, response: requests.Response) -> tuple[bytes, dict[str, Attachment]]:
        raw = response.raw
        raw.decode_content = True  # undo any Content-Encoding; the MIME parser wants the package
        stream = cast(BinaryIO, raw)  # urllib3's HTTPResponse is a readable binary stream
        encoded = bool(response.headers.get("Content-Encoding"))
        length = response.headers.get("Content-Length")
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        try:
            message = mtom.read_multipart(
                stream,
                response.headers["Content-Type"],
                content_length=int(length) if length and not encoded else None,
                spool_dir=self.spool_dir,
                memory_threshold=self.memory_threshold,
                max_root_bytes=self.max_envelope_bytes,
            )
        except mtom.MultipartError as exc:
            raise _http_error(response) or SoapProtocolError(
                f"Malformed MTOM response: {exc}"
            ) from exc
        return message.root, message.attachments

    def _read_plain(self, response: requests.Response) -> bytes:
        data = bytearray()
        for block in response.iter_content(64 * 1024):
            data += block
            if len(data) > self.max_envelope_bytes:
                raise SoapProtocolError(f"Response exceeds {self.max_envelope_bytes} bytes")
        return bytes(data)

    def _parse(self, root_bytes: bytes, response: requests.Response) -> etree._Element:
        try:
            root = parse_bytes(root_bytes, max_bytes=self.max_envelope_bytes)
        except UnsafeXMLError as exc:
            raise _http_error(response) or SoapProtocolError(f"Bad response XML: {exc}") from exc
        if root.tag not in (ns.qname(ns.SOAP12, "Envelope"), ns.qname(ns.SOAP11, "Envelope")):
            raise _http_error(response) or SoapProtocolError(
                f"Response is {root.tag}, not a SOAP envelope"
            )
        return root


def _media_type(response: requests.Response) -> str:
    """The answer's media type; "" when it has no usable Content-Type (then read as plain
    XML, and judged by what the body holds)."""
    try:
        return mtom.parse_content_type(response.headers.get("Content-Type", ""))[0]
    except mtom.MultipartError:
        return ""


def _http_error(response: requests.Response) -> SoapTransportError | None:
    """An HTTP error status without a SOAP envelope (a proxy's or server's error page)."""
    status = response.status_code
    if status < 300:
        return None
    # 4xx (but timeout and rate limit) will be the same answer again: a wrong path, a proxy
    lasting = 400 <= status < 500 and status not in (408, 429)
    return SoapTransportError(
        f"HTTP {status} {response.reason} from {response.url}",
        kind=netcause.HTTP_CLIENT if lasting else "",
    )
