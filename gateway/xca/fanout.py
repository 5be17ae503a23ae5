"""Asking several sources at once, each within one deadline, none able to hold up the answer.

The Initiating Gateway sends a request to its own community and to every remote community in
parallel (ITI TF-1 §18.2.1); a community that has not answered when ``timeout`` seconds have
passed is reported unavailable and its late answer, when it comes, is thrown away (its spooled
MTOM parts removed) instead of being waited for.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Generic, TypeVar

from gateway.errors import XDSError

log = logging.getLogger("gateway.xca")

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class TimedOut:
    """A source that did not answer within the deadline."""

    seconds: float


@dataclass(slots=True)
class Outcome(Generic[T]):
    """What one source gave: a result, an XDS error, or nothing in time."""

    result: T | None = None
    error: XDSError | None = None
    timed_out: TimedOut | None = None


class FanOut:
    """A thread pool shared by the gateway's requests; ``close()`` at shutdown."""

    def __init__(self, workers: int) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="xca")

    def run(
        self,
        jobs: Mapping[str, Callable[[], T]],
        *,
        timeout: float,
        discard: Callable[[T], None] = lambda _result: None,
    ) -> dict[str, Outcome[T]]:
        """Run every job at once; return each one's outcome by name after at most ``timeout``.

        A job raising :class:`XDSError` gives that error; one still running at the deadline gives
        :class:`TimedOut`, and ``discard`` is called on its result if it ever arrives. Any other
        exception is a bug in a job: it is logged and re-raised (the SOAP boundary answers).
        """
        # Each job runs in a copy of the caller's context (contextvars): what the request knows
        # of its caller (gateway.consent.caller) reaches the local registry's query too.
        futures: dict[Future[T], str] = {
            self._pool.submit(contextvars.copy_context().run, job): name
            for name, job in jobs.items()
        }
        done, pending = wait(futures, timeout=timeout)
        outcomes: dict[str, Outcome[T]] = {}
        for future in pending:
            if not future.cancel():
                future.add_done_callback(_discarder(discard))
            outcomes[futures[future]] = Outcome(timed_out=TimedOut(timeout))
        problem: BaseException | None = None
        for future in done:
            name = futures[future]
            try:
                outcomes[name] = Outcome(result=future.result())
            except XDSError as error:
                outcomes[name] = Outcome(error=error)
            except Exception as exc:
                log.error("xca: the request to %s failed unexpectedly", name, exc_info=exc)
                problem = exc
        if problem is not None:
            for outcome in outcomes.values():
                if outcome.result is not None:
                    discard(outcome.result)
            raise problem
        return {name: outcomes[name] for name in jobs}

    def close(self) -> None:
        """Stop taking work; requests still running finish on their own timeouts."""
        self._pool.shutdown(wait=False, cancel_futures=True)


def _discarder(discard: Callable[[T], None]) -> Callable[[Future[T]], None]:
    def late(future: Future[T]) -> None:
        if future.cancelled() or future.exception() is not None:
            return
        try:
            discard(future.result())
        except Exception:
            log.exception("xca: could not discard a late answer")

    return late
