"""The ``xdsi-gateway`` command (also ``python -m gateway``).

Subcommands: ``serve`` runs every enabled actor until SIGINT/SIGTERM; ``config`` prints the
effective settings; feed, provide, retrieve, query, fetch-study, demo, publish, imaging pending,
db upgrade and certs init (README "Command line"). Every command follows the same rules
(``gateway.commandline``): results on stdout, errors as one line on stderr, exit 0 done, 1
failed, 2 usage or configuration error, 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway import __version__
from gateway.commandline import EXIT_INTERRUPTED, announce, require_gateway_data
from gateway.config import Settings, load_settings, settings_as_dict
from gateway.errors import ConfigError, StartupError

if TYPE_CHECKING:
    from gateway.app import Gateway
    from gateway.database.exclusive import ProcessLock
    from gateway.serving.listeners import Listeners

log = logging.getLogger("gateway")

EXIT_OK, EXIT_FAILURE, EXIT_CONFIG = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xdsi-gateway",
        description="IHE XDS-I.b gateway: registry, repository, imaging document source, consumer.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser(
        "serve",
        help="run every enabled actor until interrupted",
        description="Run every enabled actor until SIGINT/SIGTERM; requests in "
        "flight are finished, then the command exits 0.",
    )
    serve.add_argument(
        "--config",
        metavar="FILE",
        help="TOML configuration file "
        "(default: built-in defaults; XDSI_<SECTION>_<KEY> variables override)",
    )
    serve.add_argument(
        "--workers",
        type=_positive_int,
        metavar="N",
        help="gateway processes sharing the listening ports, each restarted if it dies "
        "(default: http.workers, 1); more than 1 needs a PostgreSQL database",
    )
    serve.set_defaults(func=_cmd_serve)

    feed = sub.add_parser(
        "feed",
        help="send HL7 v2 ADT messages from files over MLLP (ITI-8) and print each ACK",
        description="Send the ADT messages in FILE... (one or several per file; CR, LF or CRLF "
        "segment separators) to an ITI-8 Patient Identity Feed listener over MLLP, one "
        "connection, and print each acknowledgement. Exit 0 when every message got AA.",
    )
    feed.add_argument("files", nargs="+", metavar="FILE", type=Path)
    feed.add_argument("--host", default=None, help="listener host (default: hl7.host)")
    feed.add_argument(
        "--port", type=int, default=None, help="listener port (default: hl7.mllp_port)"
    )
    feed.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for each ACK")
    feed.add_argument("--config", metavar="FILE", help="TOML configuration file")
    feed.set_defaults(func=_cmd_feed)

    from gateway.repository import cli as repository_cli

    provide = sub.add_parser(
        "provide",
        help="submit a document to an XDS.b repository (ITI-41)",
        description="Submit FILE with generated or templated metadata to an XDS.b Document "
        "Repository by ITI-41 Provide and Register Document Set-b (MTOM).",
    )
    repository_cli.add_provide_arguments(provide)
    provide.set_defaults(func=_cmd_provide)
    retrieve = sub.add_parser(
        "retrieve",
        help="fetch a document from an XDS.b repository (ITI-43)",
        description="Fetch one document by ITI-43 Retrieve Document Set and write it to --out.",
    )
    repository_cli.add_retrieve_arguments(retrieve)
    retrieve.set_defaults(func=_cmd_retrieve)

    from gateway.consumer import cli as consumer_cli

    fetch = sub.add_parser(
        "fetch-study",
        help="fetch a patient's imaging studies (ITI-18, ITI-43, RAD-69) into a folder or a PACS",
        description="Find the patient's KOS manifests (ITI-18), retrieve them (ITI-43), then the "
        "instances they list (RAD-69, in parallel batches), into --out DIR or by C-STORE to "
        "--store-to AET@host:port. Re-running skips what is already there; exit 1 lists what "
        "is missing.",
    )
    consumer_cli.add_fetch_arguments(fetch)
    from gateway.media import cli as media_cli

    media_cli.add_deid_arguments(fetch)
    fetch.set_defaults(func=_cmd_fetch)
    query = sub.add_parser(
        "query",
        help="run a stored query (ITI-18) and print the result as a table or JSON",
        description="Run any ITI-18 stored query with friendly options and print the result.",
    )
    consumer_cli.add_query_arguments(query)
    query.set_defaults(func=lambda a: consumer_cli.run_query(a, _settings(a)))
    _add_media_commands(sub)
    _add_notify_commands(sub)
    from gateway import demo_communities as demo_module

    demo = sub.add_parser(
        "demo",
        help="show the whole XDS-I.b exchange on a temporary data folder",
        description="Start a gateway with every actor in a temporary folder, feed a patient, send "
        "a generated study over DICOM, wait for its manifest, query, fetch it back, verify every "
        "instance byte for byte, print each step with timings, and clean up.",
    )
    demo_module.add_arguments(demo)
    demo.set_defaults(func=demo_module.run)

    publish = sub.add_parser(
        "publish",
        help="publish studies now: a KOS manifest per study by RAD-68 (ITI-41)",
        description="Publish each study now instead of after imaging_source.study_idle_seconds: "
        "build its KOS manifest and provide it to the repository (RAD-68). A DICOM file, or a "
        "folder (DICOM Part 10 files, recursively), is first loaded into the imaging source. "
        "Run it on the machine and with the configuration of the imaging source: it never "
        "creates a new database.",
    )
    publish.add_argument("targets", nargs="+", metavar="STUDY_UID|FILE|DIR")
    publish.add_argument(
        "--force", action="store_true", help="publish again (replacing) even if nothing changed"
    )
    publish.add_argument("--config", metavar="FILE", help="TOML configuration file")
    publish.set_defaults(func=_cmd_publish)

    db = sub.add_parser(
        "db",
        help="gateway database maintenance",
        description="Gateway database maintenance (gateway.database_url, and "
        "registry.database_url when set).",
    )
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    upgrade = db_sub.add_parser(
        "upgrade",
        help="create or migrate the database schema to the newest revision (Alembic)",
        description="Create the tables of every actor (registry, repository index, imaging "
        "index, process leases), or migrate them to the newest revision. Safe to run at any "
        "time, also while gateways run; `serve` does it at start too.",
    )
    upgrade.add_argument("--config", metavar="FILE", help="TOML configuration file")
    upgrade.set_defaults(func=_cmd_db_upgrade)

    imaging = sub.add_parser(
        "imaging",
        help="the imaging source's studies: what waits to be published",
        description="Imaging document source maintenance (reads the gateway's data).",
    )
    imaging_sub = imaging.add_subparsers(dest="imaging_command", required=True, metavar="ACTION")
    pending = imaging_sub.add_parser(
        "pending",
        help="list studies not published yet: why, and what to do",
        description="List the received studies that are not published: held (their patient is "
        "not known), failed (retried by itself), receiving or being published; with the "
        "Patient ID as received, since when, the reason and what to do.",
    )
    pending.add_argument("--held", action="store_true", help="only studies held for their patient")
    pending.add_argument("--json", action="store_true", help="print JSON instead of text")
    pending.add_argument("--config", metavar="FILE", help="TOML configuration file")
    pending.set_defaults(func=_cmd_imaging_pending)
    from gateway.imaging import reject_command

    reject = imaging_sub.add_parser(
        "reject",
        help="reject instances at the source (IHE IOCM Rejection Note): republish without them",
        description=reject_command.DESCRIPTION,
    )
    reject_command.add_arguments(reject)
    reject.set_defaults(func=_cmd_imaging_reject)

    _add_registry_commands(sub)

    from gateway.security import certs as certs_cli

    certs = sub.add_parser(
        "certs",
        help="demo certificates for a small affinity domain (TLS, ITI-19)",
        description="Create a demo certificate authority and node certificates.",
    )
    certs_cli.add_certs_arguments(certs)
    certs.set_defaults(func=certs_cli.run_certs_init)

    config = sub.add_parser(
        "config",
        help="print the effective configuration as JSON",
        description="Validate the configuration and print it as JSON.",
    )
    config.add_argument("--config", metavar="FILE", help="TOML configuration file")
    config.set_defaults(func=_cmd_config)
    return parser


def _add_media_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``media import`` and ``media export`` (gateway.media)."""
    from gateway.consumer import cli as consumer_cli
    from gateway.media import cli as media_cli

    media = sub.add_parser(
        "media",
        help="portable media: import a CD/USB (IRWF.b), export PDI media (de-identified if asked)",
        description="Import DICOM media into the exchange, or export a patient's studies as IHE "
        "PDI media.",
    )
    media_sub = media.add_subparsers(dest="media_command", required=True, metavar="ACTION")
    imp = media_sub.add_parser(
        "import",
        help="import a CD, DVD, USB stick or folder: reconcile the patient, store, publish",
        description="List what PATH holds (through its DICOMDIR, else every file), reconcile its "
        "patient with the affinity domain (--patient, or the one ITI-8 patient with the same "
        "name, birth date and sex, with --yes), coerce Patient ID and issuer (the medium's kept "
        "in Other Patient IDs and Original Attributes Sequences), store each instance through "
        "the imaging source and publish each study (RAD-68). Re-importing changes nothing.",
    )
    media_cli.add_import_arguments(imp)
    imp.set_defaults(func=_cmd_media_import)
    export = media_sub.add_parser(
        "export",
        help="write a patient's studies as IHE PDI media (DICOMDIR, README.TXT, INDEX.HTM, ISO)",
        description="Fetch the patient's studies from the exchange (ITI-18, ITI-43, RAD-69) "
        "into --out as a DICOM File-set (STD-GEN-CD/USB: Explicit VR Little Endian) with "
        "README.TXT and INDEX.HTM, and with --iso an ISO 9660 image of it. Re-running fetches "
        "only what is missing.",
    )
    media_cli.add_export_arguments(export)
    consumer_cli.add_peer_arguments(export)
    export.set_defaults(func=_cmd_media_export)

    ui = sub.add_parser(
        "ui",
        help="the exchange browser (/ui): operator accounts",
        description="Operator accounts of the exchange browser at /ui (ui.accounts_file).",
    )
    ui_sub = ui.add_subparsers(dest="ui_command", required=True, metavar="ACTION")
    add_user = ui_sub.add_parser(
        "add-user",
        help="add an operator account or set its password",
        description="Add NAME to ui.accounts_file (scrypt password hash), or replace its "
        "password. The password is asked twice on the terminal, or read from standard input "
        "with --password-stdin (one line).",
    )
    add_user.add_argument("name", metavar="NAME")
    add_user.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    add_user.add_argument("--config", metavar="FILE", help="TOML configuration file")
    add_user.set_defaults(func=_cmd_ui_add_user)


