"""One worker process of ``serve --workers N`` (``python -m gateway.serving.worker --control FD``).

Started by :mod:`gateway.serving.supervisor`, never by hand. It reads its orders from the control
connection (descriptor ``FD``, one JSON line: slot ``index``, the supervisor's effective
``settings``, and the ``addresses`` to bind listening sockets of its own to, or the descriptor
numbers of the inherited shared ones), runs a whole gateway on those sockets, writes ``ready``
once it serves, and then serves until SIGTERM/SIGINT, or until the control connection ends (the
supervisor is gone), finishing requests in flight as a lone ``serve`` does.

``/health`` in a worker answers for that worker (its ``process`` member names the worker and
pid); each worker has its own database pool, owner id and temporary folders.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import sys
import threading
from collections.abc import Sequence
from typing import Any

from gateway.config import settings_from_dict
from gateway.errors import ConfigError
from gateway.owners import ProcessIdentity
from gateway.serving.listeners import Listeners

log = logging.getLogger("gateway")

EXIT_CONFIG = 2
MAX_SPEC_BYTES = 16 * 1024 * 1024


def read_spec(control: socket.socket) -> dict[str, Any]:
    """The supervisor's one JSON line on the control connection."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = control.recv(65536)
        if not chunk or len(data) > MAX_SPEC_BYTES:
            raise ConnectionError("the supervisor sent no complete start line")
        data += chunk
    spec = json.loads(data)
    if not isinstance(spec, dict):
        raise ValueError("the start line is not a JSON object")
    return spec


def watch_supervisor(control: socket.socket, stop: threading.Event) -> threading.Thread:
    """Set ``stop`` when the control connection ends: the supervisor is gone (even SIGKILLed)."""

    def watch() -> None:
        try:
            while control.recv(1024):
                pass
        except OSError:
            pass
        if not stop.is_set():
            log.warning("the supervisor is gone: stopping")
            stop.set()

    thread = threading.Thread(target=watch, name="supervisor-watch", daemon=True)
    thread.start()
    return thread


def serve(spec: dict[str, Any], control: socket.socket) -> int:
    """Run the gateway the spec describes until told to stop; return the exit code."""
    from gateway.app import Gateway
    from gateway.cli import run_until_signalled
    from gateway.logsetup import configure_logging

    identity = ProcessIdentity(index=int(spec["index"]))
    settings = settings_from_dict(spec["settings"])
    configure_logging(
        settings.log.level,
        settings.log.format,
        patient_ids=settings.log.patient_ids,
        process=identity.label,
    )
    os.umask(0o077)  # as serve: everything written holds patient data or secrets
    addresses = spec.get("addresses") or {}
    if addresses:  # sockets of its own on the supervisor's addresses (SO_REUSEPORT)
        listeners = Listeners.of_this_worker(
            {name: (str(host), int(port)) for name, (host, port) in addresses.items()}
        )
    else:
        listeners = Listeners.from_fds({name: int(fd) for name, fd in spec["listeners"].items()})
    gateway = Gateway(settings, listeners=listeners, identity=identity)
    gateway.start()
    control.sendall(b"ready\n")
    stop = threading.Event()
    watch_supervisor(control, stop)
    return run_until_signalled(gateway, stop)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway.serving.worker")
    parser.add_argument("--control", type=int, required=True, metavar="FD")
    args = parser.parse_args(argv)
    control = socket.socket(fileno=args.control)
    control.set_inheritable(False)
    try:
        spec = read_spec(control)
        return serve(spec, control)
    except ConfigError as exc:
        print(f"xdsi-gateway: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    finally:
        control.close()


if __name__ == "__main__":
    sys.exit(main())
