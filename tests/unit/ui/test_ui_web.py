"""The /ui WSGI application alone, over fake backends (gateway.ui.web): who may look, masking,
security headers, refusal pages."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from gateway.metadata.model import DocumentEntry
from gateway.mount import Exchange
from gateway.ui.ports import Backends
from gateway.ui.web import UiApplication, mask, study_uid_of


def call(app: UiApplication, path: str, method: str = "GET", **extra: Any) -> tuple[str, Any, str]:
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "SCRIPT_NAME": "/ui",
        "QUERY_STRING": "",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.input": io.BytesIO(b""),
        **extra,
    }
    got: dict[str, Any] = {}

    def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        got["status"], got["headers"] = status, dict(headers)

    body = b"".join(app(environ, start)).decode()
    return got["status"], got["headers"], body


def app(tmp_path: Path, **kw: Any) -> UiApplication:
    options: dict[str, Any] = {
        "journal": None,
        "accounts_file": None,
        "open_access": True,
        "key": b"k" * 32,
    }
    options.update(kw)
    return UiApplication(Backends(), **options)


def test_open_only_on_loopback_without_accounts(tmp_path: Path) -> None:
    status, headers, _ = call(app(tmp_path), "/")
    assert status.startswith("200")
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    status, _, body = call(app(tmp_path, open_access=False), "/")
    assert status.startswith("403") and "accounts_file" in body
    status, _, _ = call(app(tmp_path, open_access=False), "/patients/x")
    assert status.startswith("403")
    assert call(app(tmp_path), "/static/ui.css")[0].startswith("200")  # static stays public


def test_access_rules_can_refuse_the_ui(tmp_path: Path) -> None:
    exchange = Exchange(request_id="r1", authorize=lambda t: t != "UI")
    status, _, _ = call(app(tmp_path), "/", **{"xdsi.exchange": exchange})
    assert status.startswith("403") and exchange.outcome == "Failure"


def test_login_redirect_keeps_the_target_inside_ui(tmp_path: Path) -> None:
    accounts = tmp_path / "accounts"
    accounts.write_text("")
    ui = app(tmp_path, accounts_file=accounts, open_access=True)
    status, headers, _ = call(ui, "/patients", QUERY_STRING="q=x")
    assert status.startswith("303") and headers["Location"] == "/ui/login?next=%2Fpatients%3Fq%3Dx"
    status, _, body = call(ui, "/login", QUERY_STRING="next=//evil.example/")
    assert status.startswith("200") and "//evil" not in body


def test_mask_and_study_uid() -> None:
    assert mask("12345^^^&1.2.3&ISO") == "1***^^^&1.2.3&ISO"
    assert mask("12345") == "1***"
    entry = DocumentEntry(
        entry_uuid="urn:uuid:1",
        reference_id_list=[
            "A1^^^^urn:ihe:iti:xds:2013:accession",
            "1.2.3^^^^urn:ihe:iti:xds:2016:studyInstanceUID",
        ],
    )
    assert study_uid_of(entry) == "1.2.3"
    assert study_uid_of(DocumentEntry(entry_uuid="urn:uuid:2")) is None


def test_bad_uids_and_unknown_paths(tmp_path: Path) -> None:
    assert call(app(tmp_path), "/studies/1.2.x")[0].startswith("400")
    assert call(app(tmp_path), "/nothing/here")[0].startswith("404")
    assert call(app(tmp_path), "/static/..%2fweb.py")[0].startswith("404")
    assert call(app(tmp_path), "/", method="DELETE")[0].startswith("405")
