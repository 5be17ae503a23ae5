"""``xdsi-gateway ui add-user NAME`` in its own process: password from standard input, the
accounts file named by ``ui.accounts_file`` (relative to the data folder), refusals."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from gateway.ui.accounts import read_accounts, verify
from tests.integration.cli.cli_support import ROOT, clean_env


def add_user(
    tmp_path: Path, *argv: str, stdin: str = "", **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", "ui", "add-user", *argv],
        cwd=tmp_path,
        env=clean_env(XDSI_GATEWAY_DATA_DIR=str(tmp_path / "data"), **env),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_add_user_from_stdin(tmp_path: Path) -> None:
    done = add_user(
        tmp_path, "alice", "--password-stdin", stdin="pa ss\n", XDSI_UI_ACCOUNTS_FILE="ui-accounts"
    )
    assert done.returncode == 0, done.stderr
    path = tmp_path / "data" / "ui-accounts"
    assert "added alice" in done.stdout and str(path) in done.stdout
    assert verify(path, "alice", "pa ss")
    again = add_user(
        tmp_path, "alice", "--password-stdin", stdin="new\n", XDSI_UI_ACCOUNTS_FILE="ui-accounts"
    )
    assert again.returncode == 0 and "changed the password of alice" in again.stdout
    assert list(read_accounts(path)) == ["alice"] and verify(path, "alice", "new")


def test_add_user_refusals(tmp_path: Path) -> None:
    unset = add_user(tmp_path, "alice", "--password-stdin", stdin="x\n")
    assert unset.returncode == 2 and "ui.accounts_file" in unset.stderr
    bad = add_user(
        tmp_path, "a b", "--password-stdin", stdin="x\n", XDSI_UI_ACCOUNTS_FILE="accounts"
    )
    assert bad.returncode == 1 and "account name" in bad.stderr
    empty = add_user(
        tmp_path, "bob", "--password-stdin", stdin="\n", XDSI_UI_ACCOUNTS_FILE="accounts"
    )
    assert empty.returncode == 1 and "empty" in empty.stderr
    helped = subprocess.run(
        [sys.executable, "-m", "gateway", "ui", "add-user", "--help"],
        cwd=ROOT,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert helped.returncode == 0 and "--password-stdin" in helped.stdout
