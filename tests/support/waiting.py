"""Waiting in tests for what a gateway does in the background (the study idle worker)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from gateway.app import Gateway
from gateway.imaging.index import PUBLISHED


def wait_for(probe: Callable[[], Any], timeout: float = 60) -> Any:
    """The first truthy result of ``probe``, asked every 0.2 s; AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = probe()
        if result:
            return result
        time.sleep(0.2)  # waiting for the idle worker, with a deadline
    raise AssertionError("timed out")


def published(gw: Gateway, study_uid: str) -> bool:
    """The gateway's imaging source has published the study (RAD-68 done)."""
    assert gw.imaging is not None
    found = gw.imaging.index.study(study_uid)
    return found is not None and found.state == PUBLISHED
