"""The guard against pynetdicom's reactor race (gateway.dicomscu)."""

from __future__ import annotations

import threading
import time
from typing import Any

from pydicom.dataset import Dataset

from gateway import dicomscu


class Requestor:
    """Stands for a pynetdicom Association: its reactor resumes ``resume_after`` seconds after
    each C-STORE answered, as a reactor thread that is scheduled late does."""

    def __init__(self, resume_after: float) -> None:
        self.resume_after = resume_after
        self._is_paused = False
        self.is_established = True
        self.resumed_at = 0.0

    def send_c_store(self, dataset: Any, **kwargs: Any) -> Dataset:
        self._is_paused = True
        timer = threading.Timer(self.resume_after, self._resume)
        timer.daemon = True
        timer.start()
        status = Dataset()
        status.Status = 0
        return status

    def _resume(self) -> None:
        self.resumed_at = time.monotonic()
        self._is_paused = False


def test_the_next_request_waits_until_the_reactor_has_resumed() -> None:
    assoc = Requestor(resume_after=0.02)
    status = dicomscu.send_c_store(assoc, "file.dcm")
    returned_at = time.monotonic()
    assert status.Status == 0
    assert not assoc._is_paused
    assert assoc.resumed_at and returned_at >= assoc.resumed_at


def test_a_reactor_that_never_resumes_is_not_waited_for_long() -> None:
    assoc = Requestor(resume_after=5.0)
    started = time.monotonic()
    dicomscu.send_c_store(assoc, "file.dcm")
    assert time.monotonic() - started < 1.0
    assert assoc._is_paused  # given up after the limit, not resumed


def test_an_ended_association_is_not_waited_for() -> None:
    assoc = Requestor(resume_after=5.0)
    assoc.is_established = False
    started = time.monotonic()
    dicomscu.settle(assoc, limit=2.0)
    assert time.monotonic() - started < 1.0
