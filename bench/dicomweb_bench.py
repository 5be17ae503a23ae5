"""Benchmark of DICOMweb (/dicomweb): WADO-RS retrieve (MB/s) beside nginx serving the same bytes
as static files, and STOW-RS ingest (instances/s) beside C-STORE, all in one run; then the memory
of the serving process while a 2 GB study goes in by STOW-RS and out by WADO-RS.

    python bench/dicomweb_bench.py                    # 500 instances of 256 x 256, 2 GB study
    python bench/dicomweb_bench.py --count 500 --size 512 --rounds 5 --big-gb 0

The gateway runs as ``xdsi-gateway serve`` would, in its own process (its own GIL): every actor,
studies published only after an hour (so publication does not compete). Rows:

- C-STORE: a pynetdicom SCU sends study A (one association), the listener stores and indexes;
- STOW-RS: study B (same size, other UIDs) is POSTed in requests of ``--per-request`` instances;
- WADO-RS study: study A as one ``multipart/related`` answer, as stored (``transfer-syntax=*``);
- WADO-RS instances: study A instance by instance on one kept-alive connection;
- nginx: the very files of study A in the gateway's store, one GET each on one connection.

Memory: the serving process's resident set (``/proc/PID/status`` VmRSS) sampled every 50 ms
before, during the STOW-RS of a ``--big-gb`` study of 512 MiB multi-frame instances, and during
its WADO-RS retrieval; flat means the peak stays near the start, far below the study's size.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pynetdicom import AE  # noqa: E402
from pynetdicom.presentation import build_context  # noqa: E402

from bench.repository_bench import static_server  # noqa: E402
from gateway import dicomscu  # noqa: E402
from gateway.imaging import synthetic  # noqa: E402

MB = 1000 * 1000
DICOM_MP = 'multipart/related; type="application/dicom"'


# -- the gateway process ---------------------------------------------------------------------------


def serve() -> int:
    """--serve: a whole gateway on ephemeral ports; print them as JSON, run until signalled."""
    from gateway.app import Gateway
    from gateway.config import load_settings

    os.environ.update(
        {
            "XDSI_HTTP_PORT": "0",
            "XDSI_HL7_MLLP_PORT": "0",
            "XDSI_IMAGING_SOURCE_DICOM_PORT": "0",
            "XDSI_IMAGING_SOURCE_STUDY_IDLE_SECONDS": "3600",
            "XDSI_LOG_LEVEL": "WARNING",
        }
    )
    gw = Gateway(load_settings())
    _host, port = gw.start()
    assert gw.imaging is not None
    print(json.dumps({"http": port, "dicom": gw.imaging.address[1]}), flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    gw.stop()
    return 0


@contextmanager
def gateway(work: Path) -> Iterator[tuple[subprocess.Popen[str], str, int]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XDSI_GATEWAY_DATA_DIR": str(work / "gw")}
    command = [sys.executable, str(Path(__file__).resolve()), "--serve"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    try:
        ports = json.loads(process.stdout.readline() if process.stdout else "{}")
        yield process, f"http://127.0.0.1:{ports['http']}/dicomweb", int(ports["dicom"])
    finally:
        process.terminate()
        process.wait(timeout=60)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class RssSampler:
    """The peak resident set of a process while the block runs."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._stop = pid, 0.0, threading.Event()

    def __enter__(self) -> RssSampler:
        self.start = rss_mb(self.pid)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, rss_mb(self.pid))

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.thread.join()


# -- transfers -------------------------------------------------------------------------------------


def cstore(port: int, files: list[Path]) -> float:
    import pydicom

    ds0 = pydicom.dcmread(files[0], stop_before_pixels=True)
    ae = AE(ae_title="BENCH")
    ae.requested_contexts = [build_context(ds0.SOPClassUID, [ds0.file_meta.TransferSyntaxUID])]
    assoc = ae.associate("127.0.0.1", port, ae_title="XDSI_SOURCE")
    if not assoc.is_established:
        raise RuntimeError("C-STORE association refused")
    started = time.perf_counter()
    try:
        for path in files:
            status = dicomscu.send_c_store(assoc, pydicom.dcmread(path))
            if status.Status != 0:
                raise RuntimeError(f"C-STORE status 0x{status.Status:04X}")
    finally:
        assoc.release()
    return len(files) / (time.perf_counter() - started)


def _stow_body(files: list[Path], boundary: str) -> Iterator[bytes]:
    for path in files:
        yield f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                yield chunk
        yield b"\r\n"
    yield f"--{boundary}--\r\n".encode()


def stow(root: str, files: list[Path], per_request: int) -> float:
    started = time.perf_counter()
    with requests.Session() as session:
        for start in range(0, len(files), per_request):
            batch = files[start : start + per_request]
            answer = session.post(
                root + "/studies",
                data=_stow_body(batch, "benchboundary"),
                headers={"Content-Type": f"{DICOM_MP}; boundary=benchboundary"},
                timeout=600,
            )
            if answer.status_code != 200:
                raise RuntimeError(f"STOW-RS answered {answer.status_code}: {answer.text[:200]}")
    return len(files) / (time.perf_counter() - started)


def drain(response: requests.Response) -> int:
    total = 0
    for chunk in response.iter_content(1 << 20):
        total += len(chunk)
    return total


