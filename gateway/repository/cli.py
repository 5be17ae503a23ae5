"""``xdsi-gateway provide`` and ``xdsi-gateway retrieve``: a document in and out of any XDS.b
repository, with a progress bar on stderr for large transfers.

``provide`` sends one file with ITI-41 (MTOM/XOP, the file streamed from disk) using the built-in
metadata template or a template file, and prints the outcome and the document's uniqueId.
``retrieve`` asks for one document with ITI-43 and writes it to a file (the MTOM part is spooled
next to the target and renamed onto it, never held in memory). Both talk to the endpoint URL
given, so they work against this gateway or any other XDS.b repository. Exit status: 0 success,
1 the peer refused or could not be reached, 2 bad input.

Standard: ITI TF-2 §3.41 (Provide and Register Document Set-b), §3.43 (Retrieve Document Set).
"""

from __future__ import annotations

import argparse
import hashlib
import mimetypes
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import requests

from gateway.commandline import announce
from gateway.config import Settings
from gateway.metadata.provide import build_provide_request
from gateway.metadata.retrieve import (
    DocumentRequest,
    RegistryError,
    ResponseFormatError,
    Status,
    build_retrieve_request,
    parse_retrieve_response,
    read_registry_response,
)
from gateway.progress import CountingAttachment, Progress, count_responses
from gateway.repository.template import (
    CODE_OPTIONS,
    FillOptions,
    TemplateError,
    default_submission,
    fill,
    load_template,
    parse_code,
)
from gateway.soap.client import ClientResponse, SoapClient, SoapClientError
from gateway.soap.message import new_content_id
from gateway.soap.transactions import ITI_41, ITI_43, REPOSITORY_PATH

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


@dataclass(slots=True, kw_only=True)
class Connection:
    """Where and how to reach the repository: endpoint URL, timeout (s), TLS settings."""

    url: str
    timeout: float = 300.0
    verify: bool | str = True
    cert: tuple[str, str] | None = None
    progress: bool | None = None  # None: a live bar when stderr is a terminal; False: silent


@dataclass(slots=True, kw_only=True)
class Output:
    """Where results (stdout) and messages (stderr) go."""

    out: TextIO = sys.stdout
    err: TextIO = sys.stderr


def _client(
    connection: Connection,
    session: requests.Session | None = None,
    spool_dir: Path | None = None,
) -> SoapClient:
    return SoapClient(
        connection.url,
        timeout=connection.timeout,
        verify=connection.verify,
        cert=connection.cert,
        session_factory=(lambda: session) if session is not None else None,
        spool_dir=spool_dir,
    )


def _progress(label: str, total: int | None, connection: Connection, io: Output) -> Progress | None:
    if connection.progress is False:
        return None
    return Progress(label, total, stream=io.err, live=connection.progress)


def _sha1(path: Path, progress: Progress | None) -> str:
    digest = hashlib.sha1()
    with path.open("rb") as handle:
        while block := handle.read(1024 * 1024):
            digest.update(block)
            if progress is not None:
                progress.advance(len(block))
    if progress is not None:
        progress.close()
    return digest.hexdigest()


def _report(status: Status, errors: Sequence[RegistryError], io: Output) -> None:
    """Print the short status on stdout and each RegistryError on stderr."""
    print(f"status: {status.short}", file=io.out)
    for error in errors:
        print(f"{'Warning' if error.is_warning else 'Error'} {error}", file=io.err)


