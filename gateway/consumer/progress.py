"""A per-study progress bar on stderr: instances done of total, megabytes received, rate.

``study 1.2.840…123 [##########----------]  250/500 instances  61.2 MB  12.4 MB/s``

On a terminal the line is redrawn in place (at most ten times a second); elsewhere (logs, CI)
only the final line is printed, so output stays readable. Standard library only.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

MB = 1_000_000


def short_uid(uid: str, width: int = 24) -> str:
    """A UID shortened in the middle to ``width`` characters."""
    if len(uid) <= width:
        return uid
    keep = (width - 1) // 2
    return f"{uid[:keep]}…{uid[-(width - 1 - keep) :]}"


class StudyProgress:
    """Progress of one study's fetch."""

    def __init__(
        self,
        study_uid: str,
        total: int,
        *,
        stream: TextIO | None = None,
        live: bool | None = None,
        width: int = 20,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label = f"study {short_uid(study_uid)}"
        self.total, self.done, self.bytes = total, 0, 0
        self.stream = stream if stream is not None else sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self.width, self.clock = width, clock
        self._started = clock()
        self._drawn = float("-inf")

    def advance(self, instances: int, size: int = 0) -> None:
        """Record instances done (present, fetched or given up) and bytes received."""
        self.done += instances
        self.bytes += size
        now = self.clock()
        if self.live and now - self._drawn >= 0.1:
            self._drawn = now
            self.stream.write("\r" + self.line(now))
            self.stream.flush()

    def line(self, now: float | None = None) -> str:
        """The bar as text."""
        elapsed = max((self.clock() if now is None else now) - self._started, 1e-9)
        fraction = min(self.done / self.total, 1.0) if self.total else 1.0
        filled = int(fraction * self.width)
        bar = "#" * filled + "-" * (self.width - filled)
        return (
            f"{self.label} [{bar}] {self.done:>{len(str(self.total))}}/{self.total} instances  "
            f"{self.bytes / MB:.1f} MB  {self.bytes / MB / elapsed:.1f} MB/s"
        )

    def close(self) -> None:
        """Finish the line (terminal) or print the final state (anything else)."""
        text = self.line()
        self.stream.write(("\r" + text + "\n") if self.live else (text + "\n"))
        self.stream.flush()
