"""MTOM/XOP through the real server: byte-exact parts, inline == MTOM, bounded memory, WSDLs."""

from __future__ import annotations

import base64
import hashlib
import http.client
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import zeep
from lxml import etree

from gateway.soap import mtom
from gateway.soap import transactions as tx
from tests.support import rawsoap
from tests.support.process import GatewayProcess, rss_kib
from tests.support.rawsoap import envelope, mtom_body, post
from tests.support.serving import serving

XOP_NS = "http://www.w3.org/2004/08/xop/include"
EDGY = b"\r\n\r\n--MIMEBoundary_\r\nstarts and ends with CR/LF \x00\xff\r\n--\r\n"


def _doc(doc_id: str, inner: str) -> str:
    return f'<xdsb:Document id="{doc_id}">{inner}</xdsb:Document>'


def _echo(inner: str) -> str:
    return f'<t:Echo xmlns:t="urn:test" xmlns:xdsb="urn:ihe:iti:xds-b:2007">{inner}</t:Echo>'


def _xop(cid: str) -> str:
    return f'<xop:Include xmlns:xop="{XOP_NS}" href="cid:{cid}"/>'


def _parse_mtom_response(response: rawsoap.RawResponse, spool: Path) -> mtom.MultipartMessage:
    import io

    return mtom.read_multipart(
        io.BytesIO(response.body),
        response.content_type,
        content_length=len(response.body),
        spool_dir=spool,
        memory_threshold=1 << 20,
        max_root_bytes=1 << 24,
    )


def _seen(root: etree._Element) -> dict[str, tuple[str, str]]:
    return {s.get("id"): (s.get("sha1"), s.get("size")) for s in root.iter("{urn:test}Seen")}


def test_inline_and_mtom_reach_the_handler_identically(
    addr: tuple[str, int], tmp_path: Path
) -> None:
    docs = {"a": EDGY, "b": os.urandom(200_000), "c": b""}
    inline = _echo("".join(_doc(k, base64.b64encode(v).decode()) for k, v in docs.items()))
    plain = post(*addr, "/test/echo", envelope(inline, action="urn:test:Echo"))

    root_xml = envelope(
        _echo("".join(_doc(k, _xop(f"{k}@x")) for k in docs)), action="urn:test:Echo"
    )
    content_type, data = mtom_body(root_xml, [(f"{k}@x", v) for k, v in docs.items()])
    packaged = post(*addr, "/test/echo", data, content_type=content_type)

    assert plain.status == packaged.status == 200
    views = []
    for response in (plain, packaged):
        message = _parse_mtom_response(response, tmp_path)
        body = etree.fromstring(message.root)
        views.append((_seen(body), body.findtext(".//{urn:test}Body")))
        returned = {
            d.get("id"): message.attachments[d[0].get("href")[4:]].read_bytes()
            for d in body.iter("{urn:ihe:iti:xds-b:2007}Document")
        }
        assert returned == docs  # byte-exact back, CR/LF edges included
    assert views[0] == views[1]
    assert views[0][0]["a"] == (hashlib.sha1(EDGY).hexdigest(), str(len(EDGY)))
    assert body.findtext(".//{urn:test}Mtom") == "true"


def test_bad_base64_inline_is_sender_fault(addr: tuple[str, int]) -> None:
    response = post(
        *addr, "/test/echo", envelope(_echo(_doc("a", "!!!not base64!!!")), action="urn:test:Echo")
    )
    assert response.status == 400
    assert response.fault_codes() == ["env:Sender"]


def test_xop_include_naming_no_part_is_sender_fault(addr: tuple[str, int]) -> None:
    root_xml = envelope(_echo(_doc("a", _xop("missing@x"))), action="urn:test:Echo")
    content_type, data = mtom_body(root_xml, [("other@x", b"data")])
    response = post(*addr, "/test/echo", data, content_type=content_type)
    assert response.status == 400
    assert response.fault_codes() == ["env:Sender"]


def test_no_temporary_file_is_left_behind(gateway, addr: tuple[str, int]) -> None:
    spool = gateway.spool_dir
    root_xml = envelope(_echo(_doc("a", _xop("a@x"))), action="urn:test:Echo")
    content_type, data = mtom_body(root_xml, [("a@x", os.urandom(300_000))])
    assert post(*addr, "/test/echo", data, content_type=content_type).status == 200
    truncated = data[:-100]
    assert post(*addr, "/test/echo", truncated, content_type=content_type).status == 400
    assert list(spool.iterdir()) == []


