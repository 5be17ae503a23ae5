"""Issue 14, acceptance 6: a command line that says what to do, shown on the real command.

Each test runs ``python -m gateway ...`` in its own process (as a user runs ``xdsi-gateway``) and
checks the exit code and the words on stderr: read commands never create a database, retries are
suggested only where they can help, a gateway that is down is one plain line, an ``XDSI_*``
typo stops every command, ``publish`` takes a DICOM file and names a file that is not one.
"""

from __future__ import annotations

import http.server
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.imaging import synthetic
from tests.integration.cli.cli_support import ROOT, clean_env, closed_port, run
from tests.support.process import sigint_at_default

CX = "PAT-1^^^&1.3.6.1.4.1.21367.13.20.1000&ISO"


# -- read commands and the data they read ---------------------------------------------------------


@pytest.mark.parametrize("argv", [["publish", "1.2.3.4"], ["imaging", "pending"]])
def test_a_read_command_without_the_gateways_data_creates_nothing_and_exits_2(
    tmp_path: Path, argv: list[str]
) -> None:
    result = run(tmp_path, *argv)
    assert result.code == 2, result.err
    [line] = result.err_lines
    assert f"no gateway data folder {tmp_path / 'var'}" in line
    assert "configuration: built-in defaults, no --config" in line
    assert "--config" in line and "XDSI_GATEWAY_DATA_DIR" in line
    assert "never creates a new database" in line
    assert list(tmp_path.iterdir()) == []  # no var/ left behind


