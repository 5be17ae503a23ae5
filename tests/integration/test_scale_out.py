"""Three ``xdsi-gateway serve`` processes behind a real HAProxy, one killed and restarted under
load (issue 15, acceptance 1).

The site: three gateway processes (``python -m gateway serve``, the ``xdsi-gateway serve`` entry
point), each with its own data folder, sharing one repository storage folder and one PostgreSQL
database (a fresh one, ``XDSI_TEST_POSTGRES_URL``), behind HAProxy (``/usr/sbin/haproxy``, its
configuration written here: round robin per request, a health check of ``GET /health`` every
0.3 s, ``retries`` with ``redispatch``, loopback ports; its frontend socket is bound by the test
and handed over as ``fd@N``, so no port is chosen in advance). 16 clients run at least 30 s
through the balancer, each in a loop: ITI-41 Provide and Register (1-64 kB, its own patient),
ITI-43 Retrieve of one of its earlier documents (compared byte for byte), ITI-18 FindDocuments
(ObjectRef) for its patient (at least every document it was answered Success for must be
listed: a Success is visible at once through any process). A third of the way in, node 2 is
killed with SIGKILL and started again on the same port and data folder.

Afterwards: every document answered Success is registered (ITI-18) and retrievable byte for byte
(ITI-43) through each of the three processes; the documents the registry lists for the clients'
patients are exactly the files in the shared storage folder (no file without a registry entry, no
entry without its bytes); no repository index row stays ``pending``/``unresolved``; no staging
file is left; HAProxy saw node 2 go down and come back and sent it requests afterwards.

What a client may see besides Success (anything else fails the test):

- at any time, a RegistryResponse Failure whose only errors are ``XDSRegistryBusy`` or
  ``XDSRepositoryBusy`` (ITI TF-3 Table 4.2.4.1-2: "too much activity", try again later);
- only between the SIGKILL and 5 s after HAProxy reports node 2 up again ("while a backend
  died"): HTTP 502, 503 or 504 from HAProxy (its own error page, not a SOAP answer: a request in
  flight to the killed process, no server left, a server timeout), and a connection refused,
  reset or cut short by the balancer. The outcome of an ITI-41 answered so is unknown to its
  client; the checks above cover it either way (registered with its bytes, or gone entirely).

Marked ``slow`` (about two minutes with start-up and checks); ``make test`` (CI) runs it.
Skipped with the reason when ``XDSI_TEST_POSTGRES_URL`` is unset or HAProxy is not installed.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import os
import random
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from gateway.consumer.queries import QueryOptions, build_slots
from gateway.metadata.model import DocumentEntry, Submission
from gateway.metadata.query import LEAF_CLASS, OBJECT_REF, AdhocQuery, build_query_request
from gateway.metadata.query import parse_query_response as parse_query
from gateway.metadata.retrieve import DocumentRequest, build_retrieve_request
from gateway.metadata.retrieve import parse_retrieve_response as parse_retrieve
from gateway.repository.storage import storage_key
from gateway.soap.client import (
    SoapClient,
    SoapClientError,
    SoapConnectError,
    SoapTransportError,
)
from gateway.soap.transactions import ITI_18, ITI_41, ITI_43, REGISTRY_PATH, REPOSITORY_PATH
from tests.factories import UID_ROOT, make_document_entry, make_has_member, make_submission_set
from tests.integration.repository.repo_support import (
    REPOSITORY_UID,
    error_codes,
    provide_body,
    status_of,
)
from tests.integration.repository.serve_process import DOMAIN, ServeProcess, feed_patient

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

HAPROXY = "/usr/sbin/haproxy"
CLIENTS = 16
RUN_SECONDS = 36.0  # at least 30 s of load
KILL_AFTER = 12.0
AFTER_BACK = 8.0  # load keeps running at least this long once node 2 is back in rotation
GRACE = 5.0
BUSY = {"XDSRegistryBusy", "XDSRepositoryBusy"}
BALANCER_STATUS = {502, 503, 504}


# -- HAProxy --------------------------------------------------------------------------------------


class Balancer:
    """HAProxy in the foreground on an inherited listening socket, with an admin socket."""

    def __init__(self, folder: Path, backends: Sequence[tuple[str, int]]) -> None:
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(256)
        self.port = self.listener.getsockname()[1]
        self.admin = folder / "admin.sock"
        self.config = folder / "haproxy.cfg"
        self.config.write_text(self._config(backends))
        self.log = (folder / "haproxy.log").open("wb")
        self.proc = subprocess.Popen(
            [HAPROXY, "-db", "-f", str(self.config)],
            pass_fds=(self.listener.fileno(),),
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def _config(self, backends: Sequence[tuple[str, int]]) -> str:
        servers = "\n".join(
            f"    server node{n} {host}:{port} check" for n, (host, port) in enumerate(backends, 1)
        )
        return f"""\
