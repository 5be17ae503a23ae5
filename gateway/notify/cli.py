"""``xdsi-gateway push`` and ``xdsi-gateway inbox list|accept``: queue work for the serving gateway.

Both write one outbox row (kind ``xdr``) in the gateway database and wait for a serving gateway
process to send it (``--wait`` seconds; 0 = do not wait): the push or import is then durable,
retried with back-off and done by whichever process claims it. Exit status: 0 done, 1 refused
or failed for good, 3 still queued when the wait ends (a running gateway will do it).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from typing import TextIO

from gateway.config import Settings
from gateway.database import Database
from gateway.notify.outbox import FAILED, SENT, Message, Outbox
from gateway.notify.xdr import Inbox

EXIT_QUEUED = 3


def add_push_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``push``."""
    parser.add_argument("--study", required=True, help="Study Instance UID (published here)")
    parser.add_argument("--to", required=True, help="URL of the remote XDR Document Recipient")
    parser.add_argument(
        "--with-images",
        metavar="AET@HOST:PORT",
        help="also C-STORE the study's instances to the recipient's DICOM listener (for a "
        "recipient that cannot reach our RAD-69)",
    )
    _wait(parser)


def add_inbox_arguments(parser: argparse.ArgumentParser) -> None:
    """Sub-commands of ``inbox``."""
    sub = parser.add_subparsers(dest="inbox_command", required=True)
    listing = sub.add_parser("list", help="list the XDR submissions received")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    accept = sub.add_parser(
        "accept", help="import a received submission (RAD-69 its images, publish here)"
    )
    accept.add_argument("id", type=int, help="the inbox entry (see inbox list)")
    _wait(accept)


def _wait(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--wait", type=float, default=300.0, help="seconds to wait for the result (0: do not)"
    )


def _database(settings: Settings) -> Database:
    database = Database(settings.gateway_database_url)
    database.upgrade()
    return database


def run_push(
    args: argparse.Namespace, settings: Settings, forward: list[Message], out: TextIO = sys.stdout
) -> int:
    """Queue the push (and ``forward``: the instances for ``--with-images``) and wait."""
    database = _database(settings)
    try:
        outbox = Outbox(database.engine, "cli")
        rows = outbox.add(forward)  # the instances first: the recipient may import at once
        if forward:
            print(f"{len(forward)} instance(s) queued for {args.with_images}", file=out)
            status = _await(outbox, rows, args.wait, f"C-STORE to {args.with_images}", out)
            if status:
                return status
        [row] = outbox.add([Message("xdr", args.to, {"study": args.study})])
        return _await(outbox, [row], args.wait, f"push of study {args.study} to {args.to}", out)
    finally:
        database.dispose()


def run_inbox(args: argparse.Namespace, settings: Settings, out: TextIO = sys.stdout) -> int:
    """``inbox list`` or ``inbox accept ID``."""
    database = _database(settings)
    try:
        inbox = Inbox(database.engine, settings.data_dir / "xdr")
        if args.inbox_command == "list":
            for entry in inbox.list():
                when = datetime.fromtimestamp(entry.received_at, UTC).strftime("%Y-%m-%d %H:%M:%S")
                facts = {
                    "id": entry.id,
                    "received": when,
                    "state": entry.state,
                    "patient": entry.patient_id,
                    "source": entry.source_id,
                    "documents": len(entry.summary.get("documents", [])),
                    "studies": entry.studies,
                    "error": entry.error,
                }
                if args.json:
                    print(json.dumps(facts), file=out)
                else:
                    studies = ",".join(entry.studies) or "-"
                    line = (
                        f"{entry.id:>5}  {when}  {entry.state:<9}  {entry.patient_id or '-'}  "
                        f"{facts['documents']} document(s)  studies {studies}"
                    )
                    print(line + (f"  ({entry.error})" if entry.error else ""), file=out)
            return 0
        row = inbox.accept(args.id)
        if row is None:
            found = inbox.get(args.id)
            state = "no such entry" if found is None else f"it is {found.state}"
            print(f"inbox accept: entry {args.id} cannot be accepted: {state}", file=sys.stderr)
            return 1
        outbox = Outbox(database.engine, "cli")
        return _await(outbox, [row], args.wait, f"import of inbox entry {args.id}", out)
    finally:
        database.dispose()


def _await(outbox: Outbox, rows: list[int], wait: float, what: str, out: TextIO) -> int:
    """Wait until every row is sent (0), one failed (1) or the time is up (3)."""
    deadline = time.monotonic() + max(0.0, wait)
    while True:
        states = outbox.states(rows)
        if all(state is not None and state[0] == SENT for state in states):
            print(f"{what}: done", file=out)
            return 0
        failed = [s for s in states if s is not None and s[0] == FAILED]
        if failed:
            print(f"{what}: failed: {failed[0][2]}", file=sys.stderr)
            return 1
        state = next((s for s in states if s is None or s[0] != SENT), None)
        if time.monotonic() >= deadline:
            detail = f" (attempt {state[1]}: {state[2]})" if state and state[2] else ""
            print(f"{what}: queued; the serving gateway carries it out{detail}", file=out)
            return EXIT_QUEUED
        time.sleep(0.25)
