"""Issue 14, acceptance 6, against a real ``xdsi-gateway serve``: a study whose patient was never
fed is logged once and listed (``/health``, ``imaging pending``); each DICOM association leaves
one INFO line, each refused one too; ``publish FILE`` publishes a single DICOM file."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from pynetdicom import AE
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from gateway.demo import send_files
from gateway.imaging import synthetic
from tests.integration.cli.cli_support import clean_env, run
from tests.integration.consumer.consumer_env import dicom_address
from tests.integration.repository.serve_process import DOMAIN, ServeProcess, feed_patient


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[ServeProcess]:
    process = ServeProcess(
        tmp_path / "data",
        env={
            "XDSI_IMAGING_SOURCE_ENABLED": "true",
            "XDSI_IMAGING_SOURCE_STUDY_IDLE_SECONDS": "1",
        },
    )
    try:
        yield process
    finally:
        process.stop()


def _held_studies(gateway: ServeProcess) -> int:
    return int(requests.get(gateway.base + "/health", timeout=10).json().get("held_studies", 0))


def _wait(predicate: object, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)  # polling the gateway with a deadline


def test_a_study_of_a_patient_never_fed_is_held_logged_once_and_listed(
    tmp_path: Path, gateway: ServeProcess
) -> None:
    spec = synthetic.StudySpec(
        patient_id="NEVER-FED", series=(synthetic.SeriesSpec(modality="CT", count=3),)
    )
    paths = synthetic.write_study(synthetic.make_study(spec), tmp_path / "study")
    assert send_files(dicom_address(gateway), paths, calling_ae_title="MODALITY") == 3
    _wait(lambda: _held_studies(gateway) == 1, "the study to be held")
    health = requests.get(gateway.base + "/health", timeout=10)
    assert health.status_code == 200 and health.json()["status"] == "ready"  # held: still healthy

    log = gateway.log()
    held = [line for line in log.splitlines() if " held: " in line]
    assert len(held) == 1 and " WARNING " in held[0], held
    assert f"the registry does not know patient NEVER-FED^^^&{DOMAIN}&ISO" in held[0]
    assert "feed the patient to the registry" in held[0]
    assert " ERROR " not in log
    received = re.findall(r"INFO +gateway.imaging: DICOM association from MODALITY .*", log)
    assert len(received) == 1, log
    assert re.search(r"released: 3 instance\(s\) stored \([\d.]+ KiB\) in [\d.]+ s", received[0])

    env = clean_env(XDSI_GATEWAY_DATA_DIR=str(gateway.data_dir))
    listing = run(tmp_path, "imaging", "pending", env=env)
    assert listing.code == 0, listing.err
    lines = listing.out.splitlines()
    assert lines[0] == f"held {spec.study_uid}"
    assert lines[1] == "  patient id as received: NEVER-FED"
    assert lines[2].startswith("  since: ") and lines[2].endswith(" (3 instance(s))")
    assert lines[3].startswith("  reason: the registry does not know patient NEVER-FED^^^&")
    assert lines[4].startswith("  to do: feed the patient to the registry: ITI-8 ADT A01/A04")


def test_a_refused_association_is_one_info_line(gateway: ServeProcess) -> None:
    _, host, port = dicom_address(gateway)
    ae = AE(ae_title="STRANGER")
    ae.add_requested_context(Verification)
    assoc = ae.associate(host, port, ae_title="NOT_OURS")
    assert assoc.is_rejected
    _wait(lambda: ") refused: " in gateway.log(), "the refusal in the log", timeout=20)
    lines = [line for line in gateway.log().splitlines() if ") refused: " in line]
    assert len(lines) == 1, lines
    [line] = lines
    assert " INFO " in line
    assert re.search(
        r"DICOM association from STRANGER \(127\.0\.0\.1:\d+\) refused: called AE title "
        r"'NOT_OURS' is not this listener's 'XDSI_SOURCE' \(imaging_source.ae_title\)",
        line,
    )


def test_publish_publishes_a_single_dicom_file(tmp_path: Path, gateway: ServeProcess) -> None:
    feed_patient(gateway, f"FED-1^^^&{DOMAIN}&ISO")
    gateway.stop()  # publish works on the gateway's data, the way an operator runs it
    spec = synthetic.StudySpec(
        patient_id="FED-1", series=(synthetic.SeriesSpec(modality="MR", count=1),)
    )
    [path] = synthetic.write_study(synthetic.make_study(spec), tmp_path / "in")
    env = clean_env(XDSI_GATEWAY_DATA_DIR=str(gateway.data_dir))
    result = run(tmp_path, "publish", str(path), env=env)
    assert result.code == 0, result.err
    assert re.fullmatch(rf"published {spec.study_uid} manifest [\d.]+\n", result.out)
    assert f"xdsi-gateway publish: data folder {gateway.data_dir}" in result.err