def _add_notify_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``push`` and ``inbox``: XDR-I (gateway.notify)."""
    from gateway.notify import cli as notify_cli

    push = sub.add_parser(
        "push",
        help="send a published study's KOS to a remote XDR Document Recipient (XDR-I)",
        description="Queue an XDR-I push (ITI-41 with the study's KOS, RAD-68 semantics) for "
        "the serving gateway and wait for it; --with-images AET@host:port also sends the "
        "instances by C-STORE. Exit 0 done, 1 refused, 3 still queued.",
    )
    notify_cli.add_push_arguments(push)
    push.set_defaults(func=_cmd_push)
    inbox = sub.add_parser(
        "inbox",
        help="list or accept XDR submissions received at /xdr/recipient",
        description="inbox list: the submissions received; inbox accept ID: import one (its "
        "images by RAD-69 from the sender, then published here). Exit 0 done, 1 failed, 3 "
        "still queued.",
    )
    notify_cli.add_inbox_arguments(inbox)
    inbox.set_defaults(func=_cmd_inbox)


def _cmd_inbox(args: argparse.Namespace) -> int:
    from gateway.notify import cli as notify_cli

    settings = _settings(args)
    require_gateway_data("inbox", settings, getattr(args, "config", None))
    return notify_cli.run_inbox(args, settings)


def _cmd_push(args: argparse.Namespace) -> int:
    """``push``: the instances of ``--with-images`` read from the imaging index here."""
    from sqlalchemy import select

    from gateway.database import Database
    from gateway.imaging.schema import imaging_instance
    from gateway.notify import cli as notify_cli
    from gateway.notify.forward import ForwardRule, StoredInstance, parse_destination

    settings = _settings(args)
    require_gateway_data("push", settings, getattr(args, "config", None))
    forward = []
    if args.with_images:
        try:
            parse_destination(args.with_images)
        except ValueError as exc:
            print(f"xdsi-gateway push: --with-images: {exc}", file=sys.stderr)
            return 2
        database = Database(settings.gateway_database_url)
        try:
            with database.read() as conn:
                uids = conn.execute(
                    select(imaging_instance.c.sop_instance_uid)
                    .where(imaging_instance.c.study_instance_uid == args.study)
                    .order_by(imaging_instance.c.received_at, imaging_instance.c.sop_instance_uid)
                ).scalars()
                rule = ForwardRule(destination=args.with_images, tls=settings.tls.enabled)
                forward = [
                    rule.message(StoredInstance(uid, args.study, Path(), None, None, "push"))
                    for uid in uids
                ]
        finally:
            database.dispose()
    return notify_cli.run_push(args, settings, forward)


def _add_registry_commands(sub: Any) -> None:
    """``registry remove``: the operator's Remove Metadata (ITI-62 rules) and Documents."""
    registry = sub.add_parser(
        "registry",
        help="registry maintenance: remove what was published by mistake",
        description="Document Registry maintenance on the gateway's own database.",
    )
    registry_sub = registry.add_subparsers(dest="registry_command", required=True, metavar="ACTION")
    remove = registry_sub.add_parser(
        "remove",
        help="remove registry objects (and their documents), all or nothing",
        description="Remove DocumentEntries, SubmissionSets, Folders and Associations by "
        "entryUUID, with the rules of ITI-62 Remove Metadata (nothing is removed when an object "
        "is unknown, still referenced, or would leave another unreferenced). "
        "--submission-set names a whole submission instead; --documents also deletes the "
        "removed DocumentEntries' documents from this gateway's repository (ITI-86 rules).",
    )
    remove.add_argument("ids", nargs="*", metavar="ENTRYUUID", help="objects to remove")
    remove.add_argument(
        "--submission-set",
        metavar="ID",
        help="remove this submission (SubmissionSet entryUUID or uniqueId) and what it added",
    )
    remove.add_argument(
        "--documents",
        action="store_true",
        help="also delete the documents of removed DocumentEntries held by this repository",
    )
    remove.add_argument(
        "--dry-run", action="store_true", help="print what would be removed; change nothing"
    )
    remove.add_argument("--config", metavar="FILE", help="TOML configuration file")
    remove.set_defaults(func=_cmd_registry_remove)


