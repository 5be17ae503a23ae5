"""The secure node through the real gateway: ``gateway.app.Gateway`` with ``[tls]``, ``[access]``
and ``[audit]`` switched on, ``certs init`` material, every listener on an ephemeral port.

Every listener (HTTPS, MLLP, DICOM) refuses a client without a certificate and one from another
CA, and serves a domain node; the access rules refuse a hospital calling ITI-42 with a
``wsse:FailedAuthentication`` fault while the region may; a feed-store-publish-query-retrieve
round trip leaves the expected audit records (each valid against the DICOM audit schema).
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from lxml import etree
from pynetdicom import AE
from pynetdicom.sop_class import Verification

from gateway import dicomscu
from gateway.app import Gateway
from gateway.audit.messages import load_schema
from gateway.config import load_settings
from gateway.consumer.clients import (
    ImagingSourceClient,
    RegistryQueryClient,
    RepositoryRetrieveClient,
)
from gateway.consumer.queries import KOS_FORMAT_CODE, QueryOptions, build_slots
from gateway.consumer.table import study_uids
from gateway.errors import ConfigError
from gateway.hl7.mllp import MLLPClient, MLLPError
from gateway.imaging import synthetic
from gateway.metadata.model import DocumentEntry
from gateway.metadata.retrieve import DocumentRequest, ImagingDocumentRequest, Status
from gateway.security.certs import DomainFiles, init_domain
from gateway.security.tls import TlsFiles, client_context, requests_session
from gateway.soap.transactions import IMAGING_SOURCE_PATH, REGISTRY_PATH, REPOSITORY_PATH

DOMAIN = "1.3.6.1.4.1.21367.13.20.1000"
SCHEMA = load_schema()
REFUSED = (ssl.SSLError, ConnectionError, OSError, MLLPError, requests.exceptions.SSLError)
RULES = """
[access]
default = "deny"
[[access.rule]]
name = "hospitals"
subject = ["CN=hospital-a,O=XDS-I Demo Affinity Domain"]
transactions = ["ITI-8", "ITI-41", "ITI-18", "ITI-43", "RAD-69", "C-STORE"]
[[access.rule]]
name = "region"
san = "DNS:region.example"
transactions = ["ITI-42", "ITI-18", "ITI-8", "C-STORE"]
"""
ITI42_EMPTY = (
    '<lcm:SubmitObjectsRequest xmlns:lcm="urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0" '
    'xmlns:rim="urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"><rim:RegistryObjectList/>'
    "</lcm:SubmitObjectsRequest>"
)


def wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)  # polling a condition with a deadline
    return condition()


@pytest.fixture(scope="module")
def domain(tmp_path_factory: pytest.TempPathFactory) -> DomainFiles:
    return init_domain(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def foreign(tmp_path_factory: pytest.TempPathFactory) -> DomainFiles:
    return init_domain(
        tmp_path_factory.mktemp("foreign"), nodes=("hospital-a",), organization="Other Domain"
    )


def node_files(domain: DomainFiles, node: str, ca: Path | None = None) -> TlsFiles:
    files = domain.nodes[node]
    return TlsFiles(
        certificate=str(files.certificate),
        private_key=str(files.private_key),
        ca_file=str(ca or domain.ca_certificate),
    )


def write_config(folder: Path, domain: DomainFiles, **extra: str) -> Path:
    region = domain.nodes["region"]
    (folder / "rules.toml").write_text(RULES)
    lines = [
        "[gateway]",
        f'data_dir = "{folder / "data"}"',
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
        'source_id = "test-node"',
    ]
    lines.extend(f"{key} = {value}" for key, value in extra.items())
    path = folder / "gateway.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, domain: DomainFiles) -> Iterator[Gateway]:
    folder = tmp_path_factory.mktemp("node")
    node = Gateway(load_settings(write_config(folder, domain), environ={}))
    node.start()
    try:
        yield node
    finally:
        node.stop()


def audit_records(gateway: Gateway) -> list[etree._Element]:
    """Every audit message written to the file destination so far, checked against the schema."""
    path = Path(str(gateway.settings.audit.destinations)[5:])
    if not path.exists():
        return []
    records = []
    for line in path.read_bytes().splitlines():
        if not line.strip():
            continue
        message = etree.fromstring(line[line.index(b"<?xml") :])
        assert SCHEMA.validate(message), SCHEMA.error_log
        records.append(message)
    return records


def summaries(gateway: Gateway) -> list[tuple[str, str, str]]:
    found = []
    for message in audit_records(gateway):
        ident = message.find("EventIdentification")
        type_code = ident.find("EventTypeCode")
        found.append(
            (
                ident.find("EventID").get("csd-code"),
                type_code.get("csd-code") if type_code is not None else "-",
                ident.get("EventOutcomeIndicator"),
            )
        )
    return found


def type_code(message: etree._Element) -> str:
    """EventTypeCode csd-code of a record ("-" when it has none: DICOM events)."""
    code = message.find("EventIdentification/EventTypeCode")
    return code.get("csd-code") if code is not None else "-"


def failures_on(gateway: Gateway, listener: str) -> int:
    """Node-authentication-failure records naming ``listener``."""
    return sum(
        1
        for message in audit_records(gateway)
        if type_code(message) == "110126"
        and f"on {listener}:"
        in (message.findtext("EventIdentification/EventOutcomeDescription") or "")
    )


def clients(domain: DomainFiles, foreign: DomainFiles) -> dict[str, ssl.SSLContext]:
    return {
        "anonymous": client_context(domain.ca_certificate),
        "foreign": node_files(foreign, "hospital-a", ca=domain.ca_certificate).client(),
    }


# -- configuration ----------------------------------------------------------------------------


def test_tls_without_files_is_a_configuration_error(tmp_path: Path) -> None:
    path = tmp_path / "g.toml"
    path.write_text("[tls]\nenabled = true\n")
    with pytest.raises(ConfigError, match=r"^tls\.certificate: required"):
        load_settings(path, environ={})


# -- every listener: refuse without / with a foreign certificate, serve a domain node ------------


@pytest.mark.parametrize("kind", ["anonymous", "foreign"])
def test_https_refuses(gateway: Gateway, domain: DomainFiles, foreign: DomainFiles, kind) -> None:
    session = requests_session(clients(domain, foreign)[kind])
    with pytest.raises(REFUSED):
        session.get(gateway.base_url + "/health", timeout=10)
    assert wait_until(lambda: failures_on(gateway, "https") >= 1)
    assert ("110113", "110126", "4") in summaries(gateway)


def test_https_serves_a_domain_node(gateway: Gateway, domain: DomainFiles) -> None:
    assert gateway.base_url.startswith("https://")
    session = requests_session(node_files(domain, "hospital-a").client())
    answer = session.get(gateway.base_url + "/health", timeout=10)
    assert answer.status_code == 200


def adt(control_id: str, patient: str) -> bytes:
    return (
        f"MSH|^~\\&|HIS|HOSP|XDSI|REGION|20240101120000||ADT^A01^ADT_A01|{control_id}|P|2.5\r"
        f"EVN|A01|20240101120000\rPID|||{patient}^^^&{DOMAIN}&ISO||Doe^John\rPV1||O\r"
    ).encode()


@pytest.mark.parametrize("kind", ["anonymous", "foreign"])
def test_mllp_refuses(gateway: Gateway, domain: DomainFiles, foreign: DomainFiles, kind) -> None:
    host, port = gateway.mllp_address or ("", 0)
    context = clients(domain, foreign)[kind]
    with pytest.raises(REFUSED), MLLPClient(host, port, timeout=10, ssl_context=context) as c:
        c.send(adt("R1", "REFUSED1"))  # the refusal may come at connect or at the first read
    assert wait_until(lambda: failures_on(gateway, "mllp") >= 1)


def test_mllp_serves_a_domain_node_and_refuses_an_unauthorised_one(
    gateway: Gateway, domain: DomainFiles
) -> None:
    host, port = gateway.mllp_address or ("", 0)
    with MLLPClient(host, port, timeout=10, ssl_context=node_files(domain, "region").client()) as c:
        assert b"MSA|AA|M1" in c.send(adt("M1", "MLLP1"))
    # hospital-b is a domain node (TLS lets it in) but no rule grants it ITI-8
    with MLLPClient(
        host, port, timeout=10, ssl_context=node_files(domain, "hospital-b").client()
    ) as c:
        assert b"MSA|AR|M2" in c.send(adt("M2", "MLLP2"))
    assert wait_until(lambda: ("110113", "110132", "4") in summaries(gateway))


def echo(gateway: Gateway, context: ssl.SSLContext) -> bool:
    assert gateway.imaging is not None
    host, port = gateway.imaging.scp.address
    ae = AE(ae_title="TEST_SCU")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
    ae.add_requested_context(Verification)
    assoc = ae.associate(
        host, port, ae_title=gateway.settings.imaging_source.ae_title, tls_args=(context, host)
    )
    try:
        if not assoc.is_established:
            return False
        status = assoc.send_c_echo()
        return status is not None and status.Status == 0
    finally:
        if assoc.is_established:
            assoc.release()
        sock = getattr(getattr(assoc.dul, "socket", None), "socket", None)
        if sock is not None:
            sock.close()


@pytest.mark.parametrize("kind", ["anonymous", "foreign"])
def test_dicom_refuses(gateway: Gateway, domain: DomainFiles, foreign: DomainFiles, kind) -> None:
    assert not echo(gateway, clients(domain, foreign)[kind])
    assert wait_until(lambda: failures_on(gateway, "dicom") >= 1)


def test_dicom_serves_a_domain_node_and_rejects_an_unauthorised_one(
    gateway: Gateway, domain: DomainFiles
) -> None:
    assert echo(gateway, node_files(domain, "hospital-a").client())
    assert not echo(gateway, node_files(domain, "hospital-b").client())


def storescu_tls(gateway: Gateway, files: TlsFiles | None, paths: list[Path]) -> str:
    """dcmtk storescu over TLS (BCP 195 profile) with ``files``' certificate (None: anonymous
    TLS); its stderr, empty when every instance was stored."""
    import os
    import shutil
    import subprocess

    program = shutil.which("storescu")
    if program is None:
        pytest.skip("dcmtk storescu is not installed (apt-get install dcmtk)")
    assert gateway.imaging is not None
    host, port = gateway.imaging.scp.address
    auth = ["+tls", files.private_key, files.certificate] if files else ["+tla"]
    trust = ["+cf", files.ca_file] if files else ["-ic"]
    command = [program, *auth, *trust, "+px", "-aet", "MODALITY"]
    command += ["-aec", gateway.settings.imaging_source.ae_title, host, str(port)]
    result = subprocess.run(
        [*command, *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "TCP_NODELAY": "1"},
        check=False,
    )
    return "" if result.returncode == 0 else result.stderr or "failed"


def test_dicom_tls_with_dcmtk(gateway: Gateway, domain: DomainFiles, tmp_path: Path) -> None:
    spec = synthetic.StudySpec(
        patient_id="TLS1", issuer_oid=DOMAIN, series=(synthetic.SeriesSpec(modality="CT", count=3),)
    )
    paths = synthetic.write_study(synthetic.make_study(spec), tmp_path / "study")
    assert storescu_tls(gateway, node_files(domain, "hospital-a"), paths) == ""
    assert gateway.imaging is not None
    assert len(gateway.imaging.index.instances_of_study(spec.study_uid)) == 3
    refused = storescu_tls(gateway, node_files(domain, "hospital-b"), paths)  # no C-STORE grant
    assert "Association Rejected" in refused, refused
    assert storescu_tls(gateway, None, paths) != ""  # no certificate: the handshake fails


# -- access rules at the SOAP boundary ------------------------------------------------------------


def post_iti42(gateway: Gateway, files: TlsFiles) -> requests.Response:
    envelope = (
        '<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" '
        'xmlns:wsa="http://www.w3.org/2005/08/addressing"><env:Header>'
        "<wsa:Action>urn:ihe:iti:2007:RegisterDocumentSet-b</wsa:Action>"
        "<wsa:MessageID>urn:uuid:9b1b9b1b-0000-4000-8000-000000000042</wsa:MessageID>"
        f"<wsa:To>{gateway.base_url}{REGISTRY_PATH}</wsa:To>"
        f"</env:Header><env:Body>{ITI42_EMPTY}</env:Body></env:Envelope>"
    )
    return requests_session(files.client()).post(
        gateway.base_url + REGISTRY_PATH,
        data=envelope.encode(),
        headers={
            "Content-Type": 'application/soap+xml; charset=UTF-8; action="urn:ihe:iti:2007:'
            'RegisterDocumentSet-b"'
        },
        timeout=30,
    )


def test_access_rules_refuse_a_hospital_calling_iti42(gateway: Gateway, domain: DomainFiles):
    refused = post_iti42(gateway, node_files(domain, "hospital-a"))
    assert refused.status_code == 400
    fault = etree.fromstring(refused.content)
    values = [v.text for v in fault.iter("{http://www.w3.org/2003/05/soap-envelope}Value")]
    assert values[0] == "env:Sender"
    assert values[1].endswith(":FailedAuthentication")
    prefix = values[1].split(":")[0]
    subcode = next(fault.iter("{http://www.w3.org/2003/05/soap-envelope}Subcode"))
    assert subcode[0].nsmap[prefix] == (
        "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
    )
    allowed = post_iti42(gateway, node_files(domain, "region"))
    assert allowed.status_code == 200
    assert b"RegistryResponse" in allowed.content


# -- audit trail of a full round trip -------------------------------------------------------------


def send_study(gateway: Gateway, context: ssl.SSLContext, paths: list[Path]) -> None:
    from pydicom import dcmread

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


def find_manifest(client: RegistryQueryClient, patient: str, study_uid: str) -> DocumentEntry:
    query_id, slots = build_slots(QueryOptions(patient_id=patient, format_codes=[KOS_FORMAT_CODE]))
    found: list[DocumentEntry] = []

    def registered() -> bool:
        for obj in client.query(query_id, slots).objects:
            if isinstance(obj, DocumentEntry) and study_uid in study_uids(obj):
                found.append(obj)
                return True
        return False

    assert wait_until(registered, timeout=60)
    return found[0]


def test_round_trip_is_audited(gateway: Gateway, domain: DomainFiles, tmp_path: Path) -> None:
    files = node_files(domain, "hospital-a")
    context = files.client()
    host, port = gateway.mllp_address or ("", 0)
    with MLLPClient(host, port, timeout=10, ssl_context=context) as c:
        assert b"MSA|AA" in c.send(adt("RT1", "ROUND1"))
    spec = synthetic.StudySpec(
        patient_id="ROUND1",
        issuer_oid=DOMAIN,
        series=(synthetic.SeriesSpec(modality="CT", count=2),),
    )
    paths = synthetic.write_study(synthetic.make_study(spec), tmp_path / "study")
    send_study(gateway, context, paths)

    def session() -> Any:
        return requests_session(context)

    base = gateway.base_url
    query = RegistryQueryClient(base + REGISTRY_PATH, session_factory=session)
    patient = f"ROUND1^^^&{DOMAIN}&ISO"
    manifest = find_manifest(query, patient, spec.study_uid)
    retrieve = RepositoryRetrieveClient(
        base + REPOSITORY_PATH, session_factory=session, spool_dir=tmp_path
    )
    kos = retrieve.retrieve(
        [
            DocumentRequest(
                repository_unique_id=str(manifest.repository_unique_id),
                document_unique_id=str(manifest.unique_id),
            )
        ]
    )
    assert kos.status is Status.SUCCESS and len(kos.documents) == 1
    kos.discard()
    from pydicom import dcmread

    refs = []
    for path in paths:
        ds = dcmread(path, stop_before_pixels=True)
        refs.append(
            ImagingDocumentRequest(
                study_instance_uid=str(ds.StudyInstanceUID),
                series_instance_uid=str(ds.SeriesInstanceUID),
                document=DocumentRequest(
                    repository_unique_id=gateway.settings.imaging_source.unique_id,
                    document_unique_id=str(ds.SOPInstanceUID),
                ),
            )
        )
    images = ImagingSourceClient(
        base + IMAGING_SOURCE_PATH, session_factory=session, spool_dir=tmp_path
    ).retrieve(refs, ["1.2.840.10008.1.2.1"])
    assert len(images.documents) == len(paths)
    images.discard()

    # RAD-68/ITI-41 and ITI-42 run in-process in this all-in-one node: no wire, no record.
    expected = {
        ("110104", "-"),  # DICOM instances transferred (C-STORE received)
        ("110112", "ITI-18"),  # registry answered the query
        ("110106", "ITI-43"),  # repository exported the manifest
        ("110104", "RAD-69"),  # imaging source sent the instances
        ("110100", "110120"),  # application start
        ("110110", "ITI-8"),  # registry received the patient feed
    }

    def seen() -> set[tuple[str, str]]:
        found = set()
        for message in audit_records(gateway):
            ident = message.find("EventIdentification")
            type_code = ident.find("EventTypeCode")
            found.add(
                (
                    ident.find("EventID").get("csd-code"),
                    type_code.get("csd-code") if type_code is not None else "-",
                )
            )
        return found

    assert wait_until(lambda: expected <= seen(), timeout=30), expected - seen()
    patients_queried = {
        obj.get("ParticipantObjectID")
        for message in audit_records(gateway)
        if type_code(message) == "ITI-18"
        for obj in message.iter("ParticipantObjectIdentification")
        if obj.get("ParticipantObjectTypeCodeRole") == "1"
    }
    assert patient in patients_queried
    fed = {
        obj.get("ParticipantObjectID")
        for message in audit_records(gateway)
        if type_code(message) == "ITI-8"
        for obj in message.iter("ParticipantObjectIdentification")
        if obj.get("ParticipantObjectTypeCodeRole") == "1"
    }
    assert patient in fed
    studies = {
        obj.get("ParticipantObjectID")
        for message in audit_records(gateway)
        if type_code(message) in ("-", "RAD-69")
        for obj in message.iter("ParticipantObjectIdentification")
        if obj.get("ParticipantObjectTypeCodeRole") == "3"
    }
    assert spec.study_uid in studies  # C-STORE and RAD-69 records name the study


# -- delivery to a real Audit Record Repository (rsyslog over TLS) --------------------------------


def test_records_wait_for_the_repository_and_all_arrive(
    tmp_path: Path, domain: DomainFiles
) -> None:
    from tests.integration.audit.rsyslog_receiver import RsyslogReceiver, require_rsyslog

    require_rsyslog()
    region = domain.nodes["region"]
    receiver = RsyslogReceiver(
        tmp_path / "arr",
        ca=domain.ca_certificate,
        certificate=region.certificate,
        private_key=region.private_key,
    )
    config = write_config(
        tmp_path, domain, destinations=f'"tls://127.0.0.1:{receiver.port}"', retry_max_seconds="1"
    )
    text = config.read_text().replace(f'destinations = "file:{tmp_path / "audit.log"}"\n', "")
    config.write_text(text)
    node = Gateway(load_settings(config, environ={}))
    node.start()
    try:
        context = node_files(domain, "hospital-a").client()
        client = RegistryQueryClient(
            node.base_url + REGISTRY_PATH, session_factory=lambda: requests_session(context)
        )
        query_id, slots = build_slots(QueryOptions(patient_id=f"NOBODY^^^&{DOMAIN}&ISO"))
        for _ in range(200):  # the repository is down: every transaction still succeeds
            assert client.query(query_id, slots).status.endswith("Success")
        receiver.start()
        received = receiver.wait_for(201, timeout=60)  # 200 queries + application start
    finally:
        node.stop()
        receiver.stop()
    kinds = [type_code(etree.fromstring(xml)) for *_head, xml in received]
    assert kinds.count("ITI-18") >= 200
    for *_head, xml in received:
        assert SCHEMA.validate(etree.fromstring(xml))
