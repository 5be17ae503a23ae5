"""Peer identities from certificates, getpeercert() dicts and cheroot's WSGI environ."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization

from gateway.security import peer
from gateway.security.certs import DomainFiles, init_domain


@pytest.fixture(scope="module")
def domain(tmp_path_factory: pytest.TempPathFactory) -> DomainFiles:
    return init_domain(tmp_path_factory.mktemp("certs"), nodes=("hospital-a",))


def test_from_pem(domain: DomainFiles) -> None:
    identity = peer.peer_from_pem(domain.nodes["hospital-a"].certificate.read_text())
    assert identity.subject == "CN=hospital-a,O=XDS-I Demo Affinity Domain"
    assert identity.rdns == (("O", "XDS-I Demo Affinity Domain"), ("CN", "hospital-a"))
    assert identity.sans == ("DNS:hospital-a.example", "DNS:localhost", "IP:127.0.0.1")
    assert identity.issuer == "CN=XDS-I Demo Affinity Domain CA,O=XDS-I Demo Affinity Domain"
    assert identity.common_name == "hospital-a"


def test_from_der_equals_from_pem(domain: DomainFiles) -> None:
    from cryptography import x509

    pem = domain.nodes["hospital-a"].certificate.read_bytes()
    der = x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)
    assert peer.peer_from_der(der) == peer.peer_from_pem(pem)


def test_from_getpeercert_dict() -> None:
    info = {
        "subject": ((("organizationName", "Org, Inc"),), (("commonName", "node-1"),)),
        "issuer": ((("commonName", "Root"),),),
        "subjectAltName": (("DNS", "node-1.example"), ("IP Address", "10.0.0.1"), ("URI", "u:x")),
    }
    identity = peer.peer_from_getpeercert(info)
    assert identity is not None
    assert identity.subject == "CN=node-1,O=Org\\, Inc"
    assert identity.sans == ("DNS:node-1.example", "IP:10.0.0.1", "URI:u:x")
    assert peer.peer_from_getpeercert({}) is None


def test_from_wsgi_environ(domain: DomainFiles) -> None:
    pem = domain.nodes["hospital-a"].certificate.read_text()
    identity = peer.peer_from_wsgi_environ({"SSL_CLIENT_CERT": pem, "SSL_CLIENT_VERIFY": "SUCCESS"})
    assert identity is not None and identity.common_name == "hospital-a"
    assert peer.peer_from_wsgi_environ({}) is None
    assert (
        peer.peer_from_wsgi_environ({"SSL_CLIENT_CERT": pem, "SSL_CLIENT_VERIFY": "NONE"}) is None
    )


def test_from_ssl_without_tls() -> None:
    assert peer.peer_from_ssl(None) is None
    assert peer.peer_from_ssl(object()) is None  # type: ignore[arg-type]


def test_parse_dn_with_escapes_and_long_names() -> None:
    pairs = peer.parse_dn(r"commonName=a\,b, O = Org + OU=Unit")
    assert pairs == (("CN", "a,b"), ("O", "Org"), ("OU", "Unit"))
    with pytest.raises(ValueError):
        peer.parse_dn("not a dn")


def test_dn_key_ignores_order_case_and_spaces() -> None:
    one = peer.dn_key(peer.parse_dn("CN=Hospital-A,O=XDS-I  Demo"))
    two = peer.dn_key(peer.parse_dn("o=xds-i demo, cn=hospital-a"))
    assert one == two
    assert one != peer.dn_key(peer.parse_dn("CN=hospital-b,O=XDS-I Demo"))
