"""``xdsi-gateway media import|export`` and the de-identification options of ``fetch-study``.

``gateway/cli.py`` (the assembly) wires them and hands in the collaborators: the imaging source
and the registry's patient store for import, the consumer's settings for export.

Exit status: 0 done; 1 something was refused, is missing or failed (the summary says what), or an
automatic reconciliation waits for ``--yes``; 2 bad options; 130 interrupted (running the same
command again continues).
"""

from __future__ import annotations

import argparse
import io
import secrets
import shutil
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from gateway.config import Settings
from gateway.consumer.settings import ConsumerSettings
from gateway.consumer.store import Destination
from gateway.media.deid_destination import DeidentifyingDestination
from gateway.media.deid_key import load_key
from gateway.media.deidentify import Deidentifier
from gateway.media.export import ExportReport, ExportRequest, ExportUsageError, export_media
from gateway.media.importer import (
    ImagingIntake,
    ImportPlan,
    ImportReport,
    MediaImporter,
    listed,
    plan_import,
    studies_line,
)
from gateway.media.inventory import Inventory, read_media
from gateway.media.iso import IsoError, iso_tool
from gateway.media.pdi import MediaLayoutError
from gateway.media.reconcile import (
    PatientDirectory,
    ReconciliationError,
    already_domain,
    parse_domain_patient,
)
from gateway.progress import human

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class _Silent(io.StringIO):
    """A text stream that drops everything (``--no-progress``)."""

    def write(self, text: str) -> int:
        return len(text)


# -- de-identification options --------------------------------------------------------------------


def add_deid_arguments(parser: argparse.ArgumentParser) -> None:
    """``--deidentify``, ``--deid-key``, ``--allow-burned-in`` (media export, fetch-study)."""
    group = parser.add_argument_group("de-identification (DICOM PS3.15 Annex E)")
    group.add_argument(
        "--deidentify",
        action="store_true",
        help="de-identify every instance: Basic Profile, Retain Longitudinal Temporal "
        "Information with Modified Dates, Clean Descriptors",
    )
    group.add_argument(
        "--deid-key",
        metavar="KEY|@FILE",
        help="secret of the keyed UIDs, pseudonyms and date shifts (at least 16 characters; "
        "@FILE reads it from a file); default: a key created once in the data folder",
    )
    group.add_argument(
        "--allow-burned-in",
        action="store_true",
        help="also export instances whose Burned In Annotation is YES (pixel data unchanged)",
    )


def deidentifier_from_args(args: argparse.Namespace, settings: Settings) -> Deidentifier | None:
    """The de-identifier the options ask for, or None. Raises: ValueError (a bad key), OSError."""
    if not args.deidentify:
        if args.deid_key or args.allow_burned_in:
            raise ValueError("--deid-key and --allow-burned-in need --deidentify")
        return None
    key = load_key(args.deid_key, settings.data_dir)
    return Deidentifier(key, allow_burned_in=args.allow_burned_in)


def deidentifying(
    args: argparse.Namespace, settings: Settings
) -> Callable[[Destination], Destination] | None:
    """For ``fetch-study``: a wrapper putting the destination behind de-identification (the key
    is read when it is called, so a bad key is a usage error there), or None."""
    if not (args.deidentify or args.deid_key or args.allow_burned_in):
        return None

    def wrap(destination: Destination) -> Destination:
        deidentifier = deidentifier_from_args(args, settings)
        assert deidentifier is not None
        return DeidentifyingDestination(destination, deidentifier)

    return wrap


# -- media import ---------------------------------------------------------------------------------


def add_import_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``xdsi-gateway media import``."""
    parser.add_argument("path", type=Path, metavar="PATH", help="a mounted CD/DVD/USB or folder")
    parser.add_argument(
        "--patient",
        metavar="CX",
        help="the affinity-domain patient, ID^^^&OID&ISO (default: the one fed patient with the "
        "medium's name, birth date and sex, used with --yes)",
    )
    parser.add_argument("--dry-run", action="store_true", help="list and reconcile, store nothing")
    parser.add_argument("--yes", action="store_true", help="use the fed patient matched")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    parser.add_argument("--config", metavar="FILE", help="TOML configuration file")


def run_import(
    args: argparse.Namespace,
    settings: Settings,
    *,
    imaging: ImagingIntake,
    patients: PatientDirectory | None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Run ``xdsi-gateway media import``; return the exit status."""
    out, err = out or sys.stdout, err or sys.stderr
    domain = settings.registry.patient_id_domain
    try:
        if args.patient:
            parse_domain_patient(args.patient, domain)
        inventory = read_media(args.path)
    except (ReconciliationError, OSError) as exc:
        print(f"xdsi-gateway media import: {exc}", file=err)
        return EXIT_USAGE
    for line in inventory.lines():
        print(line, file=out)
    try:
        plan = plan_import(
            inventory, patient_option=args.patient, directory=patients, domain_oid=domain
        )
    except ReconciliationError as exc:
        print(f"xdsi-gateway media import: {exc}", file=err)
        print("nothing imported", file=out)
        return EXIT_FAILURE
    _print_plan(plan, bool(args.patient), out)
    if not args.patient and not args.yes and not args.dry_run:
        print("nothing imported: run again with --yes to import as proposed", file=out)
        return EXIT_FAILURE
    if args.dry_run:
        return _dry_run(plan, imaging, out)
    work = settings.data_dir / "tmp" / "media" / secrets.token_hex(6)
    importer = MediaImporter(
        imaging, work_dir=work, progress=_Silent() if args.no_progress else err
    )
    try:
        report = importer.run(plan)
    except KeyboardInterrupt:
        print("interrupted: run the same command again to continue", file=err)
        return EXIT_INTERRUPTED
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return _import_summary(report, out)


