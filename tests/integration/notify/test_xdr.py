"""XDR-I between two hospitals with no shared registry (acceptance 1): hospital A publishes a
study, ``push`` sends its KOS to B's /xdr/recipient, it appears in B's ``inbox list``; ``inbox
accept`` retrieves the instances by RAD-69 from A and publishes them in B; B's ``fetch-study``
returns every instance byte for byte as A holds it. The commands run as real subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gateway.app import Gateway
from gateway.imaging import synthetic
from gateway.notify.xdr import Inbox
from tests.integration.imaging.conftest import run_storescu
from tests.integration.notify.support import DOMAIN, feed, start_gateway

A_SOURCE = "1.3.6.1.4.1.21367.13.80.101"
A_REPOSITORY = "1.3.6.1.4.1.21367.13.40.101"
ROOT = Path(__file__).resolve().parents[3]


def _cli(data: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("XDSI_") or k.startswith("XDSI_TEST")
    }
    environ.update({"XDSI_GATEWAY_DATA_DIR": str(data), **env})
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env=environ,
        check=False,
    )


def _dataset(data: bytes) -> object:
    import io

    import pydicom

    ds = pydicom.dcmread(io.BytesIO(data))
    del ds.file_meta
    return ds


def _stored(gw: Gateway, uid: str) -> bytes:
    assert gw.imaging is not None
    record = gw.imaging.index.instance(uid)
    assert record is not None, uid
    return gw.imaging.store.path(record.path).read_bytes()


@pytest.mark.parametrize("with_images", [False, True], ids=["rad69", "with-images"])
def test_push_inbox_accept_and_fetch_study_byte_identical(
    tmp_path: Path, with_images: bool
) -> None:
    """With ``--with-images`` B cannot reach A's RAD-69 (no [consumer.imaging_sources] entry for
    A): the instances come by C-STORE from A's outbox, and the import finds them all here."""
    a = start_gateway(
        tmp_path / "a",
        XDSI_IMAGING_SOURCE_UNIQUE_ID=A_SOURCE,
        XDSI_REPOSITORY_UNIQUE_ID=A_REPOSITORY,
    )
    b_env = (
        {}
        if with_images
        else {"XDSI_CONSUMER_IMAGING_SOURCES": f"{A_SOURCE}={a.base_url}/xdsi/source"}
    )
    b = start_gateway(tmp_path / "b", **b_env)
    try:
        patient = feed(a, "P-7")
        assert feed(b, "P-7") == patient  # B knows the patient in its own registry
        spec = synthetic.StudySpec(
            patient_id="P-7",
            issuer_oid=DOMAIN,
            series=(
                synthetic.SeriesSpec(modality="CT", count=3),
                synthetic.SeriesSpec(modality="MR", count=2),
            ),
        )
        instances = synthetic.make_study(spec)
        files = synthetic.write_study(instances, tmp_path / "study")
        assert a.imaging is not None
        run_storescu(*a.imaging.address, files)
        published = a.imaging.publish_study(spec.study_uid, force=True)
        assert published.manifest_uid, published

        assert b.imaging is not None
        host, port = b.imaging.address
        images = ["--with-images", f"XDSI_SOURCE@{host}:{port}"] if with_images else []
        pushed = _cli(
            tmp_path / "a",
            "push",
            "--study",
            spec.study_uid,
            "--to",
            b.base_url + "/xdr/recipient",
            *images,
            XDSI_IMAGING_SOURCE_UNIQUE_ID=A_SOURCE,
            XDSI_REPOSITORY_UNIQUE_ID=A_REPOSITORY,
        )
        assert pushed.returncode == 0, pushed.stdout + pushed.stderr
        assert "done" in pushed.stdout

        listed = _cli(tmp_path / "b", "inbox", "list", "--json", **b_env)
        assert listed.returncode == 0, listed.stderr
        [entry] = [json.loads(line) for line in listed.stdout.splitlines()]
        assert entry["state"] == "received"
        assert entry["patient"] == patient
        assert entry["studies"] == [spec.study_uid]
        held = b.imaging.index.instances([str(ds.SOPInstanceUID) for ds in instances])
        assert len(held) == (len(instances) if with_images else 0)

        accepted = _cli(tmp_path / "b", "inbox", "accept", str(entry["id"]), **b_env)
        assert accepted.returncode == 0, accepted.stdout + accepted.stderr
        again = _cli(tmp_path / "b", "inbox", "list", "--json", **b_env)
        assert json.loads(again.stdout)["state"] == "accepted"

        out = tmp_path / "fetched"
        fetched = _cli(
            tmp_path / "b",
            "fetch-study",
            "--patient",
            patient,
            "--out",
            str(out),
            XDSI_HTTP_PORT=str(b.http.address[1]),  # this gateway's own endpoints
            **b_env,
        )
        assert fetched.returncode == 0, fetched.stdout + fetched.stderr
        got = {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()}
        uids = [str(ds.SOPInstanceUID) for ds in instances]
        assert len(got) == len(uids)
        for uid in uids:
            mine = _stored(a, uid)
            theirs = _stored(b, uid)
            [match] = [name for name, data in got.items() if data == theirs]
            if with_images:  # C-STORE carries the data set; B wrote its own File Meta
                assert _dataset(theirs) == _dataset(mine)
            else:
                assert theirs == mine  # RAD-69: stored in B byte for byte as A holds it
                assert got[match] == mine
        # B's manifest names B as the Retrieve Location: its fetch never went back to A
        record = b.imaging.index.study(spec.study_uid)
        assert record is not None and record.manifest_sop_instance_uid
        assert record.manifest_sop_instance_uid != published.manifest_uid
    finally:
        b.stop()
        a.stop()


