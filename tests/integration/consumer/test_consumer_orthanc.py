"""Acceptance 2: fetch-study into a real PACS. Orthanc (Debian package ``orthanc``) runs with its
own configuration on free loopback ports, no authentication, storage in tmp_path; the consumer
C-STOREs the study to it and Orthanc's REST API lists every instance. A second run finds them
there by C-FIND and sends nothing again."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.consumer.consumer_env import (
    REPOSITORY_UID,
    SOURCE_UID,
    ServeProcess,
    count_rad69,
    make_study,
    run_consumer,
    send_and_wait,
    source_url,
)
from tests.integration.repository.serve_process import feed_patient
from tests.support.orthanc import ORTHANC_AET, Orthanc, running_orthanc


@pytest.fixture
def orthanc(tmp_path: Path) -> Iterator[Orthanc]:
    with running_orthanc(tmp_path / "orthanc", Name="xdsi-consumer-test") as server:
        yield server


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[ServeProcess]:
    process = ServeProcess(
        tmp_path / "gateway",
        env={"XDSI_IMAGING_SOURCE_ENABLED": "true", "XDSI_IMAGING_SOURCE_STUDY_IDLE_SECONDS": "1"},
    )
    try:
        yield process
    finally:
        process.stop()


def test_study_is_fetched_into_orthanc_by_c_store(
    tmp_path: Path, gateway: ServeProcess, orthanc: Orthanc
) -> None:
    study = make_study(tmp_path / "sent", f"PACS-{uuid.uuid4().hex[:6]}", (8, 6, 4))
    feed_patient(gateway, study.patient)
    send_and_wait(gateway, gateway.registry_url, study)
    argv = [
        "fetch-study",
        "--patient", study.patient,
        "--store-to", f"{ORTHANC_AET}@127.0.0.1:{orthanc.dicom_port}",
        "--registry", gateway.registry_url,
        "--repository", f"{REPOSITORY_UID}={gateway.repository_url}",
        "--imaging-source", f"{SOURCE_UID}={source_url(gateway)}",
        "--no-progress",
    ]  # fmt: skip
    result = run_consumer(tmp_path, *argv)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 already present, 18 fetched" in result.stdout
    assert orthanc.instances() == set(study.by_uid)
    requests_before = count_rad69(gateway)

    again = run_consumer(tmp_path, *argv)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "18 already present, 0 fetched" in again.stdout
    assert count_rad69(gateway) == requests_before
