"""Acceptance of XCA / XCA-I: three gateways on loopback as communities A, B and C.

Each community is an ``xdsi-gateway serve`` process with every actor; one study of the same
patient is published in each (C-STORE, KOS manifest registered). A and C share the affinity
domain's patient identifiers; B assigns its own, and knows the patient by its own id: A's ITI-8
feed lists both ids (PID-3 repetitions), which is how A's Initiating Gateway asks B about the
right patient. A's Initiating Gateway lists B and C.

Every answer is validated against the official ebRS / IHE schemas (``../shared/conformance``).
The module's last test stops C (the unavailable community of acceptance 2).
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from lxml import etree
from pydicom import dcmread

from gateway.consumer.manifest import read_manifest
from gateway.consumer.queries import KOS_FORMAT_CODE, QueryOptions, build_slots
from gateway.imaging import synthetic
from gateway.metadata.query import AdhocQuery, build_query_request
from gateway.metadata.retrieve import (
    DocumentRequest,
    RetrieveImagingDocumentSetRequest,
    build_imaging_request,
    build_retrieve_request,
    parse_retrieve_response,
)
from gateway.soap import ns
from gateway.soap.client import ClientResponse, SoapClient
from gateway.soap.transactions import (
    IG_ITI_18,
    IG_ITI_43,
    IG_RAD_69,
    ITI_38,
    ITI_39,
    ITI_43,
    RAD_69,
    RAD_75,
    RESPONDING_GATEWAY_PATH,
    Transaction,
)
from tests.integration.consumer.consumer_env import run_consumer
from tests.integration.xca.communities import (
    OTHER_DOMAIN,
    Community,
    Published,
    Relay,
    cx,
    feed,
    publish,
    start_community,
)
from tests.support import schemas

HOME_A, HOME_B, HOME_C = (f"urn:oid:1.3.6.1.4.1.21367.13.70.{n}" for n in (11, 12, 13))
TIMEOUT = 8  # xca.timeout of A (seconds)
SYNTAXES = (synthetic.ExplicitVRLittleEndian, synthetic.ImplicitVRLittleEndian,
            synthetic.JPEGBaseline8Bit)  # fmt: skip


@dataclass(slots=True)
class World:
    a: Community
    b: Community
    c: Community
    patient: str  # the affinity-domain id (A, C)
    patient_b: str  # B's own id of the same patient
    studies: dict[str, Published]  # by community name
    folder: Path
    relay: Relay  # A reaches C through it


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    if schemas.official() is None:
        pytest.skip("../shared/conformance (official schemas) is absent")
    folder = tmp_path_factory.mktemp("xca")
    started: list[Community] = []
    relay: Relay | None = None
    try:
        b = start_community(folder, "b", home=HOME_B, number=12, domain=OTHER_DOMAIN)
        started.append(b)
        c = start_community(folder, "c", home=HOME_C, number=13)
        started.append(c)
        relay = Relay(("127.0.0.1", int(c.base.rsplit(":", 1)[1])))
        a = start_community(
            folder,
            "a",
            home=HOME_A,
            number=11,
            communities=(b, c),
            other_domains={HOME_B: OTHER_DOMAIN},
            urls={HOME_C: relay.url(RESPONDING_GATEWAY_PATH)},
            env={"XDSI_XCA_TIMEOUT": str(TIMEOUT)},
        )
        started.append(a)
        local = f"XCA-{uuid.uuid4().hex[:8].upper()}"
        local_b = f"B-{uuid.uuid4().hex[:8].upper()}"
        patient, patient_b = cx(local), cx(local_b, OTHER_DOMAIN)
        feed(a, patient, patient_b)  # A cross-references the patient's id in B's domain
        feed(b, patient_b)
        feed(c, patient)
        studies = {
            "a": publish(folder, a, local, (3, 2)),
            "b": publish(folder, b, local_b, (2, 3)),
            "c": publish(folder, c, local, (5, 4, 3)),
        }
        yield World(
            a=a,
            b=b,
            c=c,
            patient=patient,
            patient_b=patient_b,
            studies=studies,
            folder=folder,
            relay=relay,
        )
    finally:
        for community in started:
            community.stop()
        if relay is not None:
            relay.close()


# -- helpers --------------------------------------------------------------------------------------


def call(url: str, transaction: Transaction, body: etree._Element) -> ClientResponse:
    """One request with the gateway's own SOAP client; the answer's action is checked."""
    with SoapClient(url, timeout=60) as client:
        answer = client.call(transaction, body)
    assert answer.action == transaction.response_action
    return answer


def valid(element: etree._Element) -> None:
    """The body validates against the official ebRS 3.0 / IHE schemas (XOP infoset)."""
    official = schemas.official()
    assert official is not None
    assert schemas.errors(official, schemas.xop_infoset(element)) == []


def manifests_query(
    patient: str, *, return_type: str = "LeafClass", home: str | None = None
) -> etree._Element:
    """FindDocuments for the patient's approved KOS manifests (ITI-18 / ITI-38 body)."""
    query_id, slots = build_slots(QueryOptions(patient_id=patient, format_codes=[KOS_FORMAT_CODE]))
    return build_query_request(
        AdhocQuery(query_id=query_id, return_type=return_type, home=home, slots=slots)
    )


