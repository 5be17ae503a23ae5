"""The exchange browser's pages over plain HTTP on a real gateway: the patient's documents
through the Initiating Gateway when XCA is on, patient ids masked when ``log.patient_ids =
false``, the document page and its download (the KOS as DICOM), the dashboard's counts and
recent transactions."""

from __future__ import annotations

import html
import io
from pathlib import Path
from urllib.parse import quote

import pydicom
import requests

from gateway.ui.web import mask
from tests.integration.ui.conftest import feed, publish_study, start_gateway

HOME = "urn:oid:1.3.6.1.4.1.21367.13.70.1"


def test_patient_documents_come_through_the_initiating_gateway(tmp_path: Path) -> None:
    gw = start_gateway(tmp_path, XDSI_XCA_ENABLED="true", XDSI_XCA_HOME_COMMUNITY_ID=HOME)
    try:
        cx = feed(gw, "UI-0400")
        study = publish_study(gw, tmp_path / "study", "UI-0400", ct=2)
        page = requests.get(f"{gw.base_url}/ui/patients/{quote(cx, safe='')}", timeout=60)
        assert page.status_code == 200
        assert study in page.text and HOME in page.text  # the community column
        assert gw.journal is not None
        served = [(e.transaction, e.path) for e in gw.journal.recent(20)]
        assert ("ITI-18", "/xca/ig") in served  # the UI asked the Initiating Gateway
        dashboard = requests.get(gw.base_url + "/ui/", timeout=30).text
        assert "/xca/ig" in dashboard and "ITI-18" in dashboard
        sent = [e for e in gw.journal.recent(20) if e.direction == "sent"]
        assert [(e.transaction, e.outcome, e.path) for e in sent] == [
            ("RAD-68", "Success", f"study {study}")
        ]
        assert f"<td>sent</td><td>RAD-68</td><td>study {study}</td>" in dashboard
    finally:
        gw.stop()


def test_masked_ids_document_page_and_kos_download(tmp_path: Path) -> None:
    gw = start_gateway(tmp_path, XDSI_LOG_PATIENT_IDS="false")
    try:
        cx = feed(gw, "UI-0500", family="Curie", given="Marie")
        study = publish_study(gw, tmp_path / "study", "UI-0500", ct=2)
        base = gw.base_url
        search = requests.get(base + "/ui/patients", params={"q": "curie"}, timeout=30)
        assert search.status_code == 200 and "Curie" in search.text
        assert "UI-0500" not in search.text  # not even in the link to the patient's page
        assert html.escape(mask(cx)) in search.text
        link = search.text.split('href="/ui/patients/', 1)[1].split('"', 1)[0]
        assert link.startswith("~")  # an encrypted reference
        page = requests.get(f"{base}/ui/patients/{link}", timeout=30)
        assert page.status_code == 200 and html.escape(mask(cx)) in page.text
        assert "UI-0500" not in page.text
        assert requests.get(f"{base}/ui/patients/~forged", timeout=30).status_code == 404
        link = page.text.split('href="/ui/documents/', 1)[1].split('"', 1)[0]
        document = requests.get(f"{base}/ui/documents/{link}", timeout=30)
        assert document.status_code == 200 and "application/dicom" in document.text
        assert "UI-0500" not in document.text
        kos = requests.get(f"{base}/ui/documents/{link}/download", timeout=30)
        assert kos.status_code == 200 and kos.headers["Content-Type"] == "application/dicom"
        manifest = pydicom.dcmread(io.BytesIO(kos.content))
        assert manifest.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.59"  # Key Object Selection
        assert manifest.StudyInstanceUID == study
        counts = requests.get(base + "/ui/", timeout=30).text
        assert 'id="count-instances">4<' in counts and 'id="count-patients">1<' in counts
    finally:
        gw.stop()


def test_ui_disabled(tmp_path: Path) -> None:
    gw = start_gateway(tmp_path, XDSI_UI_ENABLED="false")
    try:
        assert gw.ui is None and gw.metrics is None and gw.journal is None
        for path in ("/ui/", "/ui/static/ui.css", "/metrics"):
            assert requests.get(gw.base_url + path, timeout=30).status_code == 404, path
        assert requests.get(gw.base_url + "/health", timeout=30).status_code == 200
    finally:
        gw.stop()
