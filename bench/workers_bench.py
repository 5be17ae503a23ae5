"""Benchmark of ``serve --workers N`` on one PostgreSQL database: ITI-18 FindDocuments per second
and ITI-41 documents per second with 1, 2 and 4 workers, measured in one run and printed side by
side with the per-worker efficiency, throughput / (N x the single-worker throughput).

    python bench/workers_bench.py                        # XDSI_TEST_POSTGRES_URL, 1,2,4 workers
    python bench/workers_bench.py --postgres postgresql://postgres@127.0.0.1/test --seconds 10
    python bench/workers_bench.py --workers 1,2 --keep-alive

A fresh database (``xdsi_workers_bench_<random>``) is created through ``--postgres`` (default
``XDSI_TEST_POSTGRES_URL``) and dropped at the end; every worker count runs against it in turn,
one ``python -m gateway serve --workers N`` at a time (registry and repository; each worker its
own database pool), after 8 patients are fed (ITI-8) and given 20 documents each. The single
worker is the baseline, measured in the same run on the same database.

- ITI-18: FindDocuments (LeafClass, Approved) cycling over those 8 patients: 20 entries per
  answer whatever ran before (the ITI-41 documents go to a ninth patient).
- ITI-41: one 10 kB document per request, each with its own uniqueIds (built before the clock
  starts), registered in the same process's registry (the database) before Success.

The clients (``--clients`` threads, 16 by default, in ``--client-processes`` processes so that
the client side is not held to one core by the GIL) open a new connection per request by
default: the kernel hands each new connection to one worker, and a keep-alive connection stays
with the worker that accepted it (README, ``serve --workers N``); ``--keep-alive`` measures that
case. Every request is checked (a Success answer, 20 entries); a failed one stops the run.

Client processes, workers and PostgreSQL share the machine: with C cores, the curve flattens
once the workers plus the clients and the database want more than C. Beside each figure the table
gives the CPU cores busy meanwhile (``/proc``): the gateway's processes, the client processes, and
the machine's idle cores (0 = saturated, whoever used them), which show where the flattening
comes from. The core count and the load average at the start are printed with the table; no
figure is asserted.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from registry_measure import free_port, wait_ready  # noqa: E402
from repository_bench import _envelope, provide_message  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import URL, make_url  # noqa: E402

from gateway.consumer.queries import QueryOptions, build_slots  # noqa: E402
from gateway.hl7.mllp import send_messages  # noqa: E402
from gateway.metadata.query import AdhocQuery, build_query_request  # noqa: E402
from gateway.soap.transactions import ITI_18, REGISTRY_PATH, REPOSITORY_PATH  # noqa: E402

DOMAIN = "1.3.6.1.4.1.21367.13.20.1000"
QUERY_PATIENTS = 8
DOCUMENTS_PER_PATIENT = 20
DOCUMENT_BYTES = 10_000
ITI18_TYPE = f'application/soap+xml; charset=UTF-8; action="{ITI_18.action}"'
_MLLP = re.compile(r"MLLP listening on ([^:\s]+):(\d+)")


def patient(n: int, run: str) -> str:
    return f"WB{run}-{n}^^^&{DOMAIN}&ISO"


def find_documents_body(url: str, patient_id: str) -> bytes:
    """A complete ITI-18 FindDocuments request (LeafClass, Approved) for ``patient_id``."""
    query_id, slots = build_slots(QueryOptions(patient_id=patient_id))
    return _envelope(
        build_query_request(AdhocQuery(query_id=query_id, slots=slots)), ITI_18.action, url
    )


# -- the client processes ------------------------------------------------------------------------


class Poster:
    """POSTs to one URL: a new connection per request, or one kept alive."""

    def __init__(self, url: str, keep_alive: bool) -> None:
        host_port, self.path = url.split("://", 1)[1].split("/", 1)
        self.host, port = host_port.rsplit(":", 1)
        self.port, self.path = int(port), "/" + self.path
        self.keep_alive = keep_alive
        self.conn: http.client.HTTPConnection | None = None

    def post(self, content_type: str, body: bytes) -> bytes:
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
        headers = {"Content-Type": content_type}
        if not self.keep_alive:
            headers["Connection"] = "close"
        try:
            self.conn.request("POST", self.path, body, headers)
            response = self.conn.getresponse()
            answer = response.read()
        finally:
            if not self.keep_alive and self.conn is not None:
                self.conn.close()
                self.conn = None
        if response.status != 200 or b"ResponseStatusType:Success" not in answer:
            raise RuntimeError(f"{self.path} answered {response.status}: {answer[:600]!r}")
        return answer


def client_main(args: argparse.Namespace) -> int:
    """One client process: build the requests, say ``ready``, wait for ``go``, run, print JSON."""
    patients = json.loads(args.patients)
    if args.client == "iti18":
        url = args.base + REGISTRY_PATH
        bodies = [(ITI18_TYPE, find_documents_body(url, p)) for p in patients]
        cycle = bodies * (1 + args.budget // len(bodies))
    else:
        url = args.base + REPOSITORY_PATH
        data = os.urandom(DOCUMENT_BYTES)
        cycle = []
        for _ in range(args.budget):
            content_type, body, _uid = provide_message(url, data, patients[0])
            cycle.append((content_type, body))
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        return 1
    counts: list[int] = []
    errors: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + args.seconds

    def worker(offset: int) -> None:
        poster = Poster(url, args.keep_alive)
        done = 0
        index = offset
        try:
            while time.monotonic() < deadline and index < len(cycle):
                content_type, body = cycle[index]
                answer = poster.post(content_type, body)
                if args.client == "iti18" and answer.count(b"ExtrinsicObject ") != args.expect:
                    raise RuntimeError(f"FindDocuments listed not {args.expect}: {answer[:300]!r}")
                done += 1
                index += args.threads
        except Exception as exc:  # reported to the parent, which stops the run
            with lock:
                errors.append(f"{type(exc).__name__}: {exc}")
        with lock:
            counts.append(done)

    started, cpu = time.monotonic(), sum(os.times()[:2])
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(args.threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed, cpu = time.monotonic() - started, sum(os.times()[:2]) - cpu
    exhausted = sum(counts) >= len(cycle) - args.threads
    report = {"done": sum(counts), "seconds": elapsed, "cpu": cpu}
    print(json.dumps({**report, "errors": errors[:3], "exhausted": exhausted}))
    return 0


@dataclass
class Figure:
    """One measurement: requests per second, and the CPU cores busy meanwhile."""

    per_second: float
    gateway_cores: float  # CPU time of the gateway's processes (supervisor, workers) / wall time
    client_cores: float  # CPU time of the client processes / wall time
    idle_cores: float  # the whole machine's idle time / wall time (0: every core was busy)


def process_tree_cpu(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and every process below it (Linux ``/proc``)."""
    total, pending = 0.0, [pid]
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue  # gone meanwhile
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        pending.extend(int(child) for child in children)
    return total


