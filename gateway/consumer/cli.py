"""``xdsi-gateway fetch-study`` and ``xdsi-gateway query``: the consumer's command line.

``gateway/cli.py`` wires them::

    fetch = sub.add_parser("fetch-study", help=..., description=...)
    consumer_cli.add_fetch_arguments(fetch)
    fetch.set_defaults(func=lambda args: consumer_cli.run_fetch(args, _settings(args)))

and likewise ``add_query_arguments``/``run_query``. (``xdsi-gateway demo`` is assembly, not
consumer: it starts a whole gateway, so it lives in :mod:`gateway.demo`.)

Exit status: 0 done (every instance present); 1 something is missing or a peer failed (the
summary says what, on stderr); 2 bad options (a --patient that is no CX included); 130
interrupted (re-running continues where it stopped). Without --registry, one line on stderr
names the registry the configuration points at.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from gateway.commandline import announce
from gateway.config import Settings
from gateway.consumer.clients import RegistryQueryClient
from gateway.consumer.errors import ConsumerError
from gateway.consumer.fetch import FetchReport, FetchRequest, StudyFetcher
from gateway.consumer.pacs import PacsDestination, parse_store_target
from gateway.consumer.queries import (
    KOS_FORMAT_CODE,
    QUERY_IDS,
    QueryOptions,
    QueryUsageError,
    build_slots,
    modality_code,
    parse_code,
)
from gateway.consumer.settings import ConsumerSettings, consumer_settings
from gateway.consumer.store import Destination, DicomdirDestination, FolderDestination
from gateway.consumer.syntaxes import parse_transfer_syntaxes
from gateway.consumer.table import render_json, render_table, study_uids
from gateway.metadata.datatypes import DataTypeError, format_cx, parse_cx
from gateway.metadata.model import DocumentEntry
from gateway.metadata.query import LEAF_CLASS, OBJECT_REF
from gateway.progress import human

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
MAX_LISTED = 20  # missing instances listed one per line in the summary


def _mapping(text: str) -> tuple[str, str]:
    unique_id, sep, url = text.partition("=")
    if not sep or not unique_id.strip() or not url.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not UID=URL")
    return unique_id.strip(), url.strip()


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _add_peer_arguments(parser: argparse.ArgumentParser) -> None:
    peers = parser.add_argument_group("peers (default: this gateway's own actors, then [consumer])")
    peers.add_argument("--registry", metavar="URL", help="ITI-18 endpoint of the registry")
    peers.add_argument(
        "--initiating-gateway",
        metavar="URL",
        help="XCA Initiating Gateway (/xca/ig): queries all communities, retrieves their "
        "documents (default: this gateway's own when xca.enabled, unless --registry is given)",
    )
    peers.add_argument(
        "--repository",
        action="append",
        type=_mapping,
        default=[],
        metavar="UID=URL",
        help="ITI-43 endpoint of a repositoryUniqueId (repeatable)",
    )
    peers.add_argument(
        "--imaging-source",
        action="append",
        type=_mapping,
        default=[],
        metavar="UID=URL",
        help="RAD-69 endpoint of a Retrieve Location UID (repeatable)",
    )
    peers.add_argument("--timeout", type=float, help="seconds per request (default 120)")
    peers.add_argument("--ca-file", help="CA bundle to verify https peers")
    peers.add_argument("--insecure", action="store_true", help="do not verify https peers")
    peers.add_argument("--cert", help="client certificate (PEM) for mutual TLS")
    peers.add_argument("--key", help="private key (PEM) of --cert")
    parser.add_argument("--config", metavar="FILE", help="TOML configuration file")


def check_patient(value: str, settings: Settings) -> None:
    """Refuse a ``--patient`` that is no XDS patient id before asking anyone (exit 2).

    Standard: ITI TF-3 Table 4.2.3.1.7-2 ("CX": ID^^^&OID&ISO). Raises: ValueError.
    """
    try:
        parse_cx(value)
    except DataTypeError as exc:
        example = format_cx("PAT-1", settings.registry.patient_id_domain)
        raise ValueError(
            f"--patient {value!r}: {exc}; write it as ID^^^&OID&ISO, e.g. {example!r}"
        ) from exc


def _announce(
    command: str, args: argparse.Namespace, consumer: ConsumerSettings, err: TextIO
) -> None:
    """Name the registry the configuration points at when no --registry was given."""
    if not args.registry:
        announce(command, args.config, url=consumer.registry_url or None, err=err)


def add_peer_arguments(parser: argparse.ArgumentParser) -> None:
    """The peer options (--registry, --repository, --imaging-source, TLS, --config) of the
    consumer's commands, for other commands that fetch through the consumer (media export)."""
    _add_peer_arguments(parser)


