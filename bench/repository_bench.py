"""Benchmark of the Document Repository: ITI-41 documents per second and ITI-43 MB/s, each printed
beside a baseline measured in the same run — the same bytes served as a static file by nginx
(or by Python's http.server where nginx is absent), fetched with the same number of clients.

    python bench/repository_bench.py                 # a gateway subprocess, stub registry
    python bench/repository_bench.py --seconds 5     # longer runs per measurement
    python bench/repository_bench.py --url http://host:8080/xds/repository --patient 'P^^^&OID&ISO'

Without ``--url`` a gateway is started in a subprocess (so client and server do not share a GIL)
with its repository bound to a stub registry that accepts every submission: the figures are the
repository's own cost (MTOM parsing, SHA-1, fsync'd storage, index, SOAP). With ``--url`` any
running XDS.b repository is measured (its registry must know ``--patient``). Every measurement
runs for ``--seconds`` (default 3); the whole run takes about a minute. Client and server share
the machine, which caps both columns alike.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests
from lxml import etree

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway.metadata.provide import build_provide_request  # noqa: E402
from gateway.metadata.retrieve import DocumentRequest, build_retrieve_request  # noqa: E402
from gateway.repository import iti41  # noqa: E402
from gateway.repository.template import FillOptions, default_submission, fill  # noqa: E402
from gateway.soap import mtom, ns  # noqa: E402
from gateway.soap.client import addressing_headers  # noqa: E402
from gateway.soap.message import Attachment  # noqa: E402
from gateway.soap.transactions import ITI_41, ITI_43  # noqa: E402

PATIENT = "BENCH-1^^^&1.3.6.1.4.1.21367.13.20.1000&ISO"
REPOSITORY_UID = "1.3.6.1.4.1.21367.13.40.100"
KB, MB = 1000, 1000 * 1000


# -- SOAP messages -------------------------------------------------------------------------------


def _envelope(body: etree._Element, action: str, url: str) -> bytes:
    env = etree.Element(ns.qname(ns.SOAP12, "Envelope"), nsmap={"env": ns.SOAP12})
    header = etree.SubElement(env, ns.qname(ns.SOAP12, "Header"))
    header.extend(addressing_headers(action=action, to=url))
    etree.SubElement(env, ns.qname(ns.SOAP12, "Body")).append(body)
    return etree.tostring(env, xml_declaration=True, encoding="UTF-8")


def provide_message(url: str, data: bytes, patient: str) -> tuple[str, bytes, str]:
    """(Content-Type, MTOM body, document uniqueId) of one ITI-41 request for ``data``."""
    submission = default_submission()
    entry = fill(
        submission,
        FillOptions(patient_id=patient, mime_type="application/octet-stream"),
        file_name="bench.bin",
        size=None,
        sha1=None,
    )
    attachment = Attachment.from_bytes(data, content_type="application/octet-stream")
    body = build_provide_request(submission, [(entry.entry_uuid, attachment.content_id)])
    xml = _envelope(body, ITI_41.action, url)
    content_type, _length, chunks = mtom.build_mtom(xml, [attachment], soap_action=ITI_41.action)
    return content_type, b"".join(chunks), entry.unique_id or ""


def retrieve_message(url: str, uid: str) -> tuple[str, bytes]:
    request = DocumentRequest(repository_unique_id=REPOSITORY_UID, document_unique_id=uid)
    xml = _envelope(build_retrieve_request([request]), ITI_43.action, url)
    return f'application/soap+xml; charset=UTF-8; action="{ITI_43.action}"', xml


# -- measuring -----------------------------------------------------------------------------------


@dataclass
class Result:
    requests: int
    bytes: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds

    @property
    def mb_per_second(self) -> float:
        return self.bytes / MB / self.seconds


def run_clients(clients: int, seconds: float, one: Callable[[requests.Session], int]) -> Result:
    """Run ``one`` (returning bytes moved) in ``clients`` threads for ``seconds``."""
    stop = time.monotonic() + seconds
    totals: list[tuple[int, int]] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker() -> None:
        count = moved = 0
        with requests.Session() as session:
            try:
                while time.monotonic() < stop or count == 0:
                    moved += one(session)
                    count += 1
            except BaseException as exc:  # reported after the run
                errors.append(exc)
        with lock:
            totals.append((count, moved))

    started = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    elapsed = time.monotonic() - started
    return Result(sum(c for c, _ in totals), sum(m for _, m in totals), elapsed)


def provide_once(url: str, data: bytes, patient: str) -> Callable[[requests.Session], int]:
    def one(session: requests.Session) -> int:
        content_type, payload, _uid = provide_message(url, data, patient)
        answer = session.post(url, data=payload, headers={"Content-Type": content_type})
        if b"ResponseStatusType:Success" not in answer.content:
            raise RuntimeError(f"ITI-41 failed: {answer.content[:600]!r}")
        return len(data)

    return one


def retrieve_once(url: str, uid: str) -> Callable[[requests.Session], int]:
    content_type, payload = retrieve_message(url, uid)

    def one(session: requests.Session) -> int:
        moved = 0
        with session.post(
            url, data=payload, headers={"Content-Type": content_type}, stream=True
        ) as answer:
            answer.raise_for_status()
            for chunk in answer.iter_content(1024 * 1024):
                moved += len(chunk)
        return moved

    return one


def static_once(url: str) -> Callable[[requests.Session], int]:
    def one(session: requests.Session) -> int:
        moved = 0
        with session.get(url, stream=True) as answer:
            answer.raise_for_status()
            for chunk in answer.iter_content(1024 * 1024):
                moved += len(chunk)
        return moved

    return one


# -- servers -------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.05)  # polling a starting server, with a deadline
    raise TimeoutError(f"{url} did not answer")


@contextmanager
def static_server(folder: Path, work: Path, kind: str) -> Iterator[tuple[str, str]]:
    """Serve ``folder`` with nginx (or http.server); yield (name, base URL)."""
    port = free_port()
    nginx = shutil.which("nginx", path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin"]))
    if kind == "http.server":
        nginx = None
    if nginx:
        conf = work / "nginx.conf"
        temp = work / "nginx-temp"
        temp.mkdir(exist_ok=True)
        conf.write_text(
            f"daemon off; worker_processes 2; pid {work}/nginx.pid; error_log {work}/nginx.err;\n"
            "events { worker_connections 256; }\n"
            f"http {{ access_log off; sendfile on; client_body_temp_path {temp}; "
            f"proxy_temp_path {temp}; fastcgi_temp_path {temp}; uwsgi_temp_path {temp}; "
            f"scgi_temp_path {temp}; server {{ listen 127.0.0.1:{port}; root {folder}; }} }}\n"
        )
        command = [nginx, "-c", str(conf), "-p", str(work)]
        name = "nginx"
    else:
        command = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
        command += ["--directory", str(folder)]
        name = "http.server"
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http(base + "/ready")
        yield name, base
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextmanager
def gateway_server(work: Path) -> Iterator[str]:
    """A gateway subprocess (this script with --serve); yield its repository URL."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XDSI_GATEWAY_DATA_DIR": str(work / "gw")}
    command = [sys.executable, str(Path(__file__).resolve()), "--serve"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline() if process.stdout else ""
        port = json.loads(line)["port"]
        yield f"http://127.0.0.1:{port}/xds/repository"
    finally:
        process.terminate()
        process.wait(timeout=30)


def serve() -> int:
    """--serve: a gateway whose repository registers with a stub registry (accepts all)."""
    from gateway.app import Gateway
    from gateway.cli import run_until_signalled
    from gateway.config import load_settings
    from gateway.database import Database
    from gateway.database.leases import Lease
    from gateway.metadata.retrieve import Status, build_registry_response
    from gateway.repository import iti43
    from gateway.repository.actor import Repository
    from gateway.repository.registry_client import InProcessRegistryClient
    from gateway.soap.dispatch import SoapApplication
    from gateway.soap.transactions import ENDPOINTS, REPOSITORY_PATH

    for section in ("REGISTRY", "REPOSITORY", "IMAGING_SOURCE", "HL7"):
        os.environ[f"XDSI_{section}_ENABLED"] = "false"
    os.environ.update({"XDSI_HTTP_PORT": "0", "XDSI_LOG_LEVEL": "WARNING"})
    settings = load_settings()
    accept = InProcessRegistryClient(lambda _request: build_registry_response(Status.SUCCESS))
    database = Database(settings.gateway_database_url)
    database.upgrade()
    lease = Lease(database.engine).start()
    repository = Repository.open(
        settings.repository_storage_dir,
        unique_id=REPOSITORY_UID,
        registry=accept,
        engine=database.engine,
        owner=lease.owner,
    )
    repository.start()

    def bind(app: SoapApplication) -> None:
        endpoint = app.endpoint(REPOSITORY_PATH, ENDPOINTS[REPOSITORY_PATH])
        endpoint.bind(ITI_41, iti41.handler(repository))
        endpoint.bind(ITI_43, iti43.handler(repository))

    gateway = Gateway(settings, configure=bind)
    _host, port = gateway.start()
    print(json.dumps({"port": port}), flush=True)
    return run_until_signalled(gateway)


# -- the run -------------------------------------------------------------------------------------


def _publish(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    path.chmod(0o644)


def measure(url: str, static: tuple[str, str], folder: Path, args: argparse.Namespace) -> None:
    name, base = static
    rows: list[tuple[str, int, str, str]] = []
    for size, label in ((10 * KB, "10 kB"), (10 * MB, "10 MB")):
        data = os.urandom(size)
        _publish(folder / f"doc-{size}.bin", data)
        for clients in (1, 8):
            gateway = run_clients(clients, args.seconds, provide_once(url, data, args.patient))
            plain = run_clients(clients, args.seconds, static_once(f"{base}/doc-{size}.bin"))
            rows.append(
                (
                    f"ITI-41 {label} documents/s",
                    clients,
                    f"{gateway.per_second:9.1f}",
                    f"{plain.per_second:9.1f} GET/s",
                )
            )
    data = os.urandom(args.retrieve_mb * MB)
    _publish(folder / "retrieve.bin", data)
    content_type, payload, uid = provide_message(url, data, args.patient)
    answer = requests.post(url, data=payload, headers={"Content-Type": content_type}, timeout=600)
    if b"ResponseStatusType:Success" not in answer.content:
        raise RuntimeError(f"could not store the ITI-43 document: {answer.content[:600]!r}")
    with requests.Session() as session:  # the document comes back whole before it is timed
        if retrieve_once(url, uid)(session) < len(data):
            raise RuntimeError("ITI-43 did not return the stored document")
    for clients in (1, 8):
        gateway = run_clients(clients, args.seconds, retrieve_once(url, uid))
        plain = run_clients(clients, args.seconds, static_once(f"{base}/retrieve.bin"))
        rows.append(
            (
                f"ITI-43 {args.retrieve_mb} MB throughput MB/s",
                clients,
                f"{gateway.mb_per_second:9.1f}",
                f"{plain.mb_per_second:9.1f} MB/s",
            )
        )
    print(f"\n{'measure':<34} {'clients':>7} {'gateway':>10}   baseline ({name}, same bytes)")
    for measure_name, clients, value, baseline in rows:
        print(f"{measure_name:<34} {clients:>7} {value:>10}   {baseline}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per measurement (default 3)")
    parser.add_argument("--url", help="benchmark this ITI-41/43 endpoint instead of a subprocess")
    parser.add_argument("--patient", default=PATIENT, help="patient id known to the registry")
    parser.add_argument("--retrieve-mb", type=int, default=10, help="ITI-43 document size (MB)")
    parser.add_argument(
        "--baseline",
        choices=("auto", "http.server"),
        default="auto",
        help="static server of the baseline (auto: nginx when installed)",
    )
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        return serve()
    with tempfile.TemporaryDirectory(prefix="xdsi-bench-") as tmp:
        work = Path(tmp)
        folder = work / "www"
        folder.mkdir()
        # nginx workers run as an unprivileged user when started by root: let them read.
        work.chmod(0o755)
        folder.chmod(0o755)
        _publish(folder / "ready", b"ok")
        with static_server(folder, work, args.baseline) as static:
            if args.url:
                measure(args.url, static, folder, args)
            else:
                with gateway_server(work) as url:
                    measure(url, static, folder, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
