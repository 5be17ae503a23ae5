"""Plain WSGI applications mounted on the SOAP dispatcher (gateway.mount): path split, access
hook, the report to the observers, and the boundary answering 500 for a crash."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from gateway.mount import Exchange, Mount, exchange_of, find_mount
from gateway.soap.dispatch import Limits, SoapApplication, TransactionCompleted


def environ(path: str, **extra: Any) -> dict[str, Any]:
    return {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "REMOTE_ADDR": "10.0.0.5",
        "wsgi.input": io.BytesIO(b""),
        **extra,
    }


def call(app: SoapApplication, env: dict[str, Any]) -> tuple[str, bytes]:
    status: list[str] = []
    body = app(env, lambda line, headers, exc_info=None: status.append(line))
    data = b"".join(body)
    getattr(body, "close", lambda: None)()
    return status[0], data


def test_a_mounted_app_sees_its_path_and_is_reported(tmp_path: Path) -> None:
    seen: list[tuple[str, str]] = []
    events: list[TransactionCompleted] = []

    def app(env: dict[str, Any], start: Any) -> list[bytes]:
        exchange = exchange_of(env)
        seen.append((env["SCRIPT_NAME"], env["PATH_INFO"]))
        exchange.transaction = "ITI-67"
        exchange.outcome = "Failure" if not exchange.authorize("ITI-67") else "Success"
        exchange.audit["patient_ids"] = ["P"]
        start("200 OK", [("Content-Type", "text/plain")])
        return [b"hello"]

    calls: list[tuple[str, str]] = []
    soap = SoapApplication(
        Limits(spool_dir=tmp_path),
        observers=[events.append],
        authorize=lambda env, name: calls.append((env["PATH_INFO"], name)) is None,
    )
    soap.mount("/fhir", app)
    assert call(soap, environ("/fhir/DocumentReference")) == ("200 OK", b"hello")
    assert call(soap, environ("/fhir"))[0] == "200 OK"
    assert seen == [("/fhir", "/DocumentReference"), ("/fhir", "")]
    assert calls[0] == ("/fhir/DocumentReference", "ITI-67")  # the hook sees the whole path
    [event, _second] = events
    assert (event.path, event.transaction, event.outcome, event.http_status) == (
        "/fhir/DocumentReference",
        "ITI-67",
        "Success",
        200,
    )
    assert (event.bytes_sent, event.remote_addr, event.audit) == (
        5,
        "10.0.0.5",
        {"patient_ids": ["P"]},
    )
    assert call(soap, environ("/fhirx"))[0].startswith("404")  # not below the prefix


def test_a_crashing_app_is_answered_500_and_still_reported(tmp_path: Path) -> None:
    events: list[TransactionCompleted] = []

    def app(env: dict[str, Any], start: Any) -> list[bytes]:
        raise RuntimeError("boom")

    soap = SoapApplication(Limits(spool_dir=tmp_path), observers=[events.append])
    soap.mount("/ui", app)
    status, body = call(soap, environ("/ui/x"))
    assert status.startswith("500") and b"boom" not in body
    assert events[0].http_status == 500 and events[0].outcome == "Failure"


def test_prefixes(tmp_path: Path) -> None:
    soap = SoapApplication(Limits(spool_dir=tmp_path))
    soap.endpoint("/xds/registry")
    soap.mount("/fhir/", lambda env, start: [])
    with pytest.raises(ValueError):
        soap.mount("/fhir", lambda env, start: [])
    with pytest.raises(ValueError):
        soap.mount("/xds", lambda env, start: [])  # would hide /xds/registry
    with pytest.raises(ValueError):
        soap.mount("relative", lambda env, start: [])
    mounts = [Mount("/a", lambda e, s: []), Mount("/a/b", lambda e, s: [])]
    assert find_mount(mounts, "/a/b/c") is mounts[1]
    assert find_mount(mounts, "/a/bc") is mounts[0]


def test_an_app_served_alone_gets_an_allow_all_exchange() -> None:
    env = environ("/x")
    exchange = exchange_of(env)
    assert isinstance(exchange, Exchange) and exchange.authorize("ITI-65")
    assert exchange_of(env) is exchange
