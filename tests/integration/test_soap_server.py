"""The SOAP boundary over real sockets: responses, WS-Addressing, faults for every bad input."""

from __future__ import annotations

import threading
import uuid

import pytest

from gateway.soap import transactions as tx
from tests.support import rawsoap
from tests.support.rawsoap import SOAP12, WSA, envelope, mtom_body, post
from tests.support.serving import serving

WSA_FAULT = WSA + "/fault"
SOAP_FAULT = WSA + "/soap/fault"


def _echo_body(inner: str = "") -> str:
    return f'<t:Echo xmlns:t="urn:test" xmlns:xdsb="urn:ihe:iti:xds-b:2007">{inner}</t:Echo>'


def test_health_is_json(addr: tuple[str, int]) -> None:
    response = rawsoap.get(*addr, "/health")
    assert response.status == 200
    assert response.content_type == "application/json"
    import json

    data = json.loads(response.body)
    assert data["status"] == "ready"
    assert set(data["actors"]) >= {"registry", "repository", "imaging_source"}


@pytest.mark.parametrize("transaction", tx.ALL, ids=lambda t: f"{t.name}{t.path}")
def test_every_endpoint_answers_soap12_with_relates_to(
    request: pytest.FixtureRequest, transaction: tx.Transaction
) -> None:
    addr = serving(request, transaction.path).http.address
    message_id = f"urn:uuid:{uuid.uuid4()}"
    prefix, local = transaction.request_qname[1:].split("}")
    body = f'<m:{local} xmlns:m="{prefix}"/>'
    response = post(
        *addr, transaction.path, envelope(body, action=transaction.action, message_id=message_id)
    )
    assert response.content_type.startswith(("application/soap+xml", "multipart/related"))
    env = response.envelope()
    assert env.tag == f"{{{SOAP12}}}Envelope"
    assert response.header("RelatesTo") == message_id
    new_id = response.header("MessageID")
    assert new_id and new_id != message_id
    fault = env.find(f"{{{SOAP12}}}Body/{{{SOAP12}}}Fault")
    if fault is None:
        assert response.status == 200
        assert response.header("Action") == transaction.response_action
    else:  # actor not implemented yet: the standard WS-A fault, not a 404 or stack trace
        assert response.header("Action") == WSA_FAULT
        assert response.fault_codes() == ["env:Sender", "wsa:ActionNotSupported"]
        assert response.status == 400


def test_bound_handler_gets_response_action_and_relates_to(addr: tuple[str, int]) -> None:
    message_id = f"urn:uuid:{uuid.uuid4()}"
    response = post(
        *addr, "/test/echo", envelope(_echo_body(), action="urn:test:Echo", message_id=message_id)
    )
    assert response.status == 200
    assert response.header("Action") == "urn:test:EchoResponse"
    assert response.header("RelatesTo") == message_id
    action = response.envelope().find(f"{{{SOAP12}}}Header/{{{WSA}}}Action")
    assert action.get(f"{{{SOAP12}}}mustUnderstand") == "true"


XXE = b"""<?xml version="1.0"?><!DOCTYPE e [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Body>&x;</env:Body></env:Envelope>"""
LAUGHS = b"""<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "lol">
<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">
<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]>
<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Body>&d;</env:Body></env:Envelope>"""
SOAP11 = b"""<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">
<s:Body><t:Echo xmlns:t="urn:test"/></s:Body></s:Envelope>"""


@pytest.mark.parametrize(
    ("data", "needle"), [(XXE, b"passwd"), (LAUGHS, b"lollol")], ids=["xxe", "laughs"]
)
def test_entity_attacks_get_sender_fault_and_read_nothing(
    addr: tuple[str, int], data: bytes, needle: bytes
) -> None:
    response = post(*addr, "/test/echo", data)
    assert response.status == 400
    assert response.fault_codes() == ["env:Sender"]
    assert needle not in response.body
    assert b"root:" not in response.body


def test_missing_action_is_message_addressing_header_required(addr: tuple[str, int]) -> None:
    message_id = f"urn:uuid:{uuid.uuid4()}"
    response = post(*addr, "/test/echo", envelope(_echo_body(), action=None, message_id=message_id))
    assert response.status == 400
    assert response.fault_codes() == ["env:Sender", "wsa:MessageAddressingHeaderRequired"]
    assert response.header("Action") == WSA_FAULT
    assert response.header("RelatesTo") == message_id
    assert b"ProblemHeaderQName>wsa:Action<" in response.body


