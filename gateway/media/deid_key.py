"""The key of de-identification: ``--deid-key``, else one stored in the data folder.

One key gives the same replacement UIDs, pseudonyms and date shifts every time, so two exports of
a patient with one key line up; anyone holding the key and the original identifiers can link
them again, so the stored key is an owner-only file (``<data_dir>/media/deid.key``, 0600) created
once, atomically (a second process creating it at the same time reads the first one's).
A key given on the command line is visible to other local users (``ps``); ``@FILE`` reads it from
a file instead.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

MIN_KEY_CHARACTERS = 16
KEY_FILE = Path("media") / "deid.key"


class DeidKeyError(ValueError):
    """The key given cannot be used (too short, unreadable file)."""


def load_key(option: str | None, data_dir: Path) -> bytes:
    """The key: ``option`` (text, or ``@FILE``), else the data folder's (created if missing).

    Raises: DeidKeyError (one line saying what is wrong), OSError (the data folder is not writable).
    """
    if option:
        text = _read_option(option)
        if len(text) < MIN_KEY_CHARACTERS:
            raise DeidKeyError(
                f"--deid-key: at least {MIN_KEY_CHARACTERS} characters, got {len(text)}"
            )
        return text.encode()
    return stored_key(data_dir / KEY_FILE)


def _read_option(option: str) -> str:
    if not option.startswith("@"):
        return option
    try:
        return Path(option[1:]).read_text(encoding="utf-8").strip()
    except OSError as exc:
        message = f"--deid-key {option}: cannot read the key file ({exc.strerror})"
        raise DeidKeyError(message) from exc


def stored_key(path: Path) -> bytes:
    """The key in ``path``; a new random one (256 bits, hex) written there first if missing."""
    try:
        return _existing(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="ascii") as handle:
            handle.write(secrets.token_hex(32) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)  # never replaces a key another process made meanwhile
        except FileExistsError:
            pass
    finally:
        temporary.unlink(missing_ok=True)
    return _existing(path)


def _existing(path: Path) -> bytes:
    text = path.read_text(encoding="ascii").strip()
    if len(text) < MIN_KEY_CHARACTERS:
        raise DeidKeyError(f"{path}: the stored de-identification key is too short; remove it")
    return text.encode()
