"""The NIST runner end to end over real sockets, against a tiny fake registry and MLLP listener.

The fake registry is a WSGI app (wsgiref on 127.0.0.1:0) answering ITI-42 with a canned
RegistryResponse and ITI-18 with a canned AdhocQueryResponse; the fake ITI-8 listener acks every
message with MSA-1 = AA. Also covers the runner's MTOM codec and the raw-body rewriting.
"""

from __future__ import annotations

import io
import socketserver
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
from lxml import etree

from tests.conformance.nist import catalog, feed, ns, schema, soap
from tests.conformance.nist.__main__ import main
from tests.conformance.nist.context import Context
from tests.conformance.nist.execution import Endpoints, RunConfig
from tests.conformance.nist.raw import rewrite_identifiers
from tests.conformance.nist.runner import Runner
from tests.conformance.nist.xmlutil import parse_xml, text, walk

pytestmark = pytest.mark.skipif(
    not catalog.TESTKIT.is_dir() or not catalog.SPEC.is_dir(),
    reason=f"NIST testkit/spec not found under {catalog.SHARED_CONFORMANCE}",
)

APPROVED = ns.STATUS_TYPE + "Approved"
QUERY_OBJECTS = (
    f'<rim:RegistryPackage id="urn:uuid:00000000-0000-4000-8000-000000000001" status="{APPROVED}">'
    f'<rim:Classification id="urn:uuid:00000000-0000-4000-8000-000000000002" '
    f'classifiedObject="urn:uuid:00000000-0000-4000-8000-000000000001" '
    f'classificationNode="{ns.SUBMISSION_SET_NODE}"/></rim:RegistryPackage>'
    f'<rim:ExtrinsicObject id="urn:uuid:00000000-0000-4000-8000-000000000003" '
    f'mimeType="text/plain" objectType="urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1" '
    f'status="{APPROVED}"/>'
)
ASSOCIATION = (
    f'<rim:Association id="urn:uuid:00000000-0000-4000-8000-000000000004" '
    f'associationType="{ns.EB_ASSOC}HasMember" '
    f'sourceObject="urn:uuid:00000000-0000-4000-8000-000000000001" '
    f'targetObject="urn:uuid:00000000-0000-4000-8000-000000000003"/>'
)


@dataclass(slots=True, kw_only=True)
class FakeRegistry:
    """WSGI app: Success (or ``status``) for ITI-42, a canned AdhocQueryResponse for ITI-18."""

    status: str = "Success"
    query_objects: str = QUERY_OBJECTS + ASSOCIATION
    requests: list[tuple[str, etree._Element]] = field(default_factory=list)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        envelope = etree.fromstring(body)
        action = text(next(walk(envelope, "Action")))
        message_id = text(next(walk(envelope, "MessageID")))
        self.requests.append((action, envelope))
        status = ns.STATUS_URNS[self.status]
        if action == ns.ACTION_ITI18:
            payload = (
                f'<query:AdhocQueryResponse xmlns:query="{ns.QUERY}" xmlns:rim="{ns.RIM}" '
                f'status="{status}"><rim:RegistryObjectList>{self.query_objects}'
                "</rim:RegistryObjectList></query:AdhocQueryResponse>"
            )
        else:
            payload = f'<rs:RegistryResponse xmlns:rs="{ns.RS}" status="{status}"/>'
        reply = (
            f'<env:Envelope xmlns:env="{ns.SOAP12}" xmlns:wsa="{ns.WSA}"><env:Header>'
            f"<wsa:Action>{action}Response</wsa:Action>"
            f"<wsa:RelatesTo>{message_id}</wsa:RelatesTo></env:Header>"
            f"<env:Body>{payload}</env:Body></env:Envelope>"
        ).encode()
        start_response(
            "200 OK",
            [
                ("Content-Type", "application/soap+xml; charset=UTF-8"),
                ("Content-Length", str(len(reply))),
            ],
        )
        return [reply]


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class _AckHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        received = b""
        while feed.END_BLOCK not in received:
            chunk = self.request.recv(4096)
            if not chunk:
                return
            received += chunk
        self.server.messages.append(received[1:-2].decode())  # type: ignore[attr-defined]
        ack = "MSH|^~\\&|GW|GW|NIST|NIST|20240101||ACK^A01|1|P|2.3.1\rMSA|AA|1\r"
        self.request.sendall(feed.START_BLOCK + ack.encode() + feed.END_BLOCK)