def test_missing_message_id_is_required_too(addr: tuple[str, int]) -> None:
    response = post(
        *addr, "/test/echo", envelope(_echo_body(), action="urn:test:Echo", message_id=None)
    )
    assert response.fault_codes() == ["env:Sender", "wsa:MessageAddressingHeaderRequired"]
    assert b"ProblemHeaderQName>wsa:MessageID<" in response.body


def test_unknown_action_is_action_not_supported(addr: tuple[str, int]) -> None:
    response = post(*addr, "/xds/registry", envelope(_echo_body(), action="urn:nope"))
    assert response.status == 400
    assert response.fault_codes() == ["env:Sender", "wsa:ActionNotSupported"]
    assert b"<wsa:Action>urn:nope</wsa:Action>" in response.body


def test_soap11_envelope_gets_version_mismatch_in_soap11(addr: tuple[str, int]) -> None:
    response = post(*addr, "/test/echo", SOAP11, content_type="text/xml; charset=UTF-8")
    # SOAP 1.2 Part 1 Appendix A: answer a 1.1 sender in 1.1, with the env:Upgrade header block.
    assert response.content_type.startswith("text/xml")
    env = response.envelope()
    assert env.tag == "{http://schemas.xmlsoap.org/soap/envelope/}Envelope"
    assert env.findtext(".//faultcode").endswith(":VersionMismatch")
    upgrade = env.find(f".//{{{SOAP12}}}Upgrade/{{{SOAP12}}}SupportedEnvelope")
    assert upgrade is not None and upgrade.get("qname") == "env:Envelope"
    assert (
        response.status == 500
    )  # SOAP 1.2 Part 2 Table 20 / SOAP 1.1 §6.2: faults other than Sender


def test_unknown_must_understand_header(addr: tuple[str, int]) -> None:
    extra = '<x:Secret xmlns:x="urn:other" env:mustUnderstand="true">1</x:Secret>'
    extra += '<x:Ignored xmlns:x="urn:other">fine: mustUnderstand absent</x:Ignored>'
    response = post(
        *addr, "/test/echo", envelope(_echo_body(), action="urn:test:Echo", extra_headers=extra)
    )
    assert response.fault_codes() == ["env:MustUnderstand"]
    not_understood = response.envelope().findall(f"{{{SOAP12}}}Header/{{{SOAP12}}}NotUnderstood")
    assert len(not_understood) == 1
    qname = not_understood[0].get("qname")
    prefix, local = qname.split(":")
    assert local == "Secret" and not_understood[0].nsmap[prefix] == "urn:other"
    assert response.header("Action") == SOAP_FAULT
    assert response.status == 500  # SOAP 1.2 Part 2 Table 20


def test_must_understand_for_another_role_is_ignored(addr: tuple[str, int]) -> None:
    extra = (
        '<x:Secret xmlns:x="urn:other" env:mustUnderstand="true" '
        'env:role="http://example.org/another-node">1</x:Secret>'
    )
    response = post(
        *addr, "/test/echo", envelope(_echo_body(), action="urn:test:Echo", extra_headers=extra)
    )
    assert response.status == 200


def test_truncated_multipart_is_sender_fault(addr: tuple[str, int]) -> None:
    root = envelope(
        _echo_body(
            '<xdsb:Document id="d"><xop:Include xmlns:xop="http://www.w3.org/2004/08/xop/include" '
            'href="cid:p1@test"/></xdsb:Document>'
        ),
        action="urn:test:Echo",
    )
    content_type, data = mtom_body(root, [("p1@test", b"x" * 5000)])
    cut = data[: len(data) - 200]  # the close delimiter and the end of the part are gone
    response = post(*addr, "/test/echo", cut, content_type=content_type)
    assert response.status == 400
    assert response.fault_codes() == ["env:Sender"]
    assert b"MTOM" in response.body


def test_non_xml_body_is_sender_fault(addr: tuple[str, int]) -> None:
    response = post(*addr, "/test/echo", b"this is not XML at all \x00\xff")
    assert response.status == 400
    assert response.fault_codes() == ["env:Sender"]


def test_wrong_media_type_is_415_with_fault(addr: tuple[str, int]) -> None:
    response = post(*addr, "/test/echo", b"{}", content_type="application/json")
    assert response.status == 415
    assert response.fault_codes() == ["env:Sender"]


def test_body_element_must_match_the_action(addr: tuple[str, int]) -> None:
    response = post(
        *addr, "/test/echo", envelope('<t:Other xmlns:t="urn:test"/>', action="urn:test:Echo")
    )
    assert response.status == 400
    assert b"expects body element" in response.body


