"""The /ui WSGI application alone, over fake backends (gateway.ui.web): who may look, masking,
security headers, refusal pages."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

from gateway.metadata.model import DocumentEntry
from gateway.mount import Exchange
from gateway.ui.ports import Backends, Downloaded, InboxRow
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


def test_inbox_masks_ids_and_accept_needs_the_csrf_token(tmp_path: Path) -> None:
    pid = "77001^^^&1.2.3&ISO"
    rows = [
        InboxRow(
            id=4,
            received_at=0.0,
            state="failed",
            sender="1.2.3.4",
            patient_id=pid,
            documents=1,
            studies=("1.2.840.5",),
            error=f"patient {pid} unknown",
        )
    ]
    accepted: list[int] = []

    def accept(entry_id: int) -> int | None:
        accepted.append(entry_id)
        return 99 if entry_id == 4 else None

    ui = UiApplication(
        Backends(inbox=lambda: rows, inbox_accept=accept),
        journal=None,
        accounts_file=None,
        open_access=True,
        key=b"k" * 32,
        mask_patient_ids=True,
    )
    assert 'href="/ui/inbox"' in call(ui, "/")[2]  # in the navigation
    status, headers, body = call(ui, "/inbox")
    assert status.startswith("200")
    assert "77001" not in body and "7***^^^&amp;1.2.3&amp;ISO" in body and "1.2.3.4" in body
    pre = headers["Set-Cookie"].split(";")[0]  # open UI: the form is bound to this cookie
    token = re.search(r'name="csrf" value="([^"]+)"', body)
    assert token is not None and 'action="/ui/inbox/4/accept"' in body

    def post(entry: str, cookie: str, csrf: str) -> str:
        form = f"csrf={csrf}".encode()
        return call(
            ui,
            f"/inbox/{entry}/accept",
            "POST",
            HTTP_COOKIE=cookie,
            CONTENT_LENGTH=str(len(form)),
            **{"wsgi.input": io.BytesIO(form)},
        )[0]

    assert post("4", "", token.group(1)).startswith("403")  # no cookie: a forged post
    assert post("4", pre, "wrong").startswith("403")
    assert accepted == []
    assert post("4", pre, token.group(1)).startswith("303")
    assert post("5", pre, token.group(1)).startswith("409")
    assert accepted == [4, 5]
    without = app(tmp_path)  # no Document Recipient in this process
    assert call(without, "/inbox")[0].startswith("404")
    assert 'href="/ui/inbox"' not in call(without, "/")[2]


def test_download_is_streamed_and_released(tmp_path: Path) -> None:
    """The document goes out chunk by chunk with its size as Content-Length, and what the
    retrieval held is released when the server closes the body (PEP 3333), also mid-way."""
    entry = DocumentEntry(entry_uuid="urn:uuid:7", mime_type="application/dicom")
    parts = [b"a" * 1000, b"b" * 1000, b"c" * 17]
    released: list[str] = []
    handed_out: list[bytes] = []

    def chunks() -> Any:
        for part in parts:
            handed_out.append(part)
            yield part

    def download(found: DocumentEntry) -> Downloaded:
        assert found is entry
        return Downloaded(
            chunks=chunks(),
            size=sum(map(len, parts)),
            mime_type="application/dicom",
            close=lambda: released.append("closed"),
        )

    ui = UiApplication(
        Backends(document=lambda uuid: entry, download=download),
        journal=None,
        accounts_file=None,
        open_access=True,
        key=b"k" * 32,
    )
    got: dict[str, Any] = {}

    def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        got["status"], got["headers"] = status, dict(headers)

    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/documents/urn:uuid:7/download",
        "SCRIPT_NAME": "/ui",
        "QUERY_STRING": "",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.input": io.BytesIO(b""),
    }
    body = ui(environ, start)
    assert not isinstance(body, list | bytes) and handed_out == []  # nothing read up front
    assert got["status"].startswith("200") and got["headers"]["Content-Length"] == "2017"
    assert got["headers"]["Content-Disposition"] == 'attachment; filename="document.dcm"'
    assert b"".join(body) == b"".join(parts)
    body.close()  # type: ignore[attr-defined]
    assert released == ["closed"]

    released.clear()
    handed_out.clear()
    body = ui(environ, start)
    assert next(iter(body)) == parts[0]  # the client goes away after the first chunk
    body.close()  # type: ignore[attr-defined]
    assert released == ["closed"] and handed_out == [parts[0]]