def provide(
    file: Path,
    options: FillOptions,
    connection: Connection,
    *,
    template: Path | None = None,
    compute_hash: bool = True,
    io: Output | None = None,
) -> int:
    """Provide and register one file (ITI-41); print status, errors and the uniqueId.

    Standard: ITI TF-2 §3.41.4.1 (request), §3.41.4.2 (response).
    """
    io = io or Output()
    if not file.is_file():
        print(f"xdsi-gateway provide: {file}: no such file", file=io.err)
        return EXIT_USAGE
    try:
        submission = load_template(template) if template else default_submission()
    except TemplateError as exc:
        print(f"xdsi-gateway provide: {exc}", file=io.err)
        return EXIT_USAGE
    if not options.mime_type and not submission.document_entries[0].mime_type:
        options.mime_type = mimetypes.guess_type(file.name)[0]
    size = file.stat().st_size
    sha1 = _sha1(file, _progress("hashing", size, connection, io)) if compute_hash else None
    entry = fill(submission, options, file_name=file.name, size=size, sha1=sha1)
    attachment = CountingAttachment(
        content_id=new_content_id(),
        content_type=entry.mime_type or "application/octet-stream",
        path=file,
        size=size,
        sha1=sha1,
        progress=_progress("sending", size, connection, io),
    )
    body = build_provide_request(submission, [(entry.entry_uuid, attachment.content_id)])
    try:
        with _client(connection) as client:
            answer = client.call(ITI_41, body, [attachment])
    except SoapClientError as exc:
        if attachment.progress is not None:
            attachment.progress.close()  # the bar's last state first, then the reason
        print(f"xdsi-gateway provide: {exc}", file=io.err)
        return EXIT_FAILURE
    finally:
        if attachment.progress is not None:
            attachment.progress.close()
    try:
        response = read_registry_response(answer.body)
    except ResponseFormatError as exc:
        print(f"xdsi-gateway provide: unexpected answer: {exc}", file=io.err)
        return EXIT_FAILURE
    _report(response.status, response.errors, io)
    submission_set = submission.submission_set
    print(f"documentUniqueId: {entry.unique_id}", file=io.out)
    print(
        f"submissionSetUniqueId: {submission_set.unique_id if submission_set else ''}", file=io.out
    )
    return EXIT_OK if response.status is Status.SUCCESS else EXIT_FAILURE


def retrieve(
    *,
    repository_id: str,
    document_id: str,
    out: Path,
    connection: Connection,
    home_community_id: str | None = None,
    io: Output | None = None,
) -> int:
    """Retrieve one document (ITI-43) into ``out``; print status, mimeType, size and SHA-1.

    Standard: ITI TF-2 §3.43.4.1 (request), §3.43.4.2 (response).
    """
    io = io or Output()
    target = out.resolve()
    if not target.parent.is_dir():
        print(f"xdsi-gateway retrieve: {target.parent}: no such folder", file=io.err)
        return EXIT_USAGE
    session = requests.Session()
    bars: list[Progress] = []
    if connection.progress is not False:
        count_responses(session, lambda total: _remember(bars, "receiving", total, connection, io))
    request = DocumentRequest(
        repository_unique_id=repository_id,
        document_unique_id=document_id,
        home_community_id=home_community_id,
    )
    try:
        with _client(connection, session=session, spool_dir=target.parent) as client:
            answer = client.call(ITI_43, build_retrieve_request([request]))
    except SoapClientError as exc:
        for bar in bars:
            bar.close()  # the bar's last state first, then the reason
        print(f"xdsi-gateway retrieve: {exc}", file=io.err)
        return EXIT_FAILURE
    finally:
        for bar in bars:
            bar.close()
    try:
        return _save(answer, document_id, target, io)
    finally:
        answer.discard_attachments()


def _remember(
    bars: list[Progress], label: str, total: int | None, connection: Connection, io: Output
) -> Progress:
    bar = Progress(label, total, stream=io.err, live=connection.progress)
    bars.append(bar)
    return bar


def _save(answer: ClientResponse, document_id: str, target: Path, io: Output) -> int:
    """Write the document of ``answer`` (MTOM part or inline base64) to ``target`` atomically."""
    try:
        parsed = parse_retrieve_response(answer.body, answer.attachments)
    except ResponseFormatError as exc:
        print(f"xdsi-gateway retrieve: unexpected answer: {exc}", file=io.err)
        return EXIT_FAILURE
    _report(parsed.status, parsed.errors, io)
    found = [d for d in parsed.documents if d.document_unique_id == document_id]
    if not found:
        return EXIT_FAILURE
    attachment = found[0].attachment
    temporary = target.with_name(f".{target.name}.{os.getpid()}.part")
    try:
        attachment.save_to(temporary)
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    print(f"mimeType: {found[0].mime_type}", file=io.out)
    print(f"size: {attachment.size}", file=io.out)
    print(f"sha1: {attachment.digest()}", file=io.out)
    print(f"saved: {target}", file=io.out)
    return EXIT_OK if parsed.status is not Status.FAILURE else EXIT_FAILURE


