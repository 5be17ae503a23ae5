"""RAD-68 to a remote repository: the SOAP repository client sends ITI-41 as an MTOM/XOP package
over HTTP to a stand-in repository endpoint (the real repository is wired by the application)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from lxml import etree

from gateway.errors import XDSRepositoryMetadataError
from gateway.imaging import synthetic
from gateway.imaging.publisher import FAILED_OUTCOME, PUBLISHED_OUTCOME
from gateway.imaging.rad68 import PublishError, SoapRepositoryClient
from gateway.metadata.ebrim import parse_submit_objects_request
from gateway.metadata.retrieve import Status, build_registry_response
from gateway.soap import ns
from gateway.soap import transactions as tx
from gateway.soap.dispatch import Context, Limits, SoapApplication
from gateway.soap.message import Attachment, SoapRequest, SoapResponse
from gateway.soap.server import HttpServer
from tests.unit.imaging.support import encoded_study, make_source, study_spec


class StandInRepository:
    """An ITI-41 endpoint that keeps what it received."""

    def __init__(self) -> None:
        self.requests: list[tuple[SoapRequest, dict[str, bytes]]] = []
        self.refuse = False

    def __call__(self, request: SoapRequest, ctx: Context) -> SoapResponse:
        if self.refuse:
            raise XDSRepositoryMetadataError("refused by the stand-in")
        contents = {cid: a.read_bytes() for cid, a in request.attachments.items()}
        self.requests.append((request, contents))
        return SoapResponse(body=build_registry_response(Status.SUCCESS))


@pytest.fixture
def remote(tmp_path: Path) -> Iterator[tuple[str, StandInRepository]]:
    repository = StandInRepository()
    app = SoapApplication(Limits(spool_dir=tmp_path / "spool"))
    endpoint = app.endpoint(tx.REPOSITORY_PATH, tx.ENDPOINTS[tx.REPOSITORY_PATH])
    endpoint.bind(tx.ITI_41, repository)
    server = HttpServer(app, host="127.0.0.1", port=0, threads=2, shutdown_timeout=5)
    host, port = server.start()
    try:
        yield f"http://{host}:{port}{tx.REPOSITORY_PATH}", repository
    finally:
        server.stop()


def test_manifest_travels_as_mtom_to_a_remote_repository(
    tmp_path: Path, remote: tuple[str, StandInRepository]
) -> None:
    url, repository = remote
    source = make_source(tmp_path, SoapRepositoryClient(url), idle=0)
    spec = study_spec()
    for data in encoded_study(spec):
        source.ingest.store_encoded(data)
    [result] = source.publish_due()
    assert result.outcome == PUBLISHED_OUTCOME
    [(request, contents)] = repository.requests
    assert request.mtom and request.action == tx.ITI_41.action
    document = request.body.find(ns.qname(ns.XDSB, "Document"))
    assert document is not None and document.get("id") == result.entry_uuid
    kos = pydicom.dcmread(io.BytesIO(request.attachment_for(document).read_bytes()))
    assert kos.SOPInstanceUID == result.manifest_uid
    submission = parse_submit_objects_request(request.body, repository=True)
    assert submission.document_entries[0].unique_id == result.manifest_uid
    assert len(contents) == 1


def test_refusal_and_unreachable_repository_are_publish_errors(
    tmp_path: Path, remote: tuple[str, StandInRepository]
) -> None:
    url, repository = remote
    repository.refuse = True
    source = make_source(tmp_path, SoapRepositoryClient(url), idle=0)
    for data in encoded_study(study_spec(series=(synthetic.SeriesSpec(modality="CT", count=1),))):
        source.ingest.store_encoded(data)
    [result] = source.publish_due()
    assert result.outcome == FAILED_OUTCOME and "XDSRepositoryMetadataError" in result.detail
    client = SoapRepositoryClient("http://127.0.0.1:9/xds/repository", timeout=5)
    with pytest.raises(PublishError, match=r"127\.0\.0\.1:9"):
        client.provide_and_register(
            etree.Element(tx.ITI_41.request_qname), [Attachment.from_bytes(b"x")]
        )
