"""Benchmark of the Imaging Document Source: C-STORE ingest (instances/s) and RAD-69 retrieve
(MB/s), each printed beside a baseline measured in the same run.

    python bench/imaging_bench.py                       # defaults: about a minute
    python bench/imaging_bench.py --store 500 --retrieve 500 --rounds 5

C-STORE: the same generated CT files are sent by dcmtk's ``storescu``, on one association and on
four at once (four storescu processes, distinct instances), to
  1. dcmtk's ``storescp --fork`` (baseline: writes files, no fsync, no index; a process per
     association),
  2. our listener, durable (each C-STORE answered once the instance survives a power loss),
  3. our listener with fsync off (no flush at all: what durability costs),
and, once, from a pynetdicom SCU instead of storescu. Each C-STORE row is the median of
``--repeat`` runs, baseline and gateway interleaved so that a change of the machine's load hits
both columns; "rows/commit" is how many index rows shared a commit (group commit).
Both dcmtk tools run with TCP_NODELAY=1 (this dcmtk build otherwise leaves Nagle on and stalls at
about ten instances per second) and our listener sets TCP_NODELAY itself.

RAD-69: a study of ``--retrieve`` instances is stored, and a gateway subprocess (its own GIL, as a
deployed server) answers (a) RAD-69 for the whole study and (b) the repository baseline: an ITI-43
RetrieveDocumentSetResponse streaming the very same files through the same SOAP/MTOM stack with
no lookup work. Both are read as raw HTTP bodies by the same client. The repository's own ITI-43
figures (its index, storage and static-file baseline) are in ``bench/repository_bench.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pynetdicom import AE, evt  # noqa: E402

from gateway import dicomscu  # noqa: E402
from gateway.imaging import synthetic  # noqa: E402
from gateway.imaging.index import ImagingIndex  # noqa: E402
from gateway.imaging.rad68 import InProcessRepositoryClient  # noqa: E402
from gateway.imaging.source import ImagingSource  # noqa: E402
from gateway.imaging.storescp import set_nodelay  # noqa: E402
from gateway.metadata import retrieve as codec  # noqa: E402
from gateway.soap import transactions as tx  # noqa: E402
from gateway.soap.client import addressing_headers  # noqa: E402
from gateway.soap.dispatch import Context, Limits, SoapApplication  # noqa: E402
from gateway.soap.message import Attachment, SoapRequest, SoapResponse  # noqa: E402
from gateway.soap.server import HttpServer  # noqa: E402

SOURCE_UID = "1.3.6.1.4.1.21367.13.80.100"
AE_TITLE = "XDSI_SOURCE"
MB = 1000 * 1000
DCMTK_ENV = {**os.environ, "TCP_NODELAY": "1"}


# -- data ----------------------------------------------------------------------------------------


def make_files(folder: Path, count: int, size: int) -> list[Path]:
    """A one-series CT study of ``count`` instances of ``size`` x ``size`` 16-bit pixels."""
    series = synthetic.SeriesSpec(modality="CT", count=count, rows=size, columns=size)
    return synthetic.write_study(
        synthetic.make_study(synthetic.StudySpec(series=(series,))), folder
    )


def new_source(work: Path, *, fsync: bool) -> ImagingSource:
    """A source on ``work`` that never publishes during the run (idle time of an hour)."""
    index = ImagingIndex.from_url(f"sqlite:///{work / 'imaging.sqlite'}")
    return ImagingSource(
        unique_id=SOURCE_UID,
        ae_title=AE_TITLE,
        storage_dir=work / "store",
        index=index,
        repository=InProcessRepositoryClient(
            lambda *_: codec.build_registry_response(codec.Status.SUCCESS)
        ),
        domain_oid="1.3.6.1.4.1.21367.13.20.1000",
        port=0,
        study_idle_seconds=3600,
        fsync=fsync,
    )


# -- C-STORE -------------------------------------------------------------------------------------


def storescu(host: str, port: int, called: str, files: list[Path], timeout: float) -> float:
    """Send ``files`` with storescu in one association; return instances per second."""
    return parallel_storescu(host, port, called, [files], timeout)


def parallel_storescu(
    host: str, port: int, called: str, batches: list[list[Path]], timeout: float
) -> float:
    """Send each batch with its own storescu (one association each, all at once); return
    instances per second over the whole run."""
    processes = []
    started = time.perf_counter()
    for files in batches:
        command = ["storescu", "-aec", called, "-R", host, str(port), *map(str, files)]
        processes.append(
            subprocess.Popen(
                command,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                env=DCMTK_ENV,
            )
        )
    for process in processes:
        _out, err = process.communicate(timeout=timeout)
        if process.returncode != 0:
            raise RuntimeError(f"storescu failed: {err[-400:]}")
    elapsed = time.perf_counter() - started
    return sum(len(files) for files in batches) / elapsed


def pynetdicom_scu(host: str, port: int, files: list[Path]) -> float:
    """Send ``files`` with a pynetdicom SCU (TCP_NODELAY on); return instances per second."""
    ae = AE(ae_title="BENCH_SCU")
    ae.add_requested_context(synthetic.SOP_CLASSES["CT"], [synthetic.ExplicitVRLittleEndian])
    assoc = ae.associate(
        host, port, ae_title=AE_TITLE, evt_handlers=[(evt.EVT_CONN_OPEN, set_nodelay)]
    )
    if not assoc.is_established:
        raise RuntimeError("pynetdicom association not established")
    started = time.perf_counter()
    try:
        for path in files:
            status = dicomscu.send_c_store(assoc, str(path))
            if "Status" not in status:  # no response within the DIMSE timeout, or aborted
                raise RuntimeError(f"no C-STORE response for {path.name} (pynetdicom SCU)")
            if status.Status != 0:
                raise RuntimeError(f"C-STORE status 0x{status.Status:04X}")
    finally:
        assoc.release()
    return len(files) / (time.perf_counter() - started)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def storescp_rate(batches: list[list[Path]], work: Path, timeout: float) -> float:
    """dcmtk storescp (one process per association: ``--fork``) receiving every batch at once
    from its own storescu: the baseline."""
    port = free_port()
    folder = work / f"storescp-{time.monotonic_ns()}"
    folder.mkdir(parents=True)
    command = ["storescp", "-q", "--fork", "-od", str(folder), "-aet", "STORESCP", str(port)]
    server = subprocess.Popen(command, env=DCMTK_ENV)
    try:
        deadline = time.monotonic() + 10
        while True:  # wait until storescp listens (polling with a deadline)
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        return parallel_storescu("127.0.0.1", port, "STORESCP", batches, timeout)
    finally:
        server.terminate()
        server.wait(10)
        shutil.rmtree(folder, ignore_errors=True)


def ours_rate(
    batches: list[list[Path]],
    work: Path,
    *,
    fsync: bool,
    timeout: float,
    sender: Callable[..., float] | None = None,
) -> tuple[float, float]:
    """Our listener receiving every batch at once (storescu, or ``sender`` for one batch);
    (instances per second, rows per index commit)."""
    work.mkdir(parents=True, exist_ok=True)
    source = new_source(work / f"run-{time.monotonic_ns()}", fsync=fsync)
    host, port = source.start()
    try:
        if sender is None:
            rate = parallel_storescu(host, port, AE_TITLE, batches, timeout)
        else:
            rate = sender(host, port, batches[0])
    finally:
        source.stop()
    expected = sum(len(files) for files in batches)
    with source.index.engine.connect() as conn:
        stored = conn.exec_driver_sql("SELECT count(*) FROM imaging_instance").scalar()
    if stored != expected:
        raise RuntimeError(f"only {stored} of {expected} instances were stored")
    committer = source.ingest.rows
    return rate, committer.rows / max(committer.commits, 1)


def _study_of(path: Path) -> str:
    import pydicom

    return str(pydicom.dcmread(path, stop_before_pixels=True).StudyInstanceUID)


# -- RAD-69 --------------------------------------------------------------------------------------


def whole_study_request(
    source: ImagingSource, study_uid: str
) -> codec.RetrieveImagingDocumentSetRequest:
    instances = [
        codec.ImagingDocumentRequest(
            study_instance_uid=study_uid,
            series_instance_uid=record.series_instance_uid,
            document=codec.DocumentRequest(
                repository_unique_id=SOURCE_UID, document_unique_id=record.sop_instance_uid
            ),
        )
        for record in source.index.instances_of_study(study_uid)
    ]
    return codec.RetrieveImagingDocumentSetRequest.of(
        instances, (synthetic.ExplicitVRLittleEndian,)
    )


def _envelope(body: object, action: str, url: str) -> bytes:
    from lxml import etree

    from gateway.soap import ns

    env = etree.Element(ns.qname(ns.SOAP12, "Envelope"), nsmap={"env": ns.SOAP12})
    header = etree.SubElement(env, ns.qname(ns.SOAP12, "Header"))
    header.extend(addressing_headers(action=action, to=url))
    etree.SubElement(env, ns.qname(ns.SOAP12, "Body")).append(body)  # type: ignore[arg-type]
    return etree.tostring(env, xml_declaration=True, encoding="UTF-8")


def serve(data: Path) -> int:
    """``--serve``: RAD-69 and the ITI-43 baseline over the stored study; print the port."""
    source = new_source(data, fsync=False)
    with source.index.engine.connect() as conn:
        studies = [
            row[0] for row in conn.exec_driver_sql("SELECT study_instance_uid FROM imaging_study")
        ]
    records = [record for uid in studies for record in source.index.instances_of_study(uid)]

    def baseline(request: SoapRequest, ctx: Context) -> SoapResponse:
        """The same files, streamed as an ITI-43 response with no lookup work."""
        documents = [
            codec.DocumentResponse(
                repository_unique_id=SOURCE_UID,
                document_unique_id=record.sop_instance_uid,
                mime_type="application/dicom",
                attachment=Attachment.from_file(
                    source.store.path(record.path), content_type="application/dicom"
                ),
            )
            for record in records
        ]
        response = codec.RetrieveDocumentSetResponse(
            status=codec.Status.SUCCESS, documents=documents
        )
        return SoapResponse(
            body=codec.build_retrieve_response(response),
            attachments=[d.attachment for d in documents],
            mtom=True,
        )

    app = SoapApplication(Limits(spool_dir=data / "spool"))
    app.endpoint(tx.IMAGING_SOURCE_PATH, tx.ENDPOINTS[tx.IMAGING_SOURCE_PATH]).bind(
        tx.RAD_69, source.rad69_handler()
    )
    app.endpoint(tx.REPOSITORY_PATH, tx.ENDPOINTS[tx.REPOSITORY_PATH]).bind(tx.ITI_43, baseline)
    stop = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop)  # before any thread starts: sigwait gets them
    server = HttpServer(app, host="127.0.0.1", port=0, threads=8)
    _host, port = server.start()
    print(json.dumps({"port": port}), flush=True)
    signal.sigwait(stop)
    server.stop()
    return 0


def post_mb_per_second(url: str, action: str, body: bytes, rounds: int) -> tuple[float, int]:
    """POST ``body`` ``rounds`` times, read each answer to the end; return (MB/s, bytes)."""
    content_type = f'application/soap+xml; charset=UTF-8; action="{action}"'
    moved = 0
    with requests.Session() as session:
        started = time.perf_counter()
        for _ in range(rounds):
            with session.post(
                url, data=body, headers={"Content-Type": content_type}, stream=True, timeout=300
            ) as answer:
                answer.raise_for_status()
                for chunk in answer.iter_content(1024 * 1024):
                    moved += len(chunk)
        elapsed = time.perf_counter() - started
    return moved / MB / elapsed, moved // rounds


def retrieve_rates(data: Path, study_uid: str, rounds: int) -> tuple[float, float, int]:
    source = new_source(data, fsync=False)
    request = codec.build_imaging_request(whole_study_request(source, study_uid))
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(data)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        port = json.loads(server.stdout.readline())["port"]
        base = f"http://127.0.0.1:{port}"
        rad69_url, iti43_url = base + tx.IMAGING_SOURCE_PATH, base + tx.REPOSITORY_PATH
        rad69, size = post_mb_per_second(
            rad69_url, tx.RAD_69.action, _envelope(request, tx.RAD_69.action, rad69_url), rounds
        )
        from lxml import etree

        dummy = etree.Element(tx.ITI_43.request_qname)
        baseline, _ = post_mb_per_second(
            iti43_url, tx.ITI_43.action, _envelope(dummy, tx.ITI_43.action, iti43_url), rounds
        )
        return rad69, baseline, size
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)


# -- main ----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", type=int, default=300, help="instances sent (default 300)")
    parser.add_argument("--store-size", type=int, default=128, help="rows = columns (128)")
    parser.add_argument("--retrieve", type=int, default=500, help="study size for RAD-69 (500)")
    parser.add_argument("--retrieve-size", type=int, default=256, help="rows = columns (256)")
    parser.add_argument("--rounds", type=int, default=3, help="whole-study retrievals (3)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per transfer (300)")
    parser.add_argument("--repeat", type=int, default=3, help="C-STORE runs per row (3)")
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        return serve(args.serve)
    work = Path(tempfile.mkdtemp(prefix="imaging-bench-"))
    try:
        report_store(args, work)
        report_retrieve(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def report_store(args: argparse.Namespace, work: Path) -> None:
    one = [make_files(work / "files", args.store, args.store_size)]
    four = [make_files(work / f"files{n}", args.store, args.store_size) for n in range(4)]
    size_kb = one[0][0].stat().st_size / 1000
    print(
        f"C-STORE: CT instances of {size_kb:.0f} kB sent by dcmtk storescu, {args.store} per "
        f"association; median of {args.repeat} interleaved runs (same files, same run)"
    )
    if shutil.which("storescu") is None or shutil.which("storescp") is None:
        print("  dcmtk not installed: storescu/storescp rows skipped")
        return
    cases = {  # name: (batches, gateway flushes to disk)
        "1 association, durable": (one, True),
        "4 parallel associations, durable": (four, True),
        "1 association, fsync off (not durable)": (one, False),
    }
    rates: dict[str, list[tuple[float, float, float]]] = {name: [] for name in cases}
    for _round in range(args.repeat):  # interleaved: a load change hits both columns alike
        for name, (batches, fsync) in cases.items():
            baseline = storescp_rate(batches, work / "scp", args.timeout)
            ours, rows = ours_rate(batches, work / "gw", fsync=fsync, timeout=args.timeout)
            rates[name].append((baseline, ours, rows))
    print(f"  {'':<42} {'storescp':>9} {'gateway':>9} {'ratio':>6} {'rows/commit':>12}")
    for name, runs in rates.items():
        baseline = statistics.median(r[0] for r in runs)
        ours = statistics.median(r[1] for r in runs)
        rows = statistics.median(r[2] for r in runs)
        ratio = ours / baseline * 100
        print(f"  {name:<42} {baseline:9.1f} {ours:9.1f} {ratio:5.0f}% {rows:12.1f}")
    print("  (instances/s; storescp writes files without fsync and keeps no index; the gateway")
    print("   answers each C-STORE once the instance, file and index row, survives a power loss)")
    print(f"  machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at the end")
    label = "pynetdicom SCU -> gateway, 1 association, durable"
    try:
        pyn, _rows = ours_rate(
            one, work / "gw", fsync=True, timeout=args.timeout, sender=pynetdicom_scu
        )
    except RuntimeError as exc:
        # pynetdicom's requestor occasionally misses a response from a fast acceptor (its
        # reactor's pause flag races the DIMSE thread); reported, not retried, so it stays visible
        print(f"  {label:<52} failed: {exc}")
        return
    print(f"  {label:<52} {pyn:9.1f} instances/s")


def report_retrieve(args: argparse.Namespace, work: Path) -> None:
    data = work / "retrieve"
    data.mkdir()
    files = make_files(work / "retrieve-files", args.retrieve, args.retrieve_size)
    source = new_source(data, fsync=False)
    for path in files:
        source.ingest.store_file(path)
    study = _study_of(files[0])
    rad69, baseline, size = retrieve_rates(data, study, args.rounds)
    print(
        f"RAD-69: whole study of {len(files)} instances, {size / MB:.1f} MB per response, "
        f"{args.rounds} rounds, server in a subprocess"
    )
    print(f"  {'ITI-43 response, same files (repository baseline)':<52} {baseline:8.1f} MB/s")
    print(f"  {'RAD-69 whole-study retrieve':<52} {rad69:8.1f} MB/s")


if __name__ == "__main__":
    sys.exit(main())
