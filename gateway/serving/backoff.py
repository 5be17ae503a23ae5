"""When to restart a worker process that died: soon after a lone crash, slower when it keeps dying.

Pure arithmetic on times the caller passes in (no clock, no sleeping), so the supervisor's
policy is tested without waiting.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class RestartBackoff:
    """The wait before restarting one worker slot.

    A worker that dies after running at least ``stable_seconds`` is restarted after ``initial``
    seconds; each further death within ``stable_seconds`` of its start doubles the wait, up to
    ``maximum`` (a worker failing at start, say the database is down, is retried ever more
    slowly instead of spinning).
    """

    initial: float = 0.5
    maximum: float = 30.0
    stable_seconds: float = 30.0
    failures: int = 0  # consecutive quick deaths

    def delay(self, started_at: float, died_at: float) -> float:
        """Seconds to wait before starting the slot's next worker; records this death."""
        if died_at - started_at >= self.stable_seconds:
            self.failures = 0
        wait = min(self.maximum, self.initial * 2 ** min(self.failures, 32))
        self.failures += 1
        return wait
