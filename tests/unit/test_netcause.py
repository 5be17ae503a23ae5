"""gateway.netcause: the cause of a failed connection, found through the chains requests and
urllib3 build, and said in one line (the DNS and certificate cases that a loopback test cannot
produce are built here the way the libraries build them)."""

from __future__ import annotations

import socket
import ssl

import pytest
import requests
import urllib3.exceptions

from gateway import netcause

URL = "http://registry.example:8080/xds/registry"


def _wrapped(root: BaseException) -> BaseException:
    """``root`` inside urllib3's and requests' exceptions, as a failed POST raises it."""
    try:
        try:
            try:
                raise root
            except BaseException as exc:
                raise urllib3.exceptions.NewConnectionError(None, "failed") from exc  # type: ignore[arg-type]
        except urllib3.exceptions.HTTPError as exc:
            raise urllib3.exceptions.MaxRetryError(None, "/x", exc) from exc  # type: ignore[arg-type]
    except urllib3.exceptions.MaxRetryError as exc:
        return requests.exceptions.ConnectionError(exc)


def _verify_failure() -> ssl.SSLCertVerificationError:
    error = ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED]")
    error.verify_message = "unable to get local issuer certificate"
    return error


@pytest.mark.parametrize(
    ("root", "kind", "line"),
    [
        (
            ConnectionRefusedError(111, "Connection refused"),
            netcause.REFUSED,
            f"connection refused: is the gateway running at {URL}?",
        ),
        (
            socket.gaierror(-2, "Name or service not known"),
            netcause.NAME,
            f"host name not found (Name or service not known): check the address {URL}",
        ),
        (
            _verify_failure(),
            netcause.TLS,
            f"TLS failure with {URL}: certificate verify failed: unable to get local issuer "
            "certificate (check the CA bundle: tls.ca_file or --ca-file)",
        ),
        (
            OSError(101, "Network is unreachable"),
            netcause.UNREACHABLE,
            f"network is unreachable: no route from here to {URL}",
        ),
        (
            ConnectionResetError(104, "Connection reset by peer"),
            netcause.RESET,
            f"the connection to {URL} was closed by the peer",
        ),
    ],
)
def test_the_cause_is_found_below_the_libraries_wrappers(
    root: BaseException, kind: str, line: str
) -> None:
    error = _wrapped(root)
    assert netcause.diagnose(error).kind == kind
    assert netcause.explain(error, URL) == line


def test_timeouts_are_told_apart() -> None:
    connect = requests.exceptions.ConnectTimeout(urllib3.exceptions.ConnectTimeoutError("slow"))
    assert netcause.diagnose(connect).kind == netcause.CONNECT_TIMEOUT
    assert "no connection to" in netcause.explain(connect, URL)
    read = requests.exceptions.ReadTimeout("read timed out")
    assert netcause.diagnose(read).kind == netcause.TIMEOUT
    assert netcause.explain(read, URL) == f"no answer from {URL} within the timeout"
    assert netcause.diagnose(TimeoutError(), connecting=True).kind == netcause.CONNECT_TIMEOUT


def test_an_unknown_failure_keeps_its_own_words() -> None:
    error = ValueError("odd")
    assert netcause.diagnose(error) == netcause.NetworkProblem(netcause.OTHER, "ValueError: odd")
    assert netcause.explain(error, "127.0.0.1:2575") == "127.0.0.1:2575: ValueError: odd"


def test_what_a_retry_cannot_fix() -> None:
    assert {netcause.REFUSED, netcause.NAME, netcause.TLS} <= netcause.LASTING
    assert netcause.TIMEOUT not in netcause.LASTING and netcause.RESET not in netcause.LASTING
