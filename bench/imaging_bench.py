"""Benchmark of the Imaging Document Source: C-STORE ingest (instances/s) and RAD-69 retrieve
(MB/s), each printed beside a baseline measured in the same run.

    python bench/imaging_bench.py                       # defaults: about a minute
    python bench/imaging_bench.py --store 500 --retrieve 500 --rounds 5

C-STORE: the same generated CT files are sent by dcmtk's ``storescu`` (one association) to
  1. dcmtk's ``storescp`` (baseline: writes files, no fsync, no index),
  2. our listener, durable (fsync of file and folder, database row per instance),
  3. our listener with fsync off (what durability costs),
  4. our listener from a pynetdicom SCU instead of storescu.
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
    command = ["storescu", "-aec", called, "-R", host, str(port), *map(str, files)]
    started = time.perf_counter()
    result = subprocess.run(
        command, capture_output=True, text=True, env=DCMTK_ENV, timeout=timeout, check=False
    )
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"storescu failed: {result.stderr[-400:]}")
    return len(files) / elapsed


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
            status = assoc.send_c_store(path)
            if status.Status != 0:
                raise RuntimeError(f"C-STORE status 0x{status.Status:04X}")
    finally:
        assoc.release()
    return len(files) / (time.perf_counter() - started)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def storescp_rate(files: list[Path], work: Path, timeout: float) -> float:
    """dcmtk storescp receiving ``files`` from storescu: the baseline."""
    port = free_port()
    folder = work / "storescp"
    folder.mkdir(parents=True)
    command = ["storescp", "-q", "-od", str(folder), "-aet", "STORESCP", str(port)]
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
        return storescu("127.0.0.1", port, "STORESCP", files, timeout)
    finally:
        server.terminate()
        server.wait(10)


def ours_rate(
    files: list[Path], work: Path, *, fsync: bool, sender: Callable[..., float], timeout: float
) -> float:
    source = new_source(work, fsync=fsync)
    host, port = source.start()
    try:
        if sender is storescu:
            return storescu(host, port, AE_TITLE, files, timeout)
        return sender(host, port, files)
    finally:
        source.stop()
        stored = len(source.index.instances_of_study(_study_of(files[0])))
        if stored != len(files):
            raise RuntimeError(f"only {stored} of {len(files)} instances were stored")


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
    files = make_files(work / "files", args.store, args.store_size)
    size_kb = files[0].stat().st_size / 1000
    print(f"C-STORE: {len(files)} CT instances of {size_kb:.0f} kB, one association")
    if shutil.which("storescu") is None or shutil.which("storescp") is None:
        print("  dcmtk not installed: storescu/storescp rows skipped")
    else:
        rows = [
            (
                "dcmtk storescu -> dcmtk storescp (baseline)",
                storescp_rate(files, work, args.timeout),
            ),
            (
                "dcmtk storescu -> xdsi-gateway (fsync, index)",
                ours_rate(files, work / "a", fsync=True, sender=storescu, timeout=args.timeout),
            ),
            (
                "dcmtk storescu -> xdsi-gateway (fsync off)",
                ours_rate(files, work / "b", fsync=False, sender=storescu, timeout=args.timeout),
            ),
        ]
        for name, rate in rows:
            print(f"  {name:<48} {rate:8.1f} instances/s")
    rate = ours_rate(files, work / "c", fsync=True, sender=pynetdicom_scu, timeout=args.timeout)
    print(f"  {'pynetdicom SCU -> xdsi-gateway (fsync, index)':<48} {rate:8.1f} instances/s")


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
