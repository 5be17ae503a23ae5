"""What happened to a study when the imaging source tried to publish it (RAD-68)."""

from __future__ import annotations

from dataclasses import dataclass

PUBLISHED_OUTCOME = "published"
HELD_OUTCOME = "held"
FAILED_OUTCOME = "failed"
UNCHANGED_OUTCOME = "unchanged"  # on demand: already published, nothing new
BUSY_OUTCOME = "busy"  # another worker (or process) is publishing it
UNKNOWN_OUTCOME = "unknown"  # no instance of this study was ever received


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
