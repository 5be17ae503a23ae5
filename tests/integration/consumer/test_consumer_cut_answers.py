"""fetch-study against peers whose answers get cut short: a peer in front of the gateway sends the
headers and part of an answer, then drops the connection (an ITI-18, an ITI-43 and two RAD-69
answers). The command (run as the real ``xdsi-gateway fetch-study`` in its own process) asks
again and finishes with every instance on disk, exit 0, no traceback."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom import dcmread

from gateway.imaging import synthetic
from gateway.soap.transactions import IMAGING_SOURCE_PATH, REGISTRY_PATH, REPOSITORY_PATH
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
    """The uniqueIds a request names (instances, manifests; the patient of a query)."""
    found = re.findall(rb"DocumentUniqueId>([0-9.]+)<|PatientId.*?Value>([^<]+)<", request.body)
    return {(a or b).decode() for a, b in found}


@pytest.mark.parametrize("chunked", [False, True])
def test_cut_answers_are_asked_for_again_and_the_fetch_completes(
    tmp_path: Path, gateway: ServeProcess, chunked: bool
) -> None:
    study = make_study(tmp_path / "sent", f"CUT-{uuid.uuid4().hex[:6]}", (10, 10))
    feed_patient(gateway, study.patient)
    send_and_wait(gateway, gateway.registry_url, study)
    peer = CuttingPeer(target=gateway.base, chunked=chunked)

    def cut(number: int, size: int) -> int | None:
        """Half of the first ITI-18 and ITI-43 answers, and of the second and fourth RAD-69
        answers (inside an instance's MTOM part), then the connection drops."""
        path = peer.received[number].path
        nth = sum(1 for r in peer.received[: number + 1] if r.path == path)
        wanted = (2, 4) if path == IMAGING_SOURCE_PATH else (1,)
        return size // 2 if nth in wanted else None

    peer.cut = cut
    base = peer.start()
    out = tmp_path / "out"
    try:
        result = run_consumer(
            tmp_path,
            "fetch-study",
            "--patient", study.patient,
            "--out", str(out),
            "--registry", base + REGISTRY_PATH,
            "--repository", f"{REPOSITORY_UID}={base}{REPOSITORY_PATH}",
            "--imaging-source", f"{SOURCE_UID}={base}{IMAGING_SOURCE_PATH}",
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
    assert [c.path for c in cuts].count(REGISTRY_PATH) == 1
    assert [c.path for c in cuts].count(REPOSITORY_PATH) == 1
    assert [c.path for c in cuts].count(IMAGING_SOURCE_PATH) == 2
    assert all(0 < c.sent < c.answer_size for c in cuts)
    later = [asked_for(r) for r in peer.received if r.sent < 0]
    for cut_request in cuts:  # each cut request was asked again, whole, by a later request
        assert asked_for(cut_request)
        assert any(asked_for(cut_request) <= again for again in later)
    sent = study.by_uid
    stored = {
        str(dcmread(p, stop_before_pixels=True).SOPInstanceUID): p for p in out.rglob("*.dcm")
    }
    assert set(stored) == set(sent)
    for uid, path in stored.items():
        assert synthetic.dataset_bytes(path.read_bytes()) == synthetic.dataset_bytes(sent[uid])
    assert not (out / ".xdsi-partial").exists()  # no spooled part left behind