def machine_idle() -> float:
    """Idle (and I/O wait) CPU seconds of the whole machine since boot (``/proc/stat``)."""
    values = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    return (int(values[3]) + int(values[4])) / os.sysconf("SC_CLK_TCK")


def run_clients(
    kind: str, base: str, patients: list[str], args: argparse.Namespace, pid: int, expect: int = 0
) -> Figure:
    """Start the client processes, let them build their requests, run them at once; per second,
    with the cores the gateway (``pid`` and its workers) used and those left idle meanwhile."""
    per_process = args.clients // args.client_processes
    budget = max(400, int(per_process * args.seconds * 60)) if kind == "iti18" else 0
    if kind == "iti41":
        budget = max(100, int(args.seconds * 400 / args.client_processes))
    command = [
        sys.executable,
        __file__,
        "--client",
        kind,
        "--base",
        base,
        "--patients",
        json.dumps(patients),
        "--threads",
        str(per_process),
        "--seconds",
        str(args.seconds),
        "--budget",
        str(budget),
        "--expect",
        str(expect),
    ] + (["--keep-alive"] if args.keep_alive else [])
    procs = [
        subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for _ in range(args.client_processes)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != "ready":
                raise RuntimeError(f"a {kind} client did not start")
        cpu, idle, began = process_tree_cpu(pid), machine_idle(), time.monotonic()
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        results = [json.loads(proc.communicate(timeout=args.seconds + 300)[0]) for proc in procs]
        wall = time.monotonic() - began
        cpu, idle = process_tree_cpu(pid) - cpu, machine_idle() - idle
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    for result in results:
        if result["errors"]:
            raise RuntimeError(f"{kind}: {result['errors']}")
        if result["exhausted"]:
            print(f"  note: a {kind} client used all its {budget} prepared requests", flush=True)
    per_second = sum(r["done"] for r in results) / max(r["seconds"] for r in results)
    clients = sum(r["cpu"] for r in results)
    return Figure(per_second, cpu / wall, clients / wall, idle / wall)


# -- the gateway and its database -----------------------------------------------------------------


def _psycopg2(url: str) -> URL:
    parsed = make_url(url)
    return (
        parsed.set(drivername="postgresql+psycopg2")
        if parsed.drivername == "postgresql"
        else parsed
    )


def _admin(url: URL, statement: str) -> None:
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(statement))
    finally:
        engine.dispose()


