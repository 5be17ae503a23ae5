"""Signed session cookies and CSRF tokens (gateway.ui.sessions)."""

from __future__ import annotations

import threading
from pathlib import Path

from gateway.ui.sessions import Signer, cookie, load_key


def test_key_is_made_once_and_shared(tmp_path: Path) -> None:
    keys: list[bytes] = []
    threads = [threading.Thread(target=lambda: keys.append(load_key(tmp_path))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(keys)) == 1 and len(keys[0]) == 32
    assert (tmp_path / "session.key").stat().st_mode & 0o077 == 0


def test_sessions_are_signed_and_expire() -> None:
    signer, other = Signer(b"k" * 32), Signer(b"o" * 32)
    token = signer.issue("alice")
    session = signer.check(token)
    assert session is not None and session.operator == "alice"
    assert other.check(token) is None  # another key
    body, mac = token.split(".")
    assert signer.check(body[:-2] + "AA." + mac) is None  # altered
    assert signer.check(signer.issue("alice", seconds=-1)) is None  # expired
    for junk in (None, "", "a.b.c", "nodot", "x.y"):
        assert signer.check(junk) is None


def test_csrf_tokens_belong_to_their_session() -> None:
    signer = Signer(b"k" * 32)
    a, b = signer.issue("alice"), signer.issue("alice")
    assert signer.csrf_ok(a, signer.csrf(a))
    assert not signer.csrf_ok(a, signer.csrf(b))
    assert not signer.csrf_ok(a, None) and not signer.csrf_ok(None, signer.csrf(a))


def test_cookie_attributes() -> None:
    plain = cookie("s", "v", secure=False, max_age=60)
    assert plain == "s=v; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=60"
    assert cookie("s", "v", secure=True).endswith("; Secure")
