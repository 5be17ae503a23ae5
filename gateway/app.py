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
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway import __version__, secure_node
from gateway.config import Settings
from gateway.database import Database
from gateway.database.leases import Lease
from gateway.errors import ConfigError
from gateway.logsetup import access_log_observer
from gateway.mount import WsgiApp
from gateway.owners import ProcessIdentity, StagingFolder
from gateway.serving.listeners import Listeners, bind_listeners
from gateway.soap import transactions as tx
from gateway.soap.dispatch import Limits, Observer, SoapApplication
from gateway.soap.server import HttpServer

if TYPE_CHECKING:
    from gateway.dicomweb.ports import Backend as DicomWebBackend
    from gateway.dicomweb.service import DicomWebService
    from gateway.fhir.ports import Backends as FhirBackends
    from gateway.fhir.service import FhirService
    from gateway.hl7.mllp import MLLPServer
    from gateway.imaging.source import ImagingSource
    from gateway.registry.iti18 import StoredQueries
    from gateway.registry.iti42 import Registry
    from gateway.repository.actor import Repository
    from gateway.xca.assembly import Gateways

log = logging.getLogger("gateway")

REGISTRY_TIMEOUT = 60.0  # seconds the repository waits for a remote registry's ITI-42 answer

Configure = Callable[[SoapApplication], None]