def settings_from_args(args: argparse.Namespace, settings: Settings) -> ConsumerSettings:
    """The consumer's settings: this gateway, the configuration, then the command's options."""
    verify: bool | str | None = False if args.insecure else (args.ca_file or None)
    consumer = consumer_settings(
        settings,
        registry_url=args.registry,
        initiating_gateway_url=args.initiating_gateway,
        repositories=dict(args.repository) or None,
        imaging_sources=dict(args.imaging_source) or None,
        timeout=args.timeout,
        verify=verify,
        cert=(args.cert, args.key or args.cert) if args.cert else None,
        parallel_requests=getattr(args, "parallel", None),
        batch_size=getattr(args, "batch_size", None),
        retries=getattr(args, "retries", None),
    )
    if args.registry and not args.initiating_gateway:
        # a registry named on the command line is asked directly, not through a gateway
        consumer = dataclasses.replace(consumer, initiating_gateway_url="")
    return consumer


# -- fetch-study ----------------------------------------------------------------------------------


def add_fetch_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``xdsi-gateway fetch-study``."""
    parser.add_argument("--patient", required=True, metavar="CX", help="patient id, ID^^^&OID&ISO")
    parser.add_argument("--study", metavar="UID", help="only this Study Instance UID")
    parser.add_argument("--accession", metavar="NUMBER", help="only this accession number")
    parser.add_argument("--modality", metavar="CODE", help="only studies with this modality (CT)")
    parser.add_argument("--since", metavar="DATE", help="only studies performed since DATE")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--out", type=Path, metavar="DIR", help="write Part 10 files below DIR")
    target.add_argument(
        "--store-to", metavar="AET@HOST:PORT", help="C-STORE the instances to a DICOM peer"
    )
    parser.add_argument("--dicomdir", action="store_true", help="with --out: a DICOMDIR File-set")
    parser.add_argument("--calling-aet", default="XDSI_CONSUMER", help="our AE title (--store-to)")
    parser.add_argument(
        "--transfer-syntax",
        action="append",
        default=[],
        metavar="TS",
        help="requested transfer syntaxes: UIDs, pydicom keywords or all/native/compressed "
        "(repeatable or comma-separated; default all)",
    )
    parser.add_argument(
        "--via",
        choices=("rad-69", "wado-rs"),
        default="rad-69",
        help="retrieve the instances by RAD-69 (default) or by WADO-RS from the Retrieve URL "
        "the manifest names (XDS-I.b WADO-RS option)",
    )
    parser.add_argument("--parallel", type=_positive, help="RAD-69 requests at once (default 4)")
    parser.add_argument("--batch-size", type=_positive, help="instances per RAD-69 request (50)")
    parser.add_argument("--retries", type=int, help="attempts after the first (default 3)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    _add_peer_arguments(parser)


def _destination(args: argparse.Namespace, timeout: float) -> Destination:
    if args.store_to:
        return PacsDestination(
            parse_store_target(args.store_to), calling_ae_title=args.calling_aet, timeout=timeout
        )
    if args.dicomdir:
        return DicomdirDestination(args.out)
    return FolderDestination(args.out)


def run_fetch(
    args: argparse.Namespace,
    settings: Settings,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
    wrap: Callable[[Destination], Destination] | None = None,
) -> int:
    """Run ``xdsi-gateway fetch-study`` from parsed arguments; return the exit status.

    ``wrap`` puts the destination behind another one (``--deidentify``: gateway.media wraps it
    in a de-identifying destination; the assembly passes it).
    """
    out, err = out or sys.stdout, err or sys.stderr
    try:
        check_patient(args.patient, settings)
        consumer = settings_from_args(args, settings)
        syntaxes = parse_transfer_syntaxes(args.transfer_syntax or ["all"])
        if args.dicomdir and not args.out:
            raise ValueError("--dicomdir needs --out")
        destination = _destination(args, consumer.timeout)
        if wrap is not None:
            destination = wrap(destination)
    except (ValueError, OSError) as exc:
        print(f"xdsi-gateway fetch-study: {exc}", file=err)
        return EXIT_USAGE
    _announce("fetch-study", args, consumer, err)
    request = FetchRequest(
        patient_id=args.patient,
        study_uid=args.study,
        accession=args.accession,
        modality=args.modality,
        since=args.since,
        transfer_syntaxes=syntaxes,
    )
    fetcher = StudyFetcher(
        consumer,
        destination,
        progress=_Silent() if args.no_progress else err,
        via=getattr(args, "via", "rad-69"),
    )
    try:
        report = fetcher.run(request)
    except KeyboardInterrupt:
        print("interrupted: run the same command again to continue", file=err)
        return EXIT_INTERRUPTED
    print_summary(report, destination.describe(), out, err)
    return EXIT_OK if report.complete else EXIT_FAILURE


class _Silent(io.StringIO):
    """A text stream that drops everything (``--no-progress``); never a terminal."""

    def write(self, text: str) -> int:
        return len(text)


def print_summary(report: FetchReport, where: str, out: TextIO, err: TextIO | None = None) -> None:
    """Print what was fetched and skipped (``out``) and what is missing or failed (``err``),
    study by study. Running the command again is suggested only when it may help (a timeout,
    a reset, a damaged transfer), never for a refused query or a patient without manifests."""
    err = err or out
    for study in report.studies:
        print(
            f"study {study.study_instance_uid}: {study.total} instance(s): "
            f"{study.present} already present, {study.fetched} fetched "
            f"({human(study.bytes)}) in {study.requests} RAD-69 request(s), "
            f"{len(study.missing)} missing, {study.seconds:.1f} s",
            file=out,
        )
        for uid, reason in list(study.missing.items())[:MAX_LISTED]:
            print(f"  missing {uid}: {reason}", file=err)
        if len(study.missing) > MAX_LISTED:
            print(f"  ... and {len(study.missing) - MAX_LISTED} more", file=err)
    for problem in report.problems:
        print(f"xdsi-gateway fetch-study: {problem}", file=err)
    for note in report.notes:
        print(note, file=out)
    missing = sum(len(study.missing) for study in report.studies)
    if report.complete:
        print(
            f"complete: {report.instances} instance(s) of {len(report.studies)} study(ies) "
            f"in {where}",
            file=out,
        )
    elif report.studies:
        hint = "; run the same command again to retry" if report.retry_may_help else ""
        print(
            f"INCOMPLETE: {missing} instance(s) missing, {len(report.problems)} problem(s)" + hint,
            file=err,
        )


# -- query ----------------------------------------------------------------------------------------

_CODE_OPTIONS = (
    ("class_code", "classCode"),
    ("type_code", "typeCode"),
    ("format_code", "formatCode"),
    ("event_code", "eventCodeList"),
    ("practice_setting_code", "practiceSettingCode"),
    ("facility_type_code", "healthcareFacilityTypeCode"),
    ("confidentiality_code", "confidentialityCode"),
)


def add_query_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``xdsi-gateway query``."""
    parser.add_argument(
        "--query",
        "--type",
        dest="query",
        default="FindDocuments",
        metavar="NAME",
        help=f"stored query: {', '.join(QUERY_IDS)} (or its urn:uuid; default FindDocuments)",
    )
    parser.add_argument("--patient", metavar="CX", help="patient id, ID^^^&OID&ISO")
    parser.add_argument(
        "--status",
        action="append",
        default=[],
        help="approved (default), deprecated, submitted or all (repeatable)",
    )
    for name, attribute in _CODE_OPTIONS:
        parser.add_argument(
            "--" + name.replace("_", "-"),
            dest=name,
            action="append",
            default=[],
            type=parse_code,
            metavar="CODE^^SCHEME",
            help=f"{attribute} (repeatable: any of them)",
        )
    parser.add_argument("--modality", action="append", default=[], help="eventCodeList modality")
    parser.add_argument("--kos", action="store_true", help="only imaging manifests (formatCode)")
    parser.add_argument("--from", dest="time_from", metavar="DATE", help="service start from")
    parser.add_argument("--to", dest="time_to", metavar="DATE", help="service start until")
    parser.add_argument("--created-from", metavar="DATE", help="creationTime from")
    parser.add_argument("--created-to", metavar="DATE", help="creationTime until")
    parser.add_argument("--uuid", action="append", default=[], help="entryUUID (Get queries)")
    parser.add_argument("--unique-id", action="append", default=[], help="uniqueId (Get queries)")
    parser.add_argument("--reference-id", action="append", default=[], help="referenceIdList CXi")
    parser.add_argument("--association-type", action="append", default=[], help="e.g. RPLC")
    parser.add_argument("--study", metavar="UID", help="show only documents of this study")
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="any parameter, value coded as ITI TF-2 §3.18.4.1.2.3.5 says ('x', ('a','b'), 2024)",
    )
    parser.add_argument("--object-ref", action="store_true", help="returnType ObjectRef")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    _add_peer_arguments(parser)


