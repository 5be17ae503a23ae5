"""Operator accounts of the exchange browser: a text file of names and scrypt password hashes.

One account per line, ``name:scrypt$N$r$p$salt$hash`` (salt and hash in unpadded base64), made
by ``xdsi-gateway ui add-user NAME``. The hash is the standard library's :func:`hashlib.scrypt`
(RFC 7914), a memory-hard function: no extra dependency, and the parameters travel with each
hash so they can be raised later without invalidating existing accounts. The file is read at
each login (accounts added while the gateway runs count at once) and rewritten atomically
(temporary file, ``os.replace``), readable by its owner only.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import tempfile
from pathlib import Path

# RFC 7914 §2 parameters: N = 2**14, r = 8, p = 1 (16 MiB, some tens of ms per check).
N, R, P = 2**14, 8, 1
NAME = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")
_DUMMY = f"scrypt${N}${R}${P}$" + "A" * 22 + "$" + "A" * 43  # checked for unknown names


class AccountError(ValueError):
    """A name or password that cannot be stored, or an unreadable accounts file."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """The stored form of ``password``: ``scrypt$N$r$p$salt$hash`` (RFC 7914)."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=N, r=R, p=P, dklen=32)
    return f"scrypt${N}${R}${P}${_b64(salt)}${_b64(digest)}"


def check_password(stored: str, password: str) -> bool:
    """Whether ``password`` matches the stored hash (constant-time comparison)."""
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        expected = _unb64(digest)
        got = hashlib.scrypt(
            password.encode("utf-8"),
            salt=_unb64(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
            maxmem=128 * int(n) * int(r) * int(p) + 1024 * 1024,
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


def read_accounts(path: Path) -> dict[str, str]:
    """Name -> stored hash. Raises AccountError when the file cannot be read."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise AccountError(f"cannot read {path}: {exc}") from exc
    accounts = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or ":" not in line:
            continue
        name, stored = line.split(":", 1)
        accounts[name] = stored
    return accounts


def verify(path: Path, name: str, password: str) -> bool:
    """Whether ``name`` has an account in ``path`` with this password. An unknown name costs
    the same hash computation as a known one (no timing hint about which names exist)."""
    stored = read_accounts(path).get(name)
    ok = check_password(stored or _DUMMY, password)
    return ok and stored is not None


def add_user(path: Path, name: str, password: str) -> bool:
    """Add ``name`` or replace its password; True when it was new. Atomic rewrite, mode 0600.

    Raises: AccountError for a name outside ``[A-Za-z0-9._@-]{1,64}`` or an empty password.
    """
    if not NAME.match(name):
        raise AccountError(f"account name {name!r}: use 1-64 of A-Z a-z 0-9 . _ @ -")
    if not password:
        raise AccountError("the password is empty")
    accounts = read_accounts(path)
    new = name not in accounts
    accounts[name] = hash_password(password)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = "".join(f"{n}:{h}\n" for n, h in sorted(accounts.items()))
    fd, temporary = tempfile.mkstemp(prefix=".accounts-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write("# xdsi-gateway ui accounts: name:scrypt$N$r$p$salt$hash\n" + body)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return new
