"""One audit queue shared by several processes (the workers of ``serve --workers N`` share the data
folder): every record delivered exactly once, those of a killed process included."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
WORKER = textwrap.dedent(
    """
    import sys, threading, time
    from gateway.audit.queue import AuditQueue
    from gateway.audit.transport import FileDestination, Sender

    queue_dir, log_path, tag, count, mode = sys.argv[1:]
    destination = FileDestination(log_path)
    queue = AuditQueue(queue_dir, [destination.name])
    for start in range(0, int(count), 25):  # batches, as the trail's writer stores them
        queue.put_many([f"{tag}-{n:04d}".encode() for n in range(start, start + 25)])
    print("stored", flush=True)
    if mode == "die":
        time.sleep(120)  # SIGKILLed by the test, its records undelivered
    sender = Sender(queue, destination, wake=threading.Event(), retry_min_seconds=0.05)
    sender.start()
    deadline = time.monotonic() + 60
    while queue.pending() and time.monotonic() < deadline:  # everyone's records, not only ours
        time.sleep(0.05)
    sender.stop()
    queue.close()
    print("done", flush=True)
    """
)


def _start(queue_dir: Path, log: Path, tag: str, mode: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, str(queue_dir), str(log), tag, "200", mode],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def test_workers_sharing_a_queue_deliver_every_record_once(tmp_path: Path) -> None:
    queue_dir, log = tmp_path / "audit", tmp_path / "audit.log"
    killed = _start(queue_dir, log, "killed", "die")
    workers: list[subprocess.Popen[bytes]] = []
    try:
        assert killed.stdout is not None and killed.stdout.readline().strip() == b"stored"
        killed.send_signal(signal.SIGKILL)
        killed.wait(10)
        # Three live processes open the queue at once: each sends its own records, and one of
        # them claims the killed process's.
        workers = [_start(queue_dir, log, f"w{n}", "send") for n in range(3)]
        for worker in workers:
            out, _err = worker.communicate(timeout=120)
            assert out.split() == [b"stored", b"done"]
    finally:
        for process in (killed, *workers):
            if process.poll() is None:
                process.kill()
                process.wait(10)
            if process.stdout is not None:
                process.stdout.close()
    lines = Counter(log.read_bytes().splitlines())
    expected = {
        f"{tag}-{n:04d}".encode() for tag in ("killed", "w0", "w1", "w2") for n in range(200)
    }
    assert set(lines) == expected
    assert max(lines.values()) == 1  # nothing sent twice
