"""The repository against a registry reached over SOAP (SoapRegistryClient): ITI-42 with
WS-Addressing over HTTP and over HTTPS with client certificates, rejection leaving no file,
GetDocuments for the recovery sweep, and an unreachable registry."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from lxml import etree

from gateway.errors import XDSPatientIdDoesNotMatch, XDSRegistryNotAvailable
from gateway.repository.actor import Repository
from gateway.repository.registry_client import SoapRegistryClient
from gateway.security.certs import init_domain
from gateway.soap import ns
from gateway.soap.dispatch import Context, Limits, SoapApplication
from gateway.soap.message import SoapRequest, SoapResponse
from gateway.soap.server import HttpServer, TlsFiles
from gateway.soap.transactions import ENDPOINTS, ITI_18, ITI_42, REGISTRY_PATH
from tests.integration.repository.repo_support import (
    REPOSITORY_UID,
    FakeRegistry,
    failure,
    provided_documents,
    status_of,
    stored_files,
    submission_with,
)
from tests.support.site import Site, site_at

DOC = b"remote registry test\n"


@dataclass
class RemoteRegistry:
    fake: FakeRegistry
    url: str
    headers: list[list[etree._Element]]


def _serve(
    tmp: Path, fake: FakeRegistry, tls: TlsFiles | None
) -> tuple[HttpServer, RemoteRegistry]:
    app = SoapApplication(Limits(spool_dir=tmp / "spool"))
    seen: list[list[etree._Element]] = []

    def register(request: SoapRequest, ctx: Context) -> SoapResponse:
        seen.append(request.headers)
        return SoapResponse(body=fake.register(request.body))

    def query(request: SoapRequest, ctx: Context) -> SoapResponse:
        return SoapResponse(body=fake.query(request.body))

    endpoint = app.endpoint(REGISTRY_PATH, ENDPOINTS[REGISTRY_PATH])
    endpoint.bind(ITI_42, register)
    endpoint.bind(ITI_18, query)
    server = HttpServer(app, host="127.0.0.1", port=0, threads=4, tls=tls)
    host, port = server.start()
    scheme = "https" if tls else "http"
    return server, RemoteRegistry(fake, f"{scheme}://{host}:{port}{REGISTRY_PATH}", seen)


@pytest.fixture
def remote(tmp_path: Path) -> Iterator[RemoteRegistry]:
    server, registry = _serve(tmp_path, FakeRegistry(), None)
    try:
        yield registry
    finally:
        server.stop()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    with site_at(f"sqlite:///{tmp_path / 'gateway.sqlite'}") as opened:
        yield opened


def _repository(root: Path, client: SoapRegistryClient, site: Site) -> Repository:
    repo = Repository.open(
        root,
        unique_id=REPOSITORY_UID,
        registry=client,
        engine=site.engine,
        owner=site.process().owner,
        retry_seconds=3600,
    )
    repo.start()
    return repo


def test_provide_registers_over_soap_with_ws_addressing(
    tmp_path: Path, remote: RemoteRegistry, site: Site
) -> None:
    repo = _repository(tmp_path / "repo", SoapRegistryClient(remote.url, timeout=10), site)
    try:
        response = repo.provide(submission_with([DOC]), provided_documents([DOC]))
        assert status_of(response) == "Success"
        [headers] = remote.headers
        actions = [h.text for h in headers if h.tag == ns.qname(ns.WSA, "Action")]
        assert actions == [ITI_42.action]
        assert repo.registry.is_registered(submission_uid(), REPOSITORY_UID) is True
        assert repo.registry.is_registered("1.2.3.404", REPOSITORY_UID) is False
    finally:
        repo.stop()


def submission_uid() -> str:
    return submission_with([DOC]).document_entries[0].unique_id or ""


def test_registry_rejection_leaves_no_file(
    tmp_path: Path, remote: RemoteRegistry, site: Site
) -> None:
    remote.fake.answer = failure(XDSPatientIdDoesNotMatch("not the same patient"))
    repo = _repository(tmp_path / "repo", SoapRegistryClient(remote.url, timeout=10), site)
    try:
        response = repo.provide(submission_with([DOC]), provided_documents([DOC]))
        assert status_of(response) == "Failure"
        codes = [e.get("errorCode") for e in response.iter(ns.qname(ns.RS, "RegistryError"))]
        assert codes == ["XDSPatientIdDoesNotMatch"]
        assert stored_files(tmp_path / "repo") == []
    finally:
        repo.stop()


def test_unreachable_registry(tmp_path: Path, site: Site) -> None:
    client = SoapRegistryClient("http://127.0.0.1:9/xds/registry", timeout=5)
    repo = _repository(tmp_path / "repo", client, site)
    try:
        with pytest.raises(XDSRegistryNotAvailable, match="did not answer"):
            repo.provide(submission_with([DOC]), provided_documents([DOC]))
        assert repo.index.counts()["unresolved"] == 1  # kept, unserved, until the registry answers
    finally:
        repo.stop()


def test_https_with_client_certificate(tmp_path: Path, site: Site) -> None:
    domain = init_domain(tmp_path / "certs", nodes=("server", "client"))
    ca = str(domain.ca_certificate)
    server_node, client_node = domain.nodes["server"], domain.nodes["client"]
    tls = TlsFiles(
        certificate=str(server_node.certificate),
        private_key=str(server_node.private_key),
        ca_file=ca,
    )
    server, remote = _serve(tmp_path, FakeRegistry(), tls)
    try:
        client = SoapRegistryClient(
            remote.url,
            timeout=10,
            verify=ca,
            cert=(str(client_node.certificate), str(client_node.private_key)),
        )
        repo = _repository(tmp_path / "repo", client, site)
        try:
            response = repo.provide(submission_with([DOC]), provided_documents([DOC]))
            assert status_of(response) == "Success"
        finally:
            repo.stop()
        untrusted = SoapRegistryClient(remote.url, timeout=10, verify=ca)  # no client cert
        with pytest.raises(XDSRegistryNotAvailable):
            untrusted.register(etree.Element(ITI_42.request_qname))
    finally:
        server.stop()