def test_non_anonymous_reply_to_is_refused(addr: tuple[str, int]) -> None:
    response = post(
        *addr,
        "/test/echo",
        envelope(_echo_body(), action="urn:test:Echo", reply_to="http://10.0.0.1/callback"),
    )
    assert response.fault_codes() == [
        "env:Sender",
        "wsa:InvalidAddressingHeader",
        "wsa:OnlyAnonymousAddressSupported",
    ]


def test_duplicate_action_header_is_invalid_cardinality(addr: tuple[str, int]) -> None:
    extra = "<wsa:Action>urn:test:Echo</wsa:Action>"
    response = post(
        *addr, "/test/echo", envelope(_echo_body(), action="urn:test:Echo", extra_headers=extra)
    )
    assert response.fault_codes() == [
        "env:Sender",
        "wsa:InvalidAddressingHeader",
        "wsa:InvalidCardinality",
    ]


def test_http_action_parameter_must_match(addr: tuple[str, int]) -> None:
    response = post(
        *addr,
        "/test/echo",
        envelope(_echo_body(), action="urn:test:Echo"),
        content_type='application/soap+xml; charset=UTF-8; action="urn:other"',
    )
    assert response.fault_codes() == [
        "env:Sender",
        "wsa:InvalidAddressingHeader",
        "wsa:ActionMismatch",
    ]


def test_deep_nesting_is_refused(addr: tuple[str, int]) -> None:
    deep = "<a>" * 400 + "</a>" * 400
    response = post(*addr, "/test/echo", envelope(_echo_body(deep), action="urn:test:Echo"))
    assert response.status == 400
    assert response.fault_codes() == ["env:Sender"]


def test_get_without_wsdl_is_405_and_unknown_path_404(addr: tuple[str, int]) -> None:
    assert rawsoap.get(*addr, "/xds/registry").status == 405
    assert rawsoap.get(*addr, "/nowhere").status == 404


def test_requests_are_served_concurrently(tmp_path) -> None:
    # Four handlers meet at a barrier: that only completes if the server runs them at once.
    from lxml import etree

    from gateway.app import Gateway
    from gateway.config import load_settings
    from tests.support.echo_gateway import SLOW

    barrier = threading.Barrier(4, timeout=20)

    def meet(request, ctx):
        from gateway.soap.message import SoapResponse

        barrier.wait()
        return SoapResponse(body=etree.Element(SLOW.response_qname))

    settings = load_settings(
        environ={"XDSI_GATEWAY_DATA_DIR": str(tmp_path), "XDSI_HTTP_PORT": "0"}
    )
    gw = Gateway(settings, configure=lambda app: app.endpoint(SLOW.path).bind(SLOW, meet))
    host, port = gw.start()
    results: list[int] = []
    try:

        def call() -> None:
            body = '<t:Slow xmlns:t="urn:test">0</t:Slow>'
            results.append(
                post(host, port, "/test/slow", envelope(body, action="urn:test:Slow")).status
            )

        threads = [threading.Thread(target=call) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
    finally:
        gw.stop()
    assert results == [200] * 4
    assert not barrier.broken


def test_missing_content_type_is_415_with_fault(addr: tuple[str, int]) -> None:
    import http.client

    conn = http.client.HTTPConnection(*addr, timeout=30)
    data = envelope(_echo_body(), action="urn:test:Echo")
    conn.putrequest("POST", "/test/echo")
    conn.putheader("Content-Length", str(len(data)))
    conn.endheaders(data)
    response = conn.getresponse()
    body = response.read()
    conn.close()
    assert response.status == 415
    assert b"env:Sender" in body


def test_many_keep_alive_connections_stay_open(addr: tuple[str, int]) -> None:
    """40 clients each keep one connection (a load balancer's pool, 16 busy consumers): every
    one is kept open between requests, none answered ``Connection: close`` (cheroot's own limit
    of 10 idle connections would close most of them after each answer)."""
    import http.client

    connections = [http.client.HTTPConnection(*addr, timeout=30) for _ in range(40)]
    try:
        for conn in connections:
            conn.connect()
        sockets = [conn.sock for conn in connections]
        for _round in range(2):
            for conn in connections:
                conn.request("GET", "/health")
                answer = conn.getresponse()
                answer.read()
                assert answer.status == 200
                assert (answer.getheader("Connection") or "").lower() != "close"
        assert [conn.sock for conn in connections] == sockets  # never reconnected
    finally:
        for conn in connections:
            conn.close()
