"""Acceptance 1: two gateways as two hospitals and a consumer in a third process.

Hospital A runs only an Imaging Document Source and publishes (RAD-68 = ITI-41) to the region's
gateway B, which runs the registry and the repository. A study sent to A over DICOM is fetched by
the consumer through B's registry (ITI-18) and repository (ITI-43) and A's RAD-69, and every
instance arrives byte for byte as it was sent."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom import dcmread

from gateway.imaging import synthetic
from tests.integration.consumer.consumer_env import (
    REPOSITORY_UID,
    ServeProcess,
    count_rad69,
    make_study,
    run_consumer,
    send_and_wait,
    source_url,
)
from tests.integration.repository.serve_process import feed_patient

HOSPITAL_A = "1.3.6.1.4.1.21367.13.80.201"  # A's Retrieve Location UID


@pytest.fixture
def region(tmp_path: Path) -> Iterator[ServeProcess]:
    process = ServeProcess(tmp_path / "region-b")
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def hospital(tmp_path: Path, region: ServeProcess) -> Iterator[ServeProcess]:
    process = ServeProcess(
        tmp_path / "hospital-a",
        env={
            "XDSI_REGISTRY_ENABLED": "false",
            "XDSI_REPOSITORY_ENABLED": "false",
            "XDSI_HL7_ENABLED": "false",
            "XDSI_IMAGING_SOURCE_ENABLED": "true",
            "XDSI_IMAGING_SOURCE_UNIQUE_ID": HOSPITAL_A,
            "XDSI_IMAGING_SOURCE_REPOSITORY_URL": region.repository_url,
            "XDSI_IMAGING_SOURCE_STUDY_IDLE_SECONDS": "1",
        },
    )
    try:
        yield process
    finally:
        process.stop()


def test_study_sent_to_hospital_a_is_fetched_through_the_region(
    tmp_path: Path, region: ServeProcess, hospital: ServeProcess
) -> None:
    patient_local = f"TWO-{uuid.uuid4().hex[:6]}"
    study = make_study(tmp_path / "sent", patient_local, (12, 8, 6))
    feed_patient(region, study.patient)
    entry = send_and_wait(hospital, region.registry_url, study)
    assert entry.repository_unique_id == REPOSITORY_UID

    out = tmp_path / "fetched"
    result = run_consumer(
        tmp_path,
        "fetch-study",
        "--patient", study.patient,
        "--study", study.spec.study_uid,
        "--out", str(out),
        "--registry", region.registry_url,
        "--repository", f"{REPOSITORY_UID}={region.repository_url}",
        "--imaging-source", f"{HOSPITAL_A}={source_url(hospital)}",
        "--batch-size", "10",
        "--no-progress",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "complete: 26 instance(s) of 1 study(ies)" in result.stdout

    sent = study.by_uid
    fetched = {
        str(dcmread(p, stop_before_pixels=True).SOPInstanceUID): p for p in out.rglob("*.dcm")
    }
    assert set(fetched) == set(sent)
    for uid, path in fetched.items():
        assert synthetic.dataset_bytes(path.read_bytes()) == synthetic.dataset_bytes(sent[uid])
        assert path.parent.parent.name == study.spec.study_uid
    # the instances came from A by RAD-69 (3 batches of at most 10), the manifest from B by ITI-43
    assert count_rad69(hospital) == 3
    assert count_rad69(region) == 0
    assert "/xds/repository ITI-43 " in region.log()
    assert "/xds/registry ITI-18 " in region.log()
