"""``serve --workers 2`` on PostgreSQL (issue 15, acceptance 4): HTTP (ITI-18, ITI-41, ITI-43),
MLLP (ITI-8) and DICOM (C-STORE, then RAD-69) served by two worker processes on shared sockets;
a worker killed with SIGKILL is replaced (a new pid) while the other keeps answering; SIGTERM to
the supervisor ends every worker and exits 0."""

from __future__ import annotations

import http.client
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from pydicom import dcmread

from gateway.config import load_settings
from gateway.consumer import cli as consumer_cli
from gateway.consumer.clients import RegistryQueryClient
from gateway.consumer.queries import QueryOptions, build_slots
from gateway.consumer.settings import ConsumerSettings
from gateway.demo import send_files, wait_for_manifest
from gateway.imaging import synthetic
from tests.integration.consumer.consumer_env import (
    REPOSITORY_UID,
    SOURCE_UID,
    SentStudy,
    dicom_address,
    make_study,
)
from tests.integration.repository.serve_process import ServeProcess, feed_patient
from tests.integration.repository.test_repository_processes import provide_file, retrieve_file

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

STARTED = re.compile(r"worker (\d+) started \(pid (\d+)\)")


def pids(process: ServeProcess) -> dict[int, int]:
    """The newest pid of each worker slot, from the supervisor's log."""
    return {int(slot): int(pid) for slot, pid in STARTED.findall(process.log())}


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie counts as ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


@pytest.fixture
def workers(tmp_path: Path, postgres_database_url: str) -> Iterator[ServeProcess]:
    process = ServeProcess(
        tmp_path / "data",
        {
            "XDSI_HTTP_WORKERS": "2",
            "XDSI_REGISTRY_DATABASE_URL": postgres_database_url,
            "XDSI_IMAGING_SOURCE_ENABLED": "true",
            "XDSI_IMAGING_SOURCE_STUDY_IDLE_SECONDS": "1",
        },
    )
    try:
        process._wait_for(re.compile("all 2 workers ready"), lambda m: m[0])
        yield process
    finally:
        process.stop()


def find_documents(process: ServeProcess, patient: str) -> int:
    """ITI-18 FindDocuments (Approved): how many entries the registry lists for ``patient``."""
    query_id, slots = build_slots(QueryOptions(patient_id=patient))
    client = RegistryQueryClient(process.registry_url, timeout=30)
    return len(client.query(query_id, slots).objects)


def exchange_http(process: ServeProcess, tmp_path: Path, patient: str) -> None:
    """ITI-41 a document, ITI-43 it back byte for byte, ITI-18 finds it."""
    data = os.urandom(50_000)
    source = tmp_path / f"doc-{uuid.uuid4().hex[:6]}.bin"
    source.write_bytes(data)
    code, printed, err = provide_file(process.repository_url, source, patient)
    assert code == 0, err
    back = tmp_path / "back.bin"
    assert retrieve_file(process.repository_url, printed["documentUniqueId"], back) == 0
    assert back.read_bytes() == data
    assert find_documents(process, patient) >= 1


