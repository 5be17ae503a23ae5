"""``xdsi-gateway publish``: publish studies on demand (RAD-68).

Each TARGET is a Study Instance UID already received by the source, or a folder whose DICOM files
are imported first (byte for byte) and whose studies are then published. One line per study is
printed: ``<outcome> <Study Instance UID> [manifest <KOS UID>] [detail]``.

Exit status: 0 when every study was published (or was already, with nothing new), 1 when one
was held, failed or is unknown, 2 when a TARGET is neither a folder nor a UID.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TextIO

from gateway.imaging.publisher import PUBLISHED_OUTCOME, UNCHANGED_OUTCOME, PublishResult
from gateway.imaging.source import ImagingSource
from gateway.imaging.storage import is_uid

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def publish(
    targets: Sequence[str], source: ImagingSource, *, out: TextIO, force: bool = False
) -> int:
    """Publish every target (Study Instance UID or folder); return the exit status."""
    studies: list[str] = []
    for target in targets:
        if os.path.isdir(target):
            report = source.load_directory(target)
            for path, reason in report.rejected:
                print(f"skipped {path}: {reason}", file=out)
            studies.extend(report.studies)
            if not report.studies:
                print(f"no DICOM instance found in {target}", file=out)
        elif is_uid(target):
            studies.append(target)
        else:
            print(f"{target}: neither a folder nor a Study Instance UID", file=out)
            return EXIT_USAGE
    status = EXIT_OK if studies else EXIT_FAILURE
    for uid in dict.fromkeys(studies):
        result = source.publish_study(uid, force=force)
        print(_line(result), file=out)
        if result.outcome not in (PUBLISHED_OUTCOME, UNCHANGED_OUTCOME):
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