global
    maxconn 512
    stats socket {self.admin} mode 600 level admin

defaults
    mode http
    timeout connect 2s
    timeout client 120s
    timeout server 120s
    timeout queue 30s
    timeout http-keep-alive 10s
    retries 3
    option redispatch 1

frontend xds
    bind fd@{self.listener.fileno()}
    default_backend gateways

backend gateways
    balance roundrobin
    option httpchk
    http-check send meth GET uri /health
    http-check expect status 200
    default-server inter 300ms fastinter 300ms downinter 300ms fall 2 rise 2
{servers}
"""

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self, line: str) -> str:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(10)
            sock.connect(str(self.admin))
            sock.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def servers(self) -> dict[str, dict[str, str]]:
        """``show stat`` of the backend's servers: name -> row (status, stot, ...)."""
        text_ = self.command("show stat").lstrip("# ")
        rows = csv.DictReader(io.StringIO(text_))
        return {
            r["svname"]: r
            for r in rows
            if r["pxname"] == "gateways" and r["svname"] not in ("FRONTEND", "BACKEND")
        }

    def wait_status(self, name: str, prefix: str, timeout: float = 90) -> float:
        """Wait until server ``name``'s status starts with ``prefix``; the monotonic time."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"haproxy exited with {self.proc.returncode}")
            try:
                if self.servers()[name]["status"].startswith(prefix):
                    return time.monotonic()
            except (OSError, KeyError):
                pass  # the admin socket is not there yet
            time.sleep(0.05)  # polling HAProxy's state with a deadline
        raise TimeoutError(f"{name} never {prefix}: {self.servers()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.listener.close()
        self.log.close()


# -- the clients ----------------------------------------------------------------------------------


@dataclass
class Outcome:
    at: float
    transaction: str
    what: str


@dataclass
class Load:
    """16 clients looping ITI-41, ITI-43, ITI-18 through the balancer until told to stop."""

    base: str
    patients: list[str]
    run: str
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    succeeded: dict[str, str] = field(default_factory=dict)  # uniqueId -> SHA-256
    attempted: set[str] = field(default_factory=set)
    transient: list[Outcome] = field(default_factory=list)
    bad: list[Outcome] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def start(self) -> list[threading.Thread]:
        threads = [threading.Thread(target=self._client, args=(n,)) for n in range(CLIENTS)]
        for thread in threads:
            thread.start()
        return threads

    def _note(self, transaction: str, what: str, transient: bool) -> None:
        outcome = Outcome(time.monotonic(), transaction, what)
        with self.lock:
            (self.transient if transient else self.bad).append(outcome)

    def _count(self, transaction: str) -> None:
        with self.lock:
            self.counts[transaction] = self.counts.get(transaction, 0) + 1

    def _failed(self, transaction: str, exc: SoapClientError) -> None:
        """Sort a call that got no usable answer: transient or not (see the module docstring)."""
        if isinstance(exc, SoapTransportError) and not isinstance(exc, SoapConnectError):
            status = re.match(r"HTTP (\d{3}) ", str(exc))
            transient = status is None or int(status[1]) in BALANCER_STATUS
        else:
            transient = isinstance(exc, SoapConnectError) and exc.kind == "refused"
        self._note(transaction, f"{type(exc).__name__}: {exc}", transient)

    def _refused(self, transaction: str, codes: list[str]) -> None:
        self._note(transaction, f"Failure {codes}", bool(codes) and set(codes) <= BUSY)

    def _client(self, n: int) -> None:
        patient = self.patients[n]
        rng = random.Random(n)
        mine: list[tuple[str, str]] = []
        repository = SoapClient(self.base + REPOSITORY_PATH, timeout=120)
        registry = SoapClient(self.base + REGISTRY_PATH, timeout=120)
        for seq in itertools.count(1):
            if self.stop.is_set():
                break
            uid = f"{UID_ROOT}.{self.run}.{n + 1}.{seq}"
            if (sha := self._provide(repository, patient, uid, rng)) is not None:
                mine.append((uid, sha))
            if mine:
                self._retrieve(repository, *rng.choice(mine))
            self._find(registry, patient, len(mine))
        repository.close()
        registry.close()

    def _provide(
        self, client: SoapClient, patient: str, uid: str, rng: random.Random
    ) -> str | None:
        data = rng.randbytes(rng.randint(1_000, 64_000))
        body, attachments = provide_body(submission(patient, uid, self.run), [data])
        with self.lock:
            self.attempted.add(uid)
        try:
            answer = client.call(ITI_41, body, attachments)
        except SoapClientError as exc:
            self._failed("ITI-41", exc)
            return None
        if status_of(answer.body) != "Success":
            self._refused("ITI-41", error_codes(answer.body))
            return None
        sha = hashlib.sha256(data).hexdigest()
        with self.lock:
            self.succeeded[uid] = sha
        self._count("ITI-41")
        return sha

    def _retrieve(self, client: SoapClient, uid: str, sha: str) -> None:
        request = DocumentRequest(repository_unique_id=REPOSITORY_UID, document_unique_id=uid)
        try:
            answer = client.call(ITI_43, build_retrieve_request([request]))
        except SoapClientError as exc:
            self._failed("ITI-43", exc)
            return
        result = parse_retrieve(answer.body, answer.attachments)
        if result.status.short != "Success":
            self._refused("ITI-43", [e.code for e in result.errors])
            return
        [document] = result.documents
        got = hashlib.sha256(document.attachment.read_bytes()).hexdigest()
        document.attachment.discard()
        if document.document_unique_id != uid or got != sha:
            self._note("ITI-43", f"{uid}: other bytes came back", transient=False)
        self._count("ITI-43")

    def _find(self, client: SoapClient, patient: str, known: int) -> None:
        query_id, slots = build_slots(QueryOptions(patient_id=patient))
        body = build_query_request(
            AdhocQuery(query_id=query_id, return_type=OBJECT_REF, slots=slots)
        )
        try:
            answer = client.call(ITI_18, body)
        except SoapClientError as exc:
            self._failed("ITI-18", exc)
            return
        result = parse_query(answer.body)
        if result.status != "Success":
            self._refused("ITI-18", [e.code for e in result.errors])
            return
        if len(result.objects) < known:
            self._note("ITI-18", f"{len(result.objects)} listed, {known} provided", False)
        self._count("ITI-18")


def submission(patient: str, uid: str, run: str) -> Submission:
    """One DocumentEntry (text/plain) for ``patient``; hash and size left to the repository."""
    submission_set = make_submission_set(unique_id=f"{uid}.0", patient_id=patient)
    entry = make_document_entry(
        entry_uuid="Document01",
        unique_id=uid,
        patient_id=patient,
        mime_type="text/plain",
        hash=None,
        size=None,
        repository_unique_id=None,
    )
    return Submission(
        submission_set=submission_set,
        document_entries=[entry],
        associations=[make_has_member(submission_set.entry_uuid, entry.entry_uuid)],
    )


# -- checks afterwards ---------------------------------------------------------------------------


def registered(base: str, patients: Sequence[str]) -> dict[str, DocumentEntry]:
    """Every Approved DocumentEntry the registry lists for ``patients`` (ITI-18 FindDocuments)."""
    client = SoapClient(base + REGISTRY_PATH, timeout=120)
    found: dict[str, DocumentEntry] = {}
    for patient in patients:
        query_id, slots = build_slots(QueryOptions(patient_id=patient))
        query = AdhocQuery(query_id=query_id, return_type=LEAF_CLASS, slots=slots)
        result = parse_query(client.call(ITI_18, build_query_request(query)).body)
        assert result.status == "Success", result.errors
        for entry in result.objects:
            if isinstance(entry, DocumentEntry) and entry.unique_id:
                found[entry.unique_id] = entry
    client.close()
    return found


def retrieved_hashes(base: str, uids: Sequence[str], spool: Path) -> dict[str, bytes]:
    """ITI-43 of ``uids`` (40 to a request) through one process: uniqueId -> the bytes."""
    client = SoapClient(base + REPOSITORY_PATH, timeout=120, spool_dir=spool)
    got: dict[str, bytes] = {}
    for start in range(0, len(uids), 40):
        requests_ = [
            DocumentRequest(repository_unique_id=REPOSITORY_UID, document_unique_id=uid)
            for uid in uids[start : start + 40]
        ]
        answer = client.call(ITI_43, build_retrieve_request(requests_))
        result = parse_retrieve(answer.body, answer.attachments)
        assert result.errors == [], result.errors
        for document in result.documents:
            got[document.document_unique_id] = document.attachment.read_bytes()
            document.attachment.discard()
    client.close()
    return got


def unsettled_rows(url: str) -> list[tuple[str, str]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT unique_id, state FROM repository_document WHERE state <> 'confirmed'")
            )
            return [(r[0], r[1]) for r in rows]
    finally:
        engine.dispose()


# -- the test -------------------------------------------------------------------------------------


@pytest.fixture
def short_folder() -> Iterator[Path]:
    """A folder with a short path (HAProxy's admin socket is a UNIX socket: 107 bytes at most)."""
    folder = Path(tempfile.mkdtemp(prefix="xdsi-lb-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def site(tmp_path: Path, postgres_database_url: str) -> Iterator[list[ServeProcess]]:
    if not os.access(HAPROXY, os.X_OK):
        pytest.skip(f"{HAPROXY} is not installed (Debian package haproxy)")
    shared = {
        "XDSI_GATEWAY_DATABASE_URL": postgres_database_url,
        "XDSI_REPOSITORY_STORAGE_DIR": str(tmp_path / "shared" / "repository"),
        "XDSI_GATEWAY_LEASE_SECONDS": "10",
        "XDSI_HTTP_THREADS": "16",
    }
    nodes: list[ServeProcess] = []
    try:
        for n in (1, 2, 3):  # one after the other: the first one migrates the database
            env = {**shared, "XDSI_HTTP_PORT": str(free_port())}
            nodes.append(ServeProcess(tmp_path / f"node{n}", env))
        yield nodes
    finally:
        for node in nodes:
            node.stop()


def free_port() -> int:
    """A loopback port free right now. The nodes get fixed ports, as in a deployment, so that
    their sockets are bound with SO_REUSEADDR (the gateway leaves it off for port 0) and a node
    killed with connections open can listen on its port again at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_again(node: ServeProcess) -> ServeProcess:
    """``node`` started again on the same HTTP port and data folder."""
    env = {k: v for k, v in node.env.items() if k.startswith("XDSI_")}
    return ServeProcess(node.data_dir, env)


def test_three_processes_behind_haproxy_lose_nothing_when_one_is_killed(
    site: list[ServeProcess], tmp_path: Path, short_folder: Path, postgres_database_url: str
) -> None:
    run = str(secrets.randbelow(10**9))
    patients = [f"LB{run}-{n}^^^&{DOMAIN}&ISO" for n in range(1, CLIENTS + 1)]
    for patient in patients:
        feed_patient(site[0], patient)
    backends = [("127.0.0.1", int(node.base.rsplit(":", 1)[1])) for node in site]
    balancer = Balancer(short_folder, backends)
    try:
        for name in ("node1", "node2", "node3"):
            balancer.wait_status(name, "UP")
        load = Load(balancer.base, patients, run)
        started = time.monotonic()
        threads = load.start()
        try:
            time.sleep(KILL_AFTER)  # the load runs meanwhile
            killed_at = time.monotonic()
            site[1].kill()  # SIGKILL: nothing of the gateway's clean-up runs
            down_at = balancer.wait_status("node2", "DOWN", timeout=10)
            site[1] = start_again(site[1])
            back_at = balancer.wait_status("node2", "UP")
            served_before = int(balancer.servers()["node2"]["stot"])
            end = max(started + RUN_SECONDS, back_at + AFTER_BACK)
            while time.monotonic() < end:
                time.sleep(0.2)  # the load runs until the end of the window
            served_after = int(balancer.servers()["node2"]["stot"])
        finally:
            load.stop.set()
            for thread in threads:
                thread.join(timeout=180)
        ran = time.monotonic() - started
        states = {name: row["status"] for name, row in balancer.servers().items()}
    finally:
        balancer.stop()

    assert ran >= 30 and down_at >= killed_at
    assert all(status.startswith("UP") for status in states.values()), states
    assert served_after > served_before, "the restarted node got no request"
    assert load.bad == [], load.bad[:20]
    late = [o for o in load.transient if not killed_at <= o.at <= back_at + GRACE]
    assert late == [], late[:20]
    assert load.counts.get("ITI-41", 0) >= 100, load.counts
    assert load.counts.get("ITI-43", 0) >= 100 and load.counts.get("ITI-18", 0) >= 100

    # Nothing pending: the killed process's reservations are settled by a live one.
    deadline = time.monotonic() + 60
    while (left := unsettled_rows(postgres_database_url)) and time.monotonic() < deadline:
        time.sleep(0.5)  # polling the index with a deadline
    assert left == []

    entries = registered(site[2].base, patients)
    assert set(load.succeeded) <= set(entries), set(load.succeeded) - set(entries)
    assert set(entries) <= load.attempted
    documents = tmp_path / "shared" / "repository" / "documents"
    files = {p.name for p in documents.rglob("*") if p.is_file()}
    assert files == {storage_key(uid) for uid in entries}, "storage and registry differ"
    uids = sorted(entries)
    for node in site:
        got = retrieved_hashes(node.base, uids, tmp_path / "spool")
        assert set(got) == set(entries)
        for uid, data in got.items():
            assert hashlib.sha1(data).hexdigest() == entries[uid].hash, uid
            if uid in load.succeeded:
                assert hashlib.sha256(data).hexdigest() == load.succeeded[uid], uid
    staging = tmp_path / "shared" / "repository" / "staging"
    leftovers = [p for p in staging.rglob("*") if p.is_file() and ".owners" not in p.parts]
    assert leftovers == []
