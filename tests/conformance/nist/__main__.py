"""Command line: run NIST tests against a running system and print one line per step.

``python -m tests.conformance.nist --registry URL --repository URL --mllp HOST:PORT
[--imaging-source URL] TEST...`` — TEST is a NIST test id (``11990``) or a list name of
``catalog.LISTS`` (``feed``, ``register``, ``stored_query``, ``repository``). Exit status 0 when
every test passed, 1 otherwise, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from tests.conformance.nist import catalog
from tests.conformance.nist.context import DEFAULT_AFFINITY_DOMAIN, Context
from tests.conformance.nist.execution import Endpoints, RunConfig
from tests.conformance.nist.plan import PlanError
from tests.conformance.nist.runner import Runner


def host_port(value: str) -> tuple[str, int]:
    """Parse ``HOST:PORT``."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return host, int(port)


def parser() -> argparse.ArgumentParser:
    """The argument parser."""
    p = argparse.ArgumentParser(
        prog="python -m tests.conformance.nist",
        description="Run NIST XDS Toolkit test plans against a system.",
    )
    p.add_argument("--registry", required=True, help="ITI-18/ITI-42 endpoint URL")
    p.add_argument("--repository", required=True, help="ITI-41/ITI-43 endpoint URL")
    p.add_argument("--mllp", type=host_port, help="ITI-8 listener HOST:PORT")
    p.add_argument("--imaging-source", default="", help="RAD-69 endpoint URL")
    p.add_argument(
        "--testkit",
        type=Path,
        default=catalog.TESTKIT,
        help=f"nist-testkit folder (default {catalog.TESTKIT})",
    )
    p.add_argument(
        "--spec",
        type=Path,
        default=catalog.SPEC,
        help=f"folder of the official XSDs (default {catalog.SPEC})",
    )
    p.add_argument(
        "--affinity-domain",
        default=DEFAULT_AFFINITY_DOMAIN,
        help="assigning authority OID of the patient ids the runner allocates",
    )
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per request")
    p.add_argument(
        "tests",
        nargs="+",
        metavar="TEST",
        help=f"test ids or list names ({', '.join(catalog.LISTS)})",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the named tests; return the exit status."""
    args = parser().parse_args(argv)
    config = RunConfig(
        endpoints=Endpoints(
            registry=args.registry,
            repository=args.repository,
            mllp=args.mllp,
            imaging_source=args.imaging_source,
        ),
        testkit=args.testkit,
        spec=args.spec,
        timeout=args.timeout,
    )
    ctx = Context(tests_root=config.tests_root, affinity_domain=args.affinity_domain)
    try:
        runs = Runner(config, ctx).run_all(args.tests)
    except PlanError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    failed = [run.test for run in runs if not run.passed]
    print(
        f"{len(runs) - len(failed)}/{len(runs)} tests passed"
        + (f"; failed: {' '.join(failed)}" if failed else "")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
