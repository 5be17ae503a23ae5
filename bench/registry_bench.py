"""Benchmark of the Document Registry's stored queries (ITI-18) on a large registry, each query
printed beside the same filter run as one hand-written SQL query on the same database.

    python bench/registry_bench.py --db-url postgresql://postgres@127.0.0.1/xdsi_bench \\
        --documents 1000000                  # load 1M documents, start a gateway, measure
    python bench/registry_bench.py --db-url sqlite:////tmp/registry.sqlite --documents 100000
    python bench/registry_bench.py --db-url URL --no-load            # measure what is there
    python bench/registry_bench.py --db-url URL --no-load --gateway-url http://127.0.0.1:8080
    python bench/registry_bench.py --check-loader   # the loader stores what ITI-42 stores?

Loading (``registry_load.py``) is bulk, not through SOAP: synthetic but realistic metadata
(``registry_data.py``: 1 to 20 documents per patient, 10 values per code type, dates over 15
years, SubmissionSets, HasMember associations, some Folders, fed patients) turned into rows by
``gateway.registry.rows``, then PostgreSQL COPY or SQLite executemany. The database must be
empty (``--reset`` empties it first).

Measuring: without ``--gateway-url`` a gateway subprocess (registry only) is started on a free
port on 127.0.0.1 against ``--db-url`` and stopped at the end. Each query kind
(``registry_queries.py``) runs for ``--seconds`` per client count (``--clients``, default 1 and
8) over HTTP keep-alive connections with pre-built request bodies, cycling over ``--targets``
patients / documents sampled from the database; then the same filter runs as one hand-written
SQL statement (psycopg2 / sqlite3, as many clients) over the same targets. The table gives
median and p95 latency, queries per second, the gateway process's CPU time per query, and the
ratio gateway / SQL. Client, gateway and database share the machine: the load average at the
start is printed, and CPU/q is the figure least disturbed by other work.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import registry_load as loader
from registry_measure import (
    Measurement,
    RawSql,
    check_answers,
    gateway_process,
    process_cpu_seconds,
    run_gateway,
    run_sql,
    sample_targets,
    wait_ready,
)
from registry_queries import QueryKind, query_kinds

# --- the run ------------------------------------------------------------------------------------


@dataclass(slots=True, kw_only=True)
class Row:
    """One line of the table: a query kind at one client count, and its SQL twin."""

    kind: str
    clients: int
    gateway: Measurement
    raw: Measurement
    objects: float
    cpu_ms: float | None  # gateway process CPU per query (all its threads)


def measure(
    url: str, raw: RawSql, kinds: list[QueryKind], args: argparse.Namespace, pid: int | None
) -> list[Row]:
    """Check, warm up and measure every query kind with each client count, then its SQL."""
    rows: list[Row] = []
    for kind in kinds:
        bodies = [kind.request(url, target) for target in kind.targets]
        objects = check_answers(url, raw, kind, bodies, args.check)
        run_gateway(url, bodies, 1, min(1.0, args.seconds))  # warm-up (caches, connections)
        for clients in args.clients:
            cpu_before = process_cpu_seconds(pid)
            result = run_gateway(url, bodies, clients, args.seconds)
            cpu_after = process_cpu_seconds(pid)
            cpu_ms = None
            if cpu_before is not None and cpu_after is not None and result.latencies:
                cpu_ms = (cpu_after - cpu_before) * 1000 / len(result.latencies)
            raw_result = run_sql(args.db_url, kind, clients, args.seconds)
            rows.append(
                Row(
                    kind=kind.name,
                    clients=clients,
                    gateway=result,
                    raw=raw_result,
                    objects=objects,
                    cpu_ms=cpu_ms,
                )
            )
            print(
                f"  {kind.name}, {clients} client(s): p50 {result.median_ms:.1f} ms, "
                f"p95 {result.p95_ms:.1f} ms, {result.per_second:.0f} q/s "
                f"(SQL p50 {raw_result.median_ms:.2f} ms, {raw_result.per_second:.0f} q/s)",
                flush=True,
            )
    return rows


def print_table(rows: list[Row], header: str) -> None:
    print(f"\n{header}")
    print(
        f"{'query':<34} {'objects':>7} {'clients':>7} | {'gateway p50':>11} {'p95':>6} "
        f"{'q/s':>5} {'CPU/q':>5} | {'SQL p50':>7} {'p95':>6} {'q/s':>6} | {'ratio p50':>9} "
        f"{'p95':>5}"
    )
    print("-" * 130)
    for row in rows:
        g, r = row.gateway, row.raw
        ratio, ratio95 = g.median_ms / r.median_ms, g.p95_ms / r.p95_ms
        cpu = "-" if row.cpu_ms is None else f"{row.cpu_ms:.1f}"
        print(
            f"{row.kind:<34} {row.objects:>7.1f} {row.clients:>7} | {g.median_ms:>11.2f} "
            f"{g.p95_ms:>6.2f} {g.per_second:>5.0f} {cpu:>5} | {r.median_ms:>7.2f} "
            f"{r.p95_ms:>6.2f} {r.per_second:>6.0f} | {ratio:>8.1f}x {ratio95:>4.1f}x"
        )
    print(
        "latencies in ms; objects: mean objects per answer; CPU/q: CPU ms of the gateway process "
        "per query;\nSQL: the same filter as one hand-written statement (all columns, same "
        "order) through the driver,\nas many clients; ratio: gateway / SQL"
    )


def load(args: argparse.Namespace) -> bool:
    """Load ``--documents`` synthetic documents (after ``--reset``); False when refused."""
    if args.reset:
        loader.database.upgrade(args.db_url)
        loader.reset(args.db_url)
    kind = "SQLite" if loader.is_sqlite(args.db_url) else "PostgreSQL"
    print(f"loading {args.documents:,} documents into {kind} ...", flush=True)
    try:
        report = loader.load(args.db_url, args.documents, seed=args.seed)
    except loader.LoadError as exc:
        print(f"registry_bench: {exc}", file=sys.stderr)
        return False
    print(
        f"loaded {report.documents:,} documents of {report.patients:,} patients in "
        f"{report.total_seconds:.0f} s (insert {report.insert_seconds:.0f} s, indexes "
        f"{report.index_seconds:.0f} s, analyze {report.analyze_seconds:.0f} s); "
        f"database {report.database_bytes / 1e9:.2f} GB",
        flush=True,
    )
    for table, count in report.rows.items():
        print(f"  {table:<20} {count:>12,} rows")
    return True


def measure_all(args: argparse.Namespace) -> None:
    """Sample the targets, run every query kind against the gateway and as SQL, print."""
    raw = RawSql(args.db_url)
    try:
        patients, documents, total_documents, total_patients = sample_targets(
            raw, args.targets, args.seed
        )
        kinds = query_kinds(patients, documents)
        header = (
            f"ITI-18 on {raw.describe()}: {total_documents:,} documents, {total_patients:,} "
            f"patients; {os.cpu_count()} CPUs ({platform.machine()}); {args.seconds:g} s per "
            f"measurement, {len(patients)} patients / {len(documents)} documents cycled; "
            f"load average {os.getloadavg()[0]:.1f} at start"
        )
        with tempfile.TemporaryDirectory(prefix="xdsi-registry-bench-") as tmp:
            if args.gateway_url:
                wait_ready(args.gateway_url.split("/xds/")[0], None)
                rows = measure(args.gateway_url, raw, kinds, args, args.gateway_pid)
            else:
                with gateway_process(args.db_url, Path(tmp), args.gateway_log_level) as (url, pid):
                    rows = measure(url, raw, kinds, args, pid)
        print_table(rows, header)
    finally:
        raw.close()


def run(args: argparse.Namespace) -> int:
    if args.load and not load(args):
        return 2
    if args.measure:
        measure_all(args)
    return 0


def check_loader() -> int:
    with tempfile.TemporaryDirectory(prefix="xdsi-loader-check-") as tmp:
        differences = loader.check_loader(Path(tmp))
    for line in differences:
        print(line)
    print("loader rows == ITI-42 rows" if not differences else "the loader differs from ITI-42")
    return 1 if differences else 0


def _clients(text: str) -> list[int]:
    values = [int(part) for part in text.split(",") if part.strip()]
    if not values or any(n < 1 or n > 64 for n in values):
        raise argparse.ArgumentTypeError("a comma-separated list of 1..64")
    return values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--db-url", help="SQLAlchemy URL of the registry database")
    parser.add_argument("--documents", type=int, default=100_000, help="to load (default 100k)")
    parser.add_argument(
        "--load",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="load synthetic documents first (default; the registry must be "
        "empty) or measure what is there (--no-load)",
    )
    parser.add_argument("--reset", action="store_true", help="empty the registry before loading")
    parser.add_argument(
        "--measure",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run the queries (default) or stop after loading (--no-measure)",
    )
    parser.add_argument("--clients", type=_clients, default=[1, 8], help="default 1,8")
    parser.add_argument("--seconds", type=float, default=5.0, help="per measurement (default 5)")
    parser.add_argument("--gateway-url", help="measure this registry endpoint (same database)")
    parser.add_argument(
        "--gateway-pid", type=int, help="process id of that gateway, for the CPU/q column"
    )
    parser.add_argument("--targets", type=int, default=500, help="patients/documents cycled")
    parser.add_argument("--check", type=int, default=50, help="targets checked against the SQL")
    parser.add_argument(
        "--seed", type=int, default=7, help="of the synthetic data and the sampled targets"
    )
    parser.add_argument("--gateway-log-level", default="INFO", help="of the gateway subprocess")
    parser.add_argument(
        "--check-loader",
        action="store_true",
        help="compare the loader's rows with ITI-42's on a sample, then exit",
    )
    args = parser.parse_args(argv)
    if args.check_loader:
        return check_loader()
    if not args.db_url:
        parser.error("--db-url is required")
    if not 0 < args.seconds <= 600 or not 0 < args.targets <= 100_000:
        parser.error("--seconds must be in (0, 600], --targets in (0, 100000]")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
