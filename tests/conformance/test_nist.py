"""NIST XDS Toolkit tests against a real gateway process (``xdsi-gateway serve``).

One gateway per backend is started in a subprocess on free ports, with its data in a temporary
folder; the NIST runner (``tests.conformance.nist``) then plays each listed test against it.
Backends: ``sqlite`` (the embedded default), ``sqlite-tls`` (the same over HTTPS and MLLP/TLS
with ``certs init`` material and mutual authentication, ITI-19: the runner presents a domain
node's certificate) and ``postgres`` (a fresh database created on the server of
``XDSI_TEST_POSTGRES_URL`` and dropped afterwards; skipped when the variable is unset).

The lists by issue live in ``nist/catalog.py``; :data:`ENABLED` says which lists (or single test
ids) are expected to pass now — the others are skipped. The lead adds entries as features land.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.conformance.nist import catalog
from tests.conformance.nist.context import Context
from tests.conformance.nist.execution import Endpoints, RunConfig
from tests.conformance.nist.runner import Runner

# Lists of catalog.LISTS ("feed", "register", "stored_query", "repository") or single test ids
# expected to pass today. Empty: the gateway's registry is still being built.
ENABLED: set[str] = {
    "feed",
    "register",
    "stored_query",
    "repository",
    "remove_metadata",
    "remove_documents",
    "metadata_update",
}
# To try more locally: XDSI_TEST_NIST_ENABLED=register,11966 pytest tests/conformance
EXTRA_ENABLED = {n for n in os.environ.get("XDSI_TEST_NIST_ENABLED", "").split(",") if n}

BACKENDS = ("sqlite", "sqlite-tls", "postgres")
# The lists the TLS backend plays (acceptance: the earlier issues' lists still pass over TLS).
TLS_LISTS = {"feed", "register", "repository", "stored_query"}
POSTGRES_URL = os.environ.get("XDSI_TEST_POSTGRES_URL", "")
STARTUP_SECONDS = 60.0

pytestmark = pytest.mark.skipif(
    not catalog.SHARED_CONFORMANCE.is_dir(),
    reason=f"{catalog.SHARED_CONFORMANCE} (NIST testkit and schemas) is absent",
)


def enabled(test_id: str) -> bool:
    """True when ``test_id`` is in ENABLED directly or through one of its lists."""
    return any(test_id in catalog.LISTS.get(name, (name,)) for name in ENABLED | EXTRA_ENABLED)


def _cases() -> list[object]:
    cases = []
    for backend in BACKENDS:
        marks = [pytest.mark.postgres] if backend == "postgres" else []
        for list_name, test_ids in catalog.LISTS.items():
            if list_name in catalog.MULTI_SYSTEM_LISTS:
                continue  # run against several gateways: test_nist_xca.py, test_nist_xcai.py
            if backend == "sqlite-tls" and list_name not in TLS_LISTS:
                continue
            for test_id in test_ids:
                cases.append(
                    pytest.param(
                        test_id, backend, marks=marks, id=f"{list_name}-{test_id}-{backend}"
                    )
                )
    return cases


# What ``serve`` logs once its listeners are bound (gateway.serving.listeners): ports 0 are read
# back from there instead of guessed beforehand.
_HTTP_LINE = re.compile(rb"HTTP listening on \w+://127\.0\.0\.1:(\d+)")
_MLLP_LINE = re.compile(rb"MLLP listening on 127\.0\.0\.1:(\d+)")


def _gateway_command() -> list[str]:
    script = Path(sys.executable).with_name("xdsi-gateway")
    if script.exists():
        return [str(script), "serve"]
    found = shutil.which("xdsi-gateway")
    return [found, "serve"] if found else [sys.executable, "-m", "gateway", "serve"]


class Gateway:
    """A gateway subprocess and the runner that talks to it."""

    def __init__(self, data_dir: Path, database_url: str = "", *, tls: bool = False) -> None:
        self.data_dir = data_dir
        self.verify: bool | str = True
        self.cert: tuple[str, str] | None = None
        self.mllp_ssl: ssl.SSLContext | None = None
        self.http_port = self.mllp_port = 0  # known once the gateway says (wait_ready)
        env = dict(os.environ)
        env.update(
            {
                "XDSI_HTTP_HOST": "127.0.0.1",
                "XDSI_HTTP_PORT": "0",
                "XDSI_HL7_MLLP_PORT": "0",
                "XDSI_IMAGING_SOURCE_DICOM_PORT": "0",
                "XDSI_GATEWAY_DATA_DIR": str(data_dir),
            }
        )
        if database_url:
            env["XDSI_REGISTRY_DATABASE_URL"] = database_url
        self.scheme = "https" if tls else "http"
        if tls:
            env.update(self._tls_material(data_dir / "certs"))
        self.log_path = data_dir / "gateway.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            _gateway_command(), env=env, stdout=self._log, stderr=subprocess.STDOUT, cwd=data_dir
        )
        self.base = ""

    def _tls_material(self, folder: Path) -> dict[str, str]:
        """``certs init`` files: the gateway is ``region``, the runner ``hospital-a``."""
        from gateway.security.certs import init_domain
        from gateway.security.tls import TlsFiles

        domain = init_domain(folder)
        region, hospital = domain.nodes["region"], domain.nodes["hospital-a"]
        self.verify = str(domain.ca_certificate)
        self.cert = (str(hospital.certificate), str(hospital.private_key))
        self.mllp_ssl = TlsFiles(
            certificate=self.cert[0], private_key=self.cert[1], ca_file=self.verify
        ).client()
        return {
            "XDSI_TLS_ENABLED": "true",
            "XDSI_TLS_CERTIFICATE": str(region.certificate),
            "XDSI_TLS_PRIVATE_KEY": str(region.private_key),
            "XDSI_TLS_CA_FILE": str(domain.ca_certificate),
        }

    def wait_ready(self) -> None:
        """Poll ``GET /health`` until 200, the process dies, or the start-up time runs out."""
        deadline = time.monotonic() + STARTUP_SECONDS
        delay = 0.05
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gateway exited with {self.process.returncode}:\n{self.tail()}")
            if not self.base:
                self._read_ports()
                time.sleep(delay)  # polling the log with a deadline
                continue
            try:
                answer = requests.get(
                    f"{self.base}/health", timeout=2, verify=self.verify, cert=self.cert
                )
                if answer.status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(delay)  # polling with a deadline, not synchronising on a sleep
            delay = min(delay * 2, 0.5)
        raise RuntimeError(f"gateway not healthy after {STARTUP_SECONDS}s:\n{self.tail()}")

    def _read_ports(self) -> None:
        log = self.log_path.read_bytes()
        http, mllp = _HTTP_LINE.search(log), _MLLP_LINE.search(log)
        if http and mllp:
            self.http_port, self.mllp_port = int(http[1]), int(mllp[1])
            self.base = f"{self.scheme}://127.0.0.1:{self.http_port}"

    def runner(self) -> Runner:
        """A runner (with its own context: fresh patients and ids) for this gateway."""
        config = RunConfig(
            endpoints=Endpoints(
                registry=f"{self.base}/xds/registry",
                repository=f"{self.base}/xds/repository",
                mllp=("127.0.0.1", self.mllp_port),
                imaging_source=f"{self.base}/xdsi/source",
            ),
            testkit=catalog.TESTKIT,
            spec=catalog.SPEC,
            timeout=60,
            verify=self.verify,
            cert=self.cert,
            mllp_ssl=self.mllp_ssl,
        )
        return Runner(config, Context(tests_root=config.tests_root), out=io.StringIO())

    def tail(self, lines: int = 40) -> str:
        """The end of the gateway's log."""
        if not self._log.closed:
            self._log.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM (the gateway finishes requests in flight), then kill if it hangs."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._log.close()


