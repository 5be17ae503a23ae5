"""Group commit of instance rows (gateway.imaging.committer): rows queued while a commit is in
flight share the next one, a failing row fails only its own caller, and a batch is durable when
any of its rows must be."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

import pytest

from gateway.imaging.committer import GroupCommitter
from gateway.imaging.index import InstanceRecord


def record(uid: str) -> InstanceRecord:
    return InstanceRecord(
        sop_instance_uid=uid,
        sop_class_uid="1.2.840.10008.5.1.4.1.1.2",
        study_instance_uid="1.2.3",
        series_instance_uid="1.2.3.4",
        transfer_syntax_uid="1.2.840.10008.1.2.1",
        path=f"1.2.3/1.2.3.4/{uid}.dcm",
        size=10,
    )


class Writer:
    """A RowWriter that records its calls; the first call waits until ``release`` is set."""

    def __init__(self, failing: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        self.calls: list[tuple[list[str], bool]] = []
        self.failing = failing
        self.entered = threading.Event()
        self.release = threading.Event()

    def record_instances(
        self, records: Sequence[InstanceRecord], *, durable: bool = True
    ) -> list[InstanceRecord | None]:
        self.calls.append(([r.sop_instance_uid for r in records], durable))
        if len(self.calls) == 1:
            self.entered.set()
            assert self.release.wait(30)
        if any(r.sop_instance_uid in self.failing for r in records):
            raise RuntimeError("row refused")
        return [None] * len(records)


def wait_until(condition: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.005)  # polling a condition with a deadline


def run_concurrently(
    committer: GroupCommitter, writer: Writer, uids: list[str], durable: Sequence[bool]
) -> dict[str, BaseException | None]:
    """The first uid's commit is held open while the others queue up behind it."""
    outcomes: dict[str, BaseException | None] = {}

    def one(uid: str, flag: bool) -> None:
        try:
            committer.record(record(uid), durable=flag)
            outcomes[uid] = None
        except BaseException as exc:
            outcomes[uid] = exc

    first = threading.Thread(target=one, args=(uids[0], durable[0]))
    first.start()
    assert writer.entered.wait(30)
    others = [
        threading.Thread(target=one, args=(uid, flag))
        for uid, flag in zip(uids[1:], durable[1:], strict=True)
    ]
    for thread in others:
        thread.start()
    wait_until(lambda: len(committer._queue) == len(others))
    writer.release.set()
    for thread in [first, *others]:
        thread.join(30)
    return outcomes


def test_rows_queued_during_a_commit_share_the_next_one() -> None:
    writer = Writer()
    committer = GroupCommitter(writer)
    uids = [f"1.2.3.4.{n}" for n in range(6)]
    outcomes = run_concurrently(committer, writer, uids, [False] * 6)
    assert outcomes == dict.fromkeys(uids)
    assert writer.calls[0] == (["1.2.3.4.0"], False)
    assert sorted(writer.calls[1][0]) == uids[1:] and len(writer.calls) == 2
    assert (committer.commits, committer.rows) == (2, 6)


def test_a_batch_is_durable_when_one_of_its_rows_must_be() -> None:
    writer = Writer()
    committer = GroupCommitter(writer)
    run_concurrently(committer, writer, ["1.1", "1.2", "1.3"], [False, False, True])
    assert writer.calls[1][1] is True


def test_a_failing_row_fails_only_its_own_caller() -> None:
    writer = Writer(failing={"1.9"})
    committer = GroupCommitter(writer)
    outcomes = run_concurrently(committer, writer, ["1.1", "1.2", "1.9", "1.3"], [True] * 4)
    assert isinstance(outcomes.pop("1.9"), RuntimeError)
    assert outcomes == {"1.1": None, "1.2": None, "1.3": None}
    # the shared batch failed, then each row went alone
    assert sorted(uids for uids, _ in writer.calls[2:]) == [["1.2"], ["1.3"], ["1.9"]]


def test_a_lone_caller_commits_at_once_and_sees_its_error() -> None:
    writer = Writer(failing={"1.5"})
    writer.release.set()
    committer = GroupCommitter(writer)
    assert committer.record(record("1.4")) is None
    with pytest.raises(RuntimeError):
        committer.record(record("1.5"))
    assert committer.record(record("1.6")) is None  # not stuck after a failure
