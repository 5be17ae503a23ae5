"""TLS contexts: TLS 1.2 floor, BCP 195 ciphers, no compression/renegotiation, mutual auth."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from gateway.security import tls
from gateway.security.certs import DomainFiles, init_domain

RFC9325_SUITES = {
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
}


@pytest.fixture(scope="module")
def domain(tmp_path_factory: pytest.TempPathFactory) -> DomainFiles:
    return init_domain(tmp_path_factory.mktemp("certs"), nodes=("region", "hospital-a"))


def _tls12_suites(context: ssl.SSLContext) -> set[str]:
    return {c["name"] for c in context.get_ciphers() if c["protocol"] == "TLSv1.2"}


def test_server_context_policy(domain: DomainFiles) -> None:
    node = domain.nodes["region"]
    context = tls.server_context(node.certificate, node.private_key, domain.ca_certificate)
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.options & ssl.OP_NO_COMPRESSION
    assert context.options & ssl.OP_NO_RENEGOTIATION
    assert _tls12_suites(context) == RFC9325_SUITES


def test_optional_client_certificate(domain: DomainFiles) -> None:
    node = domain.nodes["region"]
    context = tls.server_context(
        node.certificate, node.private_key, domain.ca_certificate, require_client_cert=False
    )
    assert context.verify_mode == ssl.CERT_OPTIONAL


def test_mutual_authentication_needs_a_ca(domain: DomainFiles) -> None:
    node = domain.nodes["region"]
    with pytest.raises(tls.TlsConfigError, match="CA"):
        tls.server_context(node.certificate, node.private_key, None)
    context = tls.server_context(
        node.certificate, node.private_key, None, require_client_cert=False
    )
    assert context.verify_mode == ssl.CERT_NONE


def test_client_context_policy(domain: DomainFiles) -> None:
    node = domain.nodes["hospital-a"]
    context = tls.client_context(domain.ca_certificate, node.certificate, node.private_key)
    assert context.check_hostname is True
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.options & ssl.OP_NO_COMPRESSION
    assert _tls12_suites(context) == RFC9325_SUITES


def test_custom_cipher_list(domain: DomainFiles) -> None:
    context = tls.client_context(domain.ca_certificate, ciphers="ECDHE-RSA-AES256-GCM-SHA384")
    assert _tls12_suites(context) == {"ECDHE-RSA-AES256-GCM-SHA384"}


def test_missing_files_are_reported(tmp_path: Path, domain: DomainFiles) -> None:
    node = domain.nodes["region"]
    with pytest.raises(tls.TlsConfigError, match="does not exist"):
        tls.server_context(tmp_path / "nope.pem", node.private_key, domain.ca_certificate)
    with pytest.raises(tls.TlsConfigError, match="does not exist"):
        tls.client_context(tmp_path / "nope-ca.pem")
    with pytest.raises(tls.TlsConfigError, match="not configured"):
        tls.client_context("")


def test_key_of_another_certificate_is_refused(domain: DomainFiles) -> None:
    region, hospital = domain.nodes["region"], domain.nodes["hospital-a"]
    with pytest.raises(tls.TlsConfigError, match="cannot load certificate"):
        tls.server_context(region.certificate, hospital.private_key, domain.ca_certificate)


def test_tls_files_bundle(domain: DomainFiles) -> None:
    node = domain.nodes["hospital-a"]
    files = tls.TlsFiles(
        certificate=str(node.certificate),
        private_key=str(node.private_key),
        ca_file=str(domain.ca_certificate),
    )
    assert files.server().verify_mode == ssl.CERT_REQUIRED
    assert isinstance(files.dicom_server(), tls.DeferredHandshakeContext)
    assert files.client().check_hostname
    assert files.requests_kwargs() == {
        "verify": str(domain.ca_certificate),
        "cert": (str(node.certificate), str(node.private_key)),
    }


def test_requests_session_mounts_the_context(domain: DomainFiles) -> None:
    node = domain.nodes["hospital-a"]
    context = tls.client_context(domain.ca_certificate, node.certificate, node.private_key)
    session = tls.requests_session(context)
    adapter = session.get_adapter("https://peer.example/xds/registry")
    assert adapter.poolmanager.connection_pool_kw["ssl_context"] is context
    session.close()


def _ssl_error(cls: type[ssl.SSLError], reason: str | None) -> ssl.SSLError:
    error = cls(1, "handshake")
    error.reason = reason
    return error


def test_which_handshake_failures_are_authentication_failures() -> None:
    unknown_ca = _ssl_error(ssl.SSLCertVerificationError, "CERTIFICATE_VERIFY_FAILED")
    unknown_ca.verify_message = "unable to get local issuer certificate"
    assert tls.authentication_failure(unknown_ca) == (
        "certificate verify failed: unable to get local issuer certificate"
    )
    no_cert = _ssl_error(ssl.SSLError, "PEER_DID_NOT_RETURN_A_CERTIFICATE")
    assert tls.authentication_failure(no_cert) == "peer did not return a certificate"
    old = _ssl_error(ssl.SSLError, "UNSUPPORTED_PROTOCOL")
    assert tls.authentication_failure(old) == "unsupported protocol"
    # Not authentication attempts: a probe that hangs up, plain HTTP, a reset.
    assert tls.authentication_failure(_ssl_error(ssl.SSLEOFError, None)) is None
    assert tls.authentication_failure(_ssl_error(ssl.SSLError, "HTTP_REQUEST")) is None
    assert tls.authentication_failure(ConnectionResetError()) is None


def test_failure_reports_never_raise(caplog: pytest.LogCaptureFixture) -> None:
    def broken(_peer: str | None, _reason: str) -> None:
        raise RuntimeError("audit trail down")

    tls.report_failure(broken, "10.0.0.1", "unknown ca")  # logged, not raised
    tls.report_failure(None, "10.0.0.1", "unknown ca")
    assert "report failed" in caplog.text


def test_dicom_context_defers_and_reports(domain: DomainFiles) -> None:
    node = domain.nodes["region"]
    seen: list[tuple[str | None, str]] = []
    context = tls.dicom_server_context(
        node.certificate,
        node.private_key,
        domain.ca_certificate,
        on_handshake_failure=lambda peer, reason: seen.append((peer, reason)),
    )
    assert isinstance(context, tls.DeferredHandshakeContext)
    assert issubclass(context.sslsocket_class, ssl.SSLSocket)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert _tls12_suites(context) == RFC9325_SUITES
