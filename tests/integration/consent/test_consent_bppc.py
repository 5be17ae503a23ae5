"""IHE BPPC patient consent over TLS, with two client certificates of two organizations.

A gateway (TLS, access rules naming organizations, audit to a file, ``[consent] policies``) holds
a study of hospital A's patient (DICOM over TLS, published as a KOS by its imaging source) and
a report hospital A provided (ITI-41). Hospital A registers an opt-out consent (a BPPC document,
eventCodeList = the opt-out policy): hospital B's ITI-18 and ITI-38 find nothing but the consent
document, its ITI-43 and RAD-69 are refused with XDSDocumentUniqueIdError, each refusal audited;
hospital A still finds and retrieves everything. A newer opt-in restores hospital B's access.
On SQLite and PostgreSQL.
"""

from __future__ import annotations

import hashlib
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from pydicom import dcmread

from gateway import dicomscu
from gateway.app import Gateway
from gateway.audit.messages import load_schema
from gateway.config import load_settings
from gateway.consumer.clients import (
    ImagingSourceClient,
    RegistryQueryClient,
    RepositoryRetrieveClient,
)
from gateway.consumer.queries import QueryOptions, build_slots
from gateway.hl7.mllp import MLLPClient
from gateway.imaging import synthetic
from gateway.metadata.datatypes import Code
from gateway.metadata.model import DocumentEntry
from gateway.metadata.provide import build_provide_request
from gateway.metadata.retrieve import DocumentRequest, ImagingDocumentRequest
from gateway.repository.template import FillOptions, default_submission, fill
from gateway.security.certs import DomainFiles, init_domain
from gateway.security.tls import TlsFiles, requests_session
from gateway.soap.client import SoapClient
from gateway.soap.message import Attachment, new_content_id
from gateway.soap.transactions import (
    IMAGING_SOURCE_PATH,
    INITIATING_GATEWAY_PATH,
    ITI_38,
    ITI_41,
    REGISTRY_PATH,
    REPOSITORY_PATH,
    RESPONDING_GATEWAY_PATH,
)

DOMAIN = "1.3.6.1.4.1.21367.13.20.1000"
IMAGING_SOURCE_ID = "1.3.6.1.4.1.21367.13.80.100"  # imaging_source.unique_id = its sourceId
A_SOURCE = "1.3.6.1.4.1.21367.13.99.1"
B_SOURCE = "1.3.6.1.4.1.21367.13.99.2"
SCHEMA = load_schema()
OPT_OUT = "1.3.6.1.4.1.21367.2017.7.104"
OPT_IN = "1.3.6.1.4.1.21367.2017.7.105"
BPPC = Code("urn:ihe:iti:bppc:2007", "1.3.6.1.4.1.19376.1.2.3", "BPPC")
RULES = f"""
[access]
default = "deny"
[[access.rule]]
name = "hospital A"
subject = ["CN=hospital-a,O=XDS-I Demo Affinity Domain"]
transactions = ["*"]
organization = "hospital-a"
source_ids = ["{IMAGING_SOURCE_ID}", "{A_SOURCE}"]
[[access.rule]]
name = "hospital B"
subject = ["CN=hospital-b,O=XDS-I Demo Affinity Domain"]
transactions = ["*"]
organization = "hospital-b"
source_ids = ["{B_SOURCE}"]
"""


class CrossGatewayQueryClient(RegistryQueryClient):
    transaction = ITI_38


