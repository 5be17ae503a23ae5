"""fetch-study against an imaging source whose answers get cut short: a peer in front of RAD-69
sends the headers and part of an answer, then drops the connection. The command (run as the
real ``xdsi-gateway fetch-study`` in its own process) asks for that batch again and finishes with
every instance on disk, exit 0, no traceback."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom import dcmread

from gateway.imaging import synthetic
from tests.integration.consumer.consumer_env import (
    REPOSITORY_UID,
    SOURCE_UID,
    ServeProcess,
    make_study,
    run_consumer,
    send_and_wait,
)
from tests.integration.repository.serve_process import feed_patient
from tests.support.cutting_peer import CuttingPeer, Received

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


def asked_for(request: Received) -> set[str]:
    return {u.decode() for u in re.findall(rb"DocumentUniqueId>([0-9.]+)<", request.body)}


@pytest.mark.parametrize("chunked", [False, True])
def test_cut_answers_are_asked_for_again_and_the_fetch_completes(
    tmp_path: Path, gateway: ServeProcess, chunked: bool
) -> None:
    study = make_study(tmp_path / "sent", f"CUT-{uuid.uuid4().hex[:6]}", (10, 10))
    feed_patient(gateway, study.patient)
    send_and_wait(gateway, gateway.registry_url, study)
    # The second and fourth RAD-69 answers stop half-way through (inside an instance's part).
    peer = CuttingPeer(
        target=gateway.base,
        chunked=chunked,
        cut=lambda number, size: size // 2 if number in (1, 3) else None,
    )
    base = peer.start()
    out = tmp_path / "out"
    try:
        result = run_consumer(
            tmp_path,
            "fetch-study",
            "--patient", study.patient,
            "--out", str(out),
            "--registry", gateway.registry_url,
            "--repository", f"{REPOSITORY_UID}={gateway.repository_url}",
            "--imaging-source", f"{SOURCE_UID}={base}/xdsi/source",
            "--batch-size", str(BATCH),
            "--parallel", "2",
            "--no-progress",
        )  # fmt: skip
    finally:
        peer.stop()

    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert f"complete: {len(study.paths)} instance(s)" in result.stdout
    cuts = peer.cuts
    assert len(cuts) == 2 and all(0 < c.sent < c.answer_size for c in cuts)
    later = [asked_for(r) for r in peer.received if r.sent < 0]
    for cut in cuts:  # each cut batch was asked for again, whole, by a later request
        assert any(asked_for(cut) <= again for again in later)
    sent = study.by_uid
    stored = {
        str(dcmread(p, stop_before_pixels=True).SOPInstanceUID): p for p in out.rglob("*.dcm")
    }
    assert set(stored) == set(sent)
    for uid, path in stored.items():
        assert synthetic.dataset_bytes(path.read_bytes()) == synthetic.dataset_bytes(sent[uid])
    assert not (out / ".xdsi-partial").exists()  # no spooled part left behind
