"""The HTTP server speaks TLS with client-certificate authentication when given PEM files."""

from __future__ import annotations

import datetime
import http.client
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.soap.server import HttpServer, TlsFiles


def _write_cert(directory: Path, name: str, issuer: tuple | None = None) -> tuple:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    issuer_name, issuer_key = (issuer[0].subject, issuer[1]) if issuer else (subject, key)
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
    cert = builder.sign(issuer_key, hashes.SHA256())
    cert_path, key_path = directory / f"{name}.pem", directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert, key, cert_path, key_path


def _app(environ, start_response):  # a minimal WSGI app: the server, not the app, is under test
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]


def test_https_with_mutual_authentication(tmp_path: Path) -> None:
    ca = _write_cert(tmp_path, "ca")
    server_cert = _write_cert(tmp_path, "server", issuer=(ca[0], ca[1]))
    client_cert = _write_cert(tmp_path, "client", issuer=(ca[0], ca[1]))
    server = HttpServer(
        _app,
        host="127.0.0.1",
        port=0,
        threads=4,
        tls=TlsFiles(
            certificate=str(server_cert[2]), private_key=str(server_cert[3]), ca_file=str(ca[2])
        ),
    )
    host, port = server.start()
    try:
        context = ssl.create_default_context(cafile=str(ca[2]))
        context.load_cert_chain(str(client_cert[2]), str(client_cert[3]))
        conn = http.client.HTTPSConnection(host, port, context=context, timeout=10)
        conn.request("GET", "/")
        assert conn.getresponse().read() == b"ok"
        conn.close()

        anonymous = ssl.create_default_context(cafile=str(ca[2]))  # no client certificate
        conn = http.client.HTTPSConnection(host, port, context=anonymous, timeout=10)
        with pytest.raises((ssl.SSLError, ConnectionError, http.client.HTTPException)):
            conn.request("GET", "/")
            conn.getresponse().read()
        conn.close()

    finally:
        server.stop()