def _cmd_registry_remove(args: argparse.Namespace) -> int:
    import time

    from gateway.database import Database
    from gateway.errors import XDSError
    from gateway.metadata.retrieve import DocumentRequest
    from gateway.registry.remove import MetadataRemover
    from gateway.repository.index import RepositoryIndex
    from gateway.repository.remove import remove_stored
    from gateway.repository.storage import LocalFolderStorage

    settings = _settings(args)
    require_gateway_data("registry remove", settings, args.config)
    announce("registry remove", args.config, data_dir=settings.data_dir)
    db = Database(settings.database_url)
    try:
        remover = MetadataRemover(db)
        ids = list(args.ids)
        if args.submission_set:
            contents = remover.submission_contents(args.submission_set)
            if not contents:
                print(f"no SubmissionSet {args.submission_set} in the registry", file=sys.stderr)
                return EXIT_FAILURE
            ids += contents
        if not ids:
            print("nothing to remove: name entryUUIDs or --submission-set", file=sys.stderr)
            return EXIT_CONFIG
        if args.dry_run:
            print("\n".join(dict.fromkeys(ids)))
            return EXIT_OK
        try:
            result = remover.remove(ids)
        except XDSError as exc:
            for error in getattr(exc, "errors", [exc]):
                print(f"refused: {error.code}: {error}", file=sys.stderr)
            return EXIT_FAILURE
        print(
            f"removed {result.count} object(s): "
            + ", ".join(f"{len(v)} {k}" for k, v in result.removed.items() if v)
        )
        uids = result.document_unique_ids
        if args.documents and uids and settings.repository.enabled:
            engine = Database(settings.gateway_database_url)
            try:
                index = RepositoryIndex(engine.engine)
                held = [u for u in uids if index.get(u) is not None]
                unique_id = settings.repository.unique_id
                removed = (
                    remove_stored(
                        [
                            DocumentRequest(repository_unique_id=unique_id, document_unique_id=u)
                            for u in held
                        ],
                        unique_id=unique_id,
                        index=index,
                        storage=LocalFolderStorage(settings.repository_storage_dir),
                        owner=f"cli:registry-remove:{os.getpid()}",
                        now=time.time(),
                    )
                    if held
                    else []
                )
            except XDSError as exc:
                for error in getattr(exc, "errors", [exc]):
                    print(f"documents not removed: {error.code}: {error}", file=sys.stderr)
                return EXIT_FAILURE
            finally:
                engine.dispose()
            print(f"removed {len(removed)} document(s) from repository {unique_id}")
        return EXIT_OK
    finally:
        db.dispose()


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of 1 or more, got {text!r}")
    return value


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(getattr(args, "config", None))


