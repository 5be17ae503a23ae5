"""A gateway process with test-only endpoints, for tests that need a separate server process.

Run as ``python -m tests.support.echo_gateway``; settings come from ``XDSI_*`` variables as for
``xdsi-gateway serve``. Prints one JSON line ``{"port": N, "pid": P}`` once listening, then serves
until SIGINT/SIGTERM exactly like ``serve`` does.

Endpoints (besides the standard ones):
- ``/test/echo``  action ``urn:test:Echo``: answers every xdsb:Document of the request with the same
  bytes as MTOM parts, plus a digest of what the handler saw.
- ``/test/slow``  action ``urn:test:Slow``: sleeps for the number of seconds in the body, then
  answers
  (touching the file named by ``XDSI_TEST_SLOW_MARKER`` first, when set).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from lxml import etree

from gateway.app import Gateway
from gateway.cli import run_until_signalled
from gateway.config import load_settings
from gateway.logsetup import configure_logging
from gateway.soap import ns
from gateway.soap.dispatch import Context, SoapApplication
from gateway.soap.message import SoapRequest, SoapResponse, xop_include
from gateway.soap.transactions import Transaction

TEST_NS = "urn:test"
DOCUMENT = ns.qname(ns.XDSB, "Document")

ECHO = Transaction(
    name="TEST-ECHO",
    title="Echo",
    path="/test/echo",
    action="urn:test:Echo",
    response_action="urn:test:EchoResponse",
    request_qname=ns.qname(TEST_NS, "Echo"),
    response_qname=ns.qname(TEST_NS, "EchoResponse"),
    mtom=True,
    binary_qnames=(DOCUMENT,),
    response_binary_qnames=(DOCUMENT,),
    operation="Echo",
    tf="test only",
)
SLOW = Transaction(
    name="TEST-SLOW",
    title="Slow",
    path="/test/slow",
    action="urn:test:Slow",
    response_action="urn:test:SlowResponse",
    request_qname=ns.qname(TEST_NS, "Slow"),
    response_qname=ns.qname(TEST_NS, "SlowResponse"),
    mtom=False,
    operation="Slow",
    tf="test only",
)


def echo(request: SoapRequest, ctx: Context) -> SoapResponse:
    """Return every document of the request as an MTOM part, and what the handler saw."""
    body = etree.Element(ECHO.response_qname, nsmap={"t": TEST_NS, "xdsb": ns.XDSB})
    attachments = []
    for element in request.body.iter(DOCUMENT):
        attachment = request.attachment_for(element)
        out = etree.SubElement(body, DOCUMENT, id=element.get("id", ""))
        out.append(xop_include(attachment.content_id))
        attachments.append(attachment)
        seen = etree.SubElement(body, ns.qname(TEST_NS, "Seen"))
        seen.set("id", element.get("id", ""))
        seen.set("sha1", attachment.digest())
        seen.set("size", str(attachment.size))
    etree.SubElement(body, ns.qname(TEST_NS, "Mtom")).text = str(request.mtom).lower()
    etree.SubElement(body, ns.qname(TEST_NS, "Body")).text = _shape(request.body)
    return SoapResponse(body=body, attachments=attachments)


def _shape(element: etree._Element) -> str:
    """The request body as the handler sees it, Content-IDs (which differ by packaging) masked."""
    copy = etree.fromstring(etree.tostring(element))
    for include in copy.iter(ns.qname(ns.XOP, "Include")):
        include.set("href", "cid:*")
    return etree.tostring(copy, method="c14n").decode()


def slow(request: SoapRequest, ctx: Context) -> SoapResponse:
    seconds = float(request.body.text or "1")
    marker = os.environ.get("XDSI_TEST_SLOW_MARKER")
    if marker:  # lets a test see that the request is in flight
        Path(marker).touch()
    time.sleep(seconds)
    body = etree.Element(SLOW.response_qname, nsmap={"t": TEST_NS})
    body.text = f"slept {seconds}"
    return SoapResponse(body=body)


def configure(app: SoapApplication) -> None:
    app.endpoint(ECHO.path).bind(ECHO, echo)
    app.endpoint(SLOW.path).bind(SLOW, slow)


def main() -> int:
    settings = load_settings()
    configure_logging(settings.log.level, settings.log.format)
    gateway = Gateway(settings, configure=configure)
    host, port = gateway.start()
    print(json.dumps({"port": port, "host": host}), flush=True)
    return run_until_signalled(gateway)


if __name__ == "__main__":
    sys.exit(main())