@pytest.fixture(scope="module")
def domain(tmp_path_factory: pytest.TempPathFactory) -> DomainFiles:
    return init_domain(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def gateway(db_url: str, tmp_path: Path, domain: DomainFiles) -> Iterator[Gateway]:
    """The node, on SQLite or PostgreSQL (``db_url``)."""
    folder = tmp_path / "node"
    folder.mkdir()
    region = domain.nodes["region"]
    (folder / "rules.toml").write_text(RULES)
    (folder / "gateway.toml").write_text(
        "\n".join(
            [
                "[gateway]",
                f'data_dir = "{folder / "data"}"',
                f'database_url = "{db_url}"',
                "[http]\nport = 0",
                "[hl7]\nmllp_port = 0",
                "[imaging_source]\ndicom_port = 0\nstudy_idle_seconds = 1",
                '[log]\nlevel = "WARNING"',
                "[tls]\nenabled = true",
                f'certificate = "{region.certificate}"',
                f'private_key = "{region.private_key}"',
                f'ca_file = "{domain.ca_certificate}"',
                f'[access]\nrules_file = "{folder / "rules.toml"}"',
                "[audit]\nenabled = true",
                f'destinations = "file:{folder / "audit.log"}"',
                "[xca]\nenabled = true",
                'home_community_id = "urn:oid:1.3.6.1.4.1.21367.13.70.1"',
                "[mhd]\nenabled = true",
                "[consent.policies]",
                f'"{OPT_OUT}" = "opt-out"',
                f'"{OPT_IN}" = "opt-in"',
            ]
        )
        + "\n"
    )
    node = Gateway(load_settings(folder / "gateway.toml", environ={}))
    node.start()
    try:
        yield node
    finally:
        node.stop()


def context_of(domain: DomainFiles, node: str) -> ssl.SSLContext:
    files = domain.nodes[node]
    return TlsFiles(
        certificate=str(files.certificate),
        private_key=str(files.private_key),
        ca_file=str(domain.ca_certificate),
    ).client()


def session_of(context: ssl.SSLContext) -> Any:
    return lambda: requests_session(context)


def provide(
    gateway: Gateway,
    context: ssl.SSLContext,
    patient: str,
    data: bytes,
    *,
    source_id: str,
    format_code: Code | None = None,
    event_codes: tuple[Code, ...] = (),
    creation_time: str | None = None,
) -> str:
    """ITI-41 over TLS with this node's certificate; returns the document's uniqueId."""
    submission = default_submission()
    codes = {"format_code": format_code} if format_code else {}
    options = FillOptions(
        patient_id=patient, mime_type="text/plain", source_id=source_id, codes=codes
    )
    entry = fill(
        submission,
        options,
        file_name="doc.txt",
        size=len(data),
        sha1=hashlib.sha1(data).hexdigest(),
    )
    entry.event_code_list = list(event_codes)
    if creation_time:
        entry.creation_time = creation_time
    attachment = Attachment.from_bytes(data, content_type="text/plain")
    attachment.content_id = new_content_id()
    body = build_provide_request(submission, [(entry.entry_uuid, attachment.content_id)])
    answer = SoapClient(
        gateway.base_url + REPOSITORY_PATH, session_factory=session_of(context)
    ).call(ITI_41, body, [attachment])
    assert answer.body.get("status", "").endswith(":Success"), etree.tostring(answer.body)
    assert entry.unique_id is not None
    return entry.unique_id


def find(
    gateway: Gateway,
    context: ssl.SSLContext,
    patient: str,
    *,
    xca: bool = False,
    path: str = REGISTRY_PATH,
) -> set[str]:
    """uniqueIds of the patient's Approved DocumentEntries (ITI-18 at ``path``, or ITI-38 at
    /xca/rg)."""
    query_id, slots = build_slots(QueryOptions(patient_id=patient))
    if xca:
        client: RegistryQueryClient = CrossGatewayQueryClient(
            gateway.base_url + RESPONDING_GATEWAY_PATH, session_factory=session_of(context)
        )
        home = "urn:oid:1.3.6.1.4.1.21367.13.70.1"
    else:
        client = RegistryQueryClient(gateway.base_url + path, session_factory=session_of(context))
        home = None
    objects = client.query(query_id, slots, home=home).objects
    return {str(o.unique_id) for o in objects if isinstance(o, DocumentEntry)}


def retrieve_documents(
    gateway: Gateway, context: ssl.SSLContext, unique_ids: set[str], tmp_path: Path
) -> tuple[set[str], dict[str, str]]:
    """ITI-43: (uniqueIds returned, {refused uniqueId: errorCode})."""
    answer = RepositoryRetrieveClient(
        gateway.base_url + REPOSITORY_PATH, session_factory=session_of(context), spool_dir=tmp_path
    ).retrieve(
        [
            DocumentRequest(
                repository_unique_id=gateway.settings.repository.unique_id, document_unique_id=u
            )
            for u in sorted(unique_ids)
        ]
    )
    got = {d.document_unique_id for d in answer.documents}
    answer.discard()
    return got, {str(e.location): e.code for e in answer.errors}


def retrieve_images(
    gateway: Gateway, context: ssl.SSLContext, paths: list[Path], tmp_path: Path
) -> tuple[int, set[str]]:
    """RAD-69: (instances returned, error codes)."""
    refs = []
    for path in paths:
        ds = dcmread(path, stop_before_pixels=True)
        refs.append(
            ImagingDocumentRequest(
                study_instance_uid=str(ds.StudyInstanceUID),
                series_instance_uid=str(ds.SeriesInstanceUID),
                document=DocumentRequest(
                    repository_unique_id=IMAGING_SOURCE_ID,
                    document_unique_id=str(ds.SOPInstanceUID),
                ),
            )
        )
    answer = ImagingSourceClient(
        gateway.base_url + IMAGING_SOURCE_PATH,
        session_factory=session_of(context),
        spool_dir=tmp_path,
    ).retrieve(refs, ["1.2.840.10008.1.2.1"])
    count = len(answer.documents)
    answer.discard()
    return count, {e.code for e in answer.errors}


def consent_refusals(gateway: Gateway, transactions: set[str]) -> list[str]:
    """The descriptions of the consent refusals audited so far (Security Alerts valid against
    the DICOM audit schema, naming the patient), once one of each of ``transactions`` is there."""
    path = Path(str(gateway.settings.audit.destinations)[5:])
    deadline = time.monotonic() + 10
    found: list[str] = []
    while time.monotonic() < deadline:
        text = path.read_text(errors="replace") if path.exists() else ""
        found = []
        for line in text.splitlines():
            if "BPPC opt-out" not in line:
                continue
            message = etree.fromstring(line[line.index("<?xml") :].encode())
            SCHEMA.assertValid(message)
            objects = [
                o.get("ParticipantObjectID")
                for o in message.iter("ParticipantObjectIdentification")
            ]
            assert f"CONSENT1^^^&{DOMAIN}&ISO" in objects
            found.append(str(message.findtext(".//EventOutcomeDescription")))
        if all(any(t in d for d in found) for t in transactions):
            return found
        time.sleep(0.1)  # the audit queue delivers in the background
    return found


def mhd_find(gateway: Gateway, context: ssl.SSLContext) -> int:
    """MHD ITI-67: how many current DocumentReferences of the patient the caller finds."""
    answer = requests_session(context).get(
        gateway.base_url + "/fhir/DocumentReference",
        params={"patient.identifier": f"urn:oid:{DOMAIN}|CONSENT1", "status": "current"},
        headers={"Accept": "application/fhir+json"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    entries = answer.json().get("entry", [])
    return sum(1 for e in entries if e["resource"]["resourceType"] == "DocumentReference")


def send_study(gateway: Gateway, context: ssl.SSLContext, paths: list[Path]) -> None:
    from pynetdicom import AE

    assert gateway.imaging is not None
    host, port = gateway.imaging.scp.address
    ae = AE(ae_title="MODALITY")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 30
    for path in paths:
        meta = dcmread(path, stop_before_pixels=True).file_meta
        ae.add_requested_context(meta.MediaStorageSOPClassUID, [meta.TransferSyntaxUID])
    assoc = ae.associate(
        host, port, ae_title=gateway.settings.imaging_source.ae_title, tls_args=(context, host)
    )
    assert assoc.is_established
    try:
        for path in paths:
            assert dicomscu.send_c_store(assoc, path).Status == 0
    finally:
        assoc.release()


def test_opt_out_hides_the_patient_from_other_organizations_until_an_opt_in(
    gateway: Gateway, domain: DomainFiles, tmp_path: Path
) -> None:
    a, b = context_of(domain, "hospital-a"), context_of(domain, "hospital-b")
    host, port = gateway.mllp_address or ("", 0)
    adt = (
        "MSH|^~\\&|ADT|HOSP|XDS|REGION|20240102101500||ADT^A01^ADT_A01|C1|P|2.3.1\r"
        "EVN|A01|20240102101500\r"
        f"PID|||CONSENT1^^^&{DOMAIN}&ISO||Private^Patient||19700101|F\r"
        "PV1||O\r"
    ).encode()
    with MLLPClient(host, port, timeout=10, ssl_context=a) as mllp:
        assert b"MSA|AA" in mllp.send(adt)
    patient = f"CONSENT1^^^&{DOMAIN}&ISO"
    spec = synthetic.StudySpec(
        patient_id="CONSENT1",
        issuer_oid=DOMAIN,
        series=(synthetic.SeriesSpec(modality="CT", count=3),),
    )
    paths = synthetic.write_study(synthetic.make_study(spec), tmp_path / "study")
    send_study(gateway, a, paths)
    report = provide(gateway, a, patient, b"a report of hospital A\n", source_id=A_SOURCE)
    deadline = time.monotonic() + 60
    while len(find(gateway, a, patient)) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)  # the imaging source publishes after its idle time
    everything = find(gateway, a, patient)
    assert len(everything) == 2 and report in everything
    # Before any consent: hospital B sees and retrieves like A (the default is access).
    assert find(gateway, b, patient) == everything
    assert retrieve_documents(gateway, b, {report}, tmp_path)[0] == {report}
    assert retrieve_images(gateway, b, paths, tmp_path) == (3, set())

    # Opt-out, registered by hospital A.
    opt_out = provide(
        gateway,
        a,
        patient,
        b"the patient refuses sharing\n",
        source_id=A_SOURCE,
        format_code=BPPC,
        event_codes=(Code(OPT_OUT, "1.3.6.1.4.1.21367.2017.7", "Opt-out"),),
        creation_time="20260101000000",
    )
    # Hospital B finds only the consent document, by ITI-18 and by ITI-38.
    assert find(gateway, b, patient) == {opt_out}
    assert find(gateway, b, patient, xca=True) == {opt_out}
    assert find(gateway, b, patient, path=INITIATING_GATEWAY_PATH) == {opt_out}
    assert mhd_find(gateway, b) == 1
    assert mhd_find(gateway, a) == 3
    got, refused = retrieve_documents(gateway, b, everything | {opt_out}, tmp_path)
    assert got == {opt_out}
    assert refused == dict.fromkeys(everything, "XDSDocumentUniqueIdError")
    assert retrieve_images(gateway, b, paths, tmp_path) == (0, {"XDSDocumentUniqueIdError"})
    refused_calls = {"ITI-18", "ITI-38", "ITI-67", "ITI-43", "RAD-69"}
    records = consent_refusals(gateway, refused_calls)
    for transaction in refused_calls:
        assert any(transaction in r and "CONSENT1" in r for r in records), records
    # Hospital A, the publisher, still sees and retrieves everything.
    assert find(gateway, a, patient) == everything | {opt_out}
    assert retrieve_documents(gateway, a, everything, tmp_path)[0] == everything
    assert retrieve_images(gateway, a, paths, tmp_path) == (3, set())

    # A newer opt-in restores hospital B's access.
    opt_in = provide(
        gateway,
        a,
        patient,
        b"the patient agrees again\n",
        source_id=A_SOURCE,
        format_code=BPPC,
        event_codes=(Code(OPT_IN, "1.3.6.1.4.1.21367.2017.7", "Opt-in"),),
        creation_time="20260201000000",
    )
    assert find(gateway, b, patient) == everything | {opt_out, opt_in}
    assert retrieve_documents(gateway, b, everything, tmp_path)[0] == everything
    assert retrieve_images(gateway, b, paths, tmp_path) == (3, set())


def test_a_manifest_moved_by_iti57_is_judged_by_its_new_patients_consent(
    gateway: Gateway, domain: DomainFiles, tmp_path: Path
) -> None:
    """Hospital A's study is published for the wrong patient; A moves the manifest by ITI-57
    to the right one, who opted out: hospital B's ITI-18 no longer finds it and its RAD-69 is
    refused (the imaging source asks the registry whose the manifest is now); A keeps both."""
    import copy

    from gateway.metadata.datatypes import new_uuid_urn
    from gateway.metadata.ebrim import build_submit_objects_request
    from gateway.metadata.model import Submission
    from gateway.soap.transactions import ITI_57
    from tests.factories import make_has_member, make_submission_set

    a, b = context_of(domain, "hospital-a"), context_of(domain, "hospital-b")
    host, port = gateway.mllp_address or ("", 0)
    wrong, right = f"MOVE1^^^&{DOMAIN}&ISO", f"MOVE2^^^&{DOMAIN}&ISO"
    with MLLPClient(host, port, timeout=10, ssl_context=a) as mllp:
        for n, pid in enumerate((wrong, right)):
            adt = (
                f"MSH|^~\\&|ADT|HOSP|XDS|REGION|20240102101500||ADT^A01^ADT_A01|M{n}|P|2.3.1\r"
                f"EVN|A01|20240102101500\rPID|||{pid}||Moved^Patient||19700101|F\rPV1||O\r"
            )
            assert b"MSA|AA" in mllp.send(adt.encode())
    spec = synthetic.StudySpec(
        patient_id="MOVE1",
        issuer_oid=DOMAIN,
        series=(synthetic.SeriesSpec(modality="CT", count=2),),
    )
    paths = synthetic.write_study(synthetic.make_study(spec), tmp_path / "study")
    send_study(gateway, a, paths)
    deadline = time.monotonic() + 60
    while not find(gateway, a, wrong) and time.monotonic() < deadline:
        time.sleep(0.2)  # the imaging source publishes after its idle time
    query_id, slots = build_slots(QueryOptions(patient_id=wrong))
    client = RegistryQueryClient(gateway.base_url + REGISTRY_PATH, session_factory=session_of(a))
    [manifest] = [o for o in client.query(query_id, slots).objects if isinstance(o, DocumentEntry)]
    opt_out = provide(
        gateway,
        a,
        right,
        b"the patient refuses sharing\n",
        source_id=A_SOURCE,
        format_code=BPPC,
        event_codes=(Code(OPT_OUT, "1.3.6.1.4.1.21367.2017.7", "Opt-out"),),
    )
    assert retrieve_images(gateway, b, paths, tmp_path) == (2, set())  # MOVE1 did not opt out

    moved = copy.deepcopy(manifest)
    moved.entry_uuid, moved.logical_id = new_uuid_urn(), manifest.entry_uuid
    moved.version = moved.availability_status = None
    moved.patient_id = right
    submission_set = make_submission_set(
        entry_uuid=new_uuid_urn(),
        unique_id=f"2.25.{time.time_ns()}",
        patient_id=right,
        source_id=A_SOURCE,
    )
    member = make_has_member(submission_set.entry_uuid, moved.entry_uuid, previous_version="1")
    member.entry_uuid = new_uuid_urn()
    request = build_submit_objects_request(
        Submission(submission_set=submission_set, document_entries=[moved], associations=[member])
    )
    answer = SoapClient(gateway.base_url + REGISTRY_PATH, session_factory=session_of(a)).call(
        ITI_57, request
    )
    assert answer.body.get("status", "").endswith(":Success"), etree.tostring(answer.body)

    assert find(gateway, b, right) == {opt_out}
    assert retrieve_images(gateway, b, paths, tmp_path) == (0, {"XDSDocumentUniqueIdError"})
    assert find(gateway, a, right) == {opt_out, str(manifest.unique_id)}
    assert retrieve_images(gateway, a, paths, tmp_path) == (2, set())
