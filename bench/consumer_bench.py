"""Benchmark of the consumer: end-to-end time from the last C-STORE of a study to the consumer
having every instance on disk, printed next to the sum of its parts.

    python bench/consumer_bench.py                      # 500 instances, idle 1 s, about a minute
    python bench/consumer_bench.py --instances 200 --idle 2 --size 128

One gateway with every actor runs in this process (embedded SQLite, as ``serve`` would build it)
with ``imaging_source.study_idle_seconds`` set low. The study (CT, ``--size`` pixels square) is
sent by pynetdicom over one association; from the answer to its last C-STORE the consumer polls
ITI-18 every 50 ms until the manifest is registered, then fetches the study (ITI-43 + RAD-69 in
batches, in parallel) into an empty folder. That is the end-to-end figure.

The parts are then measured alone on the same data: the idle time (configured), the publication
(manifest registered after the idle time: idle worker poll, KOS, RAD-68 = ITI-41 + ITI-42), one
ITI-18 FindDocuments, one ITI-43 of the manifest, and the RAD-69 fetch of every instance into a
fresh folder (median of ``--rounds``). Everything is bounded by ``--timeout``.
"""

from __future__ import annotations

import argparse
import io
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway.app import Gateway  # noqa: E402
from gateway.config import load_settings  # noqa: E402
from gateway.consumer.clients import RegistryQueryClient, RepositoryRetrieveClient  # noqa: E402
from gateway.consumer.fetch import FetchRequest, StudyFetcher  # noqa: E402
from gateway.consumer.queries import KOS_FORMAT_CODE, QueryOptions, build_slots  # noqa: E402
from gateway.consumer.settings import ConsumerSettings, consumer_settings  # noqa: E402
from gateway.consumer.store import FolderDestination  # noqa: E402
from gateway.consumer.table import study_uids  # noqa: E402
from gateway.demo import send_files  # noqa: E402
from gateway.hl7.mllp import send_messages  # noqa: E402
from gateway.imaging import synthetic  # noqa: E402
from gateway.metadata.model import DocumentEntry  # noqa: E402
from gateway.metadata.retrieve import DocumentRequest  # noqa: E402

DOMAIN = "1.3.6.1.4.1.21367.13.20.1000"
PATIENT_LOCAL = "BENCH-0001"
PATIENT = f"{PATIENT_LOCAL}^^^&{DOMAIN}&ISO"


def start_gateway(folder: Path, idle: int) -> Gateway:
    settings = load_settings(
        environ={
            "XDSI_GATEWAY_DATA_DIR": str(folder / "data"),
            "XDSI_HTTP_PORT": "0",
            "XDSI_HL7_MLLP_PORT": "0",
            "XDSI_IMAGING_SOURCE_DICOM_PORT": "0",
            "XDSI_IMAGING_SOURCE_STUDY_IDLE_SECONDS": str(idle),
            "XDSI_LOG_LEVEL": "WARNING",
        }
    )
    gateway = Gateway(settings)
    gateway.start()
    return gateway


def feed(gateway: Gateway) -> None:
    host, port = gateway.mllp_address  # type: ignore[misc]
    message = (
        "MSH|^~\\&|BENCH|BENCH|X|X|20240101000000||ADT^A01^ADT_A01|b1|P|2.5\r"
        f"EVN|A01|20240101000000\rPID|||{PATIENT}||Bench^Patient\rPV1||O"
    ).encode()
    [ack] = send_messages(host, port, [message])
    assert b"MSA|AA" in ack, ack


def find_manifest(consumer: ConsumerSettings, study_uid: str) -> DocumentEntry | None:
    query_id, slots = build_slots(QueryOptions(patient_id=PATIENT, format_codes=[KOS_FORMAT_CODE]))
    client = RegistryQueryClient(consumer.require_registry())
    for obj in client.query(query_id, slots).objects:
        if isinstance(obj, DocumentEntry) and study_uid in study_uids(obj):
            return obj
    return None


def wait_for_manifest(consumer: ConsumerSettings, study_uid: str, timeout: float) -> DocumentEntry:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = find_manifest(consumer, study_uid)
        if found is not None:
            return found
        time.sleep(0.05)  # the consumer's polling interval in this benchmark
    raise TimeoutError(f"no manifest within {timeout} s")


def fetch(consumer: ConsumerSettings, out: Path, study_uid: str) -> int:
    report = StudyFetcher(consumer, FolderDestination(out), progress=io.StringIO()).run(
        FetchRequest(patient_id=PATIENT, study_uid=study_uid)
    )
    if not report.complete:
        raise RuntimeError(f"fetch incomplete: {report.problems} {report.studies}")
    return report.studies[0].bytes


def timed(action: Callable[[], object]) -> float:
    began = time.perf_counter()
    action()
    return time.perf_counter() - began


