"""A deliberately independent, raw SOAP 1.2 client for black-box tests (http.client + lxml)."""

from __future__ import annotations

import http.client
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from lxml import etree

SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
WSA = "http://www.w3.org/2005/08/addressing"
XOP = "http://www.w3.org/2004/08/xop/include"


@dataclass
class RawResponse:
    status: int
    content_type: str
    body: bytes

    def envelope(self) -> etree._Element:
        data = self.body
        if self.content_type.startswith("multipart/related"):
            data = root_part(self)
        return etree.fromstring(data)

    def header(self, local: str) -> str | None:
        found = self.envelope().find(f"{{{SOAP12}}}Header/{{{WSA}}}{local}")
        return None if found is None else found.text

    def fault_codes(self) -> list[str]:
        env = self.envelope()
        values = env.findall(f".//{{{SOAP12}}}Fault//{{{SOAP12}}}Value")
        return [v.text for v in values]


def root_part(response: RawResponse) -> bytes:
    boundary = response.content_type.split("boundary=")[1].split(";")[0].strip('"')
    first = response.body.split(b"--" + boundary.encode())[1]
    return first.split(b"\r\n\r\n", 1)[1].rsplit(b"\r\n", 1)[0]


def envelope(
    body: str,
    *,
    action: str | None,
    message_id: str | None = "auto",
    to: str | None = None,
    extra_headers: str = "",
    reply_to: str | None = None,
) -> bytes:
    """A SOAP 1.2 envelope with WS-Addressing headers, as text a peer would send."""
    if message_id == "auto":
        message_id = f"urn:uuid:{uuid.uuid4()}"
    headers = []
    if action is not None:
        headers.append(f'<wsa:Action env:mustUnderstand="true">{action}</wsa:Action>')
    if message_id is not None:
        headers.append(f"<wsa:MessageID>{message_id}</wsa:MessageID>")
    if reply_to is not None:
        headers.append(f"<wsa:ReplyTo><wsa:Address>{reply_to}</wsa:Address></wsa:ReplyTo>")
    if to is not None:
        headers.append(f'<wsa:To env:mustUnderstand="true">{to}</wsa:To>')
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><env:Envelope xmlns:env="{SOAP12}" '
        f'xmlns:wsa="{WSA}"><env:Header>{"".join(headers)}{extra_headers}</env:Header>'
        f"<env:Body>{body}</env:Body></env:Envelope>"
    ).encode()


def post(
    host: str,
    port: int,
    path: str,
    data: bytes | Iterable[bytes],
    *,
    content_type: str = "application/soap+xml; charset=UTF-8",
    content_length: int | None = None,
    timeout: float = 60,
) -> RawResponse:
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        headers = {"Content-Type": content_type}
        if isinstance(data, bytes):
            headers["Content-Length"] = str(len(data))
        elif content_length is not None:
            headers["Content-Length"] = str(content_length)
        conn.request("POST", path, body=data, headers=headers)
        response = conn.getresponse()
        return RawResponse(response.status, response.getheader("Content-Type", ""), response.read())
    finally:
        conn.close()


def get(host: str, port: int, path: str, timeout: float = 30) -> RawResponse:
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return RawResponse(response.status, response.getheader("Content-Type", ""), response.read())
    finally:
        conn.close()


def mtom_body(
    root_xml: bytes,
    parts: list[tuple[str, bytes]],
    *,
    boundary: str = "MIMEBoundary_x",
    action: str | None = None,
) -> tuple[str, bytes]:
    """Package an envelope and binary parts as MTOM by hand (SOAP MTOM §4.3)."""
    start_info = "application/soap+xml" + (f'; action=\\"{action}\\"' if action else "")
    content_type = (
        f'multipart/related; boundary="{boundary}"; type="application/xop+xml"; '
        f'start="<root@test>"; start-info="{start_info}"'
    )
    out = [
        f"--{boundary}\r\nContent-Type: application/xop+xml; charset=UTF-8; "
        f'type="application/soap+xml"\r\nContent-Transfer-Encoding: 8bit\r\n'
        f"Content-ID: <root@test>\r\n\r\n".encode(),
        root_xml,
    ]
    for cid, data in parts:
        out.append(
            f"\r\n--{boundary}\r\nContent-Type: application/octet-stream\r\n"
            f"Content-Transfer-Encoding: binary\r\nContent-ID: <{cid}>\r\n\r\n".encode()
        )
        out.append(data)
    out.append(f"\r\n--{boundary}--\r\n".encode())
    return content_type, b"".join(out)