def _print_plan(plan: ImportPlan, given: bool, out: TextIO) -> None:
    how = "given with --patient" if given else "matched on name, birth date and sex (ITI-8)"
    for patient, target in plan.targets.items():
        if already_domain(patient, target):
            print(f"patient {patient.patient_id}: already the domain's {target.cx}", file=out)
        else:
            print(f"patient {patient.patient_id} -> {target.cx} ({how})", file=out)


def _dry_run(plan: ImportPlan, imaging: ImagingIntake, out: TextIO) -> int:
    inventory: Inventory = plan.inventory
    present = sum(
        1 for i in inventory.instances if imaging.stored_patient_id(i.sop_instance_uid) is not None
    )
    print(
        f"dry run: would import {len(inventory.instances) - present} instance(s) of "
        f"{len(inventory.studies())} study(ies) ({present} already stored); nothing written",
        file=out,
    )
    for line in listed(inventory.refused):
        print(line, file=out)
    return EXIT_FAILURE if inventory.refused else EXIT_OK


def _import_summary(report: ImportReport, out: TextIO) -> int:
    for study_uid in report.published:
        print(studies_line(report, study_uid), file=out)
    for line in listed(report.refused):
        print(line, file=out)
    print(
        f"imported {report.stored} instance(s) ({human(report.bytes)}), "
        f"{report.already} already there, {len(report.refused)} refused, "
        f"{len(report.failed_studies)} study(ies) not published",
        file=out,
    )
    if report.complete:
        return EXIT_OK
    reasons = []
    if report.refused:
        reasons.append(f"{len(report.refused)} file(s) refused")
    if report.failed_studies:
        reasons.append(f"{len(report.failed_studies)} study(ies) not published")
    print(f"INCOMPLETE: {', '.join(reasons)}", file=out)
    return EXIT_FAILURE


# -- media export ---------------------------------------------------------------------------------


def add_export_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``xdsi-gateway media export`` (the peers' options come from the consumer)."""
    parser.add_argument("--patient", required=True, metavar="CX", help="patient, ID^^^&OID&ISO")
    parser.add_argument(
        "--study",
        action="append",
        default=[],
        metavar="UID",
        help="only this Study Instance UID (repeatable; default: every study of the patient)",
    )
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="the medium's root")
    parser.add_argument("--iso", type=Path, metavar="FILE", help="also an ISO 9660 image of it")
    parser.add_argument(
        "--creator",
        metavar="TEXT",
        help="who makes the medium and how to reach them, for README.TXT "
        "(default: xdsi-gateway on this host)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    add_deid_arguments(parser)


def run_export(
    args: argparse.Namespace,
    settings: Settings,
    consumer: ConsumerSettings,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Run ``xdsi-gateway media export``; return the exit status."""
    out, err = out or sys.stdout, err or sys.stderr
    try:
        if args.iso is not None:
            iso_tool()  # missing: say so before fetching anything
    except IsoError as exc:
        print(f"xdsi-gateway media export: {exc}", file=err)
        return EXIT_USAGE
    try:
        request = ExportRequest(
            patient_id=args.patient,
            study_uids=tuple(args.study),
            out=args.out,
            iso=args.iso,
            deidentifier=deidentifier_from_args(args, settings),
            creator=args.creator or f"xdsi-gateway on {socket.gethostname()}",
        )
        progress = _Silent() if args.no_progress else err
        report = export_media(request, consumer, progress=progress)
    except (MediaLayoutError, IsoError) as exc:  # the medium could not be finished
        print(f"xdsi-gateway media export: {exc}", file=err)
        return EXIT_FAILURE
    except (ExportUsageError, ValueError, OSError) as exc:  # a bad key, a folder in use ...
        print(f"xdsi-gateway media export: {exc}", file=err)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted: run the same command again to continue", file=err)
        return EXIT_INTERRUPTED
    return _export_summary(report, args, out)


def _export_summary(report: ExportReport, args: argparse.Namespace, out: TextIO) -> int:
    fetch = report.fetch
    for study in fetch.studies:
        print(
            f"study {study.study_instance_uid}: {study.present + study.fetched} of "
            f"{study.total} instance(s) on the medium, {len(study.missing)} missing",
            file=out,
        )
        for uid, reason in list(study.missing.items())[:20]:
            print(f"  missing {uid}: {reason}", file=out)
    for problem in fetch.problems:
        print(f"problem: {problem}", file=out)
    for note in fetch.notes:
        print(note, file=out)
    if not report.finished:
        retry = "; run the same command again to retry" if fetch.retry_may_help else ""
        print(f"INCOMPLETE: the medium in {args.out} is not finished{retry}", file=out)
        return EXIT_FAILURE
    print(
        f"PDI medium written: {args.out} (DICOMDIR, README.TXT, INDEX.HTM; "
        f"{report.instances} instance(s))",
        file=out,
    )
    if report.iso_size is not None:
        print(f"ISO 9660 image written: {args.iso} ({human(report.iso_size)})", file=out)
    return EXIT_OK