def test_db_upgrade_creates_and_says_where_then_read_commands_name_it(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = clean_env(XDSI_GATEWAY_DATA_DIR=str(data))
    created = run(tmp_path, "db", "upgrade", env=env)
    assert created.code == 0, created.err
    assert f"xdsi-gateway db upgrade: data folder {data}" in created.err
    assert "+ XDSI_GATEWAY_DATA_DIR)" in created.err
    listing = run(tmp_path, "imaging", "pending", env=env)
    assert listing.code == 0, listing.err
    [line] = listing.err_lines
    assert line == (
        f"xdsi-gateway imaging pending: data folder {data} "
        "(configuration: built-in defaults, no --config + XDSI_GATEWAY_DATA_DIR)"
    )
    assert listing.out.strip() == "no study is waiting: every received study is published"


# -- publish FILE --------------------------------------------------------------------------------


@pytest.fixture
def gateway_data(tmp_path: Path) -> dict[str, str]:
    """The environment of a gateway whose database exists (``db upgrade``)."""
    env = clean_env(XDSI_GATEWAY_DATA_DIR=str(tmp_path / "data"))
    assert run(tmp_path, "db", "upgrade", env=env).code == 0
    return env


def test_publish_names_a_file_that_is_not_dicom_in_plain_words(
    tmp_path: Path, gateway_data: dict[str, str]
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("a report, not an image\n")
    result = run(tmp_path, "publish", str(notes), env=gateway_data)
    assert result.code == 2
    assert result.err_lines[-1] == (
        f"xdsi-gateway publish: {notes}: not a DICOM file (a DICOM Part 10 file has the letters "
        "DICM after a 128-byte preamble; this one does not)"
    )
    missing = run(tmp_path, "publish", str(tmp_path / "nope.dcm"), env=gateway_data)
    assert missing.code == 2
    assert "nope.dcm: no such file or folder, and not a Study Instance UID" in missing.err


def test_publish_loads_a_single_dicom_file(tmp_path: Path, gateway_data: dict[str, str]) -> None:
    spec = synthetic.StudySpec(
        patient_id="NOT-FED", series=(synthetic.SeriesSpec(modality="CT", count=1),)
    )
    [path] = synthetic.write_study(synthetic.make_study(spec), tmp_path / "in")
    result = run(tmp_path, "publish", str(path), env=gateway_data)
    # loaded and tried: the registry was never fed this patient, so the study is held (exit 1)
    assert result.code == 1, result.err
    held = [line for line in result.err_lines if line.startswith("xdsi-gateway publish: held ")]
    assert len(held) == 1 and spec.study_uid in held[0]
    assert "the registry does not know patient NOT-FED^^^&" in held[0]
    assert "feed the patient to the registry" in held[0]
    assert "run the same command again" not in result.err
    assert "Traceback" not in result.err


# -- XDSI_* variables ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [["config"], ["serve"], ["query", "--patient", CX], ["publish", "1.2.3"], ["db", "upgrade"]],
)
def test_an_unknown_xdsi_variable_stops_every_command_with_exit_2(
    tmp_path: Path, argv: list[str]
) -> None:
    result = run(tmp_path, *argv, env=clean_env(XDSI_HTTP_PROT="18080"))
    assert result.code == 2
    assert result.err_lines == [
        "xdsi-gateway: configuration error: XDSI_HTTP_PROT: environment variable names no "
        "configuration key (did you mean XDSI_HTTP_PORT?); unset or rename it "
        "(XDSI_<SECTION>_<KEY>; every key is in config/gateway.toml)"
    ]
    assert list(tmp_path.iterdir()) == []


def test_test_variables_are_not_configuration(tmp_path: Path) -> None:
    env = clean_env(XDSI_TEST_POSTGRES_URL="postgresql://x@127.0.0.1/t", XDSI_TEST_OTHER="1")
    result = run(tmp_path, "config", env=env)
    assert result.code == 0, result.err


# -- peers that cannot be reached ----------------------------------------------------------------


def test_a_gateway_that_is_down_is_one_plain_line_for_every_client_command(
    tmp_path: Path,
) -> None:
    port = closed_port()
    base = f"http://127.0.0.1:{port}"
    message = tmp_path / "adt.hl7"
    message.write_bytes(b"MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5\rPID|||" + CX.encode())
    cases = {
        "query": (["query", "--patient", CX, "--registry", f"{base}/xds/r"], "/xds/r"),
        "fetch-study": (
            ["fetch-study", "--patient", CX, "--out", "studies", "--registry", f"{base}/r"],
            "/r",
        ),
        "retrieve": (
            [
                *("retrieve", "--repository", "1.2", "--document", "1.2.3", "--out", "doc.bin"),
                *("--url", f"{base}/xds/repository", "--no-progress"),
            ],
            "/xds/repository",
        ),
        "provide": (
            ["provide", str(message), "--patient", CX, "--url", f"{base}/p", "--no-progress"],
            "/p",
        ),
    }
    for command, (argv, path) in cases.items():
        result = run(tmp_path, *argv)
        assert result.code == 1, (command, result.err)
        assert result.err_lines == [
            f"xdsi-gateway {command}: {'ITI-18: ' if command in ('query', 'fetch-study') else ''}"
            f"connection refused: is the gateway running at {base}{path}?"
        ], command
        assert result.out == ""
    assert not (tmp_path / "studies").exists() and not (tmp_path / "doc.bin").exists()
    feed = run(tmp_path, "feed", str(message), "--port", str(port))
    assert feed.code == 1
    assert feed.err_lines == [
        f"MLLP 127.0.0.1:{port}: connection refused: is an ITI-8 listener running at "
        f"127.0.0.1:{port}?"
    ]


def test_without_a_url_the_command_names_the_configured_gateway(tmp_path: Path) -> None:
    port = closed_port()
    env = clean_env(XDSI_HTTP_PORT=str(port))
    result = run(tmp_path, "fetch-study", "--patient", CX, "--out", "out", env=env)
    assert result.code == 1
    url = f"http://127.0.0.1:{port}/xds/registry"
    assert result.err_lines == [
        f"xdsi-gateway fetch-study: registry {url} "
        "(configuration: built-in defaults, no --config + XDSI_HTTP_PORT)",
        f"xdsi-gateway fetch-study: ITI-18: connection refused: is the gateway running at {url}?",
    ]
    assert not (tmp_path / "out").exists() and not (tmp_path / "var").exists()


@pytest.fixture
def plain_http() -> Iterator[str]:
    """An HTTP (not HTTPS) server that answers 404 to everything: ``host:port``."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.send_error(404)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_tls_failure_wrong_path_and_timeout_are_named(tmp_path: Path, plain_http: str) -> None:
    tls = run(tmp_path, "query", "--patient", CX, "--registry", f"https://{plain_http}/r")
    assert tls.code == 1
    [line] = tls.err_lines
    assert line.startswith(f"xdsi-gateway query: ITI-18: TLS failure with https://{plain_http}/r")
    assert "HTTPSConnectionPool" not in line and "Traceback" not in tls.err
    # an error page is no SOAP answer, and the same request gets the same page: one line, no retry
    wrong = run(
        tmp_path,
        "fetch-study",
        "--patient",
        CX,
        "--out",
        "o",
        "--registry",
        f"http://{plain_http}/r",
    )
    assert wrong.code == 1
    assert wrong.err_lines == [
        f"xdsi-gateway fetch-study: ITI-18: HTTP 404 Not Found from http://{plain_http}/r"
    ]
    with socket.socket() as silent:  # accepts connections (backlog) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/xds/registry"
        late = run(tmp_path, "query", "--patient", CX, "--registry", url, "--timeout", "0.5")
    assert late.code == 1
    assert late.err_lines == [
        f"xdsi-gateway query: ITI-18: no answer from {url} within the timeout"
    ]


# -- what a retry cannot fix ---------------------------------------------------------------------


@pytest.mark.parametrize("command", ["query", "fetch-study"])
def test_a_patient_id_that_is_no_cx_is_a_usage_error(tmp_path: Path, command: str) -> None:
    port = closed_port()  # nobody is asked: the id is refused first
    argv = [command, "--patient", "PAT-1", "--registry", f"http://127.0.0.1:{port}/r"]
    if command == "fetch-study":
        argv += ["--out", "out"]
    result = run(tmp_path, *argv)
    assert result.code == 2
    assert result.err_lines == [
        f"xdsi-gateway {command}: --patient 'PAT-1': CX 'PAT-1' has no assigning authority "
        "(CX.4); write it as ID^^^&OID&ISO, e.g. 'PAT-1^^^&1.3.6.1.4.1.21367.13.20.1000&ISO'"
    ]
    assert not (tmp_path / "out").exists()


def test_interrupted_is_exit_130(tmp_path: Path) -> None:
    with socket.socket() as silent:  # the query waits for an answer that never comes
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/xds/registry"
        with sigint_at_default():
            proc = subprocess.Popen(
                [sys.executable, "-m", "gateway", "query", "--patient", CX, "--registry", url],
                cwd=ROOT,
                env=clean_env(),
                stderr=subprocess.PIPE,
                text=True,
            )
        connection, _ = silent.accept()  # the request is on its way; its answer never comes
        try:
            proc.send_signal(signal.SIGINT)  # Ctrl-C while the command waits
            _, err = proc.communicate(timeout=60)
        finally:
            connection.close()
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == "xdsi-gateway query: interrupted"
