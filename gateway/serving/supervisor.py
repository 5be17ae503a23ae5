"""``serve --workers N``: a supervisor process and N gateway worker processes on shared sockets.

The supervisor binds every listening socket once (:mod:`gateway.serving.listeners`), then starts
N workers as new processes (spawned: a fresh interpreter, never a fork of a process that has
threads). Each worker listens on a socket of its own bound to the same address (``SO_REUSEPORT``,
as nginx's ``reuseport``), and the kernel spreads new connections over them; without
``SO_REUSEPORT`` each worker inherits the supervisor's listening sockets and accepts on them, as
gunicorn's workers do. Each worker is a whole gateway
(:mod:`gateway.serving.worker`): its own database pool, audit sender, owner id and temporary
folders. The supervisor itself serves nothing and holds no database connection.

- Start: worker 1 first, the others once it is ready, so that one process creates or migrates
  the database schema before the others open it.
- A worker that dies is started again in its slot after a back-off (:class:`RestartBackoff`),
  logged with how it died. New connections meanwhile go to the other workers; only the requests
  the dead worker had in hand are lost, and, with per-worker sockets, the connections still
  queued on its socket (see :mod:`gateway.serving.listeners`).
- SIGTERM/SIGINT: forwarded as SIGTERM to every worker, which finishes the requests in flight
  and stops as a lone ``serve`` does; the supervisor waits for all of them and exits 0. A worker
  still running ``drain_seconds`` later is killed (logged).
- A worker that dies before any worker was ever ready stops the whole start (exit 1, or 2 when
  it reported a configuration error): a broken set-up is reported, not retried forever.
- Each worker holds one end of a socket pair whose other end the supervisor keeps: the worker
  writes ``ready`` once it serves, and a worker whose supervisor is gone (killed) sees the
  connection end and stops.

The policy (:meth:`Supervisor.tick`, :meth:`Supervisor.on_ready`) takes its time from an
injected clock and its processes from an injected ``spawn``, so it is tested without processes
or waiting; :meth:`Supervisor.run` adds the signals and the waiting.
"""

from __future__ import annotations

import contextlib
import json
import logging
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from gateway.config import Settings, settings_as_dict
from gateway.serving.backoff import RestartBackoff
from gateway.serving.listeners import Listeners

log = logging.getLogger("gateway")

EXIT_OK, EXIT_FAILURE, EXIT_CONFIG = 0, 1, 2
POLL_SECONDS = 1.0  # longest wait between looks at the workers (SIGCHLD wakes us sooner)


class WorkerProcess(Protocol):
    """What the supervisor needs of a worker process (a ``subprocess.Popen``)."""

    @property
    def pid(self) -> int: ...

    def poll(self) -> int | None: ...

    def send_signal(self, sig: int) -> None: ...

    def kill(self) -> None: ...


# slot index -> (the started process, the supervisor's end of its control connection, if any)
Spawn = Callable[[int], tuple[WorkerProcess, socket.socket | None]]


@dataclass(slots=True)
class Slot:
    """One of the N places a worker runs in; a restarted worker takes its predecessor's."""

    index: int
    backoff: RestartBackoff = field(default_factory=RestartBackoff)
    process: WorkerProcess | None = None
    control: socket.socket | None = None
    started_at: float = 0.0
    ready: bool = False
    due_at: float | None = None  # when the slot's next worker is to be started


def describe_exit(code: int) -> str:
    """``exited with code 1`` or ``was killed by SIGKILL`` (Popen's negative codes)."""
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