def get_documents(unique_id: str, home: str | None) -> etree._Element:
    query_id, slots = build_slots(QueryOptions(query="GetDocuments", unique_ids=[unique_id]))
    return build_query_request(AdhocQuery(query_id=query_id, home=home, slots=slots))


def entries(body: etree._Element) -> dict[str, str | None]:
    """uniqueId -> home of every ExtrinsicObject of an AdhocQueryResponse."""
    scheme = "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab"
    found = {}
    for entry in body.iter(ns.qname(ns.RIM, "ExtrinsicObject")):
        [identifier] = [
            e
            for e in entry.iter(ns.qname(ns.RIM, "ExternalIdentifier"))
            if e.get("identificationScheme") == scheme
        ]
        found[str(identifier.get("value"))] = entry.get("home")
    return found


def errors(body: etree._Element) -> list[tuple[str, str | None]]:
    return [(e.get("errorCode", ""), e.get("location")) for e in body.iter(ns.REGISTRY_ERROR)]


def status(body: etree._Element) -> str:
    holder = body if body.get("status") else body.find(ns.REGISTRY_RESPONSE)
    assert holder is not None
    return str(holder.get("status")).rsplit(":", 1)[-1]


def document_request(study: Published, home: str | None) -> DocumentRequest:
    return DocumentRequest(
        repository_unique_id=study.community.repository_uid,
        document_unique_id=study.entry.unique_id or "",
        home_community_id=home,
    )


def manifest_bytes(study: Published) -> bytes:
    """The manifest as the community's own repository returns it (ITI-43, no gateway)."""
    answer = call(
        study.community.process.repository_url,
        ITI_43,
        build_retrieve_request([document_request(study, None)]),
    )
    [document] = parse_retrieve_response(answer.body, answer.attachments).documents
    return document.attachment.read_bytes()


def instances_request(study: Published, home: str | None) -> etree._Element:
    refs = read_manifest(manifest_bytes(study)).instances
    request = RetrieveImagingDocumentSetRequest.of(
        [r.imaging_request(home) for r in refs], SYNTAXES
    )
    return build_imaging_request(request)


def contents(answer: ClientResponse) -> dict[str, bytes]:
    result = parse_retrieve_response(answer.body, answer.attachments)
    try:
        return {d.document_unique_id: d.attachment.read_bytes() for d in result.documents}
    finally:
        result.discard()


# -- acceptance 1: A's Initiating Gateway across three communities --------------------------------


def test_find_documents_through_a_returns_the_three_manifests(world: World) -> None:
    answer = call(world.a.ig, IG_ITI_18, manifests_query(world.patient))
    valid(answer.body)
    assert status(answer.body) == "Success", errors(answer.body)
    assert entries(answer.body) == {
        world.studies["a"].entry.unique_id: HOME_A,
        world.studies["b"].entry.unique_id: HOME_B,
        world.studies["c"].entry.unique_id: HOME_C,
    }
    refs = call(world.a.ig, IG_ITI_18, manifests_query(world.patient, return_type="ObjectRef"))
    valid(refs.body)
    homes = sorted(r.get("home") for r in refs.body.iter(ns.qname(ns.RIM, "ObjectRef")))
    assert homes == sorted([HOME_A, HOME_B, HOME_C])


def test_iti43_through_a_returns_b_manifest_byte_identical(world: World) -> None:
    study = world.studies["b"]
    answer = call(world.a.ig, IG_ITI_43, build_retrieve_request([document_request(study, HOME_B)]))
    valid(answer.body)
    assert status(answer.body) == "Success"
    [home] = [e.text for e in answer.body.iter(ns.qname(ns.XDSB, "HomeCommunityId"))]
    assert home == HOME_B
    assert contents(answer) == {study.entry.unique_id: manifest_bytes(study)}
    assert re.search(r"/xca/rg ITI-39 ", study.community.process.log())


