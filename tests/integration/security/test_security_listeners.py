"""Every kind of listener with the security room's TLS contexts, over real sockets.

With ``certs init`` material: each listener (HTTPS on cheroot, MLLP on asyncio, DICOM on
pynetdicom) refuses a client without a certificate, refuses a certificate from another CA, and
serves one from the domain CA; the access rules refuse a hospital certificate calling ITI-42.
The listeners are built here the way ``app.py`` is to build them (see the wiring notes).
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from cheroot import wsgi
from pynetdicom import AE, evt
from pynetdicom.sop_class import Verification

from gateway.hl7.mllp import MLLPClient, MLLPError, MLLPServer
from gateway.security.access import AccessRules
from gateway.security.certs import DomainFiles, init_domain
from gateway.security.https import GatewaySSLAdapter
from gateway.security.peer import peer_from_ssl, peer_from_wsgi_environ
from gateway.security.tls import TlsFiles, client_context, requests_session

HL7 = b"MSH|^~\\&|ADT|HOSP|XDSI|REGION|20240101||ADT^A01|1|P|2.5\rPID|||1^^^&1.2&ISO\r"
ACK = b"MSH|^~\\&|XDSI|REGION|ADT|HOSP|20240101||ACK^A01|2|P|2.5\rMSA|AA|1\r"
REFUSED = (ssl.SSLError, ConnectionError, OSError, MLLPError, http.client.HTTPException)


@pytest.fixture(scope="module")
def domain(tmp_path_factory: pytest.TempPathFactory) -> DomainFiles:
    return init_domain(tmp_path_factory.mktemp("domain"))


@pytest.fixture(scope="module")
def foreign(tmp_path_factory: pytest.TempPathFactory) -> DomainFiles:
    """Another affinity domain: same node names, another CA."""
    return init_domain(
        tmp_path_factory.mktemp("foreign"), nodes=("hospital-a",), organization="Other Domain"
    )


def _files(domain: DomainFiles, node: str, ca: Path | None = None) -> TlsFiles:
    files = domain.nodes[node]
    return TlsFiles(
        certificate=str(files.certificate),
        private_key=str(files.private_key),
        ca_file=str(ca or domain.ca_certificate),
    )


def _clients(domain: DomainFiles, foreign: DomainFiles) -> dict[str, ssl.SSLContext]:
    """The three kinds of caller: a domain node, no certificate, a foreign certificate."""
    return {
        "domain": _files(domain, "hospital-a").client(),
        "anonymous": client_context(domain.ca_certificate),
        "foreign": _files(foreign, "hospital-a", ca=domain.ca_certificate).client(),
    }


# -- HTTPS (cheroot) ------------------------------------------------------------------------------

RULES = AccessRules.load(
    {
        "access": {
            "rule": [
                {
                    "subject": ["CN=hospital-a,O=XDS-I Demo Affinity Domain"],
                    "transactions": ["ITI-41", "ITI-18", "ITI-43", "RAD-69", "C-ECHO"],
                },
                {"san": "DNS:region.example", "transactions": ["ITI-42", "ITI-18"]},
            ]
        }
    }
)


def _soap_like_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """Answers 200 when the access rules allow PATH's transaction to the TLS peer, else 403."""
    transaction = environ["PATH_INFO"].strip("/")
    caller = peer_from_wsgi_environ(environ)
    status = "200 OK" if RULES.allowed(caller, transaction) else "403 Forbidden"
    body = f"{transaction} {caller}".encode()
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


