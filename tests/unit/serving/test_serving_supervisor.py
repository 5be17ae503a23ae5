"""The supervisor's policy: start order, restart back-off, failed starts, stopping; on a fake clock
and fake processes (nothing is spawned, nothing sleeps)."""

from __future__ import annotations

import itertools
import logging
import signal

import pytest

from gateway.serving.backoff import RestartBackoff
from gateway.serving.supervisor import Supervisor, describe_exit


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeProcess:
    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self.signals: list[int] = []
        self.exits_on_sigterm = True

    def poll(self) -> int | None:
        return self.returncode

    def send_signal(self, sig: int) -> None:
        self.signals.append(sig)
        if sig == signal.SIGTERM and self.exits_on_sigterm:
            self.returncode = 0

    def kill(self) -> None:
        self.signals.append(signal.SIGKILL)
        self.returncode = -signal.SIGKILL


class Spawner:
    def __init__(self) -> None:
        self.pids = itertools.count(100)
        self.started: list[tuple[int, FakeProcess]] = []

    def __call__(self, index: int) -> tuple[FakeProcess, None]:
        process = FakeProcess(next(self.pids))
        self.started.append((index, process))
        return process, None

    def latest(self, index: int) -> FakeProcess:
        return [p for i, p in self.started if i == index][-1]


def supervisor(workers: int = 2) -> tuple[Supervisor, Spawner, Clock]:
    spawn, clock = Spawner(), Clock()
    return Supervisor(workers, spawn, clock=clock, drain_seconds=10.0), spawn, clock


def started(sup: Supervisor) -> Supervisor:
    sup.begin()
    for slot in sup.slots:
        if slot.process is not None:
            sup.on_ready(slot)
    return sup


def test_backoff_doubles_for_quick_deaths_and_resets_after_a_stable_run() -> None:
    backoff = RestartBackoff(initial=0.5, maximum=30.0, stable_seconds=30.0)
    waits = [backoff.delay(started_at=t, died_at=t + 1.0) for t in range(0, 80, 10)]
    assert waits == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert backoff.delay(started_at=0.0, died_at=45.0) == 0.5  # it had run for 45 s
    assert backoff.delay(started_at=50.0, died_at=51.0) == 1.0


def test_worker_one_starts_alone_and_the_others_once_it_is_ready() -> None:
    sup, spawn, _clock = supervisor(3)
    sup.begin()
    assert [index for index, _p in spawn.started] == [1]
    sup.on_ready(sup.slots[0])
    assert [index for index, _p in spawn.started] == [1, 2, 3]
    assert sup.tick() is None  # nothing scheduled


def test_a_killed_worker_is_restarted_after_the_backoff_in_its_slot(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sup, spawn, clock = supervisor(2)
    started(sup)
    first = spawn.latest(2)
    clock.now += 60.0  # it ran for a minute
    first.returncode = -signal.SIGKILL
    with caplog.at_level(logging.INFO, logger="gateway"):
        assert sup.tick() == 0.5
    assert f"worker 2 (pid {first.pid}) was killed by SIGKILL" in caplog.text
    assert "starting a new worker 2 in 0.5 s" in caplog.text
    assert sup.slots[1].process is None and len(spawn.started) == 2
    clock.now += 0.4
    assert sup.tick() == pytest.approx(0.1)
    assert len(spawn.started) == 2  # not due yet
    clock.now += 0.1
    assert sup.tick() is None
    second = spawn.latest(2)
    assert second.pid != first.pid and sup.slots[1].process is second
    assert sup.slots[0].process is spawn.latest(1)  # the other worker was left alone


def test_a_worker_that_keeps_dying_is_restarted_ever_more_slowly() -> None:
    sup, spawn, clock = supervisor(1)
    started(sup)
    waits = []
    for _ in range(5):
        spawn.latest(1).returncode = 1
        wait = sup.tick()
        assert wait is not None
        waits.append(wait)
        clock.now += wait
        sup.tick()
    assert waits == [0.5, 1.0, 2.0, 4.0, 8.0]
    assert len(spawn.started) == 6


def test_a_worker_dying_before_the_gateway_was_ever_ready_stops_the_start() -> None:
    sup, spawn, _clock = supervisor(2)
    sup.begin()
    spawn.latest(1).returncode = 1
    sup.tick()
    assert sup.exit_code == 1 and len(spawn.started) == 1
    sup, spawn, _clock = supervisor(2)
    sup.begin()
    spawn.latest(1).returncode = 2  # the worker's configuration error
    sup.tick()
    assert sup.exit_code == 2 and len(spawn.started) == 1


def test_stopping_sends_sigterm_and_kills_a_worker_that_does_not_end(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sup, spawn, clock = supervisor(2)
    started(sup)
    stuck = spawn.latest(2)
    stuck.exits_on_sigterm = False
    ticking = itertools.count()
    sup._clock = lambda: clock.now + next(ticking)  # each look at the clock is a second later
    with caplog.at_level(logging.INFO, logger="gateway"):
        sup.stop_workers()
    assert spawn.latest(1).signals == [signal.SIGTERM]
    assert stuck.signals == [signal.SIGTERM, signal.SIGKILL]
    assert f"worker 2 (pid {stuck.pid}) still running 10 s after SIGTERM; killed" in caplog.text
    assert all(slot.process is None for slot in sup.slots)


def test_no_restart_is_due_once_stopping_began() -> None:
    sup, spawn, clock = supervisor(2)
    started(sup)
    spawn.latest(2).returncode = -signal.SIGKILL
    sup.tick()
    sup.stop_workers()
    clock.now += 60.0
    assert sup.tick() is None and len(spawn.started) == 2


def test_exit_descriptions() -> None:
    assert describe_exit(-9) == "was killed by SIGKILL"
    assert describe_exit(1) == "exited with code 1"
    assert describe_exit(-200) == "was killed by signal 200"


def test_a_worker_that_cannot_be_spawned_is_tried_again_later() -> None:
    spawn, clock = Spawner(), Clock()
    failures = [OSError("Resource temporarily unavailable")]

    def flaky(index: int) -> tuple[FakeProcess, None]:
        if failures:
            raise failures.pop()
        return spawn(index)

    sup = Supervisor(1, flaky, clock=clock)
    sup.begin()
    assert sup.slots[0].process is None and sup.tick() == 0.5
    clock.now += 0.5
    sup.tick()
    assert sup.slots[0].process is spawn.latest(1)
