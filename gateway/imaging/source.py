"""The Imaging Document Source actor: DICOM listener, study tracking, RAD-68 publish, RAD-69.

:class:`ImagingSource` assembles the pieces of this package around one storage folder and one
index: the C-STORE SCP (``storescp``) that keeps instances as received, the idle worker that
publishes quiet studies (``publisher``), on-demand publication and folder import (the
``xdsi-gateway publish`` command), and the RAD-69 retriever the SOAP endpoint uses (``rad69``).

Standards: RAD TF-1 §18 (XDS-I.b), RAD TF-3 §4.68 (RAD-68), §4.69 (RAD-69); DICOM PS3.4 Annex B.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from gateway.config import ImagingSourceSettings, Settings
from gateway.errors import ConfigError
from gateway.imaging import pending, rad69
from gateway.imaging.codes import ManifestCodes
from gateway.imaging.index import ImagingIndex, InstanceRecord
from gateway.imaging.ingest import Ingest, InstanceRejected, dicom_files, read_header
from gateway.imaging.kos import Reference
from gateway.imaging.negotiation import parse_preference
from gateway.imaging.patient import DomainLookup
from gateway.imaging.publisher import Publisher, PublisherConfig, PublishResult
from gateway.imaging.rad68 import (
    InProcessRepositoryClient,
    RepositoryClient,
    SoapRepositoryClient,
)
from gateway.imaging.rejection import (
    Rejections,
    build_note,
    encode_note,
    manifest_instances,
    select_instances,
)
from gateway.imaging.retrieve import ImagingRetriever
from gateway.imaging.storage import InstanceStore
from gateway.imaging.storescp import (
    ACCEPTED_TRANSFER_SYNTAXES,
    DEFAULT_MAX_ASSOCIATIONS,
    DEFAULT_MAX_PDU,
    StoreSCP,
)
from gateway.metadata.datatypes import Code
from gateway.soap.dispatch import Handler

log = logging.getLogger("gateway.imaging")


@dataclass(slots=True, kw_only=True)
class LoadReport:
    """The outcome of a folder import."""

    stored: list[InstanceRecord] = field(default_factory=list)
    rejected: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def studies(self) -> list[str]:
        """Study Instance UIDs of the stored instances, in first-seen order."""
        return list(dict.fromkeys(record.study_instance_uid for record in self.stored))


class ImagingSource:
    """One imaging document source: start it to listen for DICOM and publish quiet studies."""

    def __init__(
        self,
        *,
        unique_id: str,
        ae_title: str,
        storage_dir: str | os.PathLike[str],
        index: ImagingIndex,
        repository: RepositoryClient,
        domain_oid: str,
        domain_id_for_local: DomainLookup | None = None,
        host: str = "127.0.0.1",
        port: int = 11112,
        study_idle_seconds: float = 30.0,
        codes: ManifestCodes | None = None,
        source_id: str | None = None,
        retrieve_ae_title: str | None = None,
        poll_seconds: float | None = None,
        retry_seconds: float = 60.0,
        held_retry_seconds: float = 10.0,
        publish_parallel: int = 4,
        maximum_pdu_size: int = DEFAULT_MAX_PDU,
        max_associations: int = DEFAULT_MAX_ASSOCIATIONS,
        require_called_aet: bool = True,
        fsync: bool = True,
        observers: Sequence[Callable[[PublishResult], None]] = (),
        dicom_security: Any | None = None,
        transfer_syntax_order: Sequence[str] = (),
        wado_rs_root: str = "",
        deprecate_manifest: Callable[[str, str], None] | None = None,
    ) -> None:
        self.unique_id = unique_id
        self.study_idle_seconds = study_idle_seconds
        self.poll_seconds = poll_seconds or min(1.0, max(0.05, study_idle_seconds / 4))
        self.index = index
        self.store = InstanceStore(storage_dir, fsync=fsync)
        self.ingest = Ingest(self.store, index)
        config = PublisherConfig(
            unique_id=unique_id,
            retrieve_ae_title=retrieve_ae_title or ae_title,
            domain_oid=domain_oid,
            source_id=source_id or unique_id,
            codes=codes or ManifestCodes(),
            retry_seconds=retry_seconds,
            held_retry_seconds=held_retry_seconds,
            parallel=publish_parallel,
            wado_rs_root=wado_rs_root,
        )
        self.publisher = Publisher(
            index=index,
            store=self.store,
            repository=repository,
            config=config,
            domain_lookup=domain_id_for_local,
            observers=observers,
            deprecate=deprecate_manifest,
        )
        # IOCM: a Rejection Note is applied as soon as it is indexed (gateway.imaging.rejection)
        self.rejections = Rejections(index, self.store)
        self.ingest.after_index = self.rejections.received
        self.retriever = ImagingRetriever(index=index, store=self.store, unique_id=unique_id)
        self.scp = StoreSCP(
            self.ingest,
            ae_title=ae_title,
            host=host,
            port=port,
            maximum_pdu_size=maximum_pdu_size,
            max_associations=max_associations,
            require_called_aet=require_called_aet,
            security=dicom_security,
            transfer_syntax_order=transfer_syntax_order,
            notify=lambda record, calling_ae: self.instance_stored(
                record, calling_ae=calling_ae, via="C-STORE"
            ),
        )
        # The one "instance stored" hook (forwarding, gateway.notify): C-STORE calls it through
        # the listener, STOW-RS through the assembly's DICOMweb port. Each gets
        # (record, calling AE title or None, "C-STORE" | "STOW-RS").
        self.stored_hooks: list[Callable[[InstanceRecord, str | None, str], None]] = []
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------------
    def start(
        self, sock: socket.socket | None = None, *, incoming_dir: Path | None = None
    ) -> tuple[str, int]:
        """Start the DICOM listener and the idle worker; return the listener's (host, port).

        ``sock`` and ``incoming_dir``: see :meth:`StoreSCP.start`.
        """
        address = self.scp.start(sock, incoming_dir=incoming_dir)
        if self._worker is None:
            self._stop.clear()
            self._worker = threading.Thread(
                target=self._work, name="imaging-source-idle-worker", daemon=True
            )
            self._worker.start()
        return address

    def stop(self) -> None:
        """Stop the worker (after the publications in progress) and the listener."""
        self._stop.set()
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.join()
        self.publisher.close()
        self.scp.stop()
        self.index.close()  # only an index of its own (ImagingIndex.from_url) holds anything

    @property
    def address(self) -> tuple[str, int]:
        """The DICOM listener's bound (host, port)."""
        return self.scp.address

    def _work(self) -> None:
        # Each cycle claims due studies into free publication slots and returns at once, so a
        # slow repository holds only its own slots: other studies keep going out.
        while not self._stop.wait(self.poll_seconds):
            try:
                self.publisher.dispatch_due(self.study_idle_seconds)
            except Exception:  # a database outage must not end the worker
                log.exception("idle worker cycle failed")

    # -- operations -----------------------------------------------------------------------------
    def publish_study(self, study_uid: str, *, force: bool = False) -> PublishResult:
        """Publish a study now, without waiting for it to be quiet (RAD-68)."""
        return self.publisher.publish(study_uid, force=force)

    def publish_due(self) -> list[PublishResult]:
        """Run one idle-worker cycle now (what the worker does every ``poll_seconds``)."""
        return self.publisher.publish_due(self.study_idle_seconds)

    def load_directory(self, path: str | os.PathLike[str]) -> LoadReport:
        """Import every DICOM Part 10 file below ``path`` byte for byte; others are reported."""
        return self.load_files(dicom_files(path), path)

    def load_files(self, files: Iterable[Path], path: str | os.PathLike[str]) -> LoadReport:
        """Import DICOM Part 10 files byte for byte (``path``: where from, for the log)."""
        report = LoadReport()
        for file in files:
            try:
                report.stored.append(self.ingest.store_file(file))
            except InstanceRejected as exc:
                report.rejected.append((file, str(exc)))
        log.info(
            "imported %d instance(s) of %d study(ies) from %s; %d file(s) skipped",
            len(report.stored),
            len(report.studies),
            path,
            len(report.rejected),
        )
        return report

    def instance_stored(self, record: InstanceRecord, *, calling_ae: str | None, via: str) -> None:
        """Tell the hooks that ``record`` was stored (by C-STORE, PS3.4 §B.2, or STOW-RS,
        PS3.18 §10.5); a failing hook is logged, never the sender's problem."""
        for hook in self.stored_hooks:
            try:
                hook(record, calling_ae, via)
            except Exception:
                log.exception("instance-stored hook failed for %s", record.sop_instance_uid)

    def health(self) -> dict[str, Any]:
        """What ``/health`` reports of the source: ``held_studies``, the studies waiting for
        their patient to be fed (they do not make the gateway unhealthy)."""
        try:
            return {"held_studies": pending.held_count(self.index.engine)}
        except Exception as exc:  # the database being away must not break /health
            log.debug("held studies not counted: %s", exc)
            return {}

    # -- media import (gateway.media.importer.ImagingIntake) ---------------------------------------
    def stored_patient_id(self, sop_instance_uid: str) -> str | None:
        """The Patient ID the stored copy of an instance carries; None when it is not stored."""
        record = self.index.instance(sop_instance_uid)
        return None if record is None else (record.patient_id or "")

    def import_file(self, path: Path) -> str:
        """Check, store and index one Part 10 file as a C-STORE would (same validation, atomic
        write, index, study idle timer); return its Study Instance UID.

        Raises: InstanceRejected (a ValueError) saying why it is refused.
        """
        return self.ingest.store_file(path).study_instance_uid

    def reject(
        self,
        study_uid: str,
        reason: str,
        *,
        series_uid: str | None = None,
        sop_instance_uids: Sequence[str] = (),
    ) -> tuple[InstanceRecord, list[InstanceRecord]]:
        """Make a Rejection Note for instances of a study (all of it, one series, or the
        instances named) and take it in as if it had been received: stored, indexed, applied.
        Returns the note's index record and the instances it rejects.

        Standard: IHE RAD TF-3 §4.66 (IOCM Rejection Note Stored), PS3.3 §A.35.4.
        Raises: ValueError (unknown study, nothing matches, unknown reason), InstanceRejected.
        """
        chosen = select_instances(
            manifest_instances(self.index, study_uid),  # not the earlier notes themselves
            series=series_uid,
            sop_instances=sop_instance_uids,
        )
        if not chosen:
            raise ValueError(f"study {study_uid}: no stored instance matches")
        missing = set(sop_instance_uids) - {r.sop_instance_uid for r in chosen}
        if missing:
            raise ValueError(f"study {study_uid}: not stored here: {', '.join(sorted(missing))}")
        header = read_header(self.store.path(chosen[0].path))
        note = build_note(
            header,
            [
                Reference(
                    sop_class_uid=r.sop_class_uid,
                    sop_instance_uid=r.sop_instance_uid,
                    series_instance_uid=r.series_instance_uid,
                )
                for r in chosen
            ],
            reason,
            retrieve_location_uid=self.unique_id,
            retrieve_ae_title=self.publisher.config.retrieve_ae_title,
        )
        # stored like a received note: indexed, then applied by Ingest.after_index
        return self.ingest.store_encoded(encode_note(note)), chosen

    def rad69_handler(self) -> Handler:
        """The SOAP handler for RAD-69 at ``/xdsi/source``."""
        return rad69.make_handler(self.retriever)

    # -- assembly -------------------------------------------------------------------------------
    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        repository: RepositoryClient,
        engine: Engine | None = None,
        owner: str = "",
        domain_id_for_local: DomainLookup | None = None,
        **options: Any,
    ) -> ImagingSource:
        """Build the source from ``[imaging_source]`` settings on the gateway database of
        ``engine`` (migrated by the caller), run by the lease ``owner``; without an engine, on
        an index of its own (``ImagingIndex.from_url`` on the gateway database: migrated, with a
        lease, given up at :meth:`stop`). ``options`` are further constructor arguments.
        Raises: ConfigError (``transfer_syntax_preference`` names a syntax the listener lacks).
        """
        section = settings.imaging_source
        try:
            order = parse_preference(section.transfer_syntax_preference, ACCEPTED_TRANSFER_SYNTAXES)
        except ValueError as exc:
            raise ConfigError(f"imaging_source.transfer_syntax_preference: {exc}") from exc
        if engine is None:
            index = ImagingIndex.from_url(settings.gateway_database_url)
        else:
            index = ImagingIndex(engine, owner=owner)
        configured: dict[str, Any] = {
            "host": section.host,
            "codes": manifest_codes(section),
            "source_id": section.source_id or None,
            "retrieve_ae_title": section.retrieve_ae_title or None,
            "maximum_pdu_size": section.max_pdu,
            "max_associations": section.max_associations,
            "publish_parallel": section.publish_parallel,
            "transfer_syntax_order": order,
        }
        if settings.dicomweb.enabled and settings.dicomweb.public_url:
            configured["wado_rs_root"] = settings.dicomweb.public_url  # XDS-I.b WADO-RS option
        return cls(
            unique_id=section.unique_id,
            ae_title=section.ae_title,
            port=section.dicom_port,
            storage_dir=settings.imaging_storage_dir,
            index=index,
            repository=repository,
            domain_oid=settings.registry.patient_id_domain,
            domain_id_for_local=domain_id_for_local,
            study_idle_seconds=section.study_idle_seconds,
            **{**configured, **options},
        )


