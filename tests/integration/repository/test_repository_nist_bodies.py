"""The raw ITI-41 HTTP bodies of the NIST tests PnrXop and PnrNoXop, posted byte for byte (with
the NIST runner's patient id / uniqueId rewrite) to the in-process repository: MTOM/XOP, inline
base64 inside an MTOM package, a URL-encoded ``cid:`` href, a DICOM payload from a WCF client."""

from __future__ import annotations

import http.client
import itertools
import re
from pathlib import Path

import pytest

from gateway.metadata.ebrim import parse_submit_objects_request
from tests.integration.repository.repo_support import REPOSITORY_UID, RepositorySystem, stored_files

TESTS = Path(__file__).resolve().parents[4] / "shared/conformance/nist-testkit/tests"
BODIES = ["PnrXop/Xop", "PnrXop/NoXop", "PnrXop/encodedURL", "PnrXop/dicom", "PnrNoXop/submit"]
PATIENT = "NIST-1^^^&1.3.6.1.4.1.21367.13.20.1000&ISO"

pytestmark = pytest.mark.skipif(not TESTS.is_dir(), reason=f"{TESTS} (NIST testkit) is absent")


def _content_type(section: Path) -> str:
    plan = (section / "testplan.xml").read_text()
    headers = re.search(r"<Headers>(.*?)</Headers>", plan, re.S)
    assert headers is not None
    line = next(h for h in headers.group(1).splitlines() if h.strip().startswith("Content-Type"))
    return line.split(":", 1)[1].strip()


@pytest.mark.parametrize("name", BODIES)
def test_nist_raw_body_is_accepted(system: RepositorySystem, name: str) -> None:
    from tests.conformance.nist.raw import rewrite_identifiers

    section = TESTS / name
    counter = itertools.count(1)
    payload, assigned = rewrite_identifiers(
        (section / "body.txt").read_bytes(),
        PATIENT,
        lambda: f"1.3.6.1.4.1.21367.2024.77.{next(counter)}",
    )
    host, port = system.gateway.http.address
    conn = http.client.HTTPConnection(host, port, timeout=30)
    conn.request(
        "POST", "/xds/repository", body=payload, headers={"Content-Type": _content_type(section)}
    )
    response = conn.getresponse()
    data = response.read()
    conn.close()
    assert response.status == 200, data[:2000]
    assert b"ResponseStatusType:Success" in data, data[:2000]
    [request] = system.registry.requests
    entries = parse_submit_objects_request(request).document_entries
    assert [e.repository_unique_id for e in entries] == [REPOSITORY_UID]
    [stored] = stored_files(system.root)
    assert entries[0].size == stored.stat().st_size > 0
    assert entries[0].unique_id in assigned.values()