@contextmanager
def fresh_database(admin_url: str) -> Iterator[str]:
    admin = _psycopg2(admin_url)
    name = f"xdsi_workers_bench_{secrets.token_hex(4)}"
    _admin(admin, f'CREATE DATABASE "{name}"')
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        _admin(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class Served:
    base: str
    mllp: tuple[str, int]
    process: subprocess.Popen[bytes]


@contextmanager
def gateway(workers: int, database_url: str, work: Path) -> Iterator[Served]:
    """``serve --workers N`` on 127.0.0.1, registry and repository on ``database_url``."""
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "XDSI_GATEWAY_DATA_DIR": str(work / f"w{workers}"),
        "XDSI_GATEWAY_DATABASE_URL": database_url,
        "XDSI_HTTP_HOST": "127.0.0.1",
        "XDSI_HTTP_PORT": str(port),
        "XDSI_HL7_HOST": "127.0.0.1",
        "XDSI_HL7_MLLP_PORT": "0",
        "XDSI_IMAGING_SOURCE_ENABLED": "false",
        "XDSI_REPOSITORY_STORAGE_DIR": str(work / "repository"),
    }
    log_path = work / f"gateway-{workers}.log"
    with open(log_path, "wb") as log:
        command = [sys.executable, "-m", "gateway", "serve", "--workers", str(workers)]
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        try:
            base = f"http://127.0.0.1:{port}"
            wait_ready(base, process)
            deadline = time.monotonic() + 120
            ready = f"all {workers} workers ready"
            while workers > 1 and ready not in log_path.read_text(errors="replace"):
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"not {ready}")
                time.sleep(0.1)  # polling the supervisor's log with a deadline
            found = _MLLP.search(log_path.read_text(errors="replace"))
            if found is None:
                raise RuntimeError("no MLLP listener in the log")
            yield Served(base, (found[1], int(found[2])), process)
        except BaseException:
            sys.stderr.write(log_path.read_text(errors="replace")[-4000:])
            raise
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def feed(served: Served, patients: list[str]) -> None:
    """ITI-8 (ADT^A01) for each patient, so that the registry accepts their documents."""
    messages = []
    for pid in patients:
        identifier = pid.split("^", 1)[0]
        messages.append(
            "\r".join(
                [
                    f"MSH|^~\\&|BENCH|BENCH|XDSI|XDSI|20240101000000||ADT^A01^ADT_A01|{uuid.uuid4().hex[:20]}|P|2.5",
                    "EVN|A01|20240101000000",
                    f"PID|||{identifier}^^^&{DOMAIN}&ISO||Bench^Patient||19700101|F",
                    "PV1||O",
                ]
            ).encode()
        )
    acks = send_messages(served.mllp[0], served.mllp[1], messages, timeout=60)
    if not all(b"MSA|AA" in ack for ack in acks):
        raise RuntimeError(f"ITI-8 refused: {acks!r}")


def seed(served: Served, patients: list[str]) -> None:
    """DOCUMENTS_PER_PATIENT documents for each query patient (ITI-41, one connection)."""
    url = served.base + REPOSITORY_PATH
    poster = Poster(url, keep_alive=True)
    data = os.urandom(DOCUMENT_BYTES)
    for pid in patients:
        for _ in range(DOCUMENTS_PER_PATIENT):
            content_type, body, _uid = provide_message(url, data, pid)
            poster.post(content_type, body)


# -- the run --------------------------------------------------------------------------------------


