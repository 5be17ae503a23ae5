"""Acceptance 2 of issue 18: with an accounts file, nothing of /ui but the login page and the
static stylesheet/script is served without a signed-in operator; a wrong password is refused;
form posts without their CSRF token are refused; logins are rate limited; viewing a patient
writes audit records (DICOM PS3.15 Query and Patient Record) naming the operator. Plain HTTP
(requests) on a real gateway with a published study."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests
from lxml import etree

from gateway.app import Gateway
from gateway.audit.messages import load_schema
from gateway.ui.accounts import add_user
from tests.integration.ui.conftest import feed, publish_study, start_gateway

PASSWORD = "correct horse battery staple"
SCHEMA = load_schema()


@pytest.fixture
def gateway(tmp_path: Path) -> Any:
    accounts = tmp_path / "accounts"
    add_user(accounts, "alice", PASSWORD)
    gw = start_gateway(
        tmp_path,
        XDSI_UI_ACCOUNTS_FILE=str(accounts),
        XDSI_AUDIT_ENABLED="true",
        XDSI_AUDIT_DESTINATIONS=f"file:{tmp_path / 'audit.log'}",
    )
    try:
        yield gw
    finally:
        gw.stop()


def _routes(gw: Gateway, cx: str, study: str) -> list[str]:
    """Every route of /ui with real values: pages, images, document and its download, inbox."""
    assert gw.stored_queries is not None and gw.imaging is not None
    series = {}
    for record in gw.imaging.index.instances_of_study(study):
        series.setdefault(record.series_instance_uid, record.sop_instance_uid)
    entries = gw.ui.backends.documents_of(cx) if gw.ui and gw.ui.backends.documents_of else []
    assert entries
    uuid = quote(entries[0].entry_uuid, safe="")
    images = [
        f"/ui/studies/{study}/series/{s}/instances/{i}/{kind}"
        for s, i in series.items()
        for kind in ("thumbnail", "rendered")
    ]
    return [
        "/ui",
        "/ui/",
        "/ui/patients",
        "/ui/patients?q=UI",
        f"/ui/patients/{quote(cx, safe='')}",
        f"/ui/studies/{study}",
        *images,
        f"/ui/documents/{uuid}",
        f"/ui/documents/{uuid}/download",
        "/ui/inbox",
        "/ui/nowhere",
    ]


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None
    return found.group(1)


def _login(base: str, name: str, password: str, *, session: requests.Session | None = None) -> Any:
    s = session or requests.Session()
    page = s.get(base + "/ui/login", timeout=30)
    assert page.status_code == 200
    answer = s.post(
        base + "/ui/login",
        data={"csrf": _csrf(page.text), "username": name, "password": password, "next": "/"},
        allow_redirects=False,
        timeout=30,
    )
    return s, answer


def _records(gw: Gateway, wanted: Any) -> list[etree._Element]:
    path = Path(gw.settings.audit.destinations[len("file:") :])
    deadline = time.monotonic() + 20
    while True:
        records = []
        if path.exists():
            for line in path.read_bytes().splitlines():
                if line.strip():
                    message = etree.fromstring(line[line.index(b"<?xml") :])
                    assert SCHEMA.validate(message), SCHEMA.error_log
                    records.append(message)
        if wanted(records) or time.monotonic() > deadline:
            return records
        time.sleep(0.1)  # the trail writes in the background


def test_every_route_refuses_without_login_and_static_is_public(
    gateway: Gateway, tmp_path: Path
) -> None:
    cx = feed(gateway, "UI-0100", family="Hopper", given="Grace")
    study = publish_study(gateway, tmp_path / "study", "UI-0100", ct=3)
    base = gateway.base_url
    forged = "eyJ1IjoiYWxpY2UiLCJleHAiOjk5OTk5OTk5OTl9.bm90LWEtbWFj"  # {"u":"alice",...}.bad
    routes = _routes(gateway, cx, study)
    for cookies in ({}, {"xdsi_ui_session": forged}):
        for route in routes:
            answer = requests.get(base + route, cookies=cookies, allow_redirects=False, timeout=30)
            assert answer.status_code in (301, 303, 401), (route, answer.status_code)
            assert "UI-0100" not in answer.text and "Hopper" not in answer.text, route
            assert not answer.headers.get("Content-Type", "").startswith("image/"), route
            if answer.status_code == 303:
                assert answer.headers["Location"].startswith("/ui/login?next="), route
        for route in ("/ui/logout", "/ui/patients", "/ui/inbox/1/accept"):  # posts too
            answer = requests.post(base + route, cookies=cookies, allow_redirects=False, timeout=30)
            assert answer.status_code == 401, route
    for name, media in (
        ("ui.css", "text/css"),
        ("viewer.js", "text/javascript"),
        ("favicon.svg", "image/svg+xml"),
    ):  # public: no data in them
        answer = requests.get(f"{base}/ui/static/{name}", timeout=30)
        assert answer.status_code == 200 and answer.headers["Content-Type"].startswith(media)
    answer = requests.get(f"{base}/ui/static/%2e%2e%2fweb.py", allow_redirects=False, timeout=30)
    assert answer.status_code == 404

    # signed in, the same routes answer (the refusals above were the login's doing)
    s, answer = _login(base, "alice", PASSWORD)
    assert answer.status_code == 303
    cookie = answer.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" not in cookie
    for route in routes[:-1]:
        got = s.get(base + route, timeout=30)
        assert got.status_code == 200, (route, got.status_code)
    assert s.get(base + routes[-1], timeout=30).status_code == 404


def test_wrong_password_csrf_and_rate_limit(gateway: Gateway) -> None:
    base = gateway.base_url
    s, answer = _login(base, "alice", "wrong")
    assert answer.status_code == 401 and "xdsi_ui_session=" not in answer.headers.get(
        "Set-Cookie", ""
    )
    _, answer = _login(base, "mallory", PASSWORD)  # unknown name: the same refusal
    assert answer.status_code == 401

    # a login post without token, or with a token of another pre-login cookie: refused
    answer = s.post(
        base + "/ui/login",
        data={"username": "alice", "password": PASSWORD},
        allow_redirects=False,
        timeout=30,
    )
    assert answer.status_code == 403
    other = requests.Session()
    token = _csrf(other.get(base + "/ui/login", timeout=30).text)
    answer = s.post(
        base + "/ui/login",
        data={"csrf": token, "username": "alice", "password": PASSWORD},
        allow_redirects=False,
        timeout=30,
    )
    assert answer.status_code == 403

    # signed in: a logout without token is refused, with it accepted
    s, answer = _login(base, "alice", PASSWORD)
    assert answer.status_code == 303
    page = s.get(base + "/ui/", timeout=30)
    assert page.status_code == 200
    assert s.post(base + "/ui/logout", allow_redirects=False, timeout=30).status_code == 403
    assert s.get(base + "/ui/", allow_redirects=False, timeout=30).status_code == 200
    answer = s.post(
        base + "/ui/logout", data={"csrf": _csrf(page.text)}, allow_redirects=False, timeout=30
    )
    assert answer.status_code == 303 and "Max-Age=0" in answer.headers["Set-Cookie"]

    # rate limit: after 5 failures for this name, even the right password is refused
    for _ in range(4):  # 2 failures for alice/this address already
        assert _login(base, "alice", "wrong")[1].status_code in (401, 429)
    _, answer = _login(base, "alice", PASSWORD)
    assert answer.status_code == 429


def test_viewing_a_patient_is_audited_with_the_operator_name(
    gateway: Gateway, tmp_path: Path
) -> None:
    cx = feed(gateway, "UI-0200")
    study = publish_study(gateway, tmp_path / "study", "UI-0200", ct=2)
    s, answer = _login(gateway.base_url, "alice", PASSWORD)
    assert answer.status_code == 303
    assert s.get(gateway.base_url + "/ui/patients?q=UI-0200", timeout=30).status_code == 200
    page = s.get(f"{gateway.base_url}/ui/patients/{quote(cx, safe='')}", timeout=30)
    assert page.status_code == 200 and study in page.text

    def by_event(records: list[etree._Element], code: str) -> list[etree._Element]:
        return [
            r
            for r in records
            if r.find("EventIdentification/EventID").get("csd-code") == code
            and any(p.get("UserName") == "alice" for p in r.findall("ActiveParticipant"))
        ]

    records = _records(
        gateway, lambda rs: by_event(rs, "110110") and len(by_event(rs, "110112")) >= 2
    )
    [record] = by_event(records, "110110")  # Patient Record, read
    assert record.find("EventIdentification").get("EventActionCode") == "R"
    operator = next(p for p in record.findall("ActiveParticipant") if p.get("UserName"))
    assert operator.get("UserID") == "alice" and operator.get("UserIsRequestor") == "true"
    objects = {
        o.get("ParticipantObjectID") for o in record.findall("ParticipantObjectIdentification")
    }
    assert cx in objects and study in objects
    queries = by_event(records, "110112")  # the search and the patient's documents
    assert all(q.find("EventIdentification").get("EventActionCode") == "E" for q in queries)
    assert any(
        cx in {o.get("ParticipantObjectID") for o in q.findall("ParticipantObjectIdentification")}
        for q in queries
    )
