"""HTTP under the SOAP client: MTOM/XOP requests streamed out, responses streamed in, and errors.

:class:`MtomTransport` is the zeep transport :func:`gateway.soap.client.make_client` installs. It
sends an envelope as plain ``application/soap+xml`` or as an MTOM/XOP ``multipart/related``
package whose file-backed attachments are streamed in chunks with a Content-Length computed up
front, and it reads answers with ``stream=True``: MTOM responses go through
:func:`gateway.soap.mtom.read_multipart`, which spools large parts to files, instead of zeep's
in-memory MessagePack.

Errors (what a caller of ``gateway.soap.client.call`` catches; actors translate them into their
XDS errors, e.g. XDSRegistryNotAvailable, where they enter)::

    SoapClientError
     ├── SoapTransportError   no SOAP answer: refused, reset, timeout, TLS, HTTP error page
     ├── SoapProtocolError    an answer, but no usable SOAP 1.2 message (XML, MTOM, body element)
     └── SoapFaultError       a SOAP fault: code, subcodes, reason, detail

Standards: SOAP 1.2 Part 2 §7 (HTTP binding; §7.1.4 the ``action`` media type parameter, RFC 3902);
SOAP MTOM (W3C REC 2005-01-25) §4.3; XOP 1.0 §4.1; RFC 2387 (multipart/related).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import requests
import zeep
from lxml import etree

from gateway.soap import mtom, ns
from gateway.soap.message import Attachment
from gateway.soap.safexml import UnsafeXMLError, parse_bytes

log = logging.getLogger("gateway.soap.client")


class SoapClientError(Exception):
    """A call to a peer failed; the subclass says how."""


class SoapTransportError(SoapClientError):
    """No SOAP answer: connection refused or reset, timeout, TLS failure, or an HTTP error page."""


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


class _SizedBody:
    """An iterable body of known length: requests then sends Content-Length, not chunked."""

    def __init__(self, chunks: Iterable[bytes], length: int) -> None:
        self._chunks, self._length = chunks, length

    def __len__(self) -> int:
        return self._length

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._chunks)


class MtomTransport(zeep.Transport):
    """A zeep transport that sends MTOM/XOP packages and streams responses.

    ``post_message`` is what :func:`call` uses; zeep's own ``post_xml`` path keeps working (plain
    SOAP, no attachments). Standard: SOAP MTOM §4.3 (HTTP), XOP 1.0 §4 (package).
    """

    def __init__(
        self,
        *,
        session: requests.Session | None,
        timeout: float,
        verify: bool | str,
        cert: tuple[str, str] | None,
        spool_dir: Path,
        memory_threshold: int,
        max_envelope_bytes: int,
    ) -> None:
        super().__init__(timeout=timeout, operation_timeout=timeout, session=session)
        self.verify, self.cert = verify, cert
        self.spool_dir = spool_dir
        self.memory_threshold = memory_threshold
        self.max_envelope_bytes = max_envelope_bytes

    def post(self, address: str, message: Any, headers: dict[str, str]) -> requests.Response:
        """POST a request body (bytes or a sized iterable) and return the streamed response.

        Raises:
            SoapTransportError: connection, TLS or timeout failure.
        """
        try:
            return self.session.post(
                address,
                data=message,
                headers=headers,
                stream=True,
                timeout=self.operation_timeout,
                verify=self.verify,
                cert=self.cert,
            )
        except requests.RequestException as exc:
            raise SoapTransportError(f"POST {address} failed: {exc}") from exc

    def post_message(
        self,
        address: str,
        envelope: etree._Element,
        *,
        soap_action: str,
        attachments: Sequence[Attachment] = (),
        mtom_package: bool = False,
    ) -> requests.Response:
        """Send an envelope, as an MTOM/XOP package when ``mtom_package`` or there are attachments.

        Standard: SOAP 1.2 Part 2 §7.1.4 (action parameter), SOAP MTOM §4.3, RFC 2387.
        """
        xml = etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")
        if mtom_package or attachments:
            content_type, length, chunks = mtom.build_mtom(
                xml, list(attachments), soap_action=soap_action
            )
            body: Any = _SizedBody(chunks, length)
        else:
            content_type = f'{ns.SOAP12_MEDIA_TYPE}; charset=UTF-8; action="{soap_action}"'
            body = xml
        log.debug("POST %s action=%s (%s)", address, soap_action, content_type.split(";")[0])
        return self.post(address, body, {"Content-Type": content_type})

    def read_response(
        self, response: requests.Response
    ) -> tuple[etree._Element, dict[str, Attachment]]:
        """Read a (possibly MTOM) response: the parsed envelope and its attachments, spooled.

        Raises:
            SoapTransportError: an HTTP error without a SOAP envelope.
            SoapProtocolError: malformed MTOM package or XML.
        """
        with response:
            media, _params = mtom.parse_content_type(response.headers.get("Content-Type", ""))
            attachments: dict[str, Attachment] = {}
            try:
                if media == "multipart/related":
                    root_bytes, attachments = self._read_multipart(response)
                else:
                    root_bytes = self._read_plain(response)
                return self._parse(root_bytes, response), attachments
            except BaseException:
                for attachment in attachments.values():
                    attachment.discard()
                raise

    def _read_multipart(self, response: requests.Response) -> tuple[bytes, dict[str, Attachment]]:
        raw = response.raw
        raw.decode_content = True  # undo any Content-Encoding; the MIME parser wants the package
        encoded = bool(response.headers.get("Content-Encoding"))
        length = response.headers.get("Content-Length")
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        try:
            message = mtom.read_multipart(
                raw,
                response.headers["Content-Type"],
                content_length=int(length) if length and not encoded else None,
                spool_dir=self.spool_dir,
                memory_threshold=self.memory_threshold,
                max_root_bytes=self.max_envelope_bytes,
            )
        except mtom.MultipartError as exc:
            raise self._http_error(response) or SoapProtocolError(
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
            raise self._http_error(response) or SoapProtocolError(
                f"Bad response XML: {exc}"
            ) from exc
        if root.tag not in (ns.qname(ns.SOAP12, "Envelope"), ns.qname(ns.SOAP11, "Envelope")):
            raise self._http_error(response) or SoapProtocolError(
                f"Response is {root.tag}, not a SOAP envelope"
            )
        return root

    @staticmethod
    def _http_error(response: requests.Response) -> SoapTransportError | None:
        if response.status_code < 300:
            return None
        return SoapTransportError(
            f"HTTP {response.status_code} {response.reason} from {response.url}"
        )