class Supervisor:
    """Keeps ``workers`` gateway processes running until told to stop."""

    def __init__(
        self,
        workers: int,
        spawn: Spawn,
        *,
        clock: Callable[[], float] = time.monotonic,
        backoff: Callable[[], RestartBackoff] = RestartBackoff,
        drain_seconds: float = 60.0,
    ) -> None:
        self.slots = [Slot(index, backoff()) for index in range(1, workers + 1)]
        self._spawn = spawn
        self._clock = clock
        self.drain_seconds = drain_seconds
        self.exit_code: int | None = None  # set when the start failed: stop with this code
        self.ever_ready = False
        self._signal: int | None = None

    # -- the policy -------------------------------------------------------------------------------
    def begin(self) -> None:
        """Start worker 1; the others follow once it is ready (:meth:`on_ready`)."""
        self.slots[0].due_at = self._clock()
        self.tick()

    def on_ready(self, slot: Slot) -> None:
        """``slot``'s worker says it serves; the first time, the other slots are started."""
        if slot.process is None:
            return
        slot.ready = True
        log.info("worker %d ready (pid %d)", slot.index, slot.process.pid)
        if not self.ever_ready:
            self.ever_ready = True
            now = self._clock()
            for other in self.slots:
                if other.process is None and other.due_at is None:
                    other.due_at = now
            self.tick()
        if all(s.ready for s in self.slots):
            log.info("all %d workers ready", len(self.slots))

    def tick(self) -> float | None:
        """Note workers that died, start those due; return seconds until the next one is due."""
        now = self._clock()
        for slot in self.slots:
            code = slot.process.poll() if slot.process is not None else None
            if code is not None:
                self._died(slot, code, now)
        if self.exit_code is not None:
            return None
        for slot in self.slots:
            if slot.due_at is not None and slot.due_at <= now:
                self._start(slot, now)
        due = [slot.due_at for slot in self.slots if slot.due_at is not None]
        return max(0.0, min(due) - now) if due else None

    def _died(self, slot: Slot, code: int, now: float) -> None:
        assert slot.process is not None
        pid = slot.process.pid
        self._close_control(slot)
        slot.process, slot.ready = None, False
        if not self.ever_ready:
            log.error(
                "worker %d (pid %d) %s before the gateway was ready",
                slot.index,
                pid,
                describe_exit(code),
            )
            self.exit_code = EXIT_CONFIG if code == EXIT_CONFIG else EXIT_FAILURE
            return
        wait = slot.backoff.delay(slot.started_at, now)
        slot.due_at = now + wait
        log.warning(
            "worker %d (pid %d) %s; starting a new worker %d in %.1f s",
            slot.index,
            pid,
            describe_exit(code),
            slot.index,
            wait,
        )

    def _start(self, slot: Slot, now: float) -> None:
        slot.due_at = None
        try:
            slot.process, slot.control = self._spawn(slot.index)
        except OSError as exc:  # no process could be made (out of memory, too many processes)
            wait = slot.backoff.delay(now, now)
            slot.due_at = now + wait
            log.error(
                "worker %d cannot be started (%s); trying again in %.1f s", slot.index, exc, wait
            )
            return
        slot.started_at, slot.ready = now, False
        log.info("worker %d started (pid %d)", slot.index, slot.process.pid)

    @staticmethod
    def _close_control(slot: Slot) -> None:
        if slot.control is not None:
            slot.control.close()
            slot.control = None

    def read_control(self, slot: Slot) -> None:
        """Read what ``slot``'s worker wrote: ``ready``, or the end of the connection."""
        assert slot.control is not None
        try:
            data = slot.control.recv(256)
        except OSError:
            data = b""
        if data:
            self.on_ready(slot)
        else:  # the worker is ending; tick() reaps it
            self._close_control(slot)

    # -- running ----------------------------------------------------------------------------------
    def run(self) -> int:
        """Supervise until SIGTERM/SIGINT (exit 0) or a failed start (exit 1 or 2)."""
        wake_read, wake_write = socket.socketpair()
        wake_read.setblocking(False)
        wake_write.setblocking(False)
        previous = self._install_signals(wake_write)
        try:
            self.begin()
            while self._signal is None and self.exit_code is None:
                self._wait(wake_read, self.tick())
            if self._signal is not None:
                log.info(
                    "received %s: stopping %d workers (requests in flight are finished)",
                    signal.Signals(self._signal).name,
                    sum(slot.process is not None for slot in self.slots),
                )
            self.stop_workers(wake_read)
        finally:
            self._restore_signals(previous)
            wake_read.close()
            wake_write.close()
        return EXIT_OK if self.exit_code is None else self.exit_code

    def _install_signals(self, wake: socket.socket) -> dict[int, Any]:
        def stop(signum: int, _frame: object) -> None:
            if self._signal is None:
                self._signal = signum

        previous: dict[int, Any] = {-1: signal.set_wakeup_fd(wake.fileno())}
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.signal(signum, stop)
        # A Python handler makes SIGCHLD write to the wake-up socket: a dead worker wakes us.
        previous[signal.SIGCHLD] = signal.signal(signal.SIGCHLD, lambda _s, _f: None)
        return previous

    @staticmethod
    def _restore_signals(previous: dict[int, Any]) -> None:
        signal.set_wakeup_fd(previous.pop(-1))
        for signum, handler in previous.items():
            signal.signal(signum, handler)

    def _wait(self, wake: socket.socket, timeout: float | None) -> None:
        """Sleep until a signal, a worker's message, or ``timeout`` (at most POLL_SECONDS)."""
        controls = {slot.control: slot for slot in self.slots if slot.control is not None}
        wait = POLL_SECONDS if timeout is None else min(timeout, POLL_SECONDS)
        readable, _w, _x = select.select([wake, *controls], [], [], wait)
        for item in readable:
            if item is wake:
                with contextlib.suppress(BlockingIOError):
                    while wake.recv(512):
                        pass
            elif item in controls and controls[item].control is not None:
                self.read_control(controls[item])

    def stop_workers(self, wake: socket.socket | None = None) -> None:
        """SIGTERM every worker, wait up to ``drain_seconds`` for them, kill the rest."""
        for slot in self.slots:
            slot.due_at = None
            if slot.process is not None:
                with contextlib.suppress(ProcessLookupError):
                    slot.process.send_signal(signal.SIGTERM)
        deadline = self._clock() + self.drain_seconds
        while self._reap() and self._clock() < deadline:
            if wake is not None:
                select.select([wake], [], [], 0.2)
                with contextlib.suppress(BlockingIOError):
                    while wake.recv(512):
                        pass
        for slot in self.slots:
            if slot.process is not None:
                log.error(
                    "worker %d (pid %d) still running %.0f s after SIGTERM; killed",
                    slot.index,
                    slot.process.pid,
                    self.drain_seconds,
                )
                with contextlib.suppress(ProcessLookupError):
                    slot.process.kill()
        self._reap()

    def _reap(self) -> int:
        """Forget workers that have ended; return how many still run."""
        running = 0
        for slot in self.slots:
            if slot.process is None:
                continue
            code = slot.process.poll()
            if code is None:
                running += 1
                continue
            log.info(
                "worker %d (pid %d) stopped (%s)", slot.index, slot.process.pid, describe_exit(code)
            )
            self._close_control(slot)
            slot.process = None
        return running


