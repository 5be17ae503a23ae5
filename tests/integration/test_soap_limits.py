"""Size limits at the SOAP boundary, enforced while the request streams in (issue 13, point 3).

With the real default of ``soap.max_request_bytes`` (2 GiB), a chunked ITI-41 upload (no
Content-Length) 64 MiB over it is answered with an env:Sender fault and HTTP 413 as soon as the
limit is crossed, the connection is closed instead of reading the rest, and what was spooled is
removed (slow: 2 GiB cross the loopback). With a lowered limit the same holds for chunked and
announced bodies, quickly; an announced length over the limit is refused before any byte of the
body is read. A body sent to a path without an endpoint is not read either.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from lxml import etree

from gateway.app import Gateway
from gateway.config import SoapSettings, load_settings
from gateway.soap import ns
from gateway.soap.transactions import REPOSITORY_PATH
from tests.support.uploads import MIB, LazyUpload, SpoolWatch, chunked, post_watching, wait_until

SMALL_LIMIT = 8 * MIB


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[Gateway]:
    """A gateway whose ``soap.max_request_bytes`` is lowered to 8 MiB."""
    settings = load_settings(
        environ={
            "XDSI_GATEWAY_DATA_DIR": str(tmp_path / "data"),
            "XDSI_HTTP_PORT": "0",
            "XDSI_HL7_ENABLED": "false",
            "XDSI_IMAGING_SOURCE_ENABLED": "false",
            "XDSI_SOAP_MAX_REQUEST_BYTES": str(SMALL_LIMIT),
        }
    )
    node = Gateway(settings)
    node.start()
    try:
        yield node
    finally:
        node.stop()


def url_of(node: Gateway, path: str = REPOSITORY_PATH) -> str:
    return node.base_url + path


def spool_of(node: Gateway) -> Path:
    return node.spool_dir


def framed(upload: LazyUpload, framing: str) -> tuple[dict[str, str], Iterable[bytes]]:
    headers = {"Content-Type": upload.content_type}
    if framing == "chunked":
        headers["Transfer-Encoding"] = "chunked"
        return headers, chunked(upload.chunks())
    headers["Content-Length"] = str(len(upload))
    return headers, upload.chunks()


def assert_too_large(status: int, body: bytes) -> None:
    assert status == 413
    fault = etree.fromstring(body)
    values = [v.text for v in fault.iter(f"{{{ns.SOAP12}}}Value")]
    assert values == ["env:Sender"]
    reason = fault.findtext(f".//{{{ns.SOAP12}}}Text") or ""
    assert "exceeds the limit" in reason
    assert "Traceback" not in reason


@pytest.mark.slow
def test_request_over_the_default_limit_is_refused_while_streaming(gateway: Gateway) -> None:
    limit = gateway.soap.limits.max_request_bytes
    assert limit == SoapSettings().max_request_bytes == 2 * 1024**3  # the real default
    upload = LazyUpload(limit + 64 * MIB, to=url_of(gateway))
    headers, body = framed(upload, "chunked")
    with SpoolWatch(spool_of(gateway)) as watch:
        answer = post_watching(None, url_of(gateway), headers, body)
    assert_too_large(answer.status, answer.body)
    assert answer.headers.get("connection", "").lower() == "close"
    assert not answer.sent_everything
    print(f"spool peak {watch.max_bytes / MIB:.0f} MiB; client sent {answer.sent / MIB:.0f} MiB")
    assert watch.max_bytes <= limit
    assert wait_until(lambda: list(spool_of(gateway).iterdir()) == [])


@pytest.mark.parametrize("framing", ["chunked", "content-length"])
def test_request_over_a_lowered_limit_is_refused(limited: Gateway, framing: str) -> None:
    upload = LazyUpload(3 * SMALL_LIMIT, to=url_of(limited))
    headers, body = framed(upload, framing)
    with SpoolWatch(spool_of(limited)) as watch:
        answer = post_watching(None, url_of(limited), headers, body)
    assert_too_large(answer.status, answer.body)
    assert answer.headers.get("connection", "").lower() == "close"
    assert not answer.sent_everything
    assert watch.max_bytes <= SMALL_LIMIT
    if framing == "content-length":  # announced: refused before the body is read at all
        assert watch.max_bytes == 0
    assert wait_until(lambda: list(spool_of(limited).iterdir()) == [])


def test_request_just_under_the_limit_is_read(limited: Gateway) -> None:
    upload = LazyUpload(SMALL_LIMIT - 64 * 1024, to=url_of(limited))
    headers, body = framed(upload, "chunked")
    answer = post_watching(None, url_of(limited), headers, body)
    assert answer.sent_everything
    assert answer.status == 200  # the empty submission reaches the repository, which answers
    assert b"RegistryResponse" in answer.body
    assert answer.headers.get("connection", "").lower() != "close"


def test_a_body_sent_to_no_endpoint_is_not_read(limited: Gateway) -> None:
    upload = LazyUpload(50 * MIB, to=url_of(limited))
    headers, body = framed(upload, "content-length")
    answer = post_watching(None, url_of(limited, "/nowhere"), headers, body)
    assert answer.status == 404
    assert answer.headers.get("connection", "").lower() == "close"
    assert not answer.sent_everything