def _cmd_ui_add_user(args: argparse.Namespace) -> int:
    """``ui add-user NAME``: write an operator account (``gateway.ui.accounts``)."""
    import getpass

    from gateway.ui.accounts import AccountError, add_user

    settings = _settings(args)
    if not settings.ui.accounts_file:
        print("ui.accounts_file is not set: name the accounts file first", file=sys.stderr)
        return 2
    path = settings.path(settings.ui.accounts_file)
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass(f"password for {args.name}: ")
        if getpass.getpass("again: ") != password:
            print("the two passwords differ", file=sys.stderr)
            return 1
    try:
        new = add_user(path, args.name, password)
    except AccountError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{'added' if new else 'changed the password of'} {args.name} in {path}")
    return 0


def _cmd_feed(args: argparse.Namespace) -> int:
    from gateway.hl7.feed import run_feed

    settings = _settings(args)
    host = args.host or settings.hl7.host
    port = args.port if args.port is not None else settings.hl7.mllp_port
    from gateway.secure_node import client_context

    context = client_context(settings)
    return run_feed(
        args.files, host, port, args.timeout, sys.stdout, ssl_context=context, err=sys.stderr
    )


def _cmd_fetch(args: argparse.Namespace) -> int:
    from gateway.consumer import cli as consumer_cli
    from gateway.media import cli as media_cli

    settings = _settings(args)
    return consumer_cli.run_fetch(args, settings, wrap=media_cli.deidentifying(args, settings))


