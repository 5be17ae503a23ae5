"""/dicomweb behind the secure node: the same TLS and access rules as the SOAP endpoints (rule
names QIDO-RS, WADO-RS, STOW-RS) and audit records per ITI-20 (PS3.15 Query, DICOM Instances
Transferred), each valid against the DICOM audit message schema.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from lxml import etree

from gateway.app import Gateway
from gateway.audit.messages import load_schema
from gateway.config import load_settings
from gateway.imaging import synthetic
from gateway.security.certs import DomainFiles, init_domain
from gateway.security.tls import client_context, requests_session
from tests.integration.dicomweb.conftest import load, wait_for

RULES = """
[access]
default = "deny"
[[access.rule]]
name = "viewer"
subject = ["CN=hospital-a,O=XDS-I Demo Affinity Domain"]
transactions = ["QIDO-RS", "WADO-RS"]
[[access.rule]]
name = "region"
san = "DNS:region.example"
transactions = ["*"]
"""
SPEC = synthetic.StudySpec(patient_id="PAT-SEC")
SCHEMA = load_schema()


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, DomainFiles]]:
    domain = init_domain(tmp_path_factory.mktemp("certs"))
    folder = tmp_path_factory.mktemp("node")
    region = domain.nodes["region"]
    (folder / "rules.toml").write_text(RULES)
    (folder / "gateway.toml").write_text(
        "\n".join(
            [
                f'[gateway]\ndata_dir = "{folder / "data"}"',
                "[http]\nport = 0",
                "[hl7]\nmllp_port = 0",
                "[imaging_source]\ndicom_port = 0\nstudy_idle_seconds = 3600",
                '[log]\nlevel = "WARNING"',
                f'[tls]\nenabled = true\ncertificate = "{region.certificate}"',
                f'private_key = "{region.private_key}"\nca_file = "{domain.ca_certificate}"',
                f'[access]\nrules_file = "{folder / "rules.toml"}"',
                f'[audit]\nenabled = true\ndestinations = "file:{folder / "audit.log"}"',
            ]
        )
        + "\n"
    )
    gw = Gateway(load_settings(folder / "gateway.toml", environ={}))
    gw.start()
    try:
        load(gw, folder / "study", SPEC)
        yield gw, domain
    finally:
        gw.stop()


def _session(domain: DomainFiles, node: str | None) -> requests.Session:
    if node is None:
        return requests_session(client_context(domain.ca_certificate))
    files = domain.nodes[node]
    context = client_context(domain.ca_certificate, files.certificate, files.private_key)
    return requests_session(context)


def _records(gw: Gateway) -> list[etree._Element]:
    path = Path(str(gw.settings.audit.destinations)[5:])
    out = []
    for line in path.read_bytes().splitlines() if path.exists() else []:
        message = etree.fromstring(line[line.index(b"<?xml") :])
        assert SCHEMA.validate(message), SCHEMA.error_log
        out.append(message)
    return out


def _events(gw: Gateway) -> list[tuple[str, str]]:
    found = []
    for message in _records(gw):
        ident = message.find("EventIdentification")
        kind = ident.find("EventTypeCode")
        found.append(
            (
                ident.find("EventID").get("csd-code"),
                kind.get("csd-code") if kind is not None else "-",
            )
        )
    return found


def test_rules_and_audit(secured: tuple[Gateway, DomainFiles]) -> None:
    gw, domain = secured
    base = gw.base_url + "/dicomweb"
    viewer = _session(domain, "hospital-a")
    found = viewer.get(f"{base}/studies?PatientID=PAT-SEC", timeout=30)
    assert found.status_code == 200 and len(found.json()) == 1
    study = viewer.get(
        f"{base}/studies/{SPEC.study_uid}",
        headers={"Accept": 'multipart/related; type="application/dicom"'},
        timeout=30,
    )
    assert study.status_code == 200
    refused = viewer.post(
        f"{base}/studies",
        data=b"--b--\r\n",
        headers={"Content-Type": 'multipart/related; type="application/dicom"; boundary=b'},
        timeout=30,
    )
    assert refused.status_code == 403 and "STOW-RS" in refused.text
    with pytest.raises(requests.exceptions.SSLError):
        _session(domain, None).get(f"{base}/studies", timeout=30)
    events = wait_for(
        lambda: (e := _events(gw)) and ("110112", "-") in e and ("110104", "RAD-107") in e and e
    )
    assert ("110113", "110132") in events  # Security Alert: use of a restricted function
    query = next(
        m for m in _records(gw) if m.find("EventIdentification/EventID").get("csd-code") == "110112"
    )
    sop_queried = query.find("ParticipantObjectIdentification")
    assert sop_queried.get("ParticipantObjectID") == "1.2.840.10008.5.1.4.1.2.2.1"
    assert "hospital-a" in (query.find("ActiveParticipant").get("UserName") or "")
