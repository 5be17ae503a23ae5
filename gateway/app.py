"""Assemble a running gateway from settings: HTTP server, SOAP endpoints and the enabled actors.

Actors are bound to endpoints here, explicitly, never by import side effects. What each enabled
actor contributes is listed in :meth:`Gateway._bind_actors`; ``/health`` reports ready once every
enabled actor has started.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import Any

from gateway import __version__
from gateway.config import Settings
from gateway.logsetup import access_log_observer
from gateway.soap import transactions as tx
from gateway.soap.dispatch import Limits, SoapApplication
from gateway.soap.server import HttpServer

log = logging.getLogger("gateway")

Configure = Callable[[SoapApplication], None]


class Gateway:
    """One gateway process: every enabled actor behind one HTTP server."""

    def __init__(self, settings: Settings, *, configure: Configure | None = None) -> None:
        self.settings = settings
        self._ready: dict[str, bool] = {}
        self._lock = threading.Lock()
        data_dir = settings.data_dir
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        spool = data_dir / "tmp" / "soap"
        spool.mkdir(parents=True, exist_ok=True, mode=0o700)
        _clear_spool(spool)
        limits = Limits(
            spool_dir=spool,
            max_envelope_bytes=settings.soap.max_envelope_bytes,
            max_request_bytes=settings.soap.max_request_bytes,
            max_xml_depth=settings.soap.max_xml_depth,
            memory_threshold=settings.soap.memory_threshold,
        )
        self.soap = SoapApplication(
            limits,
            public_url=settings.http.public_url,
            health=self.health,
            observers=[access_log_observer],
        )
        self._bind_actors()
        if configure is not None:
            configure(self.soap)
        self.http = HttpServer(
            self.soap,
            host=settings.http.host,
            port=settings.http.port,
            threads=settings.http.threads,
            request_timeout=settings.http.request_timeout,
            shutdown_timeout=settings.http.shutdown_timeout,
        )

    def _bind_actors(self) -> None:
        """Create the endpoints of every enabled actor and bind what is implemented so far."""
        s = self.settings
        if s.registry.enabled:
            self.soap.endpoint(tx.REGISTRY_PATH, tx.ENDPOINTS[tx.REGISTRY_PATH])
            self._ready["registry"] = False
        if s.repository.enabled:
            self.soap.endpoint(tx.REPOSITORY_PATH, tx.ENDPOINTS[tx.REPOSITORY_PATH])
            self._ready["repository"] = False
        if s.imaging_source.enabled:
            self.soap.endpoint(tx.IMAGING_SOURCE_PATH, tx.ENDPOINTS[tx.IMAGING_SOURCE_PATH])
            self._ready["imaging_source"] = False

    def health(self) -> tuple[bool, dict[str, Any]]:
        """Readiness for ``/health``: ready when every enabled actor has started."""
        with self._lock:
            actors = {name: ("ready" if ok else "starting") for name, ok in self._ready.items()}
        return all(self._ready.values()), {"version": __version__, "actors": actors}

    def _mark_ready(self, name: str) -> None:
        with self._lock:
            self._ready[name] = True

    def start(self) -> tuple[str, int]:
        """Start every listener; return the HTTP (host, port) actually bound."""
        address = self.http.start()
        for name in list(self._ready):
            self._mark_ready(name)
        log.info(
            "xdsi-gateway %s ready: actors %s, data in %s",
            __version__,
            ", ".join(self._ready) or "none",
            self.settings.data_dir,
        )
        return address

    def stop(self) -> None:
        """Stop listeners, finishing what is in flight."""
        self.http.stop()

    @property
    def base_url(self) -> str:
        host, port = self.http.address
        return f"{self.http.scheme}://{host}:{port}"


def _clear_spool(spool: os.PathLike[str]) -> None:
    # Temporary MTOM parts of requests cut off by a crash are never needed again.
    for entry in os.scandir(spool):
        if entry.is_file():
            os.unlink(entry.path)
