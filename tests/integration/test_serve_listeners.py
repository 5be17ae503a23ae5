"""``serve`` and its listeners as users meet them: a port in use (each listener, with and without
``--workers``), the refusal of several workers on SQLite, and ephemeral ports read back from the
log instead of guessed beforehand."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from pynetdicom import AE
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from gateway.hl7.mllp import send_messages

ROOT = Path(__file__).resolve().parents[2]
NOWHERE_DATABASE = "postgresql://nobody@127.0.0.1:1/never"  # parsed, never reached
PATIENT = "PID|||L1^^^&1.3.6.1.4.1.21367.13.20.1000&ISO||Doe^Jane"
LISTENING = re.compile(
    r"(HTTP) listening on \w+://([^:\s]+):(\d+)|(MLLP) listening on ([^:\s]+):(\d+)"
    r"|(DICOM) listener \S+ on ([^:\s]+):(\d+)"
)


def _env(data: Path, **overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("XDSI_")}
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "XDSI_GATEWAY_DATA_DIR": str(data),
            "XDSI_HTTP_PORT": "0",
            "XDSI_HL7_MLLP_PORT": "0",
            "XDSI_IMAGING_SOURCE_DICOM_PORT": "0",
        }
    )
    env.update(overrides)
    return env


def _serve(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", "serve", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@contextmanager
def _port_taken() -> Iterator[int]:
    """A port another program listens on."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        yield other.getsockname()[1]


PORT_IN_USE = {
    "HTTP": ("XDSI_HTTP_PORT", "SOAP endpoints", "http.port"),
    "MLLP": ("XDSI_HL7_MLLP_PORT", "ITI-8 patient identity feed", "hl7.mllp_port"),
    "DICOM": ("XDSI_IMAGING_SOURCE_DICOM_PORT", "C-STORE", "imaging_source.dicom_port"),
}


@pytest.mark.parametrize("workers", [None, "2"], ids=["one-process", "workers"])
@pytest.mark.parametrize("listener", sorted(PORT_IN_USE))
def test_a_port_in_use_stops_start_up_with_one_line(
    tmp_path: Path, listener: str, workers: str | None
) -> None:
    variable, purpose, key = PORT_IN_USE[listener]
    data = tmp_path / "data"
    extra = ["--workers", workers] if workers else []
    with _port_taken() as port:
        env = _env(data, **{variable: str(port), "XDSI_REGISTRY_DATABASE_URL": NOWHERE_DATABASE})
        done = _serve(env, *extra)
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        f"xdsi-gateway: error: cannot listen on 127.0.0.1:{port} for {listener} ({purpose}): "
        f"address already in use (another gateway or program is using it; set {key})"
    ]
    assert not data.exists()  # nothing started, nothing written


def test_several_workers_on_sqlite_are_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    done = _serve(_env(data), "--workers", "2")
    assert done.returncode == 2
    url = f"sqlite:///{data.resolve() / 'registry.sqlite'}"
    assert done.stderr.splitlines() == [
        f"xdsi-gateway: configuration error: --workers 2: the gateway database is SQLite ({url}), "
        "which only one process may use; set gateway.database_url to a PostgreSQL database "
        "(postgresql://...) or run one worker"
    ]
    done = _serve(_env(data, XDSI_HTTP_WORKERS="3"))
    assert done.returncode == 2
    assert done.stderr.startswith("xdsi-gateway: configuration error: http.workers = 3: the ")
    assert not data.exists()
    done = _serve(_env(data), "--workers", "0")
    assert done.returncode == 2 and "expected a whole number of 1 or more" in done.stderr


def test_ephemeral_ports_are_logged_and_each_listener_answers(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "serve"],
        cwd=ROOT,
        env=_env(tmp_path / "data"),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        found: dict[str, tuple[str, int]] = {}
        for line in proc.stderr:
            match = LISTENING.search(line)
            if match:
                name, host, port = (g for g in match.groups() if g is not None)
                found[name] = (host, int(port))
            if len(found) == 3:
                break
        assert set(found) == {"HTTP", "MLLP", "DICOM"}
        assert all(port > 0 for _host, port in found.values())
        # The sockets listen before the actors are ready: connections wait in the queue.
        host, port = found["HTTP"]
        assert requests.get(f"http://{host}:{port}/health", timeout=60).status_code in (200, 503)
        message = (
            "MSH|^~\\&|T|T|X|X|20240101000000||ADT^A01^ADT_A01|m1|P|2.5\r"
            f"EVN|A01|20240101000000\r{PATIENT}\rPV1||O"
        ).encode()
        assert b"MSA|AA" in send_messages(*found["MLLP"], [message], timeout=60)[0]
        ae = AE(ae_title="ECHO")
        ae.add_requested_context(Verification)
        assoc = ae.associate(*found["DICOM"], ae_title="XDSI_SOURCE")
        assert assoc.is_established
        assert assoc.send_c_echo().Status == 0x0000
        assoc.release()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


def test_make_listener_names_the_setting_to_change(tmp_path: Path) -> None:
    from gateway.serving.listeners import ListenError, make_listener

    with make_listener("127.0.0.1", 0, "HTTP") as sock:
        host, port = sock.getsockname()
        assert host == "127.0.0.1" and port > 0
        # Accepted connections inherit it (no Nagle delay on keep-alive answers).
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        with pytest.raises(ListenError) as caught:
            make_listener("127.0.0.1", port, "DICOM")
    assert str(caught.value) == (
        f"cannot listen on 127.0.0.1:{port} for DICOM (C-STORE): address already in use "
        "(another gateway or program is using it; set imaging_source.dicom_port)"
    )
    with pytest.raises(ListenError) as caught:
        make_listener("192.0.2.1", 0, "HTTP")  # TEST-NET-1: no interface has it
    assert str(caught.value) == (
        "cannot listen on 192.0.2.1:0 for HTTP (SOAP endpoints): no interface of this machine "
        "has that address (set http.host)"
    )
    with pytest.raises(ListenError) as caught:
        make_listener("a..b", 2575, "MLLP")  # refused before any lookup: no DNS in tests
    assert str(caught.value) == (
        "cannot listen on a..b:2575 for MLLP (ITI-8 patient identity feed): "
        "not a valid host name (set hl7.host)"
    )