class Failures:
    """Collects (remote address, reason) of failed client authentications."""

    def __init__(self) -> None:
        self.seen: list[tuple[str | None, str]] = []
        self.lock = threading.Lock()

    def __call__(self, peer: str | None, reason: str) -> None:
        with self.lock:
            self.seen.append((peer, reason))

    def wait(self, count: int, timeout: float = 10.0) -> list[tuple[str | None, str]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(self.seen) < count:
            time.sleep(0.01)
        return list(self.seen)


@pytest.fixture
def failures() -> Failures:
    return Failures()


@pytest.fixture
def https(domain: DomainFiles, failures: Failures) -> Iterator[int]:
    adapter = GatewaySSLAdapter(_files(domain, "region"), on_handshake_failure=failures)
    server = wsgi.Server(("127.0.0.1", 0), _soap_like_app, numthreads=4, timeout=10)
    server.ssl_adapter = adapter
    server.prepare()
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    try:
        yield server.bind_addr[1]
    finally:
        server.stop()
        thread.join(5)


def test_https_mutual_authentication(
    https: int, domain: DomainFiles, foreign: DomainFiles, failures: Failures
) -> None:
    clients = _clients(domain, foreign)
    session = requests_session(clients["domain"])
    response = session.get(f"https://localhost:{https}/ITI-18", timeout=10)
    assert response.status_code == 200
    assert response.text == "ITI-18 CN=hospital-a,O=XDS-I Demo Affinity Domain"
    session.close()
    assert failures.seen == []
    for name in ("anonymous", "foreign"):
        refused = requests_session(clients[name])
        with pytest.raises(requests.exceptions.RequestException):
            refused.get(f"https://localhost:{https}/ITI-18", timeout=10)
        refused.close()
    reported = failures.wait(2)
    assert [peer for peer, _reason in reported] == ["127.0.0.1", "127.0.0.1"]
    assert "did not return a certificate" in reported[0][1]
    assert "certificate verify failed" in reported[1][1]


def test_https_probe_is_no_authentication_failure(https: int, failures: Failures) -> None:
    socket.create_connection(("127.0.0.1", https), timeout=5).close()  # a port scanner
    with socket.create_connection(("127.0.0.1", https), timeout=5) as plain:
        plain.sendall(b"GET / HTTP/1.0\r\n\r\n")  # plain HTTP on the TLS port
        with contextlib.suppress(OSError):
            plain.recv(100)
    assert failures.wait(1, timeout=1.0) == []


def test_https_access_rules(https: int, domain: DomainFiles) -> None:
    hospital = requests_session(_files(domain, "hospital-a").client())
    assert hospital.get(f"https://localhost:{https}/ITI-41", timeout=10).status_code == 200
    assert hospital.get(f"https://localhost:{https}/ITI-42", timeout=10).status_code == 403
    hospital.close()
    region = requests_session(_files(domain, "region").client())
    assert region.get(f"https://localhost:{https}/ITI-42", timeout=10).status_code == 200
    region.close()


def test_client_refuses_a_server_of_another_domain(https: int, foreign: DomainFiles) -> None:
    session = requests_session(_files(foreign, "hospital-a").client())  # trusts the other CA only
    with pytest.raises(requests.exceptions.SSLError):
        session.get(f"https://localhost:{https}/ITI-18", timeout=10)
    session.close()


def test_requests_kwargs_work_with_plain_requests(https: int, domain: DomainFiles) -> None:
    kwargs = _files(domain, "hospital-a").requests_kwargs()
    response = requests.get(f"https://localhost:{https}/ITI-43", timeout=10, **kwargs)
    assert response.status_code == 200


def test_tls_versions_below_1_2_are_refused(https: int, domain: DomainFiles) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(domain.ca_certificate)
    context.set_ciphers("DEFAULT:@SECLEVEL=0")  # let this client really offer TLS 1.1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.TLSv1_1
        context.maximum_version = ssl.TLSVersion.TLSv1_1
    raw = socket.create_connection(("127.0.0.1", https), timeout=10)
    with raw, pytest.raises(ssl.SSLError, match=r"(?i)protocol|version"):
        context.wrap_socket(raw, server_hostname="localhost")


# -- MLLP (asyncio) -------------------------------------------------------------------------------


@pytest.fixture
def mllp(domain: DomainFiles) -> Iterator[int]:
    server = MLLPServer(
        lambda message: ACK, host="127.0.0.1", port=0, ssl_context=_files(domain, "region").server()
    )
    _host, port = server.start()
    try:
        yield port
    finally:
        server.stop()


def test_mllp_mutual_authentication(mllp: int, domain: DomainFiles, foreign: DomainFiles) -> None:
    clients = _clients(domain, foreign)
    with MLLPClient("localhost", mllp, timeout=10, ssl_context=clients["domain"]) as client:
        assert client.send(HL7) == ACK
    for name in ("anonymous", "foreign"):
        with (
            pytest.raises(REFUSED),
            MLLPClient("localhost", mllp, timeout=10, ssl_context=clients[name]) as client,
        ):
            client.send(HL7)


# -- DICOM (pynetdicom) ----------------------------------------------------------------------------


@pytest.fixture
def dicom(domain: DomainFiles, failures: Failures) -> Iterator[int]:
    def on_requested(event: Any) -> None:
        caller = peer_from_ssl(event.assoc.dul.socket.socket)
        if not RULES.allowed(caller, "C-ECHO"):
            # A-ASSOCIATE-RJ: rejected-permanent, service-user, no reason given (PS3.8 §9.3.4);
            # kill() lets the DUL send it before the association thread closes the socket.
            event.assoc.acse.send_reject(0x01, 0x01, 0x01)
            event.assoc.kill()

    ae = AE(ae_title="XDSI_SOURCE")
    ae.add_supported_context(Verification)
    ae.network_timeout = 10
    server = ae.start_server(
        ("127.0.0.1", 0),
        block=False,
        ssl_context=_files(domain, "region").dicom_server(on_handshake_failure=failures),
        evt_handlers=[(evt.EVT_REQUESTED, on_requested)],
    )
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()


def _echo(port: int, context: ssl.SSLContext) -> tuple[bool, bool]:
    """(established, rejected) of an association with a C-ECHO."""
    ae = AE(ae_title="HOSPITAL_A")
    ae.add_requested_context(Verification)
    ae.acse_timeout = ae.connection_timeout = ae.network_timeout = 5
    assoc = ae.associate("127.0.0.1", port, ae_title="XDSI_SOURCE", tls_args=(context, "localhost"))
    established, rejected = assoc.is_established, assoc.is_rejected
    if established:
        status = assoc.send_c_echo()
        assert status.Status == 0x0000
        assoc.release()
    else:
        # pynetdicom leaves the requestor's TLS socket open when the peer drops it.
        leftover = getattr(assoc.dul.socket, "socket", None)
        if leftover is not None:
            leftover.close()
    return established, rejected


def test_dicom_mutual_authentication(
    dicom: int, domain: DomainFiles, foreign: DomainFiles, failures: Failures
) -> None:
    clients = _clients(domain, foreign)
    assert _echo(dicom, clients["domain"]) == (True, False)
    assert failures.seen == []
    assert _echo(dicom, clients["anonymous"])[0] is False
    assert _echo(dicom, clients["foreign"])[0] is False
    reported = failures.wait(2)
    assert len(reported) == 2 and all(peer == "127.0.0.1" for peer, _r in reported)
    assert "did not return a certificate" in reported[0][1]
    assert "certificate verify failed" in reported[1][1]


def test_dicom_access_rules_reject_the_association(dicom: int, domain: DomainFiles) -> None:
    region = _files(domain, "region").client()  # authenticated, but no rule grants it C-ECHO
    assert _echo(dicom, region) == (False, True)


def test_dicom_silent_client_does_not_block_others(dicom: int, domain: DomainFiles) -> None:
    # Connects and never starts the TLS handshake. With the handshake in the listener thread
    # (pynetdicom's default wrap_socket) the next association would wait behind it and time out.
    with socket.create_connection(("127.0.0.1", dicom), timeout=10):
        assert _echo(dicom, _files(domain, "hospital-a").client()) == (True, False)