def measure(args: argparse.Namespace) -> int:
    run = secrets.token_hex(3)
    queried = [patient(n, run) for n in range(1, QUERY_PATIENTS + 1)]
    provider = patient(0, run)
    load = os.getloadavg()[0]
    rows: list[tuple[int, Figure, Figure]] = []
    work = Path(tempfile.mkdtemp(prefix="xdsi-workers-bench-"))
    try:
        with fresh_database(args.postgres) as database_url:
            for n, workers in enumerate(args.workers):
                with gateway(workers, database_url, work) as served:
                    if n == 0:
                        feed(served, [*queried, provider])
                        seed(served, queried)
                    small = argparse.Namespace(**{**vars(args), "seconds": 1.0})
                    pid = served.process.pid
                    run_clients("iti18", served.base, queried, small, pid, DOCUMENTS_PER_PATIENT)
                    queries = run_clients(
                        "iti18", served.base, queried, args, pid, DOCUMENTS_PER_PATIENT
                    )
                    documents = run_clients("iti41", served.base, [provider], args, pid)
                rows.append((workers, queries, documents))
                print(
                    f"  {workers} worker(s): {queries.per_second:.0f} FindDocuments/s, "
                    f"{documents.per_second:.0f} documents/s",
                    flush=True,
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print_table(rows, args, load)
    return 0


def print_table(
    rows: list[tuple[int, Figure, Figure]], args: argparse.Namespace, load: float
) -> None:
    first_q, first_d = rows[0][1].per_second / rows[0][0], rows[0][2].per_second / rows[0][0]
    connections = "keep-alive connections" if args.keep_alive else "a new connection per request"
    print(
        f"\nserve --workers N on one PostgreSQL database; {os.cpu_count()} CPUs, load average "
        f"{load:.1f} at start; {args.clients} clients in {args.client_processes} processes, "
        f"{connections}; {args.seconds:g} s per measurement"
    )
    columns = f"{'per s':>6} {'effic.':>6} {'gw':>5} {'cli':>5} {'idle':>5}"
    print(
        f"{'':>7} | {'ITI-18 FindDocuments':^31} | {'ITI-41 documents':^31}\n"
        f"{'workers':>7} | {columns} | {columns}"
    )
    print("-" * 77)
    for workers, *figures in rows:
        cells = [
            f"{f.per_second:>6.0f} {f.per_second / (workers * first):>6.2f} "
            f"{f.gateway_cores:>5.2f} {f.client_cores:>5.2f} {f.idle_cores:>5.2f}"
            for f, first in zip(figures, (first_q, first_d), strict=True)
        ]
        print(f"{workers:>7} | {cells[0]} | {cells[1]}")
    print(
        f"effic.: throughput / (N x the {rows[0][0]}-worker throughput per worker); CPU cores "
        "busy meanwhile: gw the gateway's processes,\ncli the client processes, idle those the "
        "machine left idle (0 = saturated by the gateway, the clients, PostgreSQL or anything\n"
        f"else); FindDocuments lists {DOCUMENTS_PER_PATIENT} entries, ITI-41 carries "
        f"{DOCUMENT_BYTES // 1000} kB"
    )


def _counts(value: str) -> list[int]:
    counts = [int(part) for part in value.split(",") if part.strip()]
    if not counts or any(n < 1 or n > 16 for n in counts):
        raise argparse.ArgumentTypeError("a comma-separated list of 1..16")
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", default=os.environ.get("XDSI_TEST_POSTGRES_URL", ""))
    parser.add_argument("--workers", type=_counts, default=[1, 2, 4])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--client-processes", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--keep-alive", action="store_true")
    # the client processes' own options
    parser.add_argument("--client", choices=["iti18", "iti41"], help=argparse.SUPPRESS)
    parser.add_argument("--base", help=argparse.SUPPRESS)
    parser.add_argument("--patients", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=8, help=argparse.SUPPRESS)
    parser.add_argument("--budget", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--expect", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.client:
        return client_main(args)
    if not args.postgres:
        parser.error("a PostgreSQL server is needed: --postgres URL or XDSI_TEST_POSTGRES_URL")
    if args.clients < args.client_processes or args.client_processes < 1:
        parser.error("--clients must be at least --client-processes (and that at least 1)")
    return measure(args)


if __name__ == "__main__":
    sys.exit(main())
