"""INFO lines about DICOM associations: what each one brought in, and each one refused.

Two plain functions write the lines, whatever DICOM upper layer runs the listener:

- :func:`log_received`: one line when an association ends (calling AE, peer, instances stored
  and refused, bytes, seconds), INFO when it carried instances, DEBUG for a bare C-ECHO;
- :func:`log_refused`: one line per association refused (calling AE, peer, reason).

:class:`AssociationLog` is the glue for pynetdicom: it counts per association (the C-STORE
handler calls :meth:`AssociationLog.stored` / :meth:`AssociationLog.refused`) and writes the
lines from pynetdicom's notification events.

Standards: DICOM PS3.8 §9.3.4 (A-ASSOCIATE-RJ result, source and reason codes), §7.1 (release),
§7.3 (abort).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from pynetdicom import evt

from gateway.progress import human

log = logging.getLogger("gateway.imaging")


def log_received(
    calling_ae: str,
    peer: str,
    *,
    stored: int,
    nbytes: int,
    seconds: float,
    refused: int = 0,
    aborted: bool = False,
) -> None:
    """The line for an association that ended: INFO when it carried instances, else DEBUG."""
    level = logging.INFO if stored or refused else logging.DEBUG
    rate = f", {stored / seconds:.0f} instances/s" if stored and seconds > 0 else ""
    log.log(
        level,
        "DICOM association from %s (%s) %s: %d instance(s) stored (%s)%s in %.1f s%s",
        calling_ae or "?",
        peer,
        "aborted" if aborted else "released",
        stored,
        human(nbytes),
        f", {refused} refused" if refused else "",
        seconds,
        rate,
    )


def log_refused(calling_ae: str, peer: str, reason: str, *, level: int = logging.INFO) -> None:
    """The line for an association refused during negotiation."""
    log.log(level, "DICOM association from %s (%s) refused: %s", calling_ae or "?", peer, reason)


def rejection_reason(source: int, diagnostic: int, *, called_ae: str, our_ae: str) -> str:
    """Plain words for an A-ASSOCIATE-RJ result source and diagnostic (PS3.8 Table 9-21)."""
    if (source, diagnostic) == (1, 7):
        return (
            f"called AE title {called_ae!r} is not this listener's {our_ae!r} "
            "(imaging_source.ae_title): the sender must call that AE title"
        )
    if (source, diagnostic) == (1, 3):
        return "calling AE title not recognised"
    if (source, diagnostic) == (1, 2):
        return "application context name not supported"
    if (source, diagnostic) == (2, 2):
        return "protocol version not supported"
    if source == 3:
        return "too many associations at once (local limit exceeded)"
    return f"rejected (result source {source}, diagnostic {diagnostic})"


def peer_of(assoc: Any) -> str:
    """``host:port`` of the association's requestor."""
    requestor = assoc.requestor
    return f"{requestor.address}:{requestor.port}"


@dataclass(slots=True)
class _Counts:
    started: float = field(default_factory=time.monotonic)
    stored: int = 0
    refused: int = 0
    nbytes: int = 0


class AssociationLog:
    """Counts instances per pynetdicom association and logs each association's end."""

    def __init__(self, ae_title: str) -> None:
        self.ae_title = ae_title
        self._lock = threading.Lock()
        self._counts: dict[int, _Counts] = {}

    def handlers(self) -> list[tuple[Any, Any]]:
        """pynetdicom notification handlers to add to the listener's."""
        return [
            (evt.EVT_ESTABLISHED, self.on_established),
            (evt.EVT_RELEASED, self.on_ended),
            (evt.EVT_ABORTED, self.on_ended),
            (evt.EVT_CONN_CLOSE, self.on_ended),  # closed without release: counted as aborted
            (evt.EVT_REJECTED, self.on_rejected),
        ]

    def _of(self, assoc: Any) -> _Counts:
        with self._lock:
            return self._counts.setdefault(id(assoc), _Counts())

    def on_established(self, event: evt.Event) -> None:
        """Start the clock of an association."""
        self._of(event.assoc)

    def stored(self, assoc: Any, size: int) -> None:
        """Count an instance stored over ``assoc`` (called by the C-STORE handler)."""
        counts = self._of(assoc)
        counts.stored += 1
        counts.nbytes += size

    def refused(self, assoc: Any) -> None:
        """Count an instance refused over ``assoc``."""
        self._of(assoc).refused += 1

    def on_ended(self, event: evt.Event) -> None:
        """Released or aborted: log what the association brought."""
        assoc = event.assoc
        with self._lock:
            counts = self._counts.pop(id(assoc), None)
        if counts is None:
            return
        log_received(
            assoc.requestor.ae_title,
            peer_of(assoc),
            stored=counts.stored,
            refused=counts.refused,
            nbytes=counts.nbytes,
            seconds=time.monotonic() - counts.started,
            aborted=event.event is not evt.EVT_RELEASED,
        )

    def on_rejected(self, event: evt.Event) -> None:
        """pynetdicom rejected the association (called AE title, limits): log why."""
        assoc = event.assoc
        answer = assoc.acceptor.primitive
        request = assoc.requestor.primitive
        reason = rejection_reason(
            int(getattr(answer, "result_source", 0) or 0),
            int(getattr(answer, "diagnostic", 0) or 0),
            called_ae=str(getattr(request, "called_ae_title", "") or "").strip(),
            our_ae=self.ae_title,
        )
        log_refused(str(getattr(request, "calling_ae_title", "") or ""), peer_of(assoc), reason)