def exchange_dicom(process: ServeProcess, tmp_path: Path, study: SentStudy) -> None:
    """C-STORE the study, wait for its manifest (ITI-18), fetch it (ITI-43 and RAD-69)."""
    assert send_files(dicom_address(process), study.paths) == len(study.paths)
    consumer = ConsumerSettings(registry_url=process.registry_url)
    wait_for_manifest(consumer, study.patient, study.spec.study_uid, 90)
    out = tmp_path / f"fetched-{uuid.uuid4().hex[:6]}"
    args = consumer_cli.build_parser().parse_args(
        [
            "fetch-study",
            "--patient",
            study.patient,
            "--registry",
            process.registry_url,
            "--repository",
            f"{REPOSITORY_UID}={process.repository_url}",
            "--imaging-source",
            f"{SOURCE_UID}={process.base}/xdsi/source",
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    settings = load_settings(environ={"XDSI_GATEWAY_DATA_DIR": str(tmp_path / "consumer")})
    err = io.StringIO()
    assert consumer_cli.run_fetch(args, settings, out=io.StringIO(), err=err) == 0, err.getvalue()
    fetched = {str(dcmread(p).SOPInstanceUID): p for p in out.rglob("*.dcm")}
    for uid, sent in study.by_uid.items():
        assert synthetic.dataset_bytes(fetched[uid].read_bytes()) == synthetic.dataset_bytes(sent)


def test_two_workers_serve_every_protocol_and_replace_a_killed_one(
    workers: ServeProcess, tmp_path: Path
) -> None:
    before = pids(workers)
    assert set(before) == {1, 2} and all(alive(pid) for pid in before.values())
    study = make_study(tmp_path / "sent", f"WK-{uuid.uuid4().hex[:6]}", (3, 2))
    feed_patient(workers, study.patient)
    exchange_http(workers, tmp_path, study.patient)
    exchange_dicom(workers, tmp_path, study)

    victim = before[2]
    os.kill(victim, signal.SIGKILL)
    workers._wait_for(re.compile(rf"worker 2 \(pid {victim}\) was killed by SIGKILL"), bool)
    # Until the replacement says it is ready, worker 1 alone answers every request.
    served_meanwhile = 0
    deadline = time.monotonic() + 60
    ready = re.compile(r"worker 2 ready \(pid (\d+)\)")
    while time.monotonic() < deadline:
        replaced = [int(pid) for pid in ready.findall(workers.log()) if int(pid) != victim]
        if replaced:
            break
        assert requests.get(workers.base + "/health", timeout=10).status_code == 200
        assert find_documents(workers, study.patient) >= 2
        served_meanwhile += 1
    assert replaced, workers.log()
    assert served_meanwhile > 0
    print(f"{served_meanwhile} request pairs served by worker 1 alone during the restart")
    after = pids(workers)
    assert after[1] == before[1] and after[2] == replaced[0] != victim and alive(after[2])

    # Everything still works with the new worker among them.
    second = make_study(tmp_path / "sent-2", f"WK-{uuid.uuid4().hex[:6]}", (2,))
    feed_patient(workers, second.patient)
    exchange_http(workers, tmp_path, second.patient)
    exchange_dicom(workers, tmp_path, second)

    served = Counter(re.findall(r"\[(worker \d)\] gateway\.access", workers.log()))
    print(f"requests served per worker: {dict(served)}")
    workers.proc.send_signal(signal.SIGTERM)
    assert workers.proc.wait(timeout=120) == 0
    assert not any(alive(pid) for pid in (*after.values(), victim))
    assert "worker 1 (pid" in workers.log() and "stopped (exited with code 0)" in workers.log()


def test_workers_stop_when_their_supervisor_is_killed(workers: ServeProcess) -> None:
    started = pids(workers)
    workers.kill()  # SIGKILL: the supervisor forwards nothing
    deadline = time.monotonic() + 60
    while any(alive(pid) for pid in started.values()) and time.monotonic() < deadline:
        time.sleep(0.1)  # polling the workers' end with a deadline
    assert not any(alive(pid) for pid in started.values()), workers.log()
    assert workers.log().count("the supervisor is gone: stopping") == 2


def test_keep_alive_connections_opened_at_once_are_spread_over_the_workers(
    workers: ServeProcess,
) -> None:
    """Each worker listens on a socket of its own (SO_REUSEPORT): the kernel lists two listening
    sockets on the HTTP port, not one shared by both. 16 connections opened at once and kept
    alive land on both workers (the kernel hashes each connection's addresses; all 16 on one of
    two is a 1 in 32768 chance), and each stays with its worker."""
    host, port = workers.base.split("://", 1)[1].rsplit(":", 1)
    assert listening_sockets(int(port)) == 2
    connections = [http.client.HTTPConnection(host, int(port), timeout=30) for _ in range(16)]
    for conn in connections:
        conn.connect()
    try:
        first = [health_worker(conn) for conn in connections]
        again = [health_worker(conn) for conn in connections]
    finally:
        for conn in connections:
            conn.close()
    assert set(first) == {1, 2}, Counter(first)
    assert again == first  # keep-alive: a connection stays with the worker that accepted it


def listening_sockets(port: int) -> int:
    """How many TCP sockets listen on ``port`` (IPv4, this network namespace)."""
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1].endswith(f":{port:04X}") and fields[3] == "0A":  # 0A: LISTEN
            count += 1
    return count


def health_worker(conn: http.client.HTTPConnection) -> int:
    """GET /health on ``conn`` (kept open): the worker that answered."""
    conn.request("GET", "/health")
    answer = conn.getresponse()
    body = json.loads(answer.read())
    assert answer.status == 200, body
    return int(body["process"]["worker"])


def test_a_second_gateway_cannot_join_the_workers_port(
    workers: ServeProcess, tmp_path: Path
) -> None:
    """SO_REUSEPORT lets sockets of one user share a port: serve proves its ports free first, so
    a second ``serve --workers 2`` on the same port stops (exit 2) instead of taking a share of
    the first one's connections."""
    port = workers.base.rsplit(":", 1)[1]
    env = {
        **workers.env,
        "XDSI_GATEWAY_DATA_DIR": str(tmp_path / "second"),
        "XDSI_HTTP_PORT": port,
    }
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "serve", "--workers", "2"],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert f"cannot listen on 127.0.0.1:{port} for HTTP" in done.stderr
    assert "address already in use" in done.stderr