# -- argparse glue for gateway/cli.py ----------------------------------------------------------


def default_url(settings: Settings) -> str:
    """This gateway's repository endpoint: ``http.public_url`` or ``http://host:port``."""
    base = settings.http.public_url.rstrip("/")
    if not base:
        host = (
            settings.http.host if settings.http.host not in ("", "0.0.0.0", "::") else "127.0.0.1"
        )
        base = f"http://{host}:{settings.http.port}"
    return base + REPOSITORY_PATH


def _add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url", help="ITI-41/ITI-43 endpoint URL (default: this gateway's /xds/repository)"
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds (default 300)")
    parser.add_argument("--ca-file", help="CA bundle to verify an https peer")
    parser.add_argument("--insecure", action="store_true", help="do not verify an https peer")
    parser.add_argument("--cert", help="client certificate (PEM) for mutual TLS")
    parser.add_argument("--key", help="private key (PEM) of --cert")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    parser.add_argument("--config", metavar="FILE", help="TOML configuration file")


def _connection(args: argparse.Namespace, settings: Settings) -> Connection:
    verify: bool | str = False if args.insecure else (args.ca_file or True)
    cert = (args.cert, args.key or args.cert) if args.cert else None
    if not args.url:  # say which configuration chose the repository
        command = getattr(args, "command", None) or "repository"
        announce(command, args.config, url=default_url(settings), what="repository")
    return Connection(
        url=args.url or default_url(settings),
        timeout=args.timeout,
        verify=verify,
        cert=cert,
        progress=False if args.no_progress else None,
    )


def add_provide_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``xdsi-gateway provide``."""
    parser.add_argument("file", type=Path, metavar="FILE", help="the document to submit")
    parser.add_argument("--patient", required=True, metavar="CX", help="patient id, ID^^^&OID&ISO")
    parser.add_argument(
        "--metadata", type=Path, metavar="FILE", help="metadata template (ebRIM 3.0 XML)"
    )
    parser.add_argument("--mime-type", help="mimeType (default: from the template or the name)")
    parser.add_argument("--title", help="DocumentEntry title (default: the file name)")
    parser.add_argument("--source-id", metavar="OID", help="SubmissionSet sourceId")
    for name in CODE_OPTIONS:
        flag = "--" + name.replace("_", "-")
        parser.add_argument(flag, type=parse_code, metavar="CODE^DISPLAY^SCHEME")
    parser.add_argument("--keep-ids", action="store_true", help="keep the template's uniqueIds")
    parser.add_argument("--no-hash", action="store_true", help="let the repository hash it")
    _add_connection_arguments(parser)


def run_provide(args: argparse.Namespace, settings: Settings) -> int:
    """Run ``xdsi-gateway provide`` from parsed arguments."""
    codes = {n: getattr(args, n) for n in CODE_OPTIONS if getattr(args, n) is not None}
    options = FillOptions(
        patient_id=args.patient,
        mime_type=args.mime_type,
        title=args.title,
        source_id=args.source_id,
        codes=codes,
        keep_ids=args.keep_ids,
    )
    return provide(
        args.file,
        options,
        _connection(args, settings),
        template=args.metadata,
        compute_hash=not args.no_hash,
    )


def add_retrieve_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``xdsi-gateway retrieve``."""
    parser.add_argument("--repository", required=True, metavar="ID", help="repositoryUniqueId")
    parser.add_argument("--document", required=True, metavar="UID", help="document uniqueId")
    parser.add_argument("--out", required=True, type=Path, metavar="PATH", help="file to write")
    parser.add_argument("--home-community-id", metavar="URN", help="homeCommunityId (XCA)")
    _add_connection_arguments(parser)


def run_retrieve(args: argparse.Namespace, settings: Settings) -> int:
    """Run ``xdsi-gateway retrieve`` from parsed arguments."""
    return retrieve(
        repository_id=args.repository,
        document_id=args.document,
        out=args.out,
        connection=_connection(args, settings),
        home_community_id=args.home_community_id,
    )