class PostgresDatabase:
    """A fresh database on the XDSI_TEST_POSTGRES_URL server, dropped on close."""

    def __init__(self, server_url: str) -> None:
        from sqlalchemy import create_engine, text
        from sqlalchemy.engine import make_url

        self._text = text
        self.name = f"xdsi_nist_{uuid.uuid4().hex[:12]}"
        server = make_url(server_url)
        if server.drivername == "postgresql":  # SQLAlchemy 2.1 would pick psycopg 3: not installed
            server = server.set(drivername="postgresql+psycopg2")
        self._admin = create_engine(server, isolation_level="AUTOCOMMIT")
        with self._admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{self.name}"'))
        self.url = server.set(database=self.name).render_as_string(hide_password=False)

    def drop(self) -> None:
        """Drop the database (closing any connection left over by the gateway)."""
        with self._admin.connect() as connection:
            connection.execute(self._text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        self._admin.dispose()


class Systems:
    """Gateways started on demand, one per backend, stopped at the end of the module."""

    def __init__(self, tmp: pytest.TempPathFactory) -> None:
        self._tmp = tmp
        self._runners: dict[str, Runner] = {}
        self._gateways: list[Gateway] = []
        self._databases: list[PostgresDatabase] = []

    def runner(self, backend: str) -> Runner:
        """The runner of ``backend``'s gateway (starting it the first time)."""
        if backend not in self._runners:
            url = ""
            if backend == "postgres":
                database = PostgresDatabase(POSTGRES_URL)
                self._databases.append(database)
                url = database.url
            gateway = Gateway(
                self._tmp.mktemp(f"gateway-{backend}"), url, tls=backend == "sqlite-tls"
            )
            self._gateways.append(gateway)
            gateway.wait_ready()
            self._runners[backend] = gateway.runner()
        return self._runners[backend]

    def close(self) -> None:
        """Stop every gateway, then drop the databases (even if a stop failed)."""
        try:
            for gateway in self._gateways:
                gateway.stop()
        finally:
            for database in self._databases:
                database.drop()


@pytest.fixture(scope="module")
def systems(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Systems]:
    started = Systems(tmp_path_factory)
    try:
        yield started
    finally:
        started.close()


@pytest.mark.parametrize(("test_id", "backend"), _cases())
def test_nist(test_id: str, backend: str, systems: Systems) -> None:
    if not enabled(test_id):
        pytest.skip(
            f"NIST {test_id}: its list is not in ENABLED yet (tests/conformance/test_nist.py)"
        )
    if backend == "postgres" and not POSTGRES_URL:
        pytest.skip("XDSI_TEST_POSTGRES_URL is not set")
    run = systems.runner(backend).run(test_id)
    assert run.passed, run.report()
