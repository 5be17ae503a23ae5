"""RAD-68 over real sockets: manifests of different studies go out in parallel, one study never
has two on their way, and a manifest whose answer is lost is registered exactly once.

The parallel tests use a slow stand-in repository that records when each ITI-41 arrives and
finishes (overlap of two intervals proves they were in flight together; no duration is
asserted). The lost-answer test runs a whole gateway (registry and repository) behind a peer that
forwards the ITI-41 and cuts its answer short after the headers, once.
"""

from __future__ import annotations

import io
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
import pytest
from lxml import etree
from requests_toolbelt.multipart.decoder import MultipartDecoder

from gateway.app import Gateway
from gateway.config import load_settings
from gateway.hl7.mllp import send_messages
from gateway.imaging import synthetic
from gateway.imaging.publisher import BUSY_OUTCOME, FAILED_OUTCOME, PUBLISHED_OUTCOME
from gateway.imaging.rad68 import SoapRepositoryClient
from gateway.imaging.source import ImagingSource
from gateway.metadata.ebrim import parse_registry_object_list
from gateway.metadata.model import DocumentEntry
from gateway.metadata.retrieve import Status, build_registry_response
from gateway.soap import ns
from gateway.soap import transactions as tx
from gateway.soap.client import SoapClient
from gateway.soap.dispatch import Context, Limits, SoapApplication
from gateway.soap.message import SoapRequest, SoapResponse
from gateway.soap.server import HttpServer
from tests.support.cutting_peer import CuttingPeer, Received
from tests.unit.imaging.support import DOMAIN_OID, encoded_study, make_source, study_spec


@dataclass
class Interval:
    study_uid: str
    manifest_uid: str
    arrived: float
    finished: float = 0.0


@dataclass
class SlowRepository:
    """An ITI-41 endpoint that answers Success slowly and records each request's interval.

    The first request waits (at most ``gate_timeout``) until ``gate_after`` requests have
    arrived, so two publications can only both finish when they really were sent together.
    """

    gate_after: int = 2
    gate_timeout: float = 20.0
    linger: float = 0.2
    intervals: list[Interval] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    gate: threading.Event = field(default_factory=threading.Event)

    def __call__(self, request: SoapRequest, ctx: Context) -> SoapResponse:
        document = request.body.find(ns.qname(ns.XDSB, "Document"))
        assert document is not None
        kos = pydicom.dcmread(io.BytesIO(request.attachment_for(document).read_bytes()))
        interval = Interval(
            study_uid=str(kos.StudyInstanceUID),
            manifest_uid=str(kos.SOPInstanceUID),
            arrived=time.monotonic(),
        )
        with self.lock:
            self.intervals.append(interval)
            if len(self.intervals) >= self.gate_after:
                self.gate.set()
        self.gate.wait(self.gate_timeout)
        time.sleep(self.linger)  # a slow repository: keeps the request in flight a little
        interval.finished = time.monotonic()
        return SoapResponse(body=build_registry_response(Status.SUCCESS))


@pytest.fixture
def slow(tmp_path: Path) -> Iterator[tuple[str, SlowRepository]]:
    repository = SlowRepository()
    app = SoapApplication(Limits(spool_dir=tmp_path / "spool"))
    endpoint = app.endpoint(tx.REPOSITORY_PATH, tx.ENDPOINTS[tx.REPOSITORY_PATH])
    endpoint.bind(tx.ITI_41, repository)
    server = HttpServer(app, host="127.0.0.1", port=0, threads=8, shutdown_timeout=5)
    host, port = server.start()
    try:
        yield f"http://{host}:{port}{tx.REPOSITORY_PATH}", repository
    finally:
        server.stop()


def _studies(source: ImagingSource, count: int) -> list[str]:
    uids = []
    for number in range(count):
        spec = study_spec(
            accession_number=f"ACC-{number}",
            series=(synthetic.SeriesSpec(modality="CT", count=2),),
        )
        for data in encoded_study(spec):
            source.ingest.store_encoded(data)
        uids.append(spec.study_uid)
    return uids


