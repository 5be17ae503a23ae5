"""A refused node's large upload is answered before its body is read (issue 13, point 3).

The real gateway with ``[tls]`` and ``[access]``: hospital-b is a domain node (TLS lets it in) that
no rule grants ITI-41. Its 500 MB MTOM ITI-41 upload, generated lazily, is answered with the
``wsse:FailedAuthentication`` fault as soon as the root part is read: the spool folder never
holds a byte of it (sampled while the upload runs), the server closes the connection
(``Connection: close``) instead of reading the rest, and the client, which watches for an early
answer while sending as RFC 9112 §9.5 asks, stops after what the socket buffers took. The
refusal is audited as before. A small refused upload sent by requests (which reads the answer
only after sending everything) still gets the fault; an authorised node is served as usual.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
import requests
from lxml import etree

from gateway.app import Gateway
from gateway.config import load_settings
from gateway.security.certs import DomainFiles, init_domain
from gateway.security.tls import TlsFiles, requests_session
from gateway.soap import ns
from gateway.soap.transactions import REPOSITORY_PATH
from tests.support.uploads import MIB, LazyUpload, SpoolWatch, chunked, post_watching, wait_until

UPLOAD = 500 * MIB
RULES = """
[access]
default = "deny"
[[access.rule]]
name = "hospital-a"
subject = ["CN=hospital-a,O=XDS-I Demo Affinity Domain"]
transactions = ["ITI-41", "ITI-43"]
"""


@pytest.fixture(scope="module")
def domain(tmp_path_factory: pytest.TempPathFactory) -> DomainFiles:
    return init_domain(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory, domain: DomainFiles) -> Iterator[Gateway]:
    folder = tmp_path_factory.mktemp("node")
    region = domain.nodes["region"]
    (folder / "rules.toml").write_text(RULES)
    config = folder / "gateway.toml"
    config.write_text(
        "\n".join(
            [
                f'[gateway]\ndata_dir = "{folder / "data"}"',
                "[http]\nport = 0",
                "[hl7]\nenabled = false",
                "[imaging_source]\nenabled = false",
                '[log]\nlevel = "WARNING"',
                "[tls]\nenabled = true",
                f'certificate = "{region.certificate}"',
                f'private_key = "{region.private_key}"',
                f'ca_file = "{domain.ca_certificate}"',
                f'[access]\nrules_file = "{folder / "rules.toml"}"',
                "[audit]\nenabled = true",
                f'destinations = "file:{folder / "audit.log"}"',
                'source_id = "test-node"',
            ]
        )
        + "\n"
    )
    gateway = Gateway(load_settings(config, environ={}))
    gateway.start()
    try:
        yield gateway
    finally:
        gateway.stop()


def context_of(domain: DomainFiles, name: str) -> ssl.SSLContext:
    files = domain.nodes[name]
    tls = TlsFiles(
        certificate=str(files.certificate),
        private_key=str(files.private_key),
        ca_file=str(domain.ca_certificate),
    )
    return tls.client()


def session_of(domain: DomainFiles, name: str) -> requests.Session:
    return requests_session(context_of(domain, name))


def fault_values(content: bytes) -> list[str | None]:
    fault = etree.fromstring(content)
    return [v.text for v in fault.iter(f"{{{ns.SOAP12}}}Value")]


def assert_refused(status: int, content: bytes) -> None:
    assert status == 400
    values = fault_values(content)
    assert values[0] == "env:Sender"
    assert values[1] is not None and values[1].endswith(":FailedAuthentication")


def refusals(node: Gateway) -> list[str]:
    """Outcome descriptions of the Security Alert (110113) records written so far."""
    path = Path(str(node.settings.audit.destinations)[5:])
    if not path.exists():
        return []
    found = []
    for line in path.read_bytes().splitlines():
        if b"<?xml" not in line:
            continue
        message = etree.fromstring(line[line.index(b"<?xml") :])
        ident = message.find("EventIdentification")
        if ident is not None and ident.find("EventID").get("csd-code") == "110113":
            found.append(ident.findtext("EventOutcomeDescription") or "")
    return found


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_refused_node_is_answered_before_its_500_mb_upload_is_read(
    node: Gateway, domain: DomainFiles, framing: str
) -> None:
    url = node.base_url + REPOSITORY_PATH
    spool = node.spool_dir
    upload = LazyUpload(UPLOAD, to=url)
    headers = {"Content-Type": upload.content_type}
    if framing == "content-length":
        headers["Content-Length"] = str(len(upload))
        body: Iterable[bytes] = upload.chunks()
    else:
        headers["Transfer-Encoding"] = "chunked"
        body = chunked(upload.chunks())
    before = len(refusals(node))
    with SpoolWatch(spool) as watch:
        answer = post_watching(context_of(domain, "hospital-b"), url, headers, body)
    assert_refused(answer.status, answer.body)
    assert answer.headers.get("connection", "").lower() == "close"
    assert not answer.sent_everything
    print(f"{framing}: {answer.sent / MIB:.1f} MiB of {len(upload) / MIB:.0f} MiB sent")
    assert answer.sent < 64 * MIB  # what the socket buffers took before the answer came
    assert watch.samples > 0
    assert (watch.max_bytes, watch.max_files) == (0, 0)
    assert list(spool.iterdir()) == []
    assert wait_until(lambda: len(refusals(node)) > before)  # the refusal is audited (queued)
    assert len(refusals(node)) == before + 1


def test_small_refused_upload_still_gets_the_fault_with_requests(
    node: Gateway, domain: DomainFiles
) -> None:
    # requests sends the whole body before it reads: the server reads a small rest to its end
    # (discarding it) so that such a client sees the fault, and keeps the connection.
    url = node.base_url + REPOSITORY_PATH
    upload = LazyUpload(2 * MIB, to=url)
    response = session_of(domain, "hospital-b").post(
        url, data=upload, headers={"Content-Type": upload.content_type}, timeout=60
    )
    assert_refused(response.status_code, response.content)
    assert response.headers.get("Connection", "").lower() != "close"
    spool = node.spool_dir
    assert wait_until(lambda: list(spool.iterdir()) == [])  # removed once the answer is sent


def test_authorised_node_is_served_after_the_same_check(node: Gateway, domain: DomainFiles):
    url = node.base_url + REPOSITORY_PATH
    upload = LazyUpload(3 * MIB, to=url)
    response = session_of(domain, "hospital-a").post(
        url, data=upload, headers={"Content-Type": upload.content_type}, timeout=120
    )
    # The whole request was read: the (empty) submission reaches the repository, which answers.
    assert upload.produced == len(upload)
    assert response.status_code == 200, response.content[:500]
    assert b"RegistryResponse" in response.content
    assert response.headers.get("Connection", "").lower() != "close"
    spool = node.spool_dir
    assert wait_until(lambda: list(spool.iterdir()) == [])  # removed once the answer is sent
