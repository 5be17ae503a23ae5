"""certs init: a CA and node certificates usable for TLS server and client authentication."""

from __future__ import annotations

import argparse
import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from gateway.security import certs


def _load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


@pytest.fixture(scope="module")
def domain(tmp_path_factory: pytest.TempPathFactory) -> certs.DomainFiles:
    return certs.init_domain(tmp_path_factory.mktemp("domain") / "certs")


def test_default_nodes_and_files(domain: certs.DomainFiles) -> None:
    assert list(domain.nodes) == ["region", "hospital-a", "hospital-b"]
    for node in domain.nodes.values():
        assert node.certificate.is_file() and node.private_key.is_file()
    assert domain.ca_certificate.name == "ca.pem"


def test_private_keys_are_owner_only(domain: certs.DomainFiles) -> None:
    keys = [domain.ca_private_key, *(n.private_key for n in domain.nodes.values())]
    for key in keys:
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key
    assert stat.S_IMODE(domain.directory.stat().st_mode) == 0o700


def test_ca_is_a_ca(domain: certs.DomainFiles) -> None:
    ca = _load(domain.ca_certificate)
    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca
    assert ca.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    assert ca.subject == ca.issuer


def test_node_certificate_profile(domain: certs.DomainFiles) -> None:
    ca = _load(domain.ca_certificate)
    node = domain.nodes["hospital-a"]
    cert = _load(node.certificate)
    cert.verify_directly_issued_by(ca)  # raises when the signature or issuer is wrong
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in usages
    assert ExtendedKeyUsageOID.CLIENT_AUTH in usages
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["hospital-a.example", "localhost"]
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert node.subject == "CN=hospital-a,O=XDS-I Demo Affinity Domain"
    assert cert.subject.rfc4514_string() == node.subject
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)


def test_refuses_to_overwrite(domain: certs.DomainFiles) -> None:
    with pytest.raises(FileExistsError, match="--force"):
        certs.init_domain(domain.directory)


def test_force_and_rsa(tmp_path: Path) -> None:
    certs.init_domain(tmp_path, nodes=("a",))
    again = certs.init_domain(
        tmp_path, nodes=("a",), hosts=("gw.example", "10.1.2.3"), key_type="rsa", force=True
    )
    cert = _load(again.nodes["a"].certificate)
    assert isinstance(cert.public_key(), rsa.RSAPublicKey)
    assert cert.extensions.get_extension_for_class(x509.KeyUsage).value.key_encipherment
    assert again.nodes["a"].sans == ("DNS:a.example", "DNS:gw.example", "IP:10.1.2.3")


@pytest.mark.parametrize("nodes", [(), ("ca",), ("Bad Name",), ("a", "a")])
def test_unusable_node_names(tmp_path: Path, nodes: tuple[str, ...]) -> None:
    with pytest.raises(ValueError):
        certs.init_domain(tmp_path, nodes=nodes)


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="certs")
    certs.add_certs_arguments(parser)
    return parser.parse_args(argv)


def test_cli_init(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = _args("init", str(tmp_path / "d"), "--nodes", "region,hospital-x", "--host", "gw")
    assert args.certs_command == "init"
    assert certs.run_certs_init(args) == 0
    out = capsys.readouterr().out
    assert "CN=hospital-x,O=XDS-I Demo Affinity Domain" in out
    assert "[tls]" in out and "ca_file" in out
    cert = _load(tmp_path / "d" / "hospital-x.pem")
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["hospital-x.example", "gw"]


def test_cli_refuses_existing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert certs.run_certs_init(_args("init", str(tmp_path))) == 0
    assert certs.run_certs_init(_args("init", str(tmp_path))) == 2  # usage: --force replaces
    assert "--force" in capsys.readouterr().err
