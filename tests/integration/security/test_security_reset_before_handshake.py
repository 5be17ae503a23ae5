"""A peer that resets the TCP connection before the TLS handshake leaves no socket open.

CPython before 3.11.8 / 3.12.2 (gh-113280) drops the half-made ``SSLSocket`` unclosed in that
case; the gateway's ``wrap_socket`` closes it. Seen for real: the audit sender connecting while
rsyslog restarted, the leaked descriptor reported later as a ResourceWarning in another test.
"""

from __future__ import annotations

import gc
import socket
import ssl
import struct
import time
import warnings
from collections.abc import Callable
from types import SimpleNamespace

import pytest

from gateway.audit import transport
from gateway.audit.transport import TlsSyslog
from gateway.security import tls
from gateway.security.certs import DomainFiles, init_domain


@pytest.fixture(scope="module")
def domain(tmp_path_factory: pytest.TempPathFactory) -> DomainFiles:
    return init_domain(tmp_path_factory.mktemp("certs"), nodes=("region", "hospital-a"))


def _reset(sock: socket.socket) -> None:
    """Close with SO_LINGER 0: the peer gets an RST, not a FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def _wait_reset(sock: socket.socket) -> None:
    """Wait until the kernel has taken the RST: ``getpeername`` then fails (ENOTCONN)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            sock.getpeername()
        except OSError:
            return
        time.sleep(0.01)
    raise AssertionError("the connection was not reset")


def _reset_connection() -> socket.socket:
    """A client socket whose connection the server has accepted and then reset."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname(), timeout=5)
        conn, _address = listener.accept()
        _reset(conn)
    _wait_reset(client)
    return client


def _resource_warnings(action: Callable[[], None]) -> list[str]:
    """Run ``action``, collect garbage, and return the ResourceWarnings raised meanwhile."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()  # garbage of earlier tests first: only this action's is counted
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        action()
        gc.collect()
    return [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]


def test_client_wrap_of_a_reset_connection_closes_everything(domain: DomainFiles) -> None:
    context = tls.client_context(domain.ca_certificate)

    def connect() -> None:
        raw = _reset_connection()
        with pytest.raises(OSError):
            tls.wrap_socket(context, raw, server_hostname="localhost")
        assert raw.fileno() == -1

    assert _resource_warnings(connect) == []


@pytest.mark.parametrize("make_context", [tls.server_context, tls.dicom_server_context])
def test_server_wrap_of_a_reset_connection_closes_everything(
    domain: DomainFiles, make_context: Callable[..., ssl.SSLContext]
) -> None:
    """Listeners wrap with the context itself (cheroot: ``server_context``; the DICOM listener
    and pynetdicom: ``dicom_server_context``), so the context must clean up on its own."""
    node = domain.nodes["region"]
    context = make_context(node.certificate, node.private_key, domain.ca_certificate)

    def accept() -> None:
        with socket.create_server(("127.0.0.1", 0)) as listener:
            client = socket.create_connection(listener.getsockname(), timeout=5)
            conn, _address = listener.accept()
            _reset(client)
            _wait_reset(conn)
            with pytest.raises(OSError):
                context.wrap_socket(conn, server_side=True)
            conn.close()

    assert _resource_warnings(accept) == []


def test_audit_sender_to_a_resetting_receiver_leaks_nothing(
    domain: DomainFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    node = domain.nodes["hospital-a"]
    context = tls.client_context(domain.ca_certificate, node.certificate, node.private_key)
    destination = TlsSyslog("127.0.0.1", 6514, context, connect_timeout=2.0)
    # the receiver resets the connection before the TLS handshake starts
    dial = SimpleNamespace(create_connection=lambda *_args, **_kwargs: _reset_connection())
    monkeypatch.setattr(transport, "socket", dial)

    def send() -> None:
        with pytest.raises(OSError):
            destination.write([b"<85>1 - - - - - - x"])
        destination.close()

    assert _resource_warnings(send) == []
