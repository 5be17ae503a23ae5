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
from functools import partial
from typing import TYPE_CHECKING, Any

from gateway import __version__
from gateway.config import Settings
from gateway.errors import ConfigError
from gateway.logsetup import access_log_observer
from gateway.soap import transactions as tx
from gateway.soap.dispatch import Limits, SoapApplication
from gateway.soap.server import HttpServer

if TYPE_CHECKING:
    from gateway.hl7.mllp import MLLPServer
    from gateway.imaging.source import ImagingSource
    from gateway.registry.iti18 import StoredQueries
    from gateway.registry.iti42 import Registry
    from gateway.repository.actor import Repository

log = logging.getLogger("gateway")

REGISTRY_TIMEOUT = 60.0  # seconds the repository waits for a remote registry's ITI-42 answer

Configure = Callable[[SoapApplication], None]


class Gateway:
    """One gateway process: every enabled actor behind one HTTP server."""

    def __init__(self, settings: Settings, *, configure: Configure | None = None) -> None:
        self.settings = settings
        self._ready: dict[str, bool] = {}
        self._lock = threading.Lock()
        self.registry: Registry | None = None
        self.stored_queries: StoredQueries | None = None
        self.mllp: MLLPServer | None = None
        self.repository: Repository | None = None
        self.imaging: ImagingSource | None = None
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
            self._bind_registry()
        if s.repository.enabled:
            self._bind_repository()
        if s.imaging_source.enabled:
            self._bind_imaging_source()

    def _bind_registry(self) -> None:
        """Document Registry: ITI-42 and ITI-18 at /xds/registry, ITI-8 over MLLP."""
        from gateway.hl7.feed import PatientFeedHandler
        from gateway.hl7.mllp import MLLPServer
        from gateway.registry import iti42
        from gateway.registry.iti18 import StoredQueries

        s = self.settings
        self.registry = iti42.Registry.from_settings(s)  # upgrades the schema (idempotent)
        self.stored_queries = StoredQueries(
            self.registry.db,
            max_leafclass_results=s.registry.max_leafclass_results,
            home_community_id=s.registry.home_community_id or None,
        )
        endpoint = self.soap.endpoint(tx.REGISTRY_PATH, tx.ENDPOINTS[tx.REGISTRY_PATH])
        iti42.bind(endpoint, self.registry)
        endpoint.bind(tx.ITI_18, self.stored_queries.handle)
        self._ready["registry"] = False
        if s.hl7.enabled:
            handler = PatientFeedHandler(self.registry.patients, s.registry.patient_id_domain)
            self.mllp = MLLPServer(
                handler,
                host=s.hl7.host,
                port=s.hl7.mllp_port,
                max_message_bytes=s.hl7.max_message_bytes,
                idle_timeout=float(s.hl7.idle_timeout),
            )
            self._ready["hl7"] = False

    def _bind_repository(self) -> None:
        """Document Repository: ITI-41 and ITI-43 at /xds/repository, registering via ITI-42."""
        from gateway.repository import iti41, iti43
        from gateway.repository.actor import Repository
        from gateway.repository.registry_client import (
            InProcessRegistryClient,
            RegistryClient,
            SoapRegistryClient,
            model_register,
        )

        s = self.settings
        client: RegistryClient
        if s.repository.registry_url:
            client = SoapRegistryClient(s.repository.registry_url, timeout=REGISTRY_TIMEOUT)
            settle = 2.0 * REGISTRY_TIMEOUT  # an unanswered ITI-42 may still land until then
        elif self.registry is not None and self.stored_queries is not None:
            client = InProcessRegistryClient(
                model_register(self.registry.register_document_set), self.stored_queries.run
            )
            settle = 0.0
        else:
            raise ConfigError(
                "repository.registry_url: empty (in-process) but registry.enabled is false"
            )
        self.repository = Repository.open(
            s.data_dir / "repository",
            unique_id=s.repository.unique_id,
            registry=client,
            settle_seconds=settle,
        )
        endpoint = self.soap.endpoint(tx.REPOSITORY_PATH, tx.ENDPOINTS[tx.REPOSITORY_PATH])
        endpoint.bind(tx.ITI_41, iti41.handler(self.repository))
        endpoint.bind(tx.ITI_43, iti43.handler(self.repository))
        self._ready["repository"] = False

    def _bind_imaging_source(self) -> None:
        """Imaging Document Source: DICOM listener, RAD-68 publishing, RAD-69 at /xdsi/source."""
        from gateway.imaging.source import ImagingSource, repository_client
        from gateway.repository.iti41 import provide_and_register

        s = self.settings
        in_process = None
        if self.repository is not None:
            repository = self.repository
            in_process = partial(provide_and_register, repository)
        self.imaging = ImagingSource.from_settings(
            s,
            repository=repository_client(s, in_process),
            domain_id_for_local=(
                self.registry.patients.domain_id_for_local if self.registry is not None else None
            ),
            engine=self.registry.db.engine if self.registry is not None else None,
        )
        endpoint = self.soap.endpoint(tx.IMAGING_SOURCE_PATH, tx.ENDPOINTS[tx.IMAGING_SOURCE_PATH])
        endpoint.bind(tx.RAD_69, self.imaging.rad69_handler())
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
        if self.mllp is not None:
            self.mllp.start()
            self._mark_ready("hl7")
        if self.repository is not None:
            self.repository.start()  # the start-up sweep ends before any request is served
        if self.imaging is not None:
            self.imaging.start()
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
        """Stop listeners, finishing what is in flight, then close the databases."""
        self.http.stop()
        if self.imaging is not None:
            self.imaging.stop()
        if self.mllp is not None:
            self.mllp.stop()
        if self.repository is not None:
            self.repository.stop()
        if self.registry is not None:
            self.registry.close()

    @property
    def mllp_address(self) -> tuple[str, int] | None:
        return self.mllp.address if self.mllp is not None else None

    @property
    def base_url(self) -> str:
        host, port = self.http.address
        return f"{self.http.scheme}://{host}:{port}"


def _clear_spool(spool: os.PathLike[str]) -> None:
    # Temporary MTOM parts of requests cut off by a crash are never needed again.
    for entry in os.scandir(spool):
        if entry.is_file():
            os.unlink(entry.path)
