"""``xdsi-gateway imaging reject`` in its own process, on the data of a gateway that published a
study (IHE RAD IOCM): the note is made and taken in, the study published again without the
rejected instance (replacing the manifest), then, rejecting the rest, deprecated."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.imaging import synthetic
from tests.integration.cli.cli_support import clean_env, run
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


def test_imaging_reject_replaces_then_deprecates(tmp_path: Path, gateway: ServeProcess) -> None:
    feed_patient(gateway, f"REJ-1^^^&{DOMAIN}&ISO")
    gateway.stop()  # the operator's commands work on the gateway's data
    spec = synthetic.StudySpec(
        patient_id="REJ-1", series=(synthetic.SeriesSpec(modality="CT", count=3),)
    )
    instances = synthetic.make_study(spec)
    folder = tmp_path / "in"
    synthetic.write_study(instances, folder)
    env = clean_env(XDSI_GATEWAY_DATA_DIR=str(gateway.data_dir))
    published = run(tmp_path, "publish", str(folder), env=env)
    assert published.code == 0, published.err
    first = re.fullmatch(rf"published {spec.study_uid} manifest ([\d.]+)\n", published.out)
    assert first is not None

    gone = str(instances[0].SOPInstanceUID)
    result = run(
        tmp_path,
        *("imaging", "reject", "--study", spec.study_uid, "--instance", gone),
        *("--reason", "113038"),
        env=env,
    )
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0].startswith(
        f"rejected 1 instance(s) of study {spec.study_uid} "
        "(113038 Incorrect Modality Worklist Entry); Rejection Note "
    )
    second = re.fullmatch(rf"published {spec.study_uid} manifest ([\d.]+)", lines[1])
    assert second is not None and second.group(1) != first.group(1)

    result = run(
        tmp_path,
        *("imaging", "reject", "--study", spec.study_uid, "--reason", "113039"),
        env=env,
    )
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0].startswith(f"rejected 2 instance(s) of study {spec.study_uid} ")
    assert lines[1] == f"deprecated {spec.study_uid} manifest {second.group(1)}"

    # nothing left to reject: exit 2, nothing done
    result = run(
        tmp_path,
        *("imaging", "reject", "--study", spec.study_uid, "--reason", "113001"),
        env=env,
    )
    assert result.code == 2
    assert "no stored instance matches" in result.err
