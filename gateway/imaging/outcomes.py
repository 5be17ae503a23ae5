"""What happened to a study when the imaging source tried to publish it (RAD-68)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

log = logging.getLogger("gateway.imaging")

PUBLISHED_OUTCOME = "published"
HELD_OUTCOME = "held"
FAILED_OUTCOME = "failed"
UNCHANGED_OUTCOME = "unchanged"  # on demand: already published, nothing new
BUSY_OUTCOME = "busy"  # another worker (or process) is publishing it
UNKNOWN_OUTCOME = "unknown"  # no instance of this study was ever received
DEPRECATED_OUTCOME = "deprecated"  # every instance rejected: the last manifest is Deprecated


@dataclass(frozen=True, slots=True, kw_only=True)
class PublishResult:
    """What happened to one study."""

    study_instance_uid: str
    outcome: str
    manifest_uid: str | None = None  # KOS SOP Instance UID = DocumentEntry.uniqueId
    entry_uuid: str | None = None
    replaced_entry_uuid: str | None = None
    patient_id: str | None = None
    instances: int = 0
    detail: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class HoldReason:
    """Why a study is held and what a person does about it (``imaging_study.held_reason``
    stores both, one line each; ``xdsi-gateway imaging pending`` shows them)."""

    reason: str
    todo: str = ""

    def encode(self) -> str:
        """The stored form: the reason, then the advice on a second line."""
        return f"{self.reason}\n{self.todo}" if self.todo else self.reason

    @classmethod
    def decode(cls, text: str) -> HoldReason:
        """Read the stored form back (a reason stored without advice keeps ``todo`` empty)."""
        reason, _, todo = text.partition("\n")
        return cls(reason=reason, todo=todo)

    def __str__(self) -> str:
        return f"{self.reason}; {self.todo}" if self.todo else self.reason


def log_hold(study_uid: str, hold: HoldReason, previous: str | None) -> None:
    """Log a study being held: WARNING the first time (or when the reason changes), DEBUG on
    each quiet retry after that, so a study waiting for its patient is no log line a minute."""
    if previous == hold.encode():
        log.debug("study %s still held: %s", study_uid, hold.reason)
        return
    log.warning("study %s held: %s", study_uid, hold)
