"""``xdsi-gateway publish``: publish studies on demand (RAD-68).

Each TARGET is a Study Instance UID already received by the source, a DICOM Part 10 file, or a
folder whose DICOM files are imported first (byte for byte); their studies are then published.
One line per study: ``<outcome> <Study Instance UID> [manifest <KOS UID>] [detail]``, on stdout
when published (or unchanged, or busy), on stderr when held, failed or unknown.

Exit status: 0 when every study was published (or was already, with nothing new, or its manifest
was deprecated because every instance was rejected), 1 when one
was held, failed or is unknown, 2 when a TARGET is neither a folder, a DICOM file nor a UID
(checked before anything is imported).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from gateway.imaging.ingest import dicom_files
from gateway.imaging.publisher import (
    BUSY_OUTCOME,
    DEPRECATED_OUTCOME,
    PUBLISHED_OUTCOME,
    UNCHANGED_OUTCOME,
    UNKNOWN_OUTCOME,
    PublishResult,
)
from gateway.imaging.source import ImagingSource
from gateway.imaging.storage import is_uid

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
# deprecated: every instance was rejected (IOCM), the last manifest withdrawn as it should be
_OK_OUTCOMES = (PUBLISHED_OUTCOME, UNCHANGED_OUTCOME, DEPRECATED_OUTCOME)
DICM_OFFSET = 128  # PS3.10 §7.1: a 128-byte preamble, then "DICM"


def not_dicom(path: str | os.PathLike[str]) -> str | None:
    """Why ``path`` is not a DICOM Part 10 file, in plain words, or None when it looks like one.

    Standard: DICOM PS3.10 §7.1 (preamble and the "DICM" prefix).
    """
    try:
        with open(path, "rb") as handle:
            head = handle.read(DICM_OFFSET + 4)
    except OSError as exc:
        return f"cannot read it ({exc.strerror})"
    if head[DICM_OFFSET:] != b"DICM":
        return (
            "not a DICOM file (a DICOM Part 10 file has the letters DICM after a 128-byte "
            "preamble; this one does not)"
        )
    return None


def check_targets(targets: Sequence[str], err: TextIO) -> bool:
    """Every target is a folder, a DICOM file or a UID; else say which is not (nothing done)."""
    for target in targets:
        if os.path.isdir(target):
            continue
        if os.path.isfile(target):
            problem = not_dicom(target)
            if problem is None:
                continue
            print(f"xdsi-gateway publish: {target}: {problem}", file=err)
        elif not is_uid(target):
            print(
                f"xdsi-gateway publish: {target}: no such file or folder, "
                "and not a Study Instance UID",
                file=err,
            )
        else:
            continue
        return False
    return True


def publish(
    targets: Sequence[str],
    source: ImagingSource,
    *,
    out: TextIO,
    force: bool = False,
    err: TextIO | None = None,
) -> int:
    """Publish every target (Study Instance UID, folder or DICOM file); return the exit status.

    Results (one line per study) go to ``out``; skipped files and failures to ``err``.
    """
    err = err or out
    if not check_targets(targets, err):
        return EXIT_USAGE
    studies: list[str] = []
    for target in targets:
        if os.path.isdir(target) or os.path.isfile(target):
            files = dicom_files(target) if os.path.isdir(target) else [Path(target)]
            report = source.load_files(files, target)
            for path, reason in report.rejected:
                print(f"skipped {path}: {reason}", file=err)
            studies.extend(report.studies)
            if not report.studies:
                print(f"xdsi-gateway publish: no DICOM instance found in {target}", file=err)
        else:
            studies.append(target)
    status = EXIT_OK if studies else EXIT_FAILURE
    for uid in dict.fromkeys(studies):
        result = source.publish_study(uid, force=force)
        if result.outcome in _OK_OUTCOMES or result.outcome == BUSY_OUTCOME:
            print(_line(result), file=out)
        elif result.outcome == UNKNOWN_OUTCOME:
            print(
                f"xdsi-gateway publish: unknown {uid}: no instance of this study was received "
                "by this imaging source",
                file=err,
            )
        else:
            print(f"xdsi-gateway publish: {_line(result)}", file=err)
        if result.outcome not in _OK_OUTCOMES:
            status = EXIT_FAILURE
    return status


def _line(result: PublishResult) -> str:
    parts = [result.outcome, result.study_instance_uid]
    if result.manifest_uid:
        parts.append(f"manifest {result.manifest_uid}")
    if result.replaced_entry_uuid:
        parts.append(f"replaces {result.replaced_entry_uuid}")
    if result.detail:
        parts.append(f"({result.detail})")
    return " ".join(parts)