def median_of(rounds: int, action: Callable[[], object]) -> float:
    return statistics.median(timed(action) for _ in range(rounds))


def run(args: argparse.Namespace, work: Path) -> None:
    gateway = start_gateway(work, args.idle)
    try:
        consumer = consumer_settings(
            gateway.settings,
            base_url=gateway.base_url,
            parallel_requests=args.parallel,
            batch_size=args.batch_size,
        )
        feed(gateway)
        spec = synthetic.StudySpec(
            patient_id=PATIENT_LOCAL,
            issuer_oid=DOMAIN,
            series=tuple(
                synthetic.SeriesSpec(modality="CT", count=n, rows=args.size, columns=args.size)
                for n in split(args.instances, 4)
            ),
        )
        paths = synthetic.write_study(synthetic.make_study(spec), work / "sent")
        dicom = (gateway.settings.imaging_source.ae_title, *gateway.imaging.address)  # type: ignore[union-attr]
        store_seconds = timed(lambda: send_files(dicom, paths))
        last_store = time.perf_counter()  # the answer to the last C-STORE has arrived
        entry = wait_for_manifest(consumer, spec.study_uid, args.timeout)
        registered = time.perf_counter()
        size = fetch(consumer, work / "e2e", spec.study_uid)
        end_to_end = time.perf_counter() - last_store
        report(args, spec, paths, size, store_seconds, end_to_end, registered - last_store)
        parts(args, consumer, entry, spec.study_uid, work, registered - last_store)
    finally:
        gateway.stop()


def split(total: int, pieces: int) -> list[int]:
    return [total // pieces + (1 if i < total % pieces else 0) for i in range(pieces) if total > i]


def report(
    args: argparse.Namespace,
    spec: synthetic.StudySpec,
    paths: list[Path],
    size: int,
    store_seconds: float,
    end_to_end: float,
    to_manifest: float,
) -> None:
    print(
        f"study: {len(paths)} CT instances of {args.size}x{args.size} in "
        f"{len(spec.series)} series, {size / 1e6:.1f} MB; study_idle_seconds={args.idle}; "
        f"RAD-69 {args.parallel} in parallel x {args.batch_size} instances"
    )
    print(f"  C-STORE of the study (pynetdicom, one association)   {store_seconds:8.2f} s")
    print(f"  END TO END: last C-STORE -> every instance on disk   {end_to_end:8.2f} s")
    print(f"    of which: last C-STORE -> manifest found (ITI-18)  {to_manifest:8.2f} s")


def parts(
    args: argparse.Namespace,
    consumer: ConsumerSettings,
    entry: DocumentEntry,
    study_uid: str,
    work: Path,
    to_manifest: float,
) -> None:
    query = median_of(args.rounds, lambda: find_manifest(consumer, study_uid))
    repository = RepositoryRetrieveClient(consumer.repository_url(entry.repository_unique_id or ""))
    ref = DocumentRequest(
        repository_unique_id=entry.repository_unique_id or "",
        document_unique_id=entry.unique_id or "",
    )
    iti43 = median_of(args.rounds, lambda: repository.retrieve([ref]).discard())
    counter = iter(range(1_000_000))
    rad69 = median_of(
        args.rounds, lambda: fetch(consumer, work / f"part-{next(counter)}", study_uid)
    )
    publish = max(to_manifest - args.idle, 0.0)
    total = args.idle + publish + rad69
    print("  parts:")
    print(f"    study idle time (configured)                       {args.idle:8.2f} s")
    print(f"    publication after the idle time (KOS, RAD-68)      {publish:8.2f} s")
    label = f"fetch alone, fresh folder (median of {args.rounds})"
    print(f"    {label:<51}{rad69:8.2f} s")
    print(f"      within it: one ITI-18 FindDocuments              {query:8.2f} s")
    print(f"      within it: one ITI-43 of the manifest            {iti43:8.2f} s")
    print(f"      within it: RAD-69 of every instance to disk      {rad69 - query - iti43:8.2f} s")
    print(f"  SUM OF PARTS                                         {total:8.2f} s")
    print(
        "  (publication = manifest found - last C-STORE - idle time, from the end-to-end run; it "
        "includes the idle worker's poll and up to one 50 ms ITI-18 polling interval)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=500, help="study size (500)")
    parser.add_argument("--size", type=int, default=256, help="rows = columns (256)")
    parser.add_argument("--idle", type=int, default=1, help="study_idle_seconds (1)")
    parser.add_argument("--parallel", type=int, default=4, help="RAD-69 requests at once (4)")
    parser.add_argument("--batch-size", type=int, default=50, help="instances per RAD-69 (50)")
    parser.add_argument("--rounds", type=int, default=3, help="measurements per part (3)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds to wait (300)")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="xdsi-consumer-bench-"))
    try:
        run(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