def _overlap(a: Interval, b: Interval) -> bool:
    return a.arrived < b.finished and b.arrived < a.finished


def test_two_studies_are_published_in_parallel(
    tmp_path: Path, slow: tuple[str, SlowRepository]
) -> None:
    url, repository = slow
    source = make_source(tmp_path, SoapRepositoryClient(url, timeout=30), idle=0)
    assert source.publisher.config.parallel == 4  # imaging_source.publish_parallel's default
    uids = _studies(source, 2)
    results = source.publish_due()
    source.publisher.close()
    assert sorted(r.study_instance_uid for r in results) == sorted(uids)
    assert {r.outcome for r in results} == {PUBLISHED_OUTCOME}
    first, second = repository.intervals
    assert first.study_uid != second.study_uid
    assert second.arrived < first.finished  # the second went out before the first came back
    assert _overlap(first, second)


def test_one_at_a_time_when_publish_parallel_is_one(
    tmp_path: Path, slow: tuple[str, SlowRepository]
) -> None:
    url, repository = slow
    repository.gate_timeout = 0.5  # nobody else can come: do not keep the test waiting long
    client = SoapRepositoryClient(url, timeout=30)
    source = make_source(tmp_path, client, idle=0, publish_parallel=1)
    _studies(source, 2)
    assert {r.outcome for r in source.publish_due()} == {PUBLISHED_OUTCOME}
    source.publisher.close()
    first, second = sorted(repository.intervals, key=lambda i: i.arrived)
    assert second.arrived >= first.finished


def test_never_two_manifests_of_one_study_at_once(
    tmp_path: Path, slow: tuple[str, SlowRepository], db_url: str
) -> None:
    url, repository = slow
    repository.gate_after = 3
    # Two sources on one database and folder: two gateway processes sharing PostgreSQL/SQLite.
    one = make_source(tmp_path, SoapRepositoryClient(url, timeout=30), idle=0, db_url=db_url)
    two = make_source(tmp_path, SoapRepositoryClient(url, timeout=30), idle=0, db_url=db_url)
    uids = _studies(one, 3)
    start = threading.Barrier(6)
    results: list[object] = []

    def run(action: Callable[[], object]) -> None:
        start.wait(10)
        outcome = action()
        results.extend(outcome if isinstance(outcome, list) else [outcome])

    actions: list[Callable[[], object]] = [
        one.publish_due,
        two.publish_due,
        lambda: one.publish_study(uids[0], force=True),
        lambda: two.publish_study(uids[0], force=True),
        lambda: one.publish_study(uids[1], force=True),
        lambda: two.publish_study(uids[2], force=True),
    ]
    threads = [threading.Thread(target=run, args=(a,)) for a in actions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    one.publisher.close()
    two.publisher.close()

    outcomes = {getattr(r, "outcome", None) for r in results}
    assert outcomes <= {PUBLISHED_OUTCOME, BUSY_OUTCOME}
    for uid in uids:
        sent = sorted(
            (i for i in repository.intervals if i.study_uid == uid), key=lambda i: i.arrived
        )
        assert sent, uid
        for earlier, later in itertools.pairwise(sent):
            assert later.arrived >= earlier.finished, f"two manifests of {uid} in flight"
    published = [r for r in results if getattr(r, "outcome", None) == PUBLISHED_OUTCOME]
    assert len(published) == len(repository.intervals)  # every send was a whole publication
    assert any(  # and different studies did go out together
        _overlap(a, b)
        for a in repository.intervals
        for b in repository.intervals
        if a.study_uid != b.study_uid
    )


# -- a lost answer through a whole gateway -------------------------------------------------------

FIND_DOCUMENTS = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Gateway]:
    settings = load_settings(
        environ={
            "XDSI_GATEWAY_DATA_DIR": str(tmp_path / "data"),
            "XDSI_HTTP_PORT": "0",
            "XDSI_HL7_MLLP_PORT": "0",
            "XDSI_IMAGING_SOURCE_ENABLED": "false",
        }
    )
    gw = Gateway(settings)
    gw.start()
    try:
        yield gw
    finally:
        gw.stop()


