"""The fan-out: every source at once, each within the deadline, late answers thrown away."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from gateway.errors import XDSRegistryError
from gateway.xca.fanout import FanOut


@pytest.fixture
def fanout() -> Iterator[FanOut]:
    pool = FanOut(workers=4)
    try:
        yield pool
    finally:
        pool.close()


def test_results_and_errors_by_name_in_job_order(fanout: FanOut) -> None:
    def fails() -> str:
        raise XDSRegistryError("no")

    outcomes = fanout.run({"b": lambda: "B", "a": fails, "c": lambda: "C"}, timeout=30)
    assert list(outcomes) == ["b", "a", "c"]
    assert outcomes["b"].result == "B" and outcomes["c"].result == "C"
    assert isinstance(outcomes["a"].error, XDSRegistryError)
    assert outcomes["a"].result is None and outcomes["a"].timed_out is None


def test_a_source_past_the_deadline_times_out_and_its_late_answer_is_discarded(
    fanout: FanOut,
) -> None:
    release, discarded = threading.Event(), threading.Event()
    seen: list[str] = []

    def slow() -> str:
        release.wait(30)
        return "late"

    def discard(result: str) -> None:
        seen.append(result)
        discarded.set()

    outcomes = fanout.run({"fast": lambda: "now", "slow": slow}, timeout=0.05, discard=discard)
    assert outcomes["fast"].result == "now"
    assert outcomes["slow"].timed_out is not None and outcomes["slow"].result is None
    release.set()
    assert discarded.wait(30)
    assert seen == ["late"]


def test_an_unexpected_exception_is_raised_after_the_others_are_discarded(fanout: FanOut) -> None:
    discarded: list[str] = []

    def broken() -> str:
        raise RuntimeError("bug")

    with pytest.raises(RuntimeError, match="bug"):
        fanout.run({"ok": lambda: "kept", "bad": broken}, timeout=30, discard=discarded.append)
    assert discarded == ["kept"]
