"""Issue 21 "shown on the UI": the XDR inbox at /ui/inbox, on a real gateway with an accounts
file and the audit trail. The study published here is pushed by XDR-I (the outbox's ``xdr``
sender, RAD-68 semantics) to this gateway's own Document Recipient, so a real ITI-41 fills the
inbox; the page lists it, its Accept button (CSRF-checked) queues the import as ``inbox accept``
does, and viewing it is audited with the operator's name. Plain HTTP (requests)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import etree

from gateway.app import Gateway
from gateway.notify.outbox import Message
from gateway.ui.accounts import add_user
from tests.integration.ui.conftest import feed, publish_study, start_gateway, wait_for
from tests.integration.ui.test_ui_access import PASSWORD, _csrf, _login, _records


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Gateway]:
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


def test_inbox_lists_a_push_accept_imports_it_and_viewing_is_audited(
    gateway: Gateway, tmp_path: Path
) -> None:
    cx = feed(gateway, "UI-0500", family="Lovelace", given="Ada")
    study = publish_study(gateway, tmp_path / "study", "UI-0500", ct=2)
    base = gateway.base_url
    s, answer = _login(base, "alice", PASSWORD)
    assert answer.status_code == 303
    empty = s.get(base + "/ui/inbox", timeout=30)
    assert empty.status_code == 200 and "The inbox is empty." in empty.text
    assert 'href="/ui/inbox"' in s.get(base + "/ui/", timeout=30).text  # in the navigation

    assert gateway.notifier is not None and gateway.ui is not None
    gateway.notifier.outbox.add([Message("xdr", base + "/xdr/recipient", {"study": study})])
    gateway.notifier.dispatcher.wake()
    assert gateway.ui.backends.inbox is not None
    wait_for(lambda: gateway.ui.backends.inbox())  # type: ignore[union-attr,misc]
    page = s.get(base + "/ui/inbox", timeout=30)
    assert page.status_code == 200
    row = re.search(r'<tr id="inbox-(\d+)".*?</tr>', page.text, re.S)
    assert row is not None, page.text
    entry, cells = row.group(1), row.group(0)
    assert cx.replace("&", "&amp;") in cells and study in cells and "received" in cells
    assert gateway.settings.imaging_source.unique_id in cells  # the sender (sourceId)
    assert f'action="/ui/inbox/{entry}/accept"' in cells

    accept = f"{base}/ui/inbox/{entry}/accept"
    refused = s.post(accept, data={"csrf": "forged"}, allow_redirects=False, timeout=30)
    assert refused.status_code == 403
    assert "received" in s.get(base + "/ui/inbox", timeout=30).text  # nothing queued
    done = s.post(accept, data={"csrf": _csrf(page.text)}, allow_redirects=False, timeout=30)
    assert done.status_code == 303 and done.headers["Location"] == "/ui/inbox"

    def state() -> str:
        rows = gateway.ui.backends.inbox()  # type: ignore[union-attr,misc]
        return "" if rows[0].state in ("received", "accepting") else rows[0].state

    assert wait_for(state) == "accepted"
    after = s.get(base + "/ui/inbox", timeout=30).text
    assert f'href="/ui/studies/{study}"' in after and f"/ui/inbox/{entry}/accept" not in after
    again = s.post(accept, data={"csrf": _csrf(page.text)}, allow_redirects=False, timeout=30)
    assert again.status_code == 409  # accepted already

    def read_by_alice(records: list[etree._Element]) -> list[etree._Element]:
        return [
            r
            for r in records
            if r.find("EventIdentification/EventID").get("csd-code") == "110110"
            and any(p.get("UserName") == "alice" for p in r.findall("ActiveParticipant"))
            and cx
            in {o.get("ParticipantObjectID") for o in r.findall("ParticipantObjectIdentification")}
        ]

    assert read_by_alice(_records(gateway, read_by_alice))