class Gateway:
    """One gateway process: every enabled actor behind one HTTP server.

    ``listeners``: sockets bound already (``serve`` binds them first; the workers of
    ``serve --workers N`` inherit them from the supervisor); without them :meth:`start` binds.
    ``identity``: which process this is (worker slot, pid, owner id of its temporary files and
    queue rows); a new one by default.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        configure: Configure | None = None,
        listeners: Listeners | None = None,
        identity: ProcessIdentity | None = None,
    ) -> None:
        self.settings = settings
        self.identity = identity or ProcessIdentity()
        self._listeners = listeners
        self._incoming: StagingFolder | None = None
        self._ready: dict[str, bool] = {}
        self._lock = threading.Lock()
        self._started = False
        self.registry: Registry | None = None
        self.stored_queries: StoredQueries | None = None
        self.mllp: MLLPServer | None = None
        self.repository: Repository | None = None
        self.imaging: ImagingSource | None = None
        self.dicomweb: DicomWebService | None = None
        self.xca: Gateways | None = None
        self.fhir: FhirService | None = None
        self.consent: Any = None  # gateway.consent.guard.ConsentGuard when [consent] policies
        # The secure node (ITI-19/ITI-20): TLS material, access rules, audit trail; all None /
        # a do-nothing trail unless [tls], [access] or [audit] switch them on.
        self.tls = secure_node.tls_files(settings)
        secured = (
            self.tls is not None
            or bool(settings.access.rules_file)
            or bool(settings.consent.policies)
        )
        self.access = secure_node.access_rules(settings) if secured else None
        self.audit = secure_node.audit_trail(settings, self.tls, owner=self.identity.owner)
        self._session_factory = self._make_session_factory()
        data_dir = settings.data_dir
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        # The gateway database (every actor's state) at the newest schema, and this process's
        # lease in it, under the process's owner id (its pending work and queue rows carry it).
        self.database = Database(settings.gateway_database_url)
        self.database.upgrade()
        self.lease = Lease(
            self.database.engine, seconds=settings.gateway.lease_seconds, owner=self.identity.owner
        ).start()
        try:
            self._assemble(configure)
        except BaseException:
            self.lease.release()
            self.database.dispose()
            raise

    def _assemble(self, configure: Configure | None) -> None:
        """The SOAP application, the actors and the HTTP server (after database and lease)."""
        settings = self.settings
        # Spooled MTOM parts: a folder per process, since workers share the data folder; those
        # of processes that are gone (cut off by a crash) are removed.
        spool_parent = settings.data_dir / "tmp" / "soap"
        spool_parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        _clear_spool(spool_parent)
        self._spool = StagingFolder(spool_parent, self.identity.owner)
        limits = Limits(
            spool_dir=self._spool.path,
            max_envelope_bytes=settings.soap.max_envelope_bytes,
            max_request_bytes=settings.soap.max_request_bytes,
            max_xml_depth=settings.soap.max_xml_depth,
            memory_threshold=settings.soap.memory_threshold,
        )
        observers: list[Observer] = [access_log_observer]
        if settings.audit.enabled:
            observers.append(
                self.audit.soap_observer(lambda: settings.http.public_url or self.base_url)
            )
        self.soap = SoapApplication(
            limits,
            public_url=settings.http.public_url,
            health=self.health,
            observers=observers,
            authorize=self._authorize_soap if self.access is not None else None,
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
            ssl_adapter=self._https_adapter(),
        )

    # -- secure node ----------------------------------------------------------------------------
    def _make_session_factory(self) -> Callable[[], Any] | None:
        """Outbound SOAP sessions on the node's client context (ITI-19), or None without TLS."""
        if self.tls is None:
            return None
        from gateway.security.tls import requests_session

        context = self.tls.client(check_hostname=self.settings.tls.verify_hostname)
        return lambda: requests_session(context)

    def _https_adapter(self) -> Any:
        if self.tls is None:
            return None
        from gateway.security.https import GatewaySSLAdapter

        return GatewaySSLAdapter(self.tls, on_handshake_failure=self._handshake_failed("https"))

    def _handshake_failed(self, listener: str) -> Callable[[str | None, str], None]:
        """A callback recording a node-authentication-failure (ITI TF-2 §3.20.4.1.1.1)."""

        def report(peer: str | None, reason: str) -> None:
            log.warning("%s: TLS authentication of %s failed: %s", listener, peer, reason)
            if self.settings.audit.enabled:
                from gateway.audit import events

                self.audit.record(
                    events.node_authentication_failure(
                        remote_host=peer,
                        reason=reason,
                        local=self.audit.local_participant(listener),
                        listener=listener,
                    )
                )

        return report

    def refused(self, transaction: str, peer: Any, remote: str | None, where: str) -> None:
        """Log and audit (Security Alert, ITI TF-1 §9.4) a call the access rules refuse."""
        assert self.access is not None
        reason = self.access.explain(peer, transaction)
        log.warning("%s from %s refused: %s", transaction, remote, reason)
        if self.settings.audit.enabled:
            from gateway.audit import events

            self.audit.record(
                events.access_refused(
                    transaction=transaction,
                    remote_host=remote,
                    peer_subject=peer.subject if peer is not None else None,
                    local=self.audit.local_participant(where),
                    reason=reason,
                )
            )

    def _authorize_soap(self, environ: dict[str, Any], transaction: str) -> bool:
        """The SOAP boundary's access check: the client certificate against the rules."""
        from gateway.security.peer import peer_from_wsgi_environ

        assert self.access is not None
        peer = peer_from_wsgi_environ(environ)
        if self.access.allowed(peer, transaction):
            if self.settings.consent.policies:  # who calls, for patient consent (gateway.consent)
                self._set_caller(peer, environ.get("REMOTE_ADDR"), transaction)
            return True
        path = environ.get("PATH_INFO", "")
        self.refused(transaction, peer, environ.get("REMOTE_ADDR"), f"{self.base_url}{path}")
        return False

    def _set_caller(self, peer: Any, remote: str | None, transaction: str) -> None:
        """Patient consent: the caller's organization from its certificate, for the request
        this thread serves now (``gateway.consent.caller``)."""
        from gateway.consent.caller import CALLER, Caller

        assert self.access is not None
        CALLER.set(
            Caller(
                organization=self.access.organization(peer),
                subject=peer.subject if peer is not None else None,
                remote_addr=remote,
                transaction=transaction,
            )
        )

    def _bind_consent(self) -> None:
        """IHE BPPC: the registry's stored queries leave out, and the repository's ITI-43 and
        the imaging source's RAD-69 refuse, what a patient's opt-out keeps from the caller's
        organization (``gateway.consent.guard``); every refusal audited."""
        from gateway.consent.guard import ConsentGuard, Refusal
        from gateway.registry.consent_view import ConsentView

        if self.registry is None or self.stored_queries is None:
            raise ConfigError("consent.policies: consent needs the registry in this process")
        assert self.access is not None
        view = ConsentView(self.registry.db)

        def audit(refusal: Refusal) -> None:
            if not self.settings.audit.enabled:
                return
            import dataclasses

            from gateway.audit import events

            event = events.access_refused(
                transaction=refusal.transaction,
                remote_host=refusal.caller.remote_addr,
                peer_subject=refusal.caller.subject,
                local=self.audit.local_participant(self.base_url),
                reason=f"{refusal.transaction} for patient {', '.join(refusal.patient_ids)}: "
                f"{refusal.reason}",
            )
            self.audit.record(dataclasses.replace(event, patient_ids=refusal.patient_ids))

        guard = ConsentGuard(
            self.settings.consent.policies,
            owners=view.owners,
            documents=view.documents,
            consents=view.consents,
            source_organizations=self.access.source_organizations(),
            on_refusal=audit,
        )
        self.consent = guard
        self.stored_queries.result_filter = guard.filter_objects
        if self.repository is not None:
            self.repository.retrieve = guard.guard_documents(  # type: ignore[method-assign,assignment]
                self.repository.retrieve
            )
        if self.imaging is not None:
            index = self.imaging.index

            def study_patient(uid: str) -> str | None:
                study = index.study(uid)
                return study.patient_id if study is not None else None

            retriever = self.imaging.retriever
            retriever.retrieve = guard.guard_imaging(  # type: ignore[method-assign,assignment]
                retriever.retrieve,
                study_patient,
                self.imaging.publisher.config.source_id,
            )

    def _authorize_mllp(self, ssl_object: Any, remote: str | None) -> bool:
        from gateway.security.peer import peer_from_ssl

        assert self.access is not None
        peer = peer_from_ssl(ssl_object)
        if self.access.allowed(peer, "ITI-8"):
            return True
        self.refused("ITI-8", peer, remote, "mllp")
        return False

    def _mllp_handshake_failed(self, remote: str | None, exc: BaseException) -> None:
        from gateway.security.tls import authentication_failure

        reason = authentication_failure(exc)
        if reason:
            self._handshake_failed("mllp")(remote, reason)

    def _dicom_security(self) -> Any:
        """TLS, access check and transfer audit of the DICOM listener, or None when all off."""
        if self.tls is None and self.access is None and not self.settings.audit.enabled:
            return None
        from gateway.imaging.dicom_security import DicomSecurity

        ae = self.settings.imaging_source.ae_title
        context = None
        if self.tls is not None:
            context = self.tls.dicom_server(on_handshake_failure=self._handshake_failed("dicom"))
        return DicomSecurity(
            ssl_context=context,
            rules=self.access,
            trail=self.audit if self.settings.audit.enabled else None,
            ae_title=ae,
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
        if s.dicomweb.enabled and self.imaging is not None:
            self._bind_dicomweb()
        if s.consent.policies:  # before XCA and MHD, which take the guarded retrieves
            self._bind_consent()
        if s.xca.enabled:
            self._bind_xca()
        if s.mhd.enabled:
            self._bind_mhd()

    def _bind_registry(self) -> None:
        """Document Registry: ITI-42 and ITI-18 at /xds/registry, ITI-8 over MLLP."""
        from gateway.hl7.feed import PatientFeedHandler
        from gateway.hl7.mllp import MLLPServer
        from gateway.registry import iti42
        from gateway.registry.iti18 import StoredQueries

        s = self.settings
        shared = self.database if s.database_url == s.gateway_database_url else None
        self.registry = iti42.Registry.from_settings(s, database=shared)  # upgrades the schema
        self.stored_queries = StoredQueries(
            self.registry.db,
            max_leafclass_results=s.registry.max_leafclass_results,
            # one community, one homeCommunityId: [xca]'s when only it names one
            home_community_id=(s.xca.home(s) if s.xca.enabled else s.registry.home_community_id)
            or None,
        )
        endpoint = self.soap.endpoint(tx.REGISTRY_PATH, tx.ENDPOINTS[tx.REGISTRY_PATH])
        iti42.bind(endpoint, self.registry)
        endpoint.bind(tx.ITI_18, self.stored_queries.handle)
        self._ready["registry"] = False
        if s.hl7.enabled:
            handler = PatientFeedHandler(self.registry.patients, s.registry.patient_id_domain)
            self.mllp = MLLPServer(
                self._audited_feed(handler) if s.audit.enabled else handler,
                host=s.hl7.host,
                port=s.hl7.mllp_port,
                max_message_bytes=s.hl7.max_message_bytes,
                idle_timeout=float(s.hl7.idle_timeout),
                ssl_context=self.tls.server() if self.tls is not None else None,
                authorize=self._authorize_mllp if self.access is not None else None,
                on_handshake_failure=self._mllp_handshake_failed if self.tls else None,
            )
            self._ready["hl7"] = False

    def _audited_feed(self, handler: Callable[[bytes], bytes]) -> Callable[[bytes], bytes]:
        """Wrap the ITI-8 handler so every message it answers leaves an audit record.

        Standard: ITI TF-2 §3.8.5.1 (Patient Record event, Patient Identity Source and
        Document Registry sides; here the registry's).
        """
        from gateway.audit import codes, events
        from gateway.hl7.ack import parse_ack
        from gateway.hl7.adt import AdtError, parse_adt
        from gateway.hl7.adt import to_cx as cx_of

        def audited(raw: bytes) -> bytes:
            ack = handler(raw)
            try:
                event = parse_adt(raw)
            except (AdtError, ValueError):
                return ack  # not an ADT message at all: nothing about a patient to record
            header = event.header
            accepted = parse_ack(ack).accepted
            ids = [cx_of(i) for i in [*event.identifiers, *event.merge_prior]]
            self.audit.record(
                events.patient_feed(
                    side="responder",
                    sending=f"{header.sending_application}|{header.sending_facility}",
                    receiving=f"{header.receiving_application}|{header.receiving_facility}",
                    sending_host=None,
                    receiving_host=self.audit.hostname,
                    patient_ids=ids,
                    message_control_id=event.message_control_id,
                    trigger=event.trigger,
                    outcome=codes.SUCCESS if accepted else codes.MINOR_FAILURE,
                )
            )
            return ack

        return audited

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
            client = SoapRegistryClient(
                s.repository.registry_url,
                timeout=REGISTRY_TIMEOUT,
                session_factory=self._session_factory,
                trail=self.audit if s.audit.enabled else None,
            )
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
        self.repository = Repository.from_settings(
            s,
            registry=client,
            engine=self.database.engine,
            owner=self.lease.owner,
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
            repository=repository_client(
                s,
                in_process,
                session_factory=self._session_factory,
                trail=self.audit if s.audit.enabled else None,
            ),
            domain_id_for_local=(
                self.registry.patients.domain_id_for_local if self.registry is not None else None
            ),
            engine=self.database.engine,
            owner=self.lease.owner,
            dicom_security=self._dicom_security(),
            deprecate_manifest=self._deprecate_manifest(),
        )
        endpoint = self.soap.endpoint(tx.IMAGING_SOURCE_PATH, tx.ENDPOINTS[tx.IMAGING_SOURCE_PATH])
        endpoint.bind(tx.RAD_69, self.imaging.rad69_handler())
        self._ready["imaging_source"] = False

    def _deprecate_manifest(self) -> Callable[[str], None] | None:
        """IOCM: how the imaging source deprecates a manifest whose instances were all rejected:
        the registry of this process, through its narrow in-process interface
        (``gateway.registry.availability``; ITI-57 UpdateAvailabilityStatus is its wire form).
        None when the registry is elsewhere."""
        s = self.settings
        if self.registry is None or s.repository.registry_url or s.imaging_source.repository_url:
            return None  # the manifests are registered elsewhere
        from gateway.registry.availability import deprecate_document

        db = self.registry.db

        def deprecate(entry_uuid: str) -> None:
            deprecate_document(db, entry_uuid)

        return deprecate

    def _bind_dicomweb(self) -> None:
        """DICOMweb (QIDO-RS, WADO-RS, STOW-RS) at /dicomweb over the imaging source."""
        from gateway.dicomweb.catalog import Catalog
        from gateway.dicomweb.service import DicomWebService

        assert self.imaging is not None
        s = self.settings.dicomweb
        backend = self._dicomweb_backend()
        self.dicomweb = DicomWebService(
            backend,
            Catalog(self.imaging.index.engine, backend),
            public_url=s.public_url,
            max_results=s.max_results,
            max_upload_bytes=s.max_upload_bytes,
        )
        self.mount("/dicomweb", self.dicomweb)

    def _dicomweb_backend(self) -> DicomWebBackend:
        """The narrow view of the imaging source DICOMweb uses (``gateway.dicomweb.ports``);
        imaging's exceptions become the two the DICOMweb room knows."""
        from gateway.dicomweb import ports
        from gateway.imaging import catalog, frames, rejection, transcode
        from gateway.imaging.index import InstanceRecord
        from gateway.imaging.ingest import InstanceRejected

        imaging = self.imaging
        assert imaging is not None
        index, store = imaging.index, imaging.store

        def view(r: InstanceRecord) -> ports.StoredInstance:
            return ports.StoredInstance(
                sop_instance_uid=r.sop_instance_uid,
                sop_class_uid=r.sop_class_uid,
                study_instance_uid=r.study_instance_uid,
                series_instance_uid=r.series_instance_uid,
                transfer_syntax_uid=r.transfer_syntax_uid,
                path=store.path(r.path),
                size=r.size,
                received_at=r.received_at,
                patient_id=r.patient_id,
            )

        def converting(call: Callable[..., Any]) -> Callable[..., Any]:
            def run(*args: Any) -> Any:
                try:
                    return call(*args)
                except transcode.CannotTranscode as exc:
                    raise ports.ConversionError(str(exc)) from exc

            return run

        def stored(path: Path) -> ports.StoredInstance:
            try:
                return view(imaging.ingest.store_received(path))
            except InstanceRejected as exc:
                raise ports.Rejected(exc.status, str(exc)) from exc

        def one(uid: str) -> ports.StoredInstance | None:
            found = index.instance(uid)
            return view(found) if found is not None else None

        return ports.Backend(
            instance=one,
            instances=lambda uids: {k: view(v) for k, v in index.instances(uids).items()},
            study=lambda uid: [view(r) for r in index.instances_of_study(uid)],
            changed_since=lambda t, n: [
                view(r) for r in catalog.changed_since(index.engine, t, limit=n)
            ],
            removed_since=lambda t, n: rejection.removed_since(index.engine, t, limit=n),
            store=stored,
            spool_dir=self._incoming_folder().path,  # per process, like C-STORE's
            plan=converting(
                lambda stored_ts, accepted: transcode.choose(stored_ts, accepted).syntax
            ),
            convert=converting(lambda src, dst, ts: transcode.transcode(src, dst, ts)),
            frames=ports.Frames(
                info=converting(frames.pixel_info),
                stored=converting(frames.stored_frames),
                decoded=converting(frames.decoded_frame),
                native_bytes=frames.native_bytes,
            ),
        )

    def _incoming_folder(self) -> StagingFolder:
        """This process's folder below the store's ``.tmp/incoming`` for instances being received
        (C-STORE, STOW-RS parts) and WADO-RS conversions: removed at stop, or by the next process
        that finds its owner gone after a crash."""
        assert self.imaging is not None
        if self._incoming is None:
            self._incoming = StagingFolder(self.imaging.store.incoming_dir, self.identity.owner)
        return self._incoming

    def _bind_xca(self) -> None:
        """XCA/XCA-I: Responding Gateway at /xca/rg (ITI-38, ITI-39, RAD-75), Initiating Gateway
        at /xca/ig (ITI-18, ITI-43, RAD-69), over this process's actors and [xca.communities]."""
        from gateway.xca.assembly import Actors, build

        actors = Actors(
            registry=self.stored_queries.run if self.stored_queries is not None else None,
            repositories=(
                {self.repository.unique_id: self.repository.retrieve} if self.repository else {}
            ),
            imaging_sources=(
                {self.imaging.unique_id: self.imaging.retriever.retrieve} if self.imaging else {}
            ),
            patient_lookup=self.registry.patients.ids_in_domain if self.registry else None,
        )
        self.xca = build(
            self.settings,
            actors,
            spool_dir=self._spool.path,  # outbound MTOM parts too: same file system
            session_factory=self._session_factory,
            trail=self.audit if self.settings.audit.enabled else None,
        )
        for path, gateway in (
            (tx.RESPONDING_GATEWAY_PATH, self.xca.responding),
            (tx.INITIATING_GATEWAY_PATH, self.xca.initiating),
        ):
            endpoint = self.soap.endpoint(path, tx.ENDPOINTS[path])
            for transaction, handler in gateway.handlers():
                endpoint.bind(transaction, handler)
        self._ready["xca"] = False

    def mount(self, prefix: str, app: WsgiApp) -> None:
        """Serve a plain WSGI application (FHIR, DICOMweb, UI, metrics) below ``prefix`` on the
        HTTP server, with the SOAP endpoints' access check and observers (``gateway.mount``)."""
        self.soap.mount(prefix, app)

    def _bind_mhd(self) -> None:
        """IHE MHD Document Recipient and Responder, ImagingStudy and Patient at /fhir."""
        from gateway.fhir.service import FhirService

        s = self.settings
        self.fhir = FhirService(
            self._mhd_backends(),
            public_url=s.http.public_url,
            max_body_bytes=s.mhd.max_bundle_bytes,
            page_size=s.mhd.page_size,
        )
        self.mount("/fhir", self.fhir)
        self._ready["mhd"] = False

    def _mhd_backends(self) -> FhirBackends:
        """The narrow interfaces of this process's actors the FHIR room uses (its ports)."""
        from gateway.fhir.ports import Backends, InstanceFacts, PatientRecord
        from gateway.registry.patients import PatientStatus
        from gateway.repository.iti41 import provide_and_register

        s, registry, imaging = self.settings, self.registry, self.imaging
        if registry is None or self.stored_queries is None:
            raise ConfigError("mhd.enabled: /fhir needs the registry in this process")

        def patient(cx: str) -> PatientRecord | None:
            found = registry.patients.details(cx)
            domain_id = None if found else registry.patients.domain_id_for_local(cx)
            found = found or (registry.patients.details(domain_id) if domain_id else None)
            if found is None:
                return None
            return PatientRecord(
                patient_id=found.patient_id,
                active=found.state.status is PatientStatus.ACTIVE,
                merged_into=found.state.merged_into,
                demographics=found.demographics,
                other_ids=found.local_ids,
            )

        def instances(uids: Any) -> dict[str, InstanceFacts]:
            assert imaging is not None
            return {
                uid: InstanceFacts(
                    modality=r.modality,
                    series_number=r.series_number,
                    instance_number=r.instance_number,
                )
                for uid, r in imaging.index.instances(uids).items()
            }

        own = {imaging.unique_id: tx.IMAGING_SOURCE_PATH} if imaging is not None else {}
        return Backends(
            query=self.stored_queries.query,
            provide=partial(provide_and_register, self.repository) if self.repository else None,
            repositories=(
                {self.repository.unique_id: self.repository.retrieve} if self.repository else {}
            ),
            patients=patient,
            instances=instances if imaging is not None else None,
            domain_oid=s.registry.patient_id_domain,
            rad69_urls={**s.consumer.imaging_sources, **own},
            wado_rs=self.dicomweb_root(),
            wado_rs_locations=frozenset(own),
        )

    def dicomweb_root(self) -> str | None:
        """The DICOMweb service root when this process serves ``/dicomweb``, else None: the one
        check that switches ImagingStudy endpoints from RAD-69 to WADO-RS. ``dicomweb.public_url``
        when set (as in the KOS's Retrieve URL), else the path, made absolute by the caller."""
        if self.dicomweb is None:
            return None
        return self.settings.dicomweb.public_url or "/dicomweb"

    def health(self) -> tuple[bool, dict[str, Any]]:
        """Readiness for ``/health``: ready when every enabled actor has started, the database
        answers at a migrated schema and every storage folder is writable (``gateway.health``)."""
        from gateway.health import database_state, storage_state

        with self._lock:
            actors = {name: ("ready" if ok else "starting") for name, ok in self._ready.items()}
            started = all(self._ready.values())
        database_ok, database = database_state(self.database.engine)
        storage_ok, storage = storage_state(self._storage_folders())
        report: dict[str, Any] = {
            "version": __version__,
            "actors": actors,
            "process": {"worker": self.identity.index, "pid": self.identity.pid},
            "database": database,
            "storage": storage,
        }
        if self.imaging is not None:  # held studies are reported, never a reason to fail
            report.update(self.imaging.health())
        return started and database_ok and storage_ok, report

    def _storage_folders(self) -> dict[str, Path]:
        folders = {"data_dir": self.settings.data_dir}
        if self.repository is not None:
            folders["repository"] = self.settings.repository_storage_dir
        if self.imaging is not None:
            folders["imaging_source"] = self.settings.imaging_storage_dir
        return folders

    def _mark_ready(self, name: str) -> None:
        with self._lock:
            self._ready[name] = True

    def start(self) -> tuple[str, int]:
        """Start every listener; return the HTTP (host, port) actually bound.

        Raises:
            ListenError: a port is in use (only when no ``listeners`` were given).
        """
        listeners = self._listeners
        if listeners is None:  # all bound before anything starts: a port in use stops it all
            listeners = self._listeners = bind_listeners(self.settings)
            listeners.announce(self.settings)
        self.audit.start()
        if self.mllp is not None:
            self.mllp.start(listeners.mllp)
            self._mark_ready("hl7")
        if self.repository is not None:
            self.repository.start()  # the start-up sweep ends before any request is served
        if self.imaging is not None:
            self.imaging.start(listeners.dicom, incoming_dir=self._incoming_folder().path)
        address = self.http.start(listeners.http)
        for name in list(self._ready):
            self._mark_ready(name)
        self._record_activity(start=True)
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
        if self.xca is not None:
            self.xca.close()
        if self.registry is not None:
            self.registry.close()
        if self._started:
            self._record_activity(start=False)
        self.audit.stop()
        if self._listeners is not None:
            self._listeners.close()  # any the servers did not take (and close) themselves
        if self._incoming is not None:
            self._incoming.close()
        self._spool.close()
        self.lease.release()  # last: what this process leaves pending is free at once
        self.database.dispose()

    def _record_activity(self, *, start: bool) -> None:
        """Application Start/Stop (DICOM PS3.15 A.5.3.1; ITI TF-2 §3.20.4.1.1.1)."""
        self._started = start
        if not self.settings.audit.enabled:
            return
        from gateway.audit import events

        ae = [self.settings.imaging_source.ae_title] if self.imaging is not None else []
        self.audit.record(
            events.application_activity(
                start=start, app_name=self.settings.audit.app_name, dicom_ae_titles=ae
            )
        )

    @property
    def spool_dir(self) -> Path:
        """This process's folder for spooled MTOM parts (``data_dir/tmp/soap/<owner>``)."""
        return self._spool.path

    @property
    def mllp_address(self) -> tuple[str, int] | None:
        return self.mllp.address if self.mllp is not None else None

    @property
    def base_url(self) -> str:
        host, port = self.http.address
        return f"{self.http.scheme}://{host}:{port}"


def _clear_spool(spool: os.PathLike[str]) -> None:
    # Loose files were spooled by versions before the per-process folders, cut off by a crash.
    for entry in os.scandir(spool):
        if entry.is_file():
            os.unlink(entry.path)