def _cmd_media_import(args: argparse.Namespace) -> int:
    from gateway.app import Gateway
    from gateway.logsetup import configure_logging
    from gateway.media import cli as media_cli

    settings = _settings(args)
    if not settings.imaging_source.enabled:
        raise ConfigError("imaging_source.enabled: media import stores through the imaging source")
    configure_logging(settings.log.level, settings.log.format, patient_ids=settings.log.patient_ids)
    gateway = Gateway(settings)  # the actors of this configuration, no listener started
    try:
        assert gateway.imaging is not None
        patients = gateway.registry.patients if gateway.registry is not None else None
        return media_cli.run_import(args, settings, imaging=gateway.imaging, patients=patients)
    finally:
        gateway.stop()


def _cmd_media_export(args: argparse.Namespace) -> int:
    from gateway.consumer import cli as consumer_cli
    from gateway.media import cli as media_cli

    settings = _settings(args)
    try:
        consumer = consumer_cli.settings_from_args(args, settings)
    except ValueError as exc:
        print(f"xdsi-gateway media export: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    return media_cli.run_export(args, settings, consumer)


def _cmd_provide(args: argparse.Namespace) -> int:
    from gateway.repository import cli as repository_cli

    return repository_cli.run_provide(args, _settings(args))


def _cmd_retrieve(args: argparse.Namespace) -> int:
    from gateway.repository import cli as repository_cli

    return repository_cli.run_retrieve(args, _settings(args))


def _cmd_publish(args: argparse.Namespace) -> int:
    from gateway.app import Gateway
    from gateway.imaging.commands import check_targets, publish
    from gateway.logsetup import configure_logging

    settings = _settings(args)
    if not settings.imaging_source.enabled:
        raise ConfigError("imaging_source.enabled: publishing needs the imaging source")
    require_gateway_data("publish", settings, args.config)
    if not check_targets(args.targets, sys.stderr):  # before anything is opened
        return EXIT_CONFIG
    announce("publish", args.config, data_dir=settings.data_dir)
    configure_logging(settings.log.level, settings.log.format, patient_ids=settings.log.patient_ids)
    gateway = Gateway(settings)  # the actors of this configuration, no listener started
    try:
        assert gateway.imaging is not None
        return publish(
            args.targets, gateway.imaging, out=sys.stdout, err=sys.stderr, force=args.force
        )
    finally:
        gateway.stop()


def _cmd_imaging_pending(args: argparse.Namespace) -> int:
    from sqlalchemy import inspect

    from gateway.imaging import pending
    from gateway.imaging.index import create_index_engine

    settings = _settings(args)
    require_gateway_data("imaging pending", settings, args.config)
    announce("imaging pending", args.config, data_dir=settings.data_dir)
    engine = create_index_engine(settings.gateway_database_url)
    try:
        if not inspect(engine).has_table("imaging_study"):
            studies = []  # the imaging source never ran on this database
        else:
            studies = pending.pending_studies(engine, held_only=args.held)
    finally:
        engine.dispose()
    render = pending.render_json if args.json else pending.render_text
    print(render(studies))
    return EXIT_OK


def _cmd_imaging_reject(args: argparse.Namespace) -> int:
    from gateway.app import Gateway
    from gateway.imaging import reject_command
    from gateway.logsetup import configure_logging

    settings = _settings(args)
    if not settings.imaging_source.enabled:
        raise ConfigError("imaging_source.enabled: rejecting needs the imaging source")
    require_gateway_data("imaging reject", settings, args.config)
    announce("imaging reject", args.config, data_dir=settings.data_dir)
    configure_logging(settings.log.level, settings.log.format, patient_ids=settings.log.patient_ids)
    gateway = Gateway(settings)  # the actors of this configuration, no listener started
    try:
        assert gateway.imaging is not None
        return reject_command.run(args, gateway.imaging, out=sys.stdout, err=sys.stderr)
    finally:
        gateway.stop()


def _cmd_db_upgrade(args: argparse.Namespace) -> int:
    from gateway.database.migrate import upgrade

    settings = _settings(args)
    announce("db upgrade", args.config, data_dir=settings.data_dir)  # may create: it says where
    for url in dict.fromkeys([settings.gateway_database_url, settings.database_url]):
        upgrade(url)
        print(f"database schema is up to date at {_redact(url)}")
    return EXIT_OK


def _redact(url: str) -> str:
    """A database URL without its password, for printing."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _cmd_config(args: argparse.Namespace) -> int:
    settings = _settings(args)
    json.dump(settings_as_dict(settings), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return EXIT_OK


def _cmd_serve(args: argparse.Namespace) -> int:
    settings = _settings(args)  # configuration errors stop here, before anything starts
    from gateway.app import Gateway
    from gateway.logsetup import configure_logging
    from gateway.serving.listeners import bind_listeners

    workers = args.workers or settings.http.workers
    if workers > 1:
        _refuse_single_process_database(settings, workers, from_option=bool(args.workers))
    configure_logging(settings.log.level, settings.log.format, patient_ids=settings.log.patient_ids)
    # Everything the gateway writes (documents, images, databases, audit queue, spool) holds
    # patient data or secrets: owner-only, whatever the inherited umask says.
    os.umask(0o077)
    # a port in use stops here, before anything starts; several workers listen each on its own
    listeners = bind_listeners(settings, per_worker=workers > 1)
    try:
        # Embedded SQLite: one serve per data_dir (exit 2); after the ports, so that a port in
        # use writes nothing.
        lock = _single_process_lock(settings)
    except BaseException:
        listeners.close()
        raise
    try:
        listeners.announce(settings)
        if workers > 1:
            return _supervise(settings, listeners, workers)
        try:
            gateway = Gateway(settings, listeners=listeners)
        except BaseException:
            listeners.close()
            raise
        try:
            gateway.start()
        except OSError as exc:
            log.error("cannot start: %s", exc)
            return EXIT_FAILURE
        return run_until_signalled(gateway)
    finally:
        lock.release()


def _single_process_lock(settings: Settings) -> ProcessLock:
    """The embedded database's one-process lock (nothing on PostgreSQL); the kernel releases
    it when the process ends. Raises ConfigError naming the process that holds it."""
    from gateway.database.engine import sqlite_path
    from gateway.database.exclusive import hold_single_process

    return hold_single_process(settings.data_dir, sqlite_path(settings.gateway_database_url))


def _refuse_single_process_database(settings: Settings, workers: int, *, from_option: bool) -> None:
    """SQLite is the one-process default: several workers need the gateway database elsewhere."""
    from sqlalchemy.engine import make_url

    url = settings.gateway_database_url
    if make_url(url).get_backend_name() != "sqlite":
        return
    asked = f"--workers {workers}" if from_option else f"http.workers = {workers}"
    raise ConfigError(
        f"{asked}: the gateway database is SQLite ({_redact(url)}), which only one process may "
        "use; set gateway.database_url to a PostgreSQL database (postgresql://...) or run one "
        "worker"
    )


def _supervise(settings: Settings, listeners: Listeners, workers: int) -> int:
    """``serve --workers N``: N gateway processes on the listeners bound here (exit 0 on signal)."""
    from gateway.serving.supervisor import Supervisor, spawner

    if settings.ui.enabled:  # /metrics of N workers: prometheus-client's multiprocess mode
        from gateway.ui.metrics import prepare_multiprocess_dir

        prepare_multiprocess_dir(settings.data_dir)  # the workers inherit the environment
    supervisor = Supervisor(
        workers,
        spawner(settings, listeners),
        drain_seconds=settings.http.shutdown_timeout + 30.0,
    )
    try:
        code = supervisor.run()
    finally:
        listeners.close()
    log.info("stopped")
    return code


def run_until_signalled(gateway: Gateway, stop: threading.Event | None = None) -> int:
    """Serve until SIGINT or SIGTERM (or ``stop`` is set), then stop gracefully (requests in
    flight finish); exit 0."""
    event = stop if stop is not None else threading.Event()

    def _on_signal(signum: int, _frame: object) -> None:
        log.info("received %s: finishing requests in flight", signal.Signals(signum).name)
        event.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    try:
        while not event.wait(0.5):
            pass
    finally:
        gateway.stop()
    log.info("stopped")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``xdsi-gateway`` console script.

    Exit codes (``gateway.commandline``): 0 done, 1 failed, 2 usage or configuration error
    (argparse's own errors included), 130 interrupted. Errors are one line on stderr.
    """
    args = _parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"xdsi-gateway: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except StartupError as exc:  # e.g. a port in use: one line, nothing started
        print(f"xdsi-gateway: error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        print(f"xdsi-gateway {_command(args)}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        problem = _plain_failure(exc)
        if problem is None:
            raise  # a bug: the traceback is what a developer needs
        print(f"xdsi-gateway {_command(args)}: {problem}", file=sys.stderr)
        return EXIT_FAILURE


def _command(args: argparse.Namespace) -> str:
    action = (
        getattr(args, "db_command", None)
        or getattr(args, "imaging_command", None)
        or getattr(args, "registry_command", None)
    )
    return f"{args.command} {action}" if action else str(args.command)


def _plain_failure(exc: Exception) -> str | None:
    """One line for a failure of the machine rather than of the code (a file that cannot be
    written, a database that cannot be reached), or None for anything else."""
    if isinstance(exc, OSError):
        if exc.filename is not None:
            return f"{exc.filename}: {exc.strerror or exc}"
        return str(exc)
    database_errors = sys.modules.get("sqlalchemy.exc")  # never imported: not a database error
    if database_errors is not None and isinstance(exc, database_errors.OperationalError):
        first = str(exc.orig or exc).strip().splitlines()[0]
        return f"database error: {first}"
    return None


if __name__ == "__main__":
    sys.exit(main())