@dataclass(slots=True, kw_only=True)
class FakeSystem:
    registry: FakeRegistry
    url: str
    mllp: tuple[str, int]
    feeds: list[str]


@pytest.fixture
def fake() -> Iterator[FakeSystem]:
    registry = FakeRegistry()
    http: WSGIServer = make_server("127.0.0.1", 0, registry, handler_class=_QuietHandler)
    mllp = socketserver.TCPServer(("127.0.0.1", 0), _AckHandler)
    mllp.messages = []  # type: ignore[attr-defined]
    threads = [
        threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        for s in (http, mllp)
    ]
    for thread in threads:
        thread.start()
    try:
        yield FakeSystem(
            registry=registry,
            url=f"http://127.0.0.1:{http.server_port}/reg",
            mllp=mllp.server_address[:2],
            feeds=mllp.messages,
        )  # type: ignore[attr-defined]
    finally:
        for server in (http, mllp):
            server.shutdown()
            server.server_close()
        for thread in threads:
            thread.join(timeout=5)


def runner_for(system: FakeSystem, out: io.StringIO) -> Runner:
    config = RunConfig(
        endpoints=Endpoints(registry=system.url, repository=system.url, mllp=system.mllp),
        testkit=catalog.TESTKIT,
        spec=catalog.SPEC,
        timeout=10,
        wait_scale=0,
    )
    return Runner(config, Context(tests_root=config.tests_root), out=out)


def test_11990_passes_against_a_conformant_fake(fake: FakeSystem) -> None:
    out = io.StringIO()
    run = runner_for(fake, out).run("11990")
    assert run.passed, out.getvalue()
    assert [s.step for s in run.steps] == ["submit", "by_uid", "verify_availabilityStatus"]
    assert "PASS 11990/submit/submit [RegisterTransaction]" in out.getvalue()
    # the feed test ran first, over MLLP, with the patient later written into the metadata
    assert len(fake.feeds) == 1
    pid_field = fake.feeds[0].split("\r")[2].split("|")[3]
    register_action, register = fake.registry.requests[0]
    assert register_action == ns.ACTION_ITI42
    submission = next(walk(register, "SubmitObjectsRequest"))
    schema.validate(submission, catalog.SPEC)
    patients = {
        e.get("value")
        for e in walk(submission, "ExternalIdentifier")
        if e.get("identificationScheme") in ns.PATIENT_ID_SCHEMES
    }
    assert patients == {pid_field}
    header = next(walk(register, "Header"))
    must = ns.q(ns.SOAP12, "mustUnderstand")
    assert next(walk(header, "Action")).get(must) == "true"
    assert text(next(walk(header, "Address"))) == ns.WSA_ANONYMOUS
    assert text(next(walk(header, "To"))) == fake.url
    # the query carried the SubmissionSet uniqueId the submit step assigned
    ss_uid = next(
        e.get("value")
        for e in walk(submission, "ExternalIdentifier")
        if e.get("identificationScheme") == ns.SS_UNIQUE_ID
    )
    query_action, query = fake.registry.requests[1]
    assert query_action == ns.ACTION_ITI18
    assert text(next(walk(query, "Value"))) == f"'{ss_uid}'"


def test_11990_fails_when_the_registry_says_failure(fake: FakeSystem) -> None:
    fake.registry.status = "Failure"
    out = io.StringIO()
    run = runner_for(fake, out).run("11990")
    assert not run.passed
    assert "FAIL 11990/submit/submit" in out.getvalue()


def test_11990_fails_when_the_query_result_lacks_the_association(fake: FakeSystem) -> None:
    fake.registry.query_objects = QUERY_OBJECTS
    out = io.StringIO()
    run = runner_for(fake, out).run("11990")
    failed = [s for s in run.steps if not s.passed]
    assert [s.step for s in failed] == ["by_uid"]
    assert "Associations" in " ".join(failed[0].problems)