def wado_study(root: str, study: str, rounds: int) -> tuple[float, int]:
    best, size = 0.0, 0
    with requests.Session() as session:
        for _ in range(rounds):
            started = time.perf_counter()
            with session.get(
                f"{root}/studies/{study}",
                headers={"Accept": f"{DICOM_MP}; transfer-syntax=*"},
                stream=True,
                timeout=600,
            ) as answer:
                answer.raise_for_status()
                size = drain(answer)
            best = max(best, size / MB / (time.perf_counter() - started))
    return best, size


def per_file(urls: list[str], rounds: int, accept: str | None = None) -> float:
    best = 0.0
    headers = {"Accept": accept} if accept else {}
    with requests.Session() as session:
        for _ in range(rounds):
            started, total = time.perf_counter(), 0
            for url in urls:
                with session.get(url, headers=headers, stream=True, timeout=120) as answer:
                    answer.raise_for_status()
                    total += drain(answer)
            best = max(best, total / MB / (time.perf_counter() - started))
    return best


# -- the report ------------------------------------------------------------------------------------


def study_files(folder: Path, count: int, size: int) -> tuple[str, list[Path]]:
    spec = synthetic.StudySpec(
        series=(synthetic.SeriesSpec(modality="CT", count=count, rows=size, columns=size),)
    )
    return spec.study_uid, synthetic.write_study(synthetic.make_study(spec), folder)


def report(args: argparse.Namespace, work: Path) -> None:
    study_a, files_a = study_files(work / "a", args.count, args.size)
    _, files_b = study_files(work / "b", args.count, args.size)
    mb = sum(p.stat().st_size for p in files_a) / MB
    print(f"study: {args.count} CT instances of {args.size}x{args.size}, {mb:.1f} MB")
    with gateway(work) as (process, root, dicom_port):
        print("ingest (instances/s)")
        print(f"  {'C-STORE, pynetdicom SCU (baseline)':<44} {cstore(dicom_port, files_a):8.1f}")
        rate = stow(root, files_b, args.per_request)
        print(f"  {f'STOW-RS, {args.per_request} instances per request':<44} {rate:8.1f}")
        print("retrieve study A (MB/s, best of rounds)")
        store = work / "gw" / "data" if (work / "gw" / "data").exists() else work / "gw"
        stored = sorted((store / "imaging" / study_a).rglob("*.dcm"))
        static = work / "static"  # hard links: the very bytes of the store, and nginx's "ready"
        for path in stored:
            link = static / path.relative_to(store / "imaging")
            link.parent.mkdir(parents=True, exist_ok=True)
            os.link(path, link)
        (static / "ready").write_text("ok")
        for folder in [work, *[p for p in static.rglob("*") if p.is_dir()], static]:
            folder.chmod(0o755)  # nginx's workers are not root
        for path in static.rglob("*.dcm"):
            path.chmod(0o644)
        with static_server(static, work, "nginx") as (name, base):
            urls = [f"{base}/{p.relative_to(store / 'imaging')}" for p in stored]
            print(
                f"  {name + ', static files, one connection (baseline)':<44} "
                f"{per_file(urls, args.rounds):8.1f}"
            )
        rate, size = wado_study(root, study_a, args.rounds)
        print(f"  {'WADO-RS study, one multipart answer':<44} {rate:8.1f}  ({size / MB:.1f} MB)")
        instance_urls = [_instance_url(root, study_a, p) for p in stored]
        rate = per_file(instance_urls, args.rounds, f"{DICOM_MP}; transfer-syntax=*")
        print(f"  {'WADO-RS instance by instance, one connection':<44} {rate:8.1f}")
        if args.big_gb > 0:
            memory(args, work, root, process.pid)


def _instance_url(root: str, study: str, path: Path) -> str:
    return f"{root}/studies/{study}/series/{path.parent.name}/instances/{path.stem}"


def memory(args: argparse.Namespace, work: Path, root: str, pid: int) -> None:
    frames = 1024  # 512 x 512 x 16 bit: 512 MiB per instance
    count = max(1, round(args.big_gb * 1024**3 / (frames * 512 * 512 * 2)))
    spec = synthetic.StudySpec(patient_id="PAT-BIG")
    folder = work / "big"
    folder.mkdir()
    files = [folder / f"{n}.dcm" for n in range(count)]
    for path in files:
        synthetic.write_multiframe(spec, path, frames=frames)
    gb = sum(p.stat().st_size for p in files) / 1024**3
    print(f"memory of the serving process, {count} instances, {gb:.2f} GiB (VmRSS, MiB)")
    with RssSampler(pid) as sampler:
        stow(root, files, 1)
    print(f"  {'STOW-RS in: at start / peak':<44} {sampler.start:8.1f} / {sampler.peak:.1f}")
    shutil.rmtree(folder)
    with RssSampler(pid) as sampler:
        _, size = wado_study(root, spec.study_uid, 1)
    print(
        f"  {'WADO-RS out: at start / peak':<44} {sampler.start:8.1f} / {sampler.peak:.1f}"
        f"  ({size / 1024**3:.2f} GiB sent)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=500, help="instances per study (500)")
    parser.add_argument("--size", type=int, default=256, help="rows = columns (256)")
    parser.add_argument("--rounds", type=int, default=3, help="retrievals, best kept (3)")
    parser.add_argument("--per-request", type=int, default=50, help="STOW-RS batch (50)")
    parser.add_argument("--big-gb", type=float, default=2.0, help="memory study, 0 = skip (2)")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        return serve()
    work = Path(tempfile.mkdtemp(prefix="dicomweb-bench-"))
    try:
        report(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