def manifest_codes(section: ImagingSourceSettings) -> ManifestCodes:
    """The manifest codes of ``[imaging_source]`` (each ``code^display name^coding scheme``)."""

    def code(value: str) -> Code:
        value_code, display, scheme = value.split("^")
        return Code(value_code, scheme, display or None)

    return ManifestCodes(
        class_code=code(section.class_code),
        type_code=code(section.type_code),
        confidentiality_codes=(code(section.confidentiality_code),),
        healthcare_facility_type_code=code(section.healthcare_facility_type_code),
        practice_setting_code=code(section.practice_setting_code),
        content_type_code=code(section.content_type_code),
        language_code=section.language_code,
        accession_issuer=section.accession_issuer,
    )


def repository_client(
    settings: Settings,
    in_process: Callable[..., Any] | None = None,
    *,
    session_factory: Callable[[], Any] | None = None,
    trail: Any | None = None,
) -> RepositoryClient:
    """The repository the source publishes to: SOAP when ``imaging_source.repository_url`` is
    set, else ``in_process`` (the repository of this process: ``(request, attachments) ->
    rs:RegistryResponse``)."""
    url = settings.imaging_source.repository_url
    if url:
        return SoapRepositoryClient(url, session_factory=session_factory, trail=trail)
    if in_process is None:
        raise ValueError(
            "imaging_source.repository_url is empty and this process has no repository"
        )
    return InProcessRepositoryClient(in_process)