def test_the_recipient_refuses_a_submission_without_metadata(tmp_path: Path) -> None:
    import requests

    b = start_gateway(tmp_path / "b")
    try:
        envelope = (
            '<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" '
            'xmlns:wsa="http://www.w3.org/2005/08/addressing"><env:Header>'
            '<wsa:Action env:mustUnderstand="true">urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b'
            "</wsa:Action><wsa:MessageID>urn:uuid:1b4b5c16-2c4d-4ae0-9d2e-7d4fd1a3c5d1"
            "</wsa:MessageID></env:Header><env:Body>"
            '<xdsb:ProvideAndRegisterDocumentSetRequest xmlns:xdsb="urn:ihe:iti:xds-b:2007">'
            '<lcm:SubmitObjectsRequest xmlns:lcm="urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0">'
            '<rim:RegistryObjectList xmlns:rim="urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"/>'
            "</lcm:SubmitObjectsRequest></xdsb:ProvideAndRegisterDocumentSetRequest>"
            "</env:Body></env:Envelope>"
        )
        answer = requests.post(
            b.base_url + "/xdr/recipient",
            data=envelope.encode(),
            headers={"Content-Type": "application/soap+xml; charset=UTF-8"},
            timeout=30,
        )
        assert answer.status_code == 200
        assert b"ResponseStatusType:Failure" in answer.content
        assert (
            b"XDSRepositoryMetadataError" in answer.content
            or b"XDSRegistryMetadataError" in answer.content
        )
        listed = _cli(tmp_path / "b", "inbox", "list")
        assert listed.returncode == 0 and listed.stdout == ""
    finally:
        b.stop()


def test_auto_import_takes_a_push_in_at_once(tmp_path: Path) -> None:
    a = start_gateway(
        tmp_path / "a",
        XDSI_IMAGING_SOURCE_UNIQUE_ID=A_SOURCE,
        XDSI_REPOSITORY_UNIQUE_ID=A_REPOSITORY,
    )
    b = start_gateway(
        tmp_path / "b",
        XDSI_XDR_AUTO_IMPORT="true",
        XDSI_CONSUMER_IMAGING_SOURCES=f"{A_SOURCE}={a.base_url}/xdsi/source",
    )
    try:
        feed(a, "P-8")
        feed(b, "P-8")
        spec = synthetic.StudySpec(
            patient_id="P-8",
            issuer_oid=DOMAIN,
            series=(synthetic.SeriesSpec(modality="CT", count=2),),
        )
        instances = synthetic.make_study(spec)
        assert a.imaging is not None and b.imaging is not None
        run_storescu(*a.imaging.address, synthetic.write_study(instances, tmp_path / "s"))
        assert a.imaging.publish_study(spec.study_uid, force=True).manifest_uid
        pushed = _cli(
            tmp_path / "a",
            "push",
            "--study",
            spec.study_uid,
            "--to",
            b.base_url + "/xdr/recipient",
            XDSI_IMAGING_SOURCE_UNIQUE_ID=A_SOURCE,
            XDSI_REPOSITORY_UNIQUE_ID=A_REPOSITORY,
        )
        assert pushed.returncode == 0, pushed.stdout + pushed.stderr
        inbox = Inbox(b.database.engine, b.settings.data_dir / "xdr")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and [e.state for e in inbox.list()] != ["accepted"]:
            time.sleep(0.2)
        record = b.imaging.index.study(spec.study_uid)
        assert record is not None and record.manifest_sop_instance_uid
        for ds in instances:
            uid = str(ds.SOPInstanceUID)
            assert _stored(b, uid) == _stored(a, uid)
        listed = _cli(tmp_path / "b", "inbox", "list", "--json")
        assert json.loads(listed.stdout)["state"] == "accepted"
    finally:
        b.stop()
        a.stop()
