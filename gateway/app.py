"""Assemble a running gateway from settings: HTTP server, SOAP endpoints and the enabled actors.

Actors are bound to endpoints here, explicitly, never by import side effects. What each enabled
actor contributes is listed in :meth:`Gateway._bind_actors`; ``/health`` reports ready once every
enabled actor has started.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
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
from gateway.soap.dispatch import Endpoint, Limits, Observer, SoapApplication
from gateway.soap.server import HttpServer

if TYPE_CHECKING:
    from gateway.dicomweb.ports import Backend as DicomWebBackend
    from gateway.dicomweb.service import DicomWebService
    from gateway.fhir.ports import Backends as FhirBackends
    from gateway.fhir.service import FhirService
    from gateway.hl7.mllp import MLLPServer
    from gateway.imaging.source import ImagingSource
    from gateway.notify.notifier import Notifier
    from gateway.registry.iti18 import StoredQueries
    from gateway.registry.iti42 import Registry
    from gateway.registry.update import MetadataUpdater
    from gateway.repository.actor import Repository
    from gateway.ui.journal import Journal
    from gateway.ui.metrics import Metrics
    from gateway.ui.web import UiApplication
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
        self.metadata_updater: MetadataUpdater | None = None  # ITI-57 (registry operations)
        self.mllp: MLLPServer | None = None
        self.repository: Repository | None = None
        self.imaging: ImagingSource | None = None
        self.dicomweb: DicomWebService | None = None
        self.xca: Gateways | None = None
        self.fhir: FhirService | None = None
        self.ui: UiApplication | None = None
        self.metrics: Metrics | None = None
        self.journal: Journal | None = None
        self.notifier: Notifier | None = None
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
        if settings.ui.enabled:
            observers.extend(self._ui_observers())
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
                """The patient of the study's manifest as the registry has it now (ITI-57 may
                have moved it), else as the imaging source published it."""
                study = index.study(uid)
                if study is None:
                    return None
                manifest = study.manifest_sop_instance_uid  # the manifest's uniqueId
                owner = view.documents([manifest]).get(manifest) if manifest else None
                return owner.patient_id if owner is not None else study.patient_id

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
        """TLS, access check and transfer audit of the DICOM listener, or None when all off;
        with /metrics, its association hooks also count associations (``_counting_security``)."""
        if (
            self.tls is None
            and self.access is None
            and not self.settings.audit.enabled
            and self.metrics is None
        ):
            return None
        from gateway.imaging.dicom_security import DicomSecurity

        ae = self.settings.imaging_source.ae_title
        context = None
        if self.tls is not None:
            context = self.tls.dicom_server(on_handshake_failure=self._handshake_failed("dicom"))
        kind = DicomSecurity if self.metrics is None else _counting_security(self.metrics)
        return kind(
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
        if s.ui.enabled:
            self._bind_ui()
        if self.registry is not None or self.imaging is not None:
            self._bind_notify()

    # -- push and notification (gateway.notify) ---------------------------------------------------
    def _bind_notify(self) -> None:
        """The durable outbox and its hooks: webhooks and DSUB on every ITI-42 registration,
        forwarding on every instance stored (C-STORE and STOW-RS)."""
        from gateway.notify import forward
        from gateway.notify.notifier import Notifier, forward_rules, webhooks

        s = self.settings
        try:
            hooks = webhooks(s.notify.webhook)
        except ValueError as exc:
            raise ConfigError(f"notify.webhook: {exc}") from exc
        notifier = self.notifier = Notifier(
            self.database.engine,
            self.lease.owner,
            webhooks=hooks,
            forward_rules=forward_rules(s.imaging_source.forward) if self.imaging else (),
            source=f"urn:oid:{s.imaging_source.unique_id}",
            links=self._study_links,
            poll_seconds=float(s.notify.poll_seconds),
            parallel=s.notify.parallel,
            retry_initial_seconds=float(s.notify.retry_initial_seconds),
            retry_max_seconds=float(s.notify.retry_max_seconds),
            session_factory=self._session_factory,  # the node's TLS client, when configured
        )
        if self.metrics is not None:  # xdsi_outbox_deliveries_total{kind,outcome}
            notifier.dispatcher.observers.append(self.metrics.delivery)
        if self.registry is not None:
            self._bind_dsub(notifier)
            if s.database_url == s.gateway_database_url:  # one transaction: commit together
                self.registry.within_registration.append(notifier.registered)
            else:
                self.registry.after_registration.append(partial(notifier.registered, None))
        if s.xdr.enabled:
            self._bind_xdr(notifier)
        imaging = self.imaging
        if imaging is not None:

            def stored(record: Any, calling_ae: str | None, via: str) -> None:
                notifier.instance_stored(
                    forward.StoredInstance(
                        sop_instance_uid=record.sop_instance_uid,
                        study_instance_uid=record.study_instance_uid,
                        path=imaging.store.path(record.path),
                        modality=record.modality,
                        calling_ae_title=calling_ae,
                        via=via,
                    )
                )

            def locate(uid: str) -> Path | None:
                found = imaging.index.instance(uid)
                return imaging.store.path(found.path) if found is not None else None

            imaging.stored_hooks.append(stored)
            tls = self.tls
            notifier.senders["forward"] = forward.make_sender(
                locate,
                ae_title=s.imaging_source.ae_title,
                ssl_context=lambda: (
                    tls.client(check_hostname=s.tls.verify_hostname) if tls is not None else None
                ),
            )

    def _bind_dsub(self, notifier: Notifier) -> None:
        """DSUB broker grouped with the registry: ITI-52 at /dsub/broker, ITI-53 from the
        outbox on every registration a subscription matches."""
        from gateway.notify import dsub

        broker = dsub.Broker(
            self.database.engine,
            lambda: (
                (self.settings.http.public_url or self.base_url).rstrip("/") + tx.DSUB_BROKER_PATH
            ),
        )
        endpoint = self.soap.endpoint(tx.DSUB_BROKER_PATH)
        endpoint.bind(tx.ITI_52_SUBSCRIBE, broker.subscribe)
        endpoint.bind(tx.ITI_52_UNSUBSCRIBE, broker.unsubscribe)
        notifier.sources.append(broker.notifications)
        notifier.senders["dsub"] = dsub.make_sender(self._session_factory)

    def _bind_xdr(self, notifier: Notifier) -> None:
        """XDR-I: the Document Recipient at /xdr/recipient (ITI-41 into the inbox) and the
        outbox sender of kind ``xdr``: ``import`` (inbox accept) or a push to a recipient URL."""
        from gateway.notify import xdr
        from gateway.notify.outbox import Claimed

        inbox = xdr.Inbox(self.database.engine, self.settings.data_dir / "xdr")
        endpoint = self.soap.endpoint(tx.XDR_RECIPIENT_PATH)
        endpoint.bind(
            tx.XDR_ITI_41, xdr.recipient(inbox, auto_import=self.settings.xdr.auto_import)
        )
        importing = xdr.make_sender(inbox, self._xdr_import)

        def send(item: Claimed) -> None:
            if item.target == "import":
                importing(item)
            else:
                self._xdr_push(item.target, str(item.payload["study"]))

        notifier.senders["xdr"] = send
        if self.ui is not None:  # the inbox page of the exchange browser (/ui/inbox)
            self.ui.backends.inbox = partial(self._ui_inbox, inbox)

            def accept(entry_id: int) -> int | None:
                row: int | None = inbox.accept(entry_id)
                if row is not None:
                    notifier.dispatcher.wake()  # this process imports it at once
                return row

            self.ui.backends.inbox_accept = accept

    @staticmethod
    def _ui_inbox(inbox: Any) -> list[Any]:
        """The XDR inbox (``gateway.notify.xdr.Inbox``) as the UI's rows."""
        from gateway.ui.ports import InboxRow

        return [
            InboxRow(
                id=e.id,
                received_at=e.received_at,
                state=e.state,
                sender=e.source_id or "",
                patient_id=e.patient_id or "",
                documents=len(e.summary.get("documents", [])),
                studies=tuple(e.studies),
                error=e.error or "",
            )
            for e in inbox.list()
        ]

    def _xdr_import(self, entry: Any) -> None:
        """Import an XDR inbox entry (``gateway.notify.xdr.InboxEntry``): the instances its KOS
        manifests list are retrieved by RAD-69 from the sender's Retrieve Location
        (``[consumer.imaging_sources]`` maps its UID to a URL), stored byte for byte by the
        local imaging source, and the study published here (RAD-68, ITI-42): the local manifest,
        whose Retrieve Location is this gateway's. Raises to be retried; PermanentFailure
        when there is nothing an attempt could import."""
        import tempfile

        from gateway.consumer.fetch import StudyFetcher
        from gateway.consumer.manifest import read_manifest
        from gateway.consumer.report import FetchRequest
        from gateway.consumer.settings import consumer_settings
        from gateway.consumer.store import FolderDestination
        from gateway.notify.outbox import PermanentFailure
        from gateway.notify.xdr import KOS_FORMAT

        imaging = self.imaging
        if imaging is None:
            raise PermanentFailure("this gateway has no imaging source to import into")
        index = imaging.index
        manifests = [
            (doc, path)
            for doc, path in entry.documents()
            if doc.get("format_code") == KOS_FORMAT or doc.get("mime_type") == "application/dicom"
        ]
        if not manifests:
            raise PermanentFailure("the submission holds no KOS manifest")
        peers = consumer_settings(self.settings, base_url=self.base_url)
        studies: list[str] = []
        incoming = self._incoming_folder().path

        class HereFirst(FolderDestination):
            """What the local imaging source holds already (sent by --with-images) is skipped."""

            def existing(self, patient_id: str, refs: Any) -> set[str]:
                held = index.instances([r.sop_instance_uid for r in refs])
                return set(held)

        with tempfile.TemporaryDirectory(prefix="xdr-import-", dir=incoming) as folder:
            destination = HereFirst(folder)
            fetcher = StudyFetcher(peers, destination)
            try:
                for doc, path in manifests:
                    manifest = read_manifest(path)
                    patient = doc.get("patient_id") or entry.patient_id or ""
                    for study in manifest.study_uids:
                        request = FetchRequest(patient_id=patient, study_uid=study)
                        outcome = fetcher.fetch_study(request, study, [manifest])
                        if outcome.missing:
                            first = next(iter(outcome.missing.items()))
                            raise RuntimeError(
                                f"{len(outcome.missing)} instance(s) of study {study} not "
                                f"retrieved (e.g. {first[0]}: {first[1]})"
                            )
                        studies.append(study)
            finally:
                fetcher.close()
            report = imaging.load_directory(folder)
            if report.rejected:
                raise PermanentFailure(
                    f"{len(report.rejected)} instance(s) refused: {report.rejected[0][1]}"
                )
        for study in dict.fromkeys(studies):
            result = imaging.publish_study(study, force=True)
            if not result.manifest_uid:
                raise RuntimeError(f"study {study} not published: {result.outcome} {result.detail}")

    def _xdr_push(self, url: str, study_uid: str) -> None:
        """Send a published study's KOS to the Document Recipient at ``url`` by XDR-I (RAD-68
        semantics: ITI-41 with the manifest, a new SubmissionSet; RAD TF-1 §18, ITI TF-2b §3.41).
        Raises PermanentFailure when the study has no manifest here or the recipient refuses."""
        import copy
        from datetime import UTC, datetime

        from gateway.imaging import rad68
        from gateway.imaging.entry import build_submission
        from gateway.imaging.source import manifest_codes
        from gateway.metadata import vocabulary
        from gateway.metadata.datatypes import new_uuid_urn
        from gateway.metadata.model import DocumentEntry
        from gateway.metadata.query import AdhocQuery
        from gateway.metadata.query_values import quote_list
        from gateway.metadata.retrieve import DocumentRequest
        from gateway.notify.outbox import PermanentFailure

        s = self.settings
        imaging, queries, repository = self.imaging, self.stored_queries, self.repository
        if imaging is None or queries is None or repository is None:
            raise PermanentFailure("push needs the imaging source, registry and repository here")
        record = imaging.index.study(study_uid)
        uid = record.manifest_sop_instance_uid if record is not None else None
        if not uid:
            raise PermanentFailure(f"study {study_uid} has no published manifest here")
        query = AdhocQuery(query_id=str(vocabulary.GET_DOCUMENTS)).add(
            "$XDSDocumentEntryUniqueId", quote_list([uid])
        )
        found = [o for o in queries.query(query) if isinstance(o, DocumentEntry)]
        if not found:
            raise PermanentFailure(f"manifest {uid} is not in the registry")
        registered = found[0]
        answer = repository.retrieve(
            [DocumentRequest(repository_unique_id=repository.unique_id, document_unique_id=uid)]
        )
        try:
            if not answer.documents:
                raise PermanentFailure(f"manifest {uid} is not in the repository")
            attachment = answer.documents[0].attachment
            entry = copy.deepcopy(registered)
            entry.entry_uuid = new_uuid_urn()
            for name in ("availability_status", "logical_id", "version", "home_community_id"):
                setattr(entry, name, None)
            entry.repository_unique_id = None  # the recipient's own business (ITI-41)
            source = s.imaging_source
            submission = build_submission(
                entry,
                manifest_codes(source),
                source_id=source.source_id or source.unique_id,
                submission_set_unique_id=f"2.25.{uuid.uuid4().int}",
                now=datetime.now(UTC),
            )
            request = rad68.build_request(submission, entry.entry_uuid, attachment)
            client = rad68.SoapRepositoryClient(url, session_factory=self._session_factory)
            try:
                rad68.send(client, request, attachment)
            except rad68.PublishOutcomeUnknown:
                raise  # retried: the same manifest again
            except rad68.PublishError as exc:
                if exc.codes:
                    raise PermanentFailure(f"refused: {', '.join(exc.codes)}: {exc}") from exc
                raise
            finally:
                client.close()
        finally:
            answer.discard()  # the retrieved manifest's temporary file, if any
        log.info("XDR-I: study %s pushed to %s (manifest %s)", study_uid, url, uid)

    def _study_links(self, study_uid: str) -> dict[str, str]:
        """Where a study is fetched from this gateway (webhook payloads): RAD-69, WADO-RS."""
        base = (self.settings.http.public_url or self.base_url).rstrip("/")
        links = {}
        if self.imaging is not None:
            links["rad69"] = base + tx.IMAGING_SOURCE_PATH
            links["retrieveLocationUid"] = self.imaging.unique_id
        root = self.dicomweb_root()
        if root is not None:
            root = root if root.startswith("http") else base + root
            links["wadoRs"] = f"{root.rstrip('/')}/studies/{study_uid}"
        return links

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
        self._bind_registry_operations(endpoint)
        self._ready["registry"] = False
        if s.hl7.enabled:
            handler = PatientFeedHandler(self.registry.patients, s.registry.patient_id_domain)
            feed = self._audited_feed(handler) if s.audit.enabled else handler
            self.mllp = MLLPServer(
                self._counted_feed(feed) if self.metrics is not None else feed,
                host=s.hl7.host,
                port=s.hl7.mllp_port,
                max_message_bytes=s.hl7.max_message_bytes,
                idle_timeout=float(s.hl7.idle_timeout),
                ssl_context=self.tls.server() if self.tls is not None else None,
                authorize=self._authorize_mllp if self.access is not None else None,
                on_handshake_failure=self._mllp_handshake_failed if self.tls else None,
            )
            self._ready["hl7"] = False

    def _bind_registry_operations(self, endpoint: Endpoint) -> None:
        """Registry operations at /xds/registry: ITI-57 Update Document Set (XDS Metadata
        Update option), ITI-62 Remove Metadata (RMD)."""
        from gateway.registry import remove as registry_remove
        from gateway.registry import update as registry_update

        registry = self.registry
        assert registry is not None
        updater = registry_update.MetadataUpdater(
            registry.db, code_set=registry.code_set, clock=registry.clock
        )
        registry_update.bind(endpoint, updater)
        self.metadata_updater = updater  # the imaging source's IOCM deprecations (ITI-57)
        registry_remove.bind(endpoint, registry_remove.MetadataRemover(registry.db))

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
        from gateway.repository import remove as repository_remove

        endpoint.bind(tx.ITI_86, repository_remove.handler(self.repository))  # RMD
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
            observers=[self._journal_publication] if self.journal is not None else [],
            deprecate_manifest=self._deprecate_manifest(),
        )
        endpoint = self.soap.endpoint(tx.IMAGING_SOURCE_PATH, tx.ENDPOINTS[tx.IMAGING_SOURCE_PATH])
        endpoint.bind(tx.RAD_69, self.imaging.rad69_handler())
        self._ready["imaging_source"] = False

    def _deprecate_manifest(self) -> Callable[[str, str], None] | None:
        """IOCM: how the imaging source deprecates a manifest whose instances were all rejected:
        ITI-57 Update Document Set with an UpdateAvailabilityStatus association
        (``gateway.imaging.withdrawal``), sent to the registry that holds the manifests:
        ``imaging_source.registry_url``; else ``repository.registry_url`` when the repository
        of this process registers them; else the registry of this process, through its ITI-57
        side (same rules as over SOAP). None when none of these is known."""
        from gateway.imaging.source import manifest_codes
        from gateway.imaging.withdrawal import (
            InProcessRegistryUpdater,
            ManifestDeprecator,
            RegistryUpdater,
            SoapRegistryUpdater,
        )

        s = self.settings
        url = s.imaging_source.registry_url
        if not url and not s.imaging_source.repository_url:
            url = s.repository.registry_url
        registry: RegistryUpdater
        if url:
            registry = SoapRegistryUpdater(
                url, timeout=REGISTRY_TIMEOUT, session_factory=self._session_factory
            )
        elif self.metadata_updater is not None and not s.imaging_source.repository_url:
            from gateway.registry.update import update_in_process

            registry = InProcessRegistryUpdater(partial(update_in_process, self.metadata_updater))
        else:
            return None  # the manifests are registered by a repository elsewhere
        section = s.imaging_source
        return ManifestDeprecator(
            registry,
            source_id=section.source_id or section.unique_id,
            content_type_code=manifest_codes(section).content_type_code,
            trail=self.audit if s.audit.enabled else None,
        )

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
                record = imaging.ingest.store_received(path)
            except InstanceRejected as exc:
                raise ports.Rejected(exc.status, str(exc)) from exc
            imaging.instance_stored(record, calling_ae=None, via="STOW-RS")  # forwarding
            return view(record)

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

    # -- the exchange browser and /metrics (gateway.ui) ------------------------------------------
    def _ui_observers(self) -> list[Observer]:
        """The metrics counter and the recent-transactions journal, as boundary observers."""
        from gateway.ui.journal import Entry, Journal
        from gateway.ui.metrics import Metrics

        self.metrics = Metrics(gauges=self._ui_counts_for_metrics)
        journal = self.journal = Journal(self.database.engine)

        def record(done: Any) -> None:
            if done.path.startswith(("/ui", "/metrics", "/health")) and not done.transaction:
                return
            try:
                journal.record(
                    Entry(
                        at=time.time(),
                        direction="served",
                        transaction=done.transaction,
                        path=done.path,
                        peer=done.peer_subject or done.remote_addr,
                        outcome=done.outcome,
                        http_status=done.http_status,
                        duration_ms=done.duration_ms,
                        error_codes=",".join(done.error_codes) or None,
                    )
                )
            except Exception:  # observers never break a response
                log.exception("ui: cannot record a transaction in the journal")

        return [self.metrics.observer(), record]

    def _journal_publication(self, result: Any) -> None:
        """A RAD-68 publication (sent to the repository) in the dashboard's transactions."""
        from gateway.imaging.outcomes import FAILED_OUTCOME, PUBLISHED_OUTCOME
        from gateway.ui.journal import Entry

        if result.outcome not in (PUBLISHED_OUTCOME, FAILED_OUTCOME) or self.journal is None:
            return  # held, unchanged, busy: nothing was sent
        target = self.settings.imaging_source.repository_url or "this gateway (in process)"
        self.journal.record(
            Entry(
                at=time.time(),
                direction="sent",
                transaction="RAD-68",
                path=f"study {result.study_instance_uid}",
                peer=target,
                outcome="Success" if result.outcome == PUBLISHED_OUTCOME else "Failure",
                http_status=0,
                duration_ms=0.0,
                error_codes=(result.detail or None) if result.outcome == FAILED_OUTCOME else None,
            )
        )

    def _counted_feed(self, handler: Callable[[bytes], bytes]) -> Callable[[bytes], bytes]:
        """Count every ITI-8 message answered over MLLP by its ACK code (MSA-1)."""
        from gateway.hl7.ack import parse_ack

        metrics = self.metrics
        assert metrics is not None

        def counted(raw: bytes) -> bytes:
            ack = handler(raw)
            try:
                metrics.mllp.labels("accepted" if parse_ack(ack).accepted else "rejected").inc()
            except Exception:
                metrics.mllp.labels("unreadable").inc()
            return ack

        return counted

    def _ui_counts(self) -> dict[str, int]:
        """Patients, documents, studies and instances (the dashboard's counts)."""
        from sqlalchemy import text

        counts: dict[str, int] = {}
        if self.registry is not None:
            with self.registry.db.read() as conn:
                counts["patients"] = int(
                    conn.execute(
                        text("SELECT count(*) FROM patient WHERE merged_into IS NULL")
                    ).scalar()
                    or 0
                )
                counts["documents"] = int(
                    conn.execute(text("SELECT count(*) FROM document_entry")).scalar() or 0
                )
        if self.imaging is not None:
            with self.database.engine.connect() as conn:
                counts["studies"] = int(
                    conn.execute(text("SELECT count(*) FROM imaging_study")).scalar() or 0
                )
                counts["instances"] = int(
                    conn.execute(text("SELECT count(*) FROM imaging_instance")).scalar() or 0
                )
                counts["manifests published"] = int(
                    conn.execute(
                        text("SELECT count(*) FROM imaging_study WHERE published_at IS NOT NULL")
                    ).scalar()
                    or 0
                )
        return counts

    def _ui_counts_for_metrics(self) -> dict[str, Any]:
        names = {
            "patients": "xdsi_patients",
            "documents": "xdsi_documents",
            "studies": "xdsi_studies",
            "instances": "xdsi_instances_stored",
            "manifests published": "xdsi_manifests_published",
        }
        try:
            values: dict[str, Any] = {names[k]: v for k, v in self._ui_counts().items()}
        except Exception:
            log.exception("metrics: cannot count in the database")
            values = {}
        values["xdsi_audit_queue_depth"] = (
            self.audit.pending() if self.settings.audit.enabled else 0
        )
        if self.notifier is not None:  # the outbox (gateway.notify): rows per kind and state
            values["xdsi_outbox_rows"] = self._outbox_rows(self.notifier)
        return values

    @staticmethod
    def _outbox_rows(notifier: Notifier) -> list[tuple[dict[str, str], float]]:
        """``xdsi_outbox_rows{kind,state}``: every kind and state, zeros included."""
        from gateway.notify.outbox import FAILED, KINDS, PENDING, SENT

        try:
            counts = notifier.outbox.counts()
        except Exception:
            log.exception("metrics: cannot count the outbox")
            return []
        kinds = sorted(set(KINDS) | set(counts))
        return [
            ({"kind": kind, "state": state}, float(counts.get(kind, {}).get(state, 0)))
            for kind in kinds
            for state in sorted({PENDING, SENT, FAILED} | set(counts.get(kind, {})))
        ]

    def _bind_ui(self) -> None:
        """The exchange browser at /ui and the Prometheus metrics at /metrics (``gateway.ui``)."""
        import ipaddress

        from gateway.ui.sessions import load_key
        from gateway.ui.web import UiApplication

        s = self.settings
        accounts = s.path(s.ui.accounts_file) if s.ui.accounts_file else None
        host = s.http.host.strip("[]")
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        self.ui = UiApplication(
            self._ui_backends(),
            journal=self.journal,
            accounts_file=accounts,
            open_access=loopback,
            key=load_key(s.data_dir / "ui"),
            secure_cookies=self.tls is not None,
            mask_patient_ids=not s.log.patient_ids,
        )
        self.mount("/ui", self.ui)
        assert self.metrics is not None
        self.mount("/metrics", self.metrics)

    def _ui_download(self, entry: Any) -> Any:
        """A document of this gateway's repository (ITI-43 in process), for /ui downloads,
        streamed from its stored file."""
        from gateway.errors import XDSRepositoryError
        from gateway.metadata.retrieve import DocumentRequest
        from gateway.ui.ports import Downloaded

        repository = self.repository
        if repository is None or entry.repository_unique_id != repository.unique_id:
            raise XDSRepositoryError("the document's repository is not this gateway's")
        answer = repository.retrieve(
            [
                DocumentRequest(
                    repository_unique_id=entry.repository_unique_id or "",
                    document_unique_id=entry.unique_id or "",
                )
            ]
        )
        if not answer.documents:
            answer.discard()
            raise XDSRepositoryError("; ".join(str(e) for e in answer.errors))
        found = answer.documents[0]
        return Downloaded(
            chunks=found.attachment.chunks(),
            size=found.attachment.size,
            mime_type=found.mime_type,
            close=answer.discard,
        )

    def _ui_series(self, study_uid: str) -> list[Any]:
        """The series of a study in the imaging source's index, instances in number order."""
        from gateway.ui.ports import SeriesView

        imaging = self.imaging
        assert imaging is not None
        grouped: dict[str, list[Any]] = {}
        for record in imaging.index.instances_of_study(study_uid):
            grouped.setdefault(record.series_instance_uid, []).append(record)
        out = []
        for uid, records in grouped.items():
            records.sort(key=lambda r: (r.instance_number is None, r.instance_number or 0))
            out.append(
                SeriesView(
                    series_instance_uid=uid,
                    modality=records[0].modality,
                    series_number=records[0].series_number,
                    instances=tuple(r.sop_instance_uid for r in records),
                )
            )
        out.sort(key=lambda x: (x.series_number is None, x.series_number or 0))
        return out

    def _ui_initiating_gateway(self) -> Callable[[], Any] | None:
        """A client of the Initiating Gateway the UI's registry queries go through, when there is
        one: ``consumer.initiating_gateway_url``, else this process's ``/xca/ig``."""
        from gateway.consumer.clients import RegistryQueryClient

        url = self.settings.consumer.initiating_gateway_url
        if not url and self.xca is not None:
            own = tx.INITIATING_GATEWAY_PATH
            return lambda: RegistryQueryClient(
                self.base_url + own,
                timeout=float(self.settings.xca.timeout) + 30,
                session_factory=self._session_factory,
            )
        if not url:
            return None
        return lambda: RegistryQueryClient(
            url, timeout=self.settings.consumer.timeout, session_factory=self._session_factory
        )

    def _ui_audit_query(
        self, operator: str, host: str | None, query_id: str, text: str, pids: Any
    ) -> None:
        """Audit an operator's search (DICOM PS3.15 A.5.3.10), when [audit] is on."""
        from gateway.audit import events

        if self.settings.audit.enabled:
            self.audit.record(
                events.ui_query(
                    operator=operator,
                    operator_host=host,
                    local=self.audit.local_participant(f"{self.base_url}/ui"),
                    query_id=query_id,
                    query_text=text,
                    patient_ids=list(pids),
                )
            )

    def _ui_audit_patient(self, operator: str, host: str | None, pids: Any, studies: Any) -> None:
        """Audit a page showing a patient's data (DICOM PS3.15 A.5.3.14), when [audit] is on."""
        from gateway.audit import events
        from gateway.audit.model import StudyRef

        if self.settings.audit.enabled:
            self.audit.record(
                events.ui_patient_record(
                    operator=operator,
                    operator_host=host,
                    local=self.audit.local_participant(f"{self.base_url}/ui"),
                    patient_ids=list(pids),
                    studies=[StudyRef(study_uid=u) for u in studies],
                )
            )

    def _ui_backends(self) -> Any:
        """The actors as the UI sees them (``gateway.ui.ports``), from their public interfaces."""
        from gateway.metadata import vocabulary as v
        from gateway.metadata.model import DocumentEntry
        from gateway.metadata.query import AdhocQuery
        from gateway.metadata.query_values import quote, quote_list
        from gateway.ui.ports import Backends, PatientRow

        registry, queries, imaging = self.registry, self.stored_queries, self.imaging
        audit_on = self.settings.audit.enabled
        statuses = [v.STATUS_APPROVED, v.STATUS_DEPRECATED]

        def search(text: str, limit: int) -> list[PatientRow]:
            assert registry is not None
            return [
                PatientRow(
                    patient_id=m.patient_id,
                    name=" ".join(x for x in (m.family_name, m.given_name) if x),
                    birth_date=m.birth_date or "",
                    sex=m.sex or "",
                )
                for m in registry.patients.search(text, limit=limit)
            ]

        initiating = self._ui_initiating_gateway()

        def entries(query: AdhocQuery) -> list[DocumentEntry]:
            if initiating is not None:  # every community's (XCA, ITI TF-1 §18.2.1)
                found = initiating().query(query.query_id, query.slots).objects
            else:
                assert queries is not None
                found = queries.query(query)
            return [o for o in found if isinstance(o, DocumentEntry)]

        def documents_of(pid: str) -> list[DocumentEntry]:
            query = AdhocQuery(query_id=v.FIND_DOCUMENTS)
            query.add("$XDSDocumentEntryPatientId", quote(pid))
            query.add("$XDSDocumentEntryStatus", quote_list(statuses))
            return entries(query)

        def document(uuid: str) -> DocumentEntry | None:
            query = AdhocQuery(query_id=v.GET_DOCUMENTS)
            query.add("$XDSDocumentEntryEntryUUID", quote_list([uuid]))
            found = entries(query)
            return found[0] if found else None

        def patient_of_study(study_uid: str) -> str | None:
            assert imaging is not None
            found = imaging.index.study(study_uid)
            return found.patient_id if found is not None else None

        def actors() -> dict[str, str]:
            with self._lock:
                states = {n: ("ready" if ok else "starting") for n, ok in self._ready.items()}
            if self.dicomweb is not None:  # served as soon as the HTTP server is
                states["dicomweb"] = states.get("imaging_source", "ready")
            return states

        return Backends(
            actors=actors,
            counts=self._ui_counts,
            audit_depth=(lambda: self.audit.pending()) if audit_on else (lambda: 0),
            search_patients=search if registry is not None else None,
            documents_of=documents_of if queries or initiating else None,
            document=document if queries or initiating else None,
            download=self._ui_download if self.repository is not None else None,
            series_of=self._ui_series if imaging is not None else None,
            patient_of_study=patient_of_study if imaging is not None else (lambda _u: None),
            rendered=self.dicomweb,
            audit_query=self._ui_audit_query,
            audit_patient=self._ui_audit_patient,
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
        if self.notifier is not None:  # outbox rows per kind and state (also in /metrics)
            report["notify"] = self.notifier.health()
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
        if self.journal is not None:
            self.journal.start()
        if self.mllp is not None:
            self.mllp.start(listeners.mllp)
            self._mark_ready("hl7")
        if self.repository is not None:
            self.repository.start()  # the start-up sweep ends before any request is served
        if self.imaging is not None:
            self.imaging.start(listeners.dicom, incoming_dir=self._incoming_folder().path)
        # Every actor has started: ready before the HTTP server takes its first request, since
        # under `serve --workers` a replacement worker's own socket (SO_REUSEPORT) may hold
        # connections the kernel gave it while it was starting; they must not meet a 503.
        for name in list(self._ready):
            self._mark_ready(name)
        address = self.http.start(listeners.http)
        if self.notifier is not None:
            self.notifier.start()
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
        if self.notifier is not None:  # first: an import in progress uses the imaging source
            self.notifier.stop()
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
        if self.journal is not None:
            self.journal.close()  # what is queued is written while the database is there
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


def _counting_security(metrics: Metrics) -> Any:
    """The DICOM listener's security hooks, counting associations for /metrics: accepted ones
    as they end (``released`` or ``aborted``), and those the access rules refuse (``refused``)."""
    from gateway.imaging.dicom_security import DicomSecurity

    class CountingDicomSecurity(DicomSecurity):
        def admit(self, sock: Any, remote: str, *, calling_ae: str = "") -> str | None:
            reason = super().admit(sock, remote, calling_ae=calling_ae)
            if reason is not None:
                metrics.associations.labels("refused").inc()
            return reason

        def ended(self, assoc: Any, **facts: Any) -> None:
            metrics.associations.labels("aborted" if facts.get("aborted") else "released").inc()
            super().ended(assoc, **facts)

    return CountingDicomSecurity


def _clear_spool(spool: os.PathLike[str]) -> None:
    # Loose files were spooled by versions before the per-process folders, cut off by a crash.
    for entry in os.scandir(spool):
        if entry.is_file():
            os.unlink(entry.path)
