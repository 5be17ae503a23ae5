"""Measuring for ``registry_bench.py``: keep-alive SOAP clients and SQL twins run by threads for
a bounded time and count, the gateway subprocess, and the targets sampled from the database."""

from __future__ import annotations

import http.client
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import registry_load as loader
from registry_queries import QueryKind

from gateway.soap.transactions import ITI_18, REGISTRY_PATH

ROOT = Path(__file__).resolve().parents[1]
MAX_REQUESTS = 1_000_000  # per measurement, whatever the duration
MAX_ERRORS = 10


@dataclass(slots=True)
class Measurement:
    """Latencies (seconds) of one run and its wall time."""

    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0
    errors: int = 0

    @property
    def median_ms(self) -> float:
        return statistics.median(self.latencies) * 1000 if self.latencies else float("nan")

    @property
    def p95_ms(self) -> float:
        if len(self.latencies) < 2:
            return self.median_ms
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[94] * 1000

    @property
    def per_second(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0


class _Client:
    """One keep-alive HTTP connection posting pre-built SOAP requests."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.path = parts.path or "/"
        self.headers = {
            "Content-Type": f'application/soap+xml; charset=UTF-8; action="{ITI_18.action}"'
        }
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)

    def post(self, body: bytes) -> bytes:
        """POST ``body``; return the answer (raises on anything but a Success response)."""
        try:
            self.conn.request("POST", self.path, body, self.headers)
            response = self.conn.getresponse()
            answer = response.read()
        except (http.client.HTTPException, OSError):
            self.conn.close()  # reconnect on the next request
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
            raise
        if response.status != 200 or b"ResponseStatusType:Success" not in answer[:4096]:
            raise RuntimeError(f"ITI-18 answered {response.status}: {answer[:800]!r}")
        return answer

    def close(self) -> None:
        self.conn.close()


def run_threads(
    clients: int, seconds: float, connect: Callable[[], Any], call: Callable[[Any, int], object]
) -> Measurement:
    """``clients`` threads, each with its own connection (``connect()``), run ``call(connection,
    n)`` for n = a thread offset, +1, +2 ... for ``seconds`` (at most MAX_REQUESTS in all)."""
    result = Measurement()
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)
    deadline: list[float] = []
    budget = MAX_REQUESTS // clients

    def worker(offset: int) -> None:
        connection = connect()
        mine: list[float] = []
        errors = 0
        try:
            start.wait(timeout=30)
            stop, clock, index = deadline[0], time.perf_counter, offset
            while len(mine) < budget and errors <= MAX_ERRORS:
                index += 1
                began = clock()
                try:
                    call(connection, index)
                except (http.client.HTTPException, OSError):
                    errors += 1
                    continue
                ended = clock()
                mine.append(ended - began)
                if ended >= stop:
                    break
        finally:
            connection.close()
            with lock:
                result.latencies.extend(mine)
                result.errors += errors

    threads = [
        threading.Thread(target=worker, args=(n * 7919,), daemon=True) for n in range(clients)
    ]
    for thread in threads:
        thread.start()
    began = time.perf_counter()
    deadline.append(began + seconds)
    start.wait(timeout=30)
    for thread in threads:
        thread.join(timeout=seconds + 120)
    result.seconds = time.perf_counter() - began
    if result.errors > MAX_ERRORS * clients:
        raise RuntimeError(f"{result.errors} connection errors: is the gateway still running?")
    return result


def run_gateway(url: str, bodies: list[bytes], clients: int, seconds: float) -> Measurement:
    """The gateway: pre-built requests posted round robin on keep-alive connections."""

    def call(client: _Client, n: int) -> object:
        return client.post(bodies[n % len(bodies)])

    return run_threads(clients, seconds, lambda: _Client(url), call)


def run_sql(db_url: str, kind: QueryKind, clients: int, seconds: float) -> Measurement:
    """The hand-written SQL of ``kind`` over its targets, one driver connection per client."""

    def call(raw: RawSql, n: int) -> object:
        return raw.rows(kind, kind.targets[n % len(kind.targets)])

    return run_threads(clients, seconds, lambda: RawSql(db_url), call)


class RawSql:
    """The hand-written twin of each query, on a connection of the driver itself."""

    def __init__(self, db_url: str) -> None:
        self.sqlite = loader.is_sqlite(db_url)
        if self.sqlite:
            import sqlite3

            self.conn: Any = sqlite3.connect(loader.sqlite_path(db_url), check_same_thread=False)
            self.mark = "?"
        else:
            import psycopg2

            self.conn = psycopg2.connect(**loader.pg_connect_args(db_url))
            self.conn.autocommit = True
            self.mark = "%s"

    def rows(self, kind: QueryKind, target: str) -> list[tuple[Any, ...]]:
        cursor = self.conn.cursor()
        try:
            cursor.execute(kind.sql.format(p=self.mark), kind.sql_params(target))
            return list(cursor.fetchall())
        finally:
            cursor.close()

    def describe(self) -> str:
        if self.sqlite:
            import sqlite3

            return f"SQLite {sqlite3.sqlite_version}"
        cursor = self.conn.cursor()
        cursor.execute("SHOW server_version")
        version = cursor.fetchone()[0]
        cursor.close()
        return f"PostgreSQL {version}"

    def column(self, sql: str) -> list[str]:
        cursor = self.conn.cursor()
        cursor.execute(sql)
        values = [row[0] for row in cursor.fetchall()]
        cursor.close()
        return values

    def count(self, table: str) -> int:
        cursor = self.conn.cursor()
        cursor.execute(f"SELECT count(*) FROM {table}")
        total = int(cursor.fetchone()[0])
        cursor.close()
        return total

    def close(self) -> None:
        self.conn.close()


def sample_targets(raw: RawSql, count: int, seed: int) -> tuple[list[str], list[str], int, int]:
    """``count`` active patients and document uniqueIds drawn at random (the same ones for the
    same ``seed`` and database, so runs compare), and the registry's totals."""
    rng = random.Random(seed)
    patients = raw.column(
        "SELECT patient_id FROM patient WHERE merged_into IS NULL ORDER BY patient_id"
    )
    documents = raw.column("SELECT unique_id FROM document_unique_id ORDER BY unique_id")
    if not patients or not documents:
        raise SystemExit("the registry is empty: load it first (drop --no-load)")
    return (
        rng.sample(patients, min(count, len(patients))),
        rng.sample(documents, min(count, len(documents))),
        raw.count("document_entry"),
        len(patients),
    )


def check_answers(url: str, raw: RawSql, kind: QueryKind, bodies: list[bytes], count: int) -> float:
    """Ask the gateway and the SQL twin for the first ``count`` targets: the gateway must return
    as many objects as the SQL selects. Returns the mean number of objects per answer."""
    client = _Client(url)
    objects = 0
    try:
        for target, body in list(zip(kind.targets, bodies, strict=True))[:count]:
            answer = client.post(body)
            found = answer.count(b"<rim:ExtrinsicObject ") + answer.count(b"<rim:RegistryPackage ")
            expected = len(raw.rows(kind, target))
            if found != expected:
                raise RuntimeError(
                    f"{kind.name} for {target}: the gateway returned {found} objects, "
                    f"the SQL {expected}"
                )
            objects += found
    finally:
        client.close()
    return objects / max(1, min(count, len(kind.targets)))


# --- the gateway subprocess ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_ready(base: str, process: subprocess.Popen[bytes] | None, timeout: float = 120) -> None:
    """Poll ``/health`` until 200 (the gateway upgrades the schema first), with a deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the gateway exited with code {process.returncode}")
        try:
            with urllib.request.urlopen(base + "/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)  # polling a starting server, bounded by the deadline
    raise TimeoutError(f"{base}/health did not answer 200 within {timeout:.0f} s")


def process_cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU time of a process so far (Linux ``/proc``; None elsewhere)."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


@contextmanager
def gateway_process(db_url: str, work: Path, log_level: str) -> Iterator[tuple[str, int]]:
    """A gateway subprocess serving only the registry on 127.0.0.1; yield its endpoint URL and
    process id."""
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "XDSI_GATEWAY_DATA_DIR": str(work / "gateway"),
        "XDSI_HTTP_HOST": "127.0.0.1",
        "XDSI_HTTP_PORT": str(port),
        "XDSI_REGISTRY_DATABASE_URL": db_url,
        "XDSI_REPOSITORY_ENABLED": "false",
        "XDSI_IMAGING_SOURCE_ENABLED": "false",
        "XDSI_HL7_ENABLED": "false",
        "XDSI_LOG_LEVEL": log_level,
    }
    command = [sys.executable, "-m", "gateway", "serve"]
    log_path = work / "gateway.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            base = f"http://127.0.0.1:{port}"
            wait_ready(base, process)
            yield base + REGISTRY_PATH, process.pid
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