def _feed(gw: Gateway, patient: str) -> None:
    adt = (
        "MSH|^~\\&|ADT|HOSP|XDS|REGION|20240102101500||ADT^A01^ADT_A01|MSG-1|P|2.3.1\r"
        "EVN|A01|20240102101500\r"
        f"PID|||{patient}^^^&{DOMAIN_OID}&ISO||Synthetic^Patient||19700101|O\r"
        "PV1||O\r"
    ).encode()
    assert gw.mllp_address is not None
    [ack] = send_messages(*gw.mllp_address, [adt])
    assert b"MSA|AA|MSG-1" in ack


def _approved_manifests(gw: Gateway, patient: str) -> list[DocumentEntry]:
    body = etree.Element(ns.qname(ns.QUERY, "AdhocQueryRequest"), nsmap={"query": ns.QUERY})
    etree.SubElement(body, ns.qname(ns.QUERY, "ResponseOption"), returnType="LeafClass").set(
        "returnComposedObjects", "true"
    )
    adhoc = etree.SubElement(body, ns.qname(ns.RIM, "AdhocQuery"), id=FIND_DOCUMENTS)
    for name, value in (
        ("$XDSDocumentEntryPatientId", f"'{patient}^^^&{DOMAIN_OID}&ISO'"),
        ("$XDSDocumentEntryStatus", "('urn:oasis:names:tc:ebxml-regrep:StatusType:Approved')"),
    ):
        slot = etree.SubElement(adhoc, ns.qname(ns.RIM, "Slot"), name=name)
        etree.SubElement(
            etree.SubElement(slot, ns.qname(ns.RIM, "ValueList")), ns.qname(ns.RIM, "Value")
        ).text = value
    with SoapClient(gw.base_url + tx.REGISTRY_PATH) as client:
        answer = client.call(tx.ITI_18, body)
    objects = parse_registry_object_list(answer.body.find(ns.qname(ns.RIM, "RegistryObjectList")))
    return [o for o in objects if isinstance(o, DocumentEntry)]


def _sent(received: Received) -> tuple[bytes, list[bytes]]:
    """The ITI-41 body (exclusive c14n) and the parts of a request as the peer got it."""
    decoder = MultipartDecoder(received.body, received.headers["content-type"])
    root, *parts = decoder.parts
    envelope = etree.fromstring(root.content)
    body = envelope.find(f"{ns.qname(ns.SOAP12, 'Body')}/{tx.ITI_41.request_qname}")
    assert body is not None
    return etree.tostring(body, method="c14n", exclusive=True), [p.content for p in parts]


def test_manifest_whose_answer_was_lost_is_registered_once(
    tmp_path: Path, gateway: Gateway
) -> None:
    _feed(gateway, "PAT-0042")
    peer = CuttingPeer(
        target=gateway.base_url, cut=lambda number, _size: 0 if number == 0 else None
    )
    base = peer.start()
    try:
        client = SoapRepositoryClient(base + tx.REPOSITORY_PATH, timeout=30)
        source = make_source(tmp_path / "source", client, idle=0, retry_seconds=0)
        spec = study_spec()
        for data in encoded_study(spec):
            source.ingest.store_encoded(data)

        [lost] = source.publish_due()  # registered by the gateway, but the answer is cut off
        assert lost.outcome == FAILED_OUTCOME and "cut off" in lost.detail
        pending = source.index.pending(spec.study_uid)
        assert pending is not None
        assert [e.unique_id for e in _approved_manifests(gateway, "PAT-0042")] == [
            pending.sop_instance_uid
        ]

        [settled] = source.publish_due()  # the same submission again: the registry has it
        assert settled.outcome == PUBLISHED_OUTCOME
        assert settled.manifest_uid == pending.sop_instance_uid
        source.publisher.close()
    finally:
        peer.stop()
    [first, second] = peer.received
    assert _sent(first) == _sent(second)  # the same ITI-41 body and KOS, byte for byte
    [manifest] = _approved_manifests(gateway, "PAT-0042")  # one manifest, not two
    assert manifest.unique_id == settled.manifest_uid
    assert source.index.pending(spec.study_uid) is None
