"""Operator accounts (gateway.ui.accounts): scrypt hashes, atomic owner-only file."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from gateway.ui.accounts import AccountError, add_user, check_password, read_accounts, verify


def test_add_verify_and_replace(tmp_path: Path) -> None:
    path = tmp_path / "ui" / "accounts"
    assert add_user(path, "alice", "s3cret") is True
    assert add_user(path, "bob", "other") is True
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert verify(path, "alice", "s3cret") and not verify(path, "alice", "S3cret")
    assert not verify(path, "carol", "s3cret") and not verify(path, "bob", "s3cret")
    stored = read_accounts(path)["alice"]
    assert stored.startswith("scrypt$16384$8$1$") and "s3cret" not in path.read_text()
    assert add_user(path, "alice", "new") is False  # replaced, not added
    assert verify(path, "alice", "new") and not verify(path, "alice", "s3cret")
    assert verify(path, "bob", "other")
    assert not list(path.parent.glob(".accounts-*"))  # no temporary file left


def test_two_hashes_of_one_password_differ_and_garbage_never_matches() -> None:
    from gateway.ui.accounts import hash_password

    a, b = hash_password("pw"), hash_password("pw")
    assert a != b and check_password(a, "pw") and check_password(b, "pw")
    for stored in ("", "plain", "md5$x$y", "scrypt$a$b$c$d$e", a.rsplit("$", 1)[0] + "$AAAA"):
        assert not check_password(stored, "pw")


@pytest.mark.parametrize("name", ["", "a b", "x:y", "é", "n" * 65])
def test_refused_names(tmp_path: Path, name: str) -> None:
    with pytest.raises(AccountError):
        add_user(tmp_path / "accounts", name, "pw")
    with pytest.raises(AccountError):
        add_user(tmp_path / "accounts", "ok", "")
