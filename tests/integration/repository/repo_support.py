"""Helpers for the repository tests: a fake registry, submissions with documents, clients.

The fake registry stands in for the registry actor until ``gateway/app.py`` wires the real one:
it records every ITI-42 request, answers with a canned RegistryResponse (Success unless told
otherwise) and remembers which DocumentEntry uniqueIds a successful registration listed, so
GetDocuments (``is_registered``) answers like a registry would.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lxml import etree

from gateway.app import Gateway
from gateway.config import load_settings
from gateway.database.leases import Lease
from gateway.errors import XDSError
from gateway.metadata.ebrim import build_registry_object_list, parse_submit_objects_request
from gateway.metadata.model import DocumentEntry, Submission
from gateway.metadata.provide import build_provide_request
from gateway.metadata.retrieve import Status, build_registry_response
from gateway.repository import iti41, iti43
from gateway.repository.actor import Repository
from gateway.repository.model import ProvidedDocument
from gateway.repository.registry_client import InProcessRegistryClient
from gateway.soap import ns
from gateway.soap.client import SoapClient
from gateway.soap.dispatch import SoapApplication
from gateway.soap.message import Attachment
from gateway.soap.transactions import ENDPOINTS, ITI_18, ITI_41, ITI_43, REPOSITORY_PATH
from tests.factories import UID_ROOT, make_document_entry, make_has_member, make_submission_set
from tests.support.site import Site

REPOSITORY_UID = "1.3.6.1.4.1.21367.13.40.100"

ISOLATED = {
    "XDSI_HTTP_PORT": "0",
    "XDSI_HL7_MLLP_PORT": "0",
    "XDSI_IMAGING_SOURCE_DICOM_PORT": "0",
    "XDSI_REGISTRY_ENABLED": "false",
    "XDSI_REPOSITORY_ENABLED": "false",
    "XDSI_IMAGING_SOURCE_ENABLED": "false",
    "XDSI_HL7_ENABLED": "false",
    "XDSI_SOAP_MEMORY_THRESHOLD": "65536",
}


@dataclass
class RepositorySystem:
    gateway: Gateway
    repository: Repository
    registry: FakeRegistry
    root: Path
    site: Site
    lease: Lease

    def stop(self) -> None:
        self.gateway.stop()
        self.repository.stop()
        self.lease.release()
        self.site.close()

    @property
    def url(self) -> str:
        return self.gateway.base_url + REPOSITORY_PATH

    def client(self) -> SoapClient:
        spool = self.root.parent / "client-spool"  # MTOM answers spooled under tmp_path
        return SoapClient(self.url, timeout=30, spool_dir=spool)


def start_system(data_dir: Path, registry: FakeRegistry) -> RepositorySystem:
    settings = load_settings(environ={**ISOLATED, "XDSI_GATEWAY_DATA_DIR": str(data_dir)})
    root = settings.data_dir / "repository"
    site = Site(settings.gateway_database_url)
    lease = Lease(site.engine).start()
    repository = open_repository(
        root, registry, engine=site.engine, owner=lease.owner, retry_seconds=0.2
    )
    repository.start()
    gateway = Gateway(settings, configure=lambda app: bind(app, repository))
    gateway.start()
    return RepositorySystem(
        gateway=gateway,
        repository=repository,
        registry=registry,
        root=root,
        site=site,
        lease=lease,
    )


@dataclass
class FakeRegistry:
    """An in-process registry double: records requests, answers with ``answer(request)``."""

    answer: Callable[[etree._Element], etree._Element] | None = None
    requests: list[etree._Element] = field(default_factory=list)
    listed: set[str] = field(default_factory=set)
    reachable: bool = True
    lock: threading.Lock = field(default_factory=threading.Lock)

    def register(self, request: etree._Element) -> etree._Element:
        with self.lock:
            self.requests.append(request)
        response = self.answer(request) if self.answer else build_registry_response(Status.SUCCESS)
        if response.get("status") == Status.SUCCESS:
            submission = parse_submit_objects_request(request)
            with self.lock:
                self.listed.update(e.unique_id or "" for e in submission.document_entries)
        return response

    def query(self, request: etree._Element) -> etree._Element:
        if not self.reachable:
            raise ConnectionError("registry down")
        values = request.findall(f".//{{{ns.RIM}}}Value")
        wanted = {v.text.strip("()'") for v in values if v.text}
        response = etree.Element(ITI_18.response_qname, nsmap={"query": ns.QUERY})
        response.set("status", Status.SUCCESS)
        with self.lock:
            found = sorted(wanted & self.listed)
        entries = [
            DocumentEntry(
                entry_uuid=f"urn:uuid:00000000-0000-4000-8000-{n:012d}",
                unique_id=uid,
                repository_unique_id=REPOSITORY_UID,
            )
            for n, uid in enumerate(found)
        ]
        response.append(build_registry_object_list(entries))
        return response

    def client(self) -> InProcessRegistryClient:
        return InProcessRegistryClient(self.register, self.query)


def failure(*errors: XDSError) -> Callable[[etree._Element], etree._Element]:
    """An ``answer`` rejecting every submission with these errors (and warnings)."""

    def answer(_request: etree._Element) -> etree._Element:
        return build_registry_response(Status.FAILURE, errors)

    return answer


def open_repository(root: Path, registry: FakeRegistry, **kwargs: Any) -> Repository:
    return Repository.open(root, unique_id=REPOSITORY_UID, registry=registry.client(), **kwargs)


def bind(app: SoapApplication, repository: Repository) -> None:
    """Bind ITI-41 and ITI-43 of ``repository`` at /xds/repository (what app.py will do)."""
    endpoint = app.endpoint(REPOSITORY_PATH, ENDPOINTS[REPOSITORY_PATH])
    endpoint.bind(ITI_41, iti41.handler(repository))
    endpoint.bind(ITI_43, iti43.handler(repository))


def submission_with(contents: Iterable[bytes], *, prefix: str = "1", **entry: object) -> Submission:
    """A valid submission with one DocumentEntry per content (uniqueIds ``<root>.<prefix>.<n>``,
    hash and size left for the repository to compute unless given in ``entry``)."""
    submission_set = make_submission_set(unique_id=f"{UID_ROOT}.{prefix}.0")
    entries = []
    for n, _content in enumerate(contents, start=1):
        values: dict[str, object] = {
            "entry_uuid": f"Document{n:02d}",
            "unique_id": f"{UID_ROOT}.{prefix}.{n}",
            "mime_type": "text/plain",
            "hash": None,
            "size": None,
            "repository_unique_id": None,
        }
        values.update(entry)
        entries.append(make_document_entry(**values))
    associations = [make_has_member(submission_set.entry_uuid, e.entry_uuid) for e in entries]
    return Submission(
        submission_set=submission_set, document_entries=entries, associations=associations
    )


def provide_body(
    submission: Submission, contents: Iterable[bytes], *, content_type: str | None = None
) -> tuple[etree._Element, list[Attachment]]:
    """The ITI-41 body and its attachments, Document n for DocumentEntry n (each part typed
    ``content_type``, by default its entry's mimeType)."""
    entries = submission.document_entries
    attachments = [
        Attachment.from_bytes(c, content_type=content_type or e.mime_type or "text/plain")
        for c, e in zip(contents, entries, strict=False)
    ]
    ids = [e.entry_uuid for e in entries]
    body = build_provide_request(
        submission, [(i, a.content_id) for i, a in zip(ids, attachments, strict=False)]
    )
    return body, attachments


def sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def status_of(element: etree._Element) -> str:
    return element.get("status", "").rsplit(":", 1)[-1]


def error_codes(element: etree._Element) -> list[str]:
    return [e.get("errorCode", "") for e in element.iter(ns.qname(ns.RS, "RegistryError"))]


def stored_files(root: Path) -> list[Path]:
    return sorted(p for p in (root / "documents").rglob("*") if p.is_file())


def provided_documents(contents: Iterable[bytes]) -> list[ProvidedDocument]:
    """Documents ``Document01``... for an actor call (no SOAP)."""
    return [
        ProvidedDocument(id=f"Document{n:02d}", attachment=Attachment.from_bytes(c))
        for n, c in enumerate(contents, start=1)
    ]