def test_command_line_runs_a_list_and_sets_the_exit_status(
    fake: FakeSystem, capsys: pytest.CaptureFixture[str]
) -> None:
    host, port = fake.mllp
    argv = [
        "--registry",
        fake.url,
        "--repository",
        fake.url,
        "--mllp",
        f"{host}:{port}",
        "--timeout",
        "10",
        "feed",
    ]
    assert main(argv) == 0
    output = capsys.readouterr().out
    assert "PASS 15817/pif/step" in output and "3/3 tests passed" in output
    assert len(fake.feeds) == 3 and len(set(fake.feeds)) == 3
    fake.registry.status = "Failure"
    assert main([*argv[:-1], "11991"]) == 1


# -- codecs -------------------------------------------------------------------------------


def test_mtom_request_round_trips_binary_attachments() -> None:
    content = b"\x00\r\n--MIMEBoundary_fake\r\n\xff" * 50
    body = etree.Element(ns.q(ns.XDSB, "ProvideAndRegisterDocumentSetRequest"))
    document = etree.SubElement(body, ns.q(ns.XDSB, "Document"), id="Document01")
    content_id = soap.new_content_id("doc")
    document.append(soap.xop_include(content_id))
    request = soap.SoapRequest(
        url="http://x/",
        action=ns.ACTION_ITI41,
        body=body,
        mtom=True,
        parts=[
            soap.Part(content_id=content_id, content_type="application/octet-stream", data=content)
        ],
    )
    content_type, payload = soap.encode(request)
    assert 'type="application/xop+xml"' in content_type
    assert 'start-info="application/soap+xml"' in content_type
    reply = soap.parse_reply(200, content_type, payload)
    assert reply.multipart and reply.body is not None
    assert soap.document_content(next(walk(reply.body, "Document")), reply.parts) == content


def test_plain_reply_fault_is_recognised() -> None:
    fault = (
        f'<e:Envelope xmlns:e="{ns.SOAP12}"><e:Body><e:Fault><e:Code><e:Value>e:Sender'
        "</e:Value></e:Code><e:Reason><e:Text xml:lang='en'>bad</e:Text></e:Reason>"
        "</e:Fault></e:Body></e:Envelope>"
    ).encode()
    reply = soap.parse_reply(400, "application/soap+xml", fault)
    assert reply.fault is not None and reply.body is None
    assert "e:Sender" in reply.fault_text() and "bad" in reply.fault_text()
    assert soap.parse_reply(502, "text/html", b"<html>oops</html>").problem


def test_a01_and_ack_parsing() -> None:
    message = feed.build_a01("P1^^^&1.2.3&ISO", control_id="C1")
    segments = message.split("\r")
    assert segments[0].startswith("MSH|^~\\&|") and "|ADT^A01|C1|P|2.3.1" in segments[0]
    assert segments[2].split("|")[3] == "P1^^^&1.2.3&ISO"
    assert feed.ack_code("MSH|^~\\&|a\rMSA|AE|C1|bad\r") == "AE"
    assert feed.ack_code("MSH|^~\\&|a\r") == ""


def test_raw_body_rewrite_changes_only_identifier_values() -> None:
    original = (catalog.TESTKIT / "tests" / "PnrXop" / "Xop" / "body.txt").read_bytes()
    counter = iter(range(1, 10))
    rewritten, uids = rewrite_identifiers(
        original, "NEW^^^&1.2.3&ISO", lambda: f"9.9.{next(counter)}"
    )
    assert uids == {"Document01": "9.9.1", "SubmissionSet01": "9.9.2"}
    assert b"SR7^^^" in original and b"SR7^^^" not in rewritten
    assert rewritten.count(b'value="NEW^^^&amp;1.2.3&amp;ISO"') == 2
    envelope_end = original.index(b"</soapenv:Envelope>")
    tail = original[envelope_end:]
    assert rewritten.endswith(tail)  # attachment part untouched, byte for byte
    start = rewritten.index(b"<soapenv:Envelope")
    root = parse_xml(rewritten[start : rewritten.index(b"</soapenv:Envelope>") + 19])
    assert len(list(walk(root, "ExternalIdentifier"))) == 5
