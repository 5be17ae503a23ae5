"""INFO lines about DICOM associations: what each one brought in, and each one refused.

Two plain functions write the lines, whatever DICOM upper layer runs the listener:

- :func:`log_received`: one line when an association ends (calling AE, peer, instances stored
  and refused, bytes, seconds), INFO when it carried instances, DEBUG for a bare C-ECHO;
- :func:`log_refused`: one line per association refused (calling AE, peer, reason).

The listener (``gateway.imaging.storescp.StoreSCP.ended``) counts per association and calls them.

Standards: DICOM PS3.8 §9.3.4 (A-ASSOCIATE-RJ result, source and reason codes), §7.1 (release),
§7.3 (abort).
"""

from __future__ import annotations

import logging

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
