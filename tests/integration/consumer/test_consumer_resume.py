"""Acceptance 3: fetch-study interrupted half-way, then run again, completes without asking for
any finished instance again. A proxy in front of RAD-69 counts the requests and the instances
each one names, and holds requests at a gate so the interruption lands at a known point."""

from __future__ import annotations

import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom import dcmread

from gateway.imaging import synthetic
from tests.integration.consumer.consumer_env import (
    REPOSITORY_UID,
    ROOT,
    SOURCE_UID,
    Rad69Proxy,
    ServeProcess,
    consumer_command,
    consumer_env,
    make_study,
    run_consumer,
    send_and_wait,
    source_url,
)
from tests.integration.repository.serve_process import feed_patient
from tests.support.process import sigint_at_default

BATCH = 5


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


@pytest.fixture
def proxy(gateway: ServeProcess) -> Iterator[Rad69Proxy]:
    proxy = Rad69Proxy(source_url(gateway))
    try:
        yield proxy
    finally:
        proxy.stop()


def fetched_uids(out: Path) -> set[str]:
    return {str(dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in out.rglob("*.dcm")}


def test_interrupted_fetch_resumes_without_fetching_finished_instances(
    tmp_path: Path, gateway: ServeProcess, proxy: Rad69Proxy
) -> None:
    study = make_study(tmp_path / "sent", f"RES-{uuid.uuid4().hex[:6]}", (20, 20))
    feed_patient(gateway, study.patient)
    send_and_wait(gateway, gateway.registry_url, study)
    url = proxy.start()
    out = tmp_path / "out"
    argv = [
        "fetch-study",
        "--patient", study.patient,
        "--out", str(out),
        "--registry", gateway.registry_url,
        "--repository", f"{REPOSITORY_UID}={gateway.repository_url}",
        "--imaging-source", f"{SOURCE_UID}={url}",
        "--batch-size", str(BATCH),
        "--parallel", "1",
        "--no-progress",
    ]  # fmt: skip

    proxy.hold_after(3)  # three batches go through, the fourth waits at the gate
    with sigint_at_default():  # even when this test runs with SIGINT ignored (a background job)
        first = subprocess.Popen(
            [*consumer_command(), *argv],
            cwd=ROOT,
            env=consumer_env(tmp_path),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    try:
        if not proxy.waiting.wait(60):
            first.kill()
            pytest.fail("the fetch never reached the fourth request: " + first.communicate()[1])
        # the worker asks for batch 4 while the first three may still be being written
        deadline = time.monotonic() + 30
        while len(list(out.rglob("*.dcm"))) < 3 * BATCH and time.monotonic() < deadline:
            time.sleep(0.02)  # polling the output folder with a deadline
        first.send_signal(signal.SIGINT)  # Ctrl-C while the fourth request is in flight
        proxy.release()
        _, err = first.communicate(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 130, err
    assert "run the same command again" in err
    done = fetched_uids(out)
    assert len(done) == 3 * BATCH  # the answer to the interrupted request was not kept
    first_requests = len(proxy.requests)

    second = run_consumer(tmp_path, *argv)
    assert second.returncode == 0, second.stdout + second.stderr
    assert f"{len(done)} already present, {40 - len(done)} fetched" in second.stdout
    again = proxy.requests[first_requests:]
    assert len(again) == (40 - len(done)) // BATCH
    asked_again = {uid for request in again for uid in request}
    assert asked_again.isdisjoint(done)
    assert asked_again | done == set(study.by_uid)
    sent = study.by_uid
    for path in out.rglob("*.dcm"):
        uid = str(dcmread(path, stop_before_pixels=True).SOPInstanceUID)
        assert synthetic.dataset_bytes(path.read_bytes()) == synthetic.dataset_bytes(sent[uid])

    third = run_consumer(tmp_path, *argv)
    assert third.returncode == 0 and "40 already present, 0 fetched" in third.stdout
    assert len(proxy.requests) == first_requests + len(again)  # nothing asked at all
