"""The HTTP server speaks TLS with client-certificate authentication when given PEM files."""

from __future__ import annotations

import http.client
import ssl
from pathlib import Path

import pytest

from gateway.security.certs import init_domain
from gateway.soap.server import HttpServer, TlsFiles


def _app(environ, start_response):  # a minimal WSGI app: the server, not the app, is under test
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]


def test_https_with_mutual_authentication(tmp_path: Path) -> None:
    domain = init_domain(tmp_path / "certs", nodes=("server", "client"))
    ca_file = str(domain.ca_certificate)
    server_node, client_node = domain.nodes["server"], domain.nodes["client"]
    client_files = (str(client_node.certificate), str(client_node.private_key))
    server = HttpServer(
        _app,
        host="127.0.0.1",
        port=0,
        threads=4,
        tls=TlsFiles(
            certificate=str(server_node.certificate),
            private_key=str(server_node.private_key),
            ca_file=ca_file,
        ),
    )
    host, port = server.start()
    try:
        context = ssl.create_default_context(cafile=ca_file)
        context.load_cert_chain(*client_files)
        conn = http.client.HTTPSConnection(host, port, context=context, timeout=10)
        conn.request("GET", "/")
        assert conn.getresponse().read() == b"ok"
        conn.close()

        anonymous = ssl.create_default_context(cafile=ca_file)  # no client certificate
        conn = http.client.HTTPSConnection(host, port, context=anonymous, timeout=10)
        with pytest.raises((ssl.SSLError, ConnectionError, http.client.HTTPException)):
            conn.request("GET", "/")
            conn.getresponse().read()
        conn.close()

    finally:
        server.stop()
