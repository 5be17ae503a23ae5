"""Sending DIMSE requests on a pynetdicom association without losing responses to its reactor.

A pynetdicom requestor runs a reactor thread beside the caller. Each ``send_c_*`` call pauses it
(clears a checkpoint and waits for ``_is_paused``), sends, waits for the response and lets the
reactor go again. The reactor only sets ``_is_paused = False`` once its thread is scheduled; a
caller that sends the next request before that sees the stale ``True``, goes ahead, and the
reactor, waking, takes the next response off the queue as an "unexpected service message". The
caller then waits the whole DIMSE timeout and the association is aborted (pynetdicom issues #435
and #875 describe the symptom). The faster the peer answers, the more often it happens: against
this gateway's own acceptor about one C-STORE in six hundred.

:func:`send_c_store` waits, after each operation, until the reactor has
really resumed (a few microseconds to a millisecond), so the next request pauses it properly.
``_is_paused`` is pynetdicom's private flag; without it (another pynetdicom) nothing is waited
for. Used by every place that sends with pynetdicom: the consumer's ``--store-to``, the
forwarding of ``gateway.notify.forward``, the demo, the benchmarks, and the tests that use
pynetdicom as a sending modality.

Standard: DICOM PS3.7 §9.1.1 (C-STORE).
"""

from __future__ import annotations

import time
from typing import Any

from pydicom.dataset import Dataset

# The reactor resumes within one of its 1 ms polls; waiting longer means it has stopped.
REACTOR_RESUME_LIMIT = 0.05


def settle(assoc: Any, limit: float = REACTOR_RESUME_LIMIT) -> None:
    """Wait until the association's reactor runs again after an operation (see module doc)."""
    deadline = time.monotonic() + limit
    while getattr(assoc, "_is_paused", False) and assoc.is_established:
        if time.monotonic() > deadline:
            return
        time.sleep(0.00005)


def send_c_store(assoc: Any, dataset: Dataset | str | Any, **kwargs: Any) -> Dataset:
    """C-STORE (PS3.7 §9.1.1) of a data set or file on ``assoc``; the response's status data set
    (empty when none came: DIMSE timeout or abort)."""
    status: Dataset = assoc.send_c_store(dataset, **kwargs)
    settle(assoc)
    return status