@pytest.mark.parametrize("path", sorted(tx.ENDPOINTS))
def test_served_wsdl_loads_in_zeep(request: pytest.FixtureRequest, path: str) -> None:
    addr = serving(request, path).http.address
    url = f"http://{addr[0]}:{addr[1]}{path}?wsdl"
    client = zeep.Client(url)
    wanted = {t.operation: t for t in tx.ENDPOINTS[path]}
    for service in client.wsdl.services.values():
        for port in service.ports.values():
            assert port.binding_options["address"] == f"http://{addr[0]}:{addr[1]}{path}"
            operations = port.binding._operations
            assert set(operations) == set(wanted)
            for name, operation in operations.items():
                assert operation.soapaction == wanted[name].action
                assert operation.abstract.wsa_action == wanted[name].action


# -- a separate server process: memory and shutdown ----------------------------------------------

SIZE = 300 * 1024 * 1024
CHUNK = 1024 * 1024


def _pattern_chunks(total: int) -> Iterator[bytes]:
    block = bytes(range(256)) * (CHUNK // 256)
    sent = 0
    while sent < total:
        piece = block[: min(CHUNK, total - sent)]
        sent += len(piece)
        yield piece


@pytest.fixture
def echo_process(tmp_path: Path) -> Iterator[GatewayProcess]:
    process = GatewayProcess(
        "tests.support.echo_gateway",
        tmp_path / "data",
        env={"XDSI_TEST_SLOW_MARKER": str(tmp_path / "slow-started")},
    )
    try:
        process.wait_healthy()
        yield process
    finally:
        process.terminate()
        process.kill()


@pytest.mark.slow
def test_300mb_mtom_round_trip_with_bounded_server_memory(
    echo_process: GatewayProcess, tmp_path: Path
) -> None:
    host, port = echo_process.host, echo_process.port
    # Warm up: imports, thread pool and lxml are in memory before the baseline is taken.
    root_xml = envelope(_echo(_doc("w", _xop("w@x"))), action="urn:test:Echo")
    content_type, data = mtom_body(root_xml, [("w@x", b"warm" * 1000)])
    assert post(host, port, "/test/echo", data, content_type=content_type).status == 200
    baseline = rss_kib(echo_process.pid)

    root_xml = envelope(_echo(_doc("big", _xop("big@x"))), action="urn:test:Echo")
    content_type, head = mtom_body(root_xml, [("big@x", b"")])
    prefix, suffix = head.split(b"Content-ID: <big@x>\r\n\r\n")
    prefix += b"Content-ID: <big@x>\r\n\r\n"
    expected = hashlib.sha1()
    for piece in _pattern_chunks(SIZE):
        expected.update(piece)

    def body() -> Iterator[bytes]:
        yield prefix
        yield from _pattern_chunks(SIZE)
        yield suffix

    conn = http.client.HTTPConnection(host, port, timeout=300)
    conn.request(
        "POST",
        "/test/echo",
        body=body(),
        headers={
            "Content-Type": content_type,
            "Content-Length": str(len(prefix) + SIZE + len(suffix)),
        },
    )
    response = conn.getresponse()
    assert response.status == 200
    length = int(response.getheader("Content-Length"))
    message = mtom.read_multipart(
        response,
        response.getheader("Content-Type"),
        content_length=length,
        spool_dir=tmp_path,
        memory_threshold=1 << 20,
        max_root_bytes=1 << 24,
    )
    conn.close()
    (part,) = message.attachments.values()
    assert part.size == SIZE
    assert part.digest() == expected.hexdigest()
    seen = _seen(etree.fromstring(message.root))
    assert seen["big"] == (expected.hexdigest(), str(SIZE))
    part.discard()

    growth_mib = (rss_kib(echo_process.pid, "VmHWM") - baseline) / 1024
    print(f"server peak RSS growth for a {SIZE >> 20} MiB round trip: {growth_mib:.1f} MiB")
    assert growth_mib < 100


def test_sigterm_finishes_the_request_in_flight_and_exits_0(
    echo_process: GatewayProcess, tmp_path: Path
) -> None:
    result: list[rawsoap.RawResponse] = []
    body = '<t:Slow xmlns:t="urn:test">2</t:Slow>'
    call = threading.Thread(
        target=lambda: result.append(
            post(
                echo_process.host,
                echo_process.port,
                "/test/slow",
                envelope(body, action="urn:test:Slow"),
            )
        )
    )
    call.start()
    import time

    marker = tmp_path / "slow-started"
    deadline = time.monotonic() + 30
    while not marker.exists() and time.monotonic() < deadline:  # the handler is running now
        time.sleep(0.02)
    assert marker.exists()
    assert echo_process.terminate(timeout=30) == 0
    call.join(timeout=30)
    assert result and result[0].status == 200
    assert b"slept 2" in result[0].body