def query_options(args: argparse.Namespace) -> QueryOptions:
    """QueryOptions from parsed ``query`` arguments. Raises: QueryUsageError."""
    raw = []
    for item in args.param:
        name, sep, value = item.partition("=")
        if not sep or not name.startswith("$"):
            raise QueryUsageError(f"--param {item!r} is not $Name=Value")
        raw.append((name, value))
    return QueryOptions(
        query=args.query,
        patient_id=args.patient,
        statuses=args.status or ["approved"],
        class_codes=args.class_code,
        type_codes=args.type_code,
        format_codes=args.format_code + ([KOS_FORMAT_CODE] if args.kos else []),
        event_codes=args.event_code + [modality_code(m) for m in args.modality],
        practice_setting_codes=args.practice_setting_code,
        facility_type_codes=args.facility_type_code,
        confidentiality_codes=args.confidentiality_code,
        time_from=args.time_from,
        time_to=args.time_to,
        created_from=args.created_from,
        created_to=args.created_to,
        entry_uuids=args.uuid,
        unique_ids=args.unique_id,
        reference_ids=args.reference_id,
        association_types=args.association_type,
        raw=raw,
    )


def run_query(
    args: argparse.Namespace,
    settings: Settings,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Run ``xdsi-gateway query`` from parsed arguments; return the exit status."""
    out, err = out or sys.stdout, err or sys.stderr
    try:
        if args.patient:
            check_patient(args.patient, settings)
        consumer = settings_from_args(args, settings)
        query_id, slots = build_slots(query_options(args))
    except (QueryUsageError, ValueError) as exc:
        print(f"xdsi-gateway query: {exc}", file=err)
        return EXIT_USAGE
    _announce("query", args, consumer, err)
    try:
        client = RegistryQueryClient(
            consumer.require_registry(),
            timeout=consumer.timeout,
            verify=consumer.verify,
            cert=consumer.cert,
        )
        result = client.query(
            query_id, slots, return_type=OBJECT_REF if args.object_ref else LEAF_CLASS
        )
    except ConsumerError as exc:
        print(f"xdsi-gateway query: {exc}", file=err)
        return EXIT_FAILURE
    objects: Sequence[Any] = result.objects
    if args.study:
        objects = [
            o for o in objects if not isinstance(o, DocumentEntry) or args.study in study_uids(o)
        ]
    if args.json:
        print(
            render_json(objects, status=result.status, errors=[str(e) for e in result.errors]),
            file=out,
        )
    else:
        for error in result.errors:
            print(f"{result.status}: {error}", file=err)
        print(render_table(objects), file=out)
    return EXIT_OK


# -- standalone entry point ----------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The two consumer commands on their own (``python -m gateway.consumer.cli``), the same
    options as under ``xdsi-gateway``."""
    parser = argparse.ArgumentParser(prog="xdsi-consumer", description="Imaging Document Consumer")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    fetch = sub.add_parser("fetch-study", help="fetch a patient's studies (ITI-18, ITI-43, RAD-69)")
    add_fetch_arguments(fetch)
    fetch.set_defaults(run=run_fetch)
    query = sub.add_parser("query", help="run a stored query (ITI-18) and print the result")
    add_query_arguments(query)
    query.set_defaults(run=run_query)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the command (configuration errors exit 2)."""
    from gateway.config import load_settings
    from gateway.errors import ConfigError

    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(getattr(args, "config", None))
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return int(args.run(args, settings))


if __name__ == "__main__":
    sys.exit(main())