def test_rad69_through_a_returns_every_instance_of_c(world: World) -> None:
    study = world.studies["c"]
    answer = call(world.a.ig, IG_RAD_69, instances_request(study, HOME_C))
    valid(answer.body)
    assert status(answer.body) == "Success", errors(answer.body)
    homes = {e.text for e in answer.body.iter(ns.qname(ns.XDSB, "HomeCommunityId"))}
    assert homes == {HOME_C}
    via_a = contents(answer)
    direct = contents(call(study.community.source, RAD_69, instances_request(study, None)))
    assert set(via_a) == set(study.by_uid)
    assert via_a == direct  # byte for byte what C's imaging document source gives
    for uid, data in via_a.items():
        assert synthetic.dataset_bytes(data) == synthetic.dataset_bytes(study.by_uid[uid])
    assert re.search(r"/xca/rg RAD-75 ", study.community.process.log())


def test_fetch_study_on_a_writes_all_three_studies(world: World, tmp_path: Path) -> None:
    out = tmp_path / "fetched"
    result = run_consumer(
        tmp_path,
        "fetch-study",
        "--patient", world.patient,
        "--out", str(out),
        "--initiating-gateway", world.a.ig,
        "--no-progress",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "of 3 study(ies)" in result.stdout
    written = {
        str(dcmread(p, stop_before_pixels=True).SOPInstanceUID): p for p in out.rglob("*.dcm")
    }
    sent = {uid: data for study in world.studies.values() for uid, data in study.by_uid.items()}
    assert set(written) == set(sent)
    for uid, path in written.items():
        assert synthetic.dataset_bytes(path.read_bytes()) == synthetic.dataset_bytes(sent[uid])


def test_query_command_shows_each_manifest_community(world: World, tmp_path: Path) -> None:
    result = run_consumer(
        tmp_path, "query", "--patient", world.patient, "--kos", "--initiating-gateway", world.a.ig
    )
    assert result.returncode == 0, result.stderr
    assert "COMMUNITY" in result.stdout
    for study, home in zip(world.studies.values(), (HOME_A, HOME_B, HOME_C), strict=True):
        [line] = [row for row in result.stdout.splitlines() if (study.entry.unique_id or "") in row]
        assert line.rstrip().endswith(home)


# -- acceptance 3: patient identifiers across communities -----------------------------------------


def test_a_patient_without_an_id_in_b_domain_is_not_asked_of_b(world: World) -> None:
    other = cx(f"XCA-NOXREF-{uuid.uuid4().hex[:6]}")
    feed(world.a, other)  # no identifier in B's domain: B cannot be asked about this patient
    answer = call(world.a.ig, IG_ITI_18, manifests_query(other))
    valid(answer.body)
    assert status(answer.body) == "Success"
    [error] = answer.body.iter(ns.REGISTRY_ERROR)
    assert (error.get("errorCode"), error.get("location")) == ("XDSUnknownPatientId", HOME_B)
    assert error.get("severity", "").endswith(":Warning")
    assert entries(answer.body) == {}


# -- acceptance 4: the Responding Gateway answered directly ---------------------------------------


def test_iti38_at_b_names_b_on_every_object(world: World) -> None:
    study = world.studies["b"]
    refs = call(world.b.rg, ITI_38, manifests_query(world.patient_b, return_type="ObjectRef"))
    valid(refs.body)
    assert [r.get("home") for r in refs.body.iter(ns.qname(ns.RIM, "ObjectRef"))] == [HOME_B]
    leaf = call(world.b.rg, ITI_38, manifests_query(world.patient_b))
    valid(leaf.body)
    assert entries(leaf.body) == {study.entry.unique_id: HOME_B}
    got = call(world.b.rg, ITI_38, get_documents(study.entry.unique_id or "", HOME_B))
    valid(got.body)
    assert entries(got.body) == {study.entry.unique_id: HOME_B}


@pytest.mark.parametrize(
    ("home", "code"),
    [(None, "XDSMissingHomeCommunityId"), ("urn:oid:1.2.555.6.7.8", "XDSUnknownCommunity")],
)
def test_iti38_at_b_refuses_a_query_not_naming_b(world: World, home: str | None, code: str) -> None:
    study = world.studies["b"]
    answer = call(world.b.rg, ITI_38, get_documents(study.entry.unique_id or "", home))
    valid(answer.body)
    assert status(answer.body) == "Failure"
    assert errors(answer.body) == [(code, HOME_B)]
    assert entries(answer.body) == {}


def test_iti39_at_b_returns_the_manifest_with_b_home(world: World) -> None:
    study = world.studies["b"]
    answer = call(world.b.rg, ITI_39, build_retrieve_request([document_request(study, HOME_B)]))
    valid(answer.body)
    assert status(answer.body) == "Success"
    [home] = [e.text for e in answer.body.iter(ns.qname(ns.XDSB, "HomeCommunityId"))]
    assert home == HOME_B
    assert contents(answer) == {study.entry.unique_id: manifest_bytes(study)}


@pytest.mark.parametrize(
    ("home", "repository", "code"),
    [
        (None, None, "XDSMissingHomeCommunityId"),
        ("urn:oid:1.2.555.6.7.8", None, "XDSUnknownCommunity"),
        (HOME_B, "1.2.3.4.5.999", "XDSUnknownRepositoryId"),
    ],
)
def test_iti39_at_b_errors(
    world: World, home: str | None, repository: str | None, code: str
) -> None:
    study = world.studies["b"]
    request = document_request(study, home)
    if repository:
        request = DocumentRequest(
            repository_unique_id=repository,
            document_unique_id=request.document_unique_id,
            home_community_id=home,
        )
    answer = call(world.b.rg, ITI_39, build_retrieve_request([request]))
    valid(answer.body)
    assert status(answer.body) == "Failure"
    assert errors(answer.body) == [(code, HOME_B)]
    assert not list(answer.body.iter(ns.qname(ns.XDSB, "DocumentResponse")))


def test_rad75_at_b_returns_the_instances_and_refuses_an_unknown_source(world: World) -> None:
    study = world.studies["b"]
    answer = call(world.b.rg, RAD_75, instances_request(study, HOME_B))
    valid(answer.body)
    assert status(answer.body) == "Success"
    assert {e.text for e in answer.body.iter(ns.qname(ns.XDSB, "HomeCommunityId"))} == {HOME_B}
    assert set(contents(answer)) == set(study.by_uid)
    unknown = instances_request(study, HOME_B)
    for repository in unknown.iter(ns.qname(ns.XDSB, "RepositoryUniqueId")):
        repository.text = "1.2.3.4.5.999"
    refused = call(world.b.rg, RAD_75, unknown)
    valid(refused.body)
    assert status(refused.body) == "Failure"
    assert {e for e in errors(refused.body)} == {("XDSUnknownRepositoryId", HOME_B)}


# -- audit: both sides of each transaction --------------------------------------------------------


def audit_events(community: Community, folder: Path) -> list[etree._Element]:
    path = folder / f"{community.name}-audit.log"
    found = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        start = line.find("<AuditMessage")
        if start >= 0:
            found.append(etree.fromstring(line[start:].encode()))
    return found


def test_each_side_audits_the_cross_community_transactions(world: World) -> None:
    from gateway.audit.messages import load_schema

    wanted = {
        ("a", "ITI-38"): "110112",  # Query (initiator: A's Initiating Gateway)
        ("b", "ITI-38"): "110112",  # Query (responder: B's Responding Gateway)
        ("a", "ITI-39"): "110107",  # Import
        ("b", "ITI-39"): "110106",  # Export
        ("a", "RAD-75"): "110104",  # DICOM Instances Transferred
        ("c", "RAD-75"): "110104",
    }
    schema = load_schema()
    deadline = time.monotonic() + 30
    missing = dict(wanted)
    while missing and time.monotonic() < deadline:
        for (name, transaction), event_id in list(missing.items()):
            community = getattr(world, name)
            for message in audit_events(community, world.folder):
                types = {c.get("csd-code") for c in message.iter("EventTypeCode")}
                ids = {c.get("csd-code") for c in message.iter("EventID")}
                if transaction in types and event_id in ids:
                    assert schema.validate(message), schema.error_log
                    del missing[(name, transaction)]
                    break
        time.sleep(0.2)  # the trail delivers in the background; polled with a deadline
    assert missing == {}


# -- acceptance 2 (last: it stops C) --------------------------------------------------------------


def assert_partial_without_c(world: World, answer: ClientResponse) -> None:
    valid(answer.body)
    assert status(answer.body) == "PartialSuccess"
    assert errors(answer.body) == [("XDSUnavailableCommunity", HOME_C)]
    assert entries(answer.body) == {
        world.studies["a"].entry.unique_id: HOME_A,
        world.studies["b"].entry.unique_id: HOME_B,
    }


def test_c_down_or_hanging_gives_partial_success_within_the_timeout(world: World) -> None:
    world.c.stop()
    began = time.monotonic()
    answer = call(world.a.ig, IG_ITI_18, manifests_query(world.patient))
    assert_partial_without_c(world, answer)
    assert time.monotonic() - began < TIMEOUT + 1
    world.relay.hang()  # C's address now accepts and never answers
    began = time.monotonic()
    answer = call(world.a.ig, IG_ITI_18, manifests_query(world.patient))
    # the acceptance bound of issue 16 (xca.timeout plus a second), not a speed measurement
    assert time.monotonic() - began < TIMEOUT + 1
    assert_partial_without_c(world, answer)
