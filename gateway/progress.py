"""One text progress bar on stderr for the commands that move data, and the hooks that feed it.

A byte bar (``provide``, ``retrieve``)::

    sending [#########---------------------]  30.0%  300.0 MiB / 1000.0 MiB  85.3 MiB/s

A bar of items that carry bytes (``fetch-study``: instances of a study)::

    study 1.2.840…123 [##########----------] 250/500 instances  61.2 MiB  12.4 MiB/s

On a terminal the line is redrawn in place (at most ten times a second); anywhere else (logs, CI)
only the final line is printed, so output stays readable. :class:`CountingAttachment` counts an
upload as the MTOM writer reads it; :func:`count_responses` makes a ``requests`` session count every
response body as it is read. No dependency beyond the standard library and requests.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TextIO

import requests

from gateway.soap.message import CHUNK, Attachment

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")
_REDRAW_SECONDS = 0.1


def human(size: float) -> str:
    """A byte count in binary units with one decimal (``1.5 MiB``)."""
    for unit in _UNITS:
        if abs(size) < 1024 or unit == _UNITS[-1]:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def short_uid(uid: str, width: int = 24) -> str:
    """A UID shortened in the middle to ``width`` characters."""
    if len(uid) <= width:
        return uid
    keep = (width - 1) // 2
    return f"{uid[:keep]}…{uid[-(width - 1 - keep) :]}"


class Progress:
    """Progress of one transfer: ``total`` bytes, or ``total`` items named ``unit`` when given
    (None: unknown). ``done`` counts what the bar measures (bytes or items), ``bytes`` the
    bytes moved either way."""

    def __init__(
        self,
        label: str,
        total: int | None = None,
        *,
        unit: str | None = None,
        stream: TextIO | None = None,
        live: bool | None = None,
        width: int = 30,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label, self.total, self.unit = label, total, unit
        self.done = self.bytes = 0
        self.stream = stream if stream is not None else sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self.width = width
        self.clock = clock
        self._started = clock()
        self._drawn = float("-inf")
        self._closed = False

    def advance(self, count: int, size: int | None = None) -> None:
        """Record ``count`` more bytes (a byte bar) or items carrying ``size`` bytes; redraw
        when the last drawing is 0.1 s old."""
        self.done += count
        self.bytes += count if self.unit is None else (size or 0)
        now = self.clock()
        if self.live and now - self._drawn >= _REDRAW_SECONDS:
            self._drawn = now
            self.stream.write("\r" + self.line(now))
            self.stream.flush()

    def _bar(self, fraction: float) -> str:
        filled = int(fraction * self.width)
        return "[" + "#" * filled + "-" * (self.width - filled) + "]"

    def line(self, now: float | None = None) -> str:
        """The bar as text."""
        elapsed = max((self.clock() if now is None else now) - self._started, 1e-9)
        rate = f"{human(self.bytes / elapsed)}/s"
        if self.unit is not None:
            total = self.total or 0
            fraction = min(self.done / total, 1.0) if total else 1.0
            count = f"{self.done:>{len(str(total))}}/{total} {self.unit}"
            return f"{self.label} {self._bar(fraction)} {count}  {human(self.bytes)}  {rate}"
        if self.total:
            fraction = min(self.done / self.total, 1.0)
            return (
                f"{self.label} {self._bar(fraction)} {fraction * 100:5.1f}%  "
                f"{human(self.done)} / {human(self.total)}  {rate}"
            )
        return f"{self.label} {human(self.done)}  {rate}"

    def close(self) -> None:
        """Finish the line (terminal) or print the final state (anything else); once."""
        if self._closed:
            return
        self._closed = True
        prefix = "\r" if self.live else ""
        self.stream.write(prefix + self.line() + "\n")
        self.stream.flush()


@dataclass(slots=True, kw_only=True)
class CountingAttachment(Attachment):
    """An attachment that reports each chunk to a Progress as it is read for sending."""

    progress: Progress | None = None

    def chunks(self, size: int = CHUNK) -> Iterator[bytes]:
        """Yield the content like :meth:`Attachment.chunks`, counting it."""
        for block in Attachment.chunks(self, size):
            if self.progress is not None:
                self.progress.advance(len(block))
            yield block


class _CountingRaw:
    """A urllib3 response proxy counting the bytes read through it."""

    def __init__(self, raw: Any, progress: Progress) -> None:
        object.__setattr__(self, "_raw", raw)
        object.__setattr__(self, "_progress", progress)

    def read(self, *args: Any, **kwargs: Any) -> bytes:
        data: bytes = self._raw.read(*args, **kwargs)
        self._progress.advance(len(data))
        return data

    def stream(self, *args: Any, **kwargs: Any) -> Iterator[bytes]:
        for data in self._raw.stream(*args, **kwargs):
            self._progress.advance(len(data))
            yield data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._raw, name, value)


def count_responses(session: requests.Session, make: Callable[[int | None], Progress]) -> None:
    """Make every response of ``session`` count its body into ``make(Content-Length)``."""

    def hook(response: requests.Response, *_args: Any, **_kwargs: Any) -> requests.Response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        response.raw = _CountingRaw(response.raw, make(total))
        return response

    session.hooks["response"].append(hook)
