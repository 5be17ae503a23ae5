"""``xdsi-gateway imaging reject``: an operator rejects instances at the source (IHE RAD IOCM).

It makes a Rejection Note (a KOS titled with the reason, DICOM PS3.16 CID 7011) for the instances
named (a whole study, one series, or some instances), takes it in as the DICOM listener would
(stored, indexed and applied: ``gateway.imaging.rejection``), then publishes the study at once:
a manifest without the rejected instances replaces the previous one (RPLC), or, when nothing is
left, the previous manifest is deprecated.

Exit status: 0 done, 1 the note was taken in but the study could not be published now (the
running gateway's idle worker publishes it later), 2 bad arguments (unknown study, instance or
reason).
"""

from __future__ import annotations

import argparse
from typing import TextIO

from gateway.imaging.ingest import InstanceRejected
from gateway.imaging.outcomes import (
    BUSY_OUTCOME,
    DEPRECATED_OUTCOME,
    PUBLISHED_OUTCOME,
    UNCHANGED_OUTCOME,
)
from gateway.imaging.rejection import REJECTION_TITLES
from gateway.imaging.source import ImagingSource

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2

DESCRIPTION = (
    "Make an IHE IOCM Rejection Note (a DICOM Key Object Selection titled with the reason) for "
    "instances this imaging source holds, take it in as if received by C-STORE, and publish the "
    "study again: its manifest is replaced by one without them (RPLC), or deprecated when every "
    "instance is rejected. Reasons (DICOM CID 7011): "
    + "; ".join(f"{code} {meaning}" for code, meaning in REJECTION_TITLES.items())
    + "."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``imaging reject``."""
    parser.add_argument("--study", required=True, metavar="UID", help="Study Instance UID")
    parser.add_argument("--series", metavar="UID", help="only this series of the study")
    parser.add_argument(
        "--instance",
        action="append",
        default=[],
        metavar="UID",
        help="only these SOP Instance UIDs (repeat the option)",
    )
    parser.add_argument(
        "--reason",
        required=True,
        choices=sorted(REJECTION_TITLES),
        help="the rejection title (DICOM CID 7011 code, scheme DCM)",
    )
    parser.add_argument("--config", metavar="FILE", help="TOML configuration file")


def run(args: argparse.Namespace, source: ImagingSource, *, out: TextIO, err: TextIO) -> int:
    """Reject, then publish; one line per step. Returns the exit status."""
    try:
        note, rejected = source.reject(
            args.study, args.reason, series_uid=args.series, sop_instance_uids=args.instance
        )
    except (ValueError, InstanceRejected) as exc:
        print(f"xdsi-gateway imaging reject: {exc}", file=err)
        return EXIT_USAGE
    print(
        f"rejected {len(rejected)} instance(s) of study {args.study} "
        f"({args.reason} {REJECTION_TITLES[args.reason]}); Rejection Note {note.sop_instance_uid}",
        file=out,
    )
    result = source.publish_study(args.study, force=True)
    line = f"{result.outcome} {result.study_instance_uid}"
    if result.manifest_uid:
        line += f" manifest {result.manifest_uid}"
    if result.detail:
        line += f" ({result.detail})"
    if result.outcome in (PUBLISHED_OUTCOME, DEPRECATED_OUTCOME, UNCHANGED_OUTCOME):
        print(line, file=out)
        return EXIT_OK
    print(f"xdsi-gateway imaging reject: {line}", file=err)
    return EXIT_OK if result.outcome == BUSY_OUTCOME else EXIT_FAILURE
