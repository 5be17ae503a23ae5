"""Sessions of the exchange browser: signed cookies, CSRF tokens, the login rate limit.

A session is a cookie holding the account name and an expiry, signed with HMAC-SHA256 under a
key kept in ``<data_dir>/ui/session.key`` (made once, atomically, readable by its owner only),
so that every worker process of ``serve --workers`` accepts the sessions of the others without
sharing memory. The cookie is ``HttpOnly``, ``SameSite=Strict`` and, under TLS, ``Secure``.

Every POST form carries a CSRF token derived from the session (or, on the login page, from a
pre-login cookie) with the same key: a page of another origin can neither read it nor, with
``SameSite=Strict``, send the cookie along (OWASP CSRF Prevention Cheat Sheet: synchronizer
token). Failed logins are counted in the gateway database (``ui_login_attempt``), per account
name and per address: more than :data:`MAX_FAILURES` in :data:`WINDOW_SECONDS` and the next
login is refused without checking the password.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

COOKIE = "xdsi_ui_session"
PRE_COOKIE = "xdsi_ui_login"
SESSION_SECONDS = 8 * 3600
MAX_FAILURES = 5
WINDOW_SECONDS = 300.0


def load_key(folder: Path) -> bytes:
    """The signing key in ``folder/session.key``, made on first use (O_EXCL: one maker wins)."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / "session.key"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # another process is writing it: wait for the 32 bytes
            data = path.read_bytes()
            if len(data) >= 32:
                return data[:32]
            time.sleep(0.02)
        raise RuntimeError(f"{path} is shorter than 32 bytes") from None
    key = secrets.token_bytes(32)
    with os.fdopen(fd, "wb") as out:
        out.write(key)
        out.flush()
        os.fsync(out.fileno())
    return key


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in operator."""

    operator: str
    expires: float
    token: str


class Signer:
    """Makes and checks session cookies and CSRF tokens with one key."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def _mac(self, text: str) -> str:
        return _b64(hmac.new(self._key, text.encode("utf-8"), hashlib.sha256).digest())

    def issue(self, operator: str, *, seconds: int = SESSION_SECONDS) -> str:
        """A new session token for ``operator``."""
        body = _b64(
            json.dumps(
                {"u": operator, "exp": int(time.time()) + seconds, "n": secrets.token_hex(8)}
            ).encode()
        )
        return f"{body}.{self._mac(body)}"

    def check(self, token: str | None) -> Session | None:
        """The session of a cookie value, or None when unsigned, altered or expired."""
        if not token or token.count(".") != 1:
            return None
        body, mac = token.split(".")
        if not hmac.compare_digest(mac, self._mac(body)):
            return None
        try:
            data = json.loads(_unb64(body))
            operator, expires = str(data["u"]), float(data["exp"])
        except (ValueError, KeyError, TypeError):
            return None
        if expires < time.time():
            return None
        return Session(operator=operator, expires=expires, token=token)

    def csrf(self, bound_to: str) -> str:
        """The CSRF token of a session token or pre-login cookie value."""
        return self._mac("csrf:" + bound_to)

    def csrf_ok(self, bound_to: str | None, sent: str | None) -> bool:
        """Whether a form's token belongs to this session (constant-time)."""
        if not bound_to or not sent:
            return False
        return hmac.compare_digest(self.csrf(bound_to), sent)


def cookie(name: str, value: str, *, secure: bool, max_age: int | None = None) -> str:
    """A ``Set-Cookie`` value: HttpOnly, SameSite=Strict, Path=/ui, Secure under TLS."""
    parts = [f"{name}={value}", "Path=/ui", "HttpOnly", "SameSite=Strict"]
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    if secure:
        parts.append("Secure")
    return "; ".join(parts)