def spawner(settings: Settings, listeners: Listeners) -> Spawn:
    """Start workers as ``python -m gateway.serving.worker`` with the listeners' descriptors.

    Each worker gets the supervisor's effective settings (so a restarted worker runs exactly the
    configuration the others run, whatever happened to the file since) and either the addresses
    to bind its own sockets to (``listeners.per_worker``) or the descriptor numbers of the shared
    listening sockets, over its control connection, as one JSON line.
    """
    document = settings_as_dict(settings)
    # per-worker sockets: the addresses to bind (SO_REUSEPORT); else the shared sockets' fds
    fds = {} if listeners.per_worker else listeners.fds()
    addresses = listeners.addresses() if listeners.per_worker else {}

    def spawn(index: int) -> tuple[WorkerProcess, socket.socket | None]:
        ours, theirs = socket.socketpair()
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "gateway.serving.worker", "--control", str(theirs.fileno())],
                stdin=subprocess.DEVNULL,
                pass_fds=[theirs.fileno(), *fds.values()],
            )
        finally:
            theirs.close()
        spec = {"index": index, "settings": document, "listeners": fds, "addresses": addresses}
        with contextlib.suppress(OSError):  # a worker dead already is reaped like any other
            ours.sendall(json.dumps(spec).encode() + b"\n")
        return process, ours

    return spawn
