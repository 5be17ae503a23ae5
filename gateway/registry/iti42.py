"""ITI-42 Register Document Set-b: the Document Registry actor and its SOAP handler.

The handler is thin (SOAP in, model, actor call, RegistryResponse out); the actor
:class:`Registry` validates the submission (``gateway.metadata.validate``, ITI-42 rules: hash,
size and repositoryUniqueId required), gives symbolic ids their ``urn:uuid:``, and registers it
in one transaction (``store.py``, with the registry-side rules of ``rules.py``).

Other actors reach a registry through the client interface of the repository room,
``gateway.repository.registry_client.RegistryClient`` (SubmitObjectsRequest element in,
RegistryResponse element out; in-process and SOAP implementations are interchangeable). Its
in-process implementation wraps :meth:`Registry.register_document_set`, the actor's entry point
(Submission in, warnings out, XDS errors raised; no XML in the actor), with
``registry_client.model_register``.

Standard: ITI TF-2 §3.42, §3.42.4.1.3 (expected actions), §3.42.4.2 (response);
ITI TF-3 §4.1, §4.2; codes ITI TF-3 Table 4.2.4.1-2.
"""

from __future__ import annotations

import copy
import functools
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from gateway.soap.transactions import ITI_42

TRANSACTION = ITI_42
ACTION = ITI_42.action  # urn:ihe:iti:2007:RegisterDocumentSet-b
RESPONSE_ACTION = ITI_42.response_action  # urn:ihe:iti:2007:RegisterDocumentSet-bResponse
REQUEST_QNAME = ITI_42.request_qname  # lcm:SubmitObjectsRequest
RESPONSE_QNAME = ITI_42.response_qname  # rs:RegistryResponse
TF = ITI_42.tf

# ruff: noqa: E402  (the wire constants come first, as in every transaction module)
from gateway.errors import ConfigError, XDSError, XDSErrorList, XDSRegistryMetadataError
from gateway.metadata import ebrim
from gateway.metadata.codes import CodeSet
from gateway.metadata.model import DocumentEntry, Folder, Submission
from gateway.metadata.retrieve import build_registry_response, status_for
from gateway.metadata.validate import ITI_42 as ITI_42_RULES
from gateway.metadata.validate import assign_uuids, validate_submission
from gateway.registry.database import Database, db_upgrade
from gateway.registry.patients import PatientRegistry
from gateway.registry.store import RegistrationResult, RegistryStore
from gateway.soap.dispatch import Context, Endpoint
from gateway.soap.message import SoapRequest, SoapResponse

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from gateway.config import Settings

log = logging.getLogger(__name__)

__all__ = [
    "ACTION",
    "REQUEST_QNAME",
    "RESPONSE_ACTION",
    "TRANSACTION",
    "Registry",
    "bind",
    "handle",
]


def _now() -> datetime:
    return datetime.now(UTC)


class Registry:
    """The Document Registry actor: registration (ITI-42) and patient identity (ITI-8 sink)."""

    def __init__(
        self,
        db: Database,
        *,
        code_set: CodeSet | None = None,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.db = db
        self.code_set = code_set
        self.clock = clock
        self.store = RegistryStore(db)
        self.patients = PatientRegistry(db, clock=clock)
        # Told of every successful registration (gateway.notify: DSUB, webhooks): "within"
        # ones inside its transaction (same database: they commit with it), "after" ones once
        # it has committed. Exceptions of "within" ones fail the registration.
        self.within_registration: list[Callable[[Connection, Submission], None]] = []
        self.after_registration: list[Callable[[Submission], None]] = []

    @classmethod
    def from_settings(
        cls, settings: Settings, *, upgrade: bool = True, database: Database | None = None
    ) -> Registry:
        """The registry of a gateway process: schema upgraded, code set loaded if configured.

        Settings: ``registry.database_url`` (``Settings.database_url``; the gateway database
        unless set), ``registry.codes_file`` (strict code validation when set). ``database``:
        the gateway's (already migrated) database when the registry's tables live there.
        Raises: ConfigError for an unreadable code set.
        """
        url = settings.database_url
        if upgrade and database is None:
            db_upgrade(url)
        code_set = None
        if settings.registry.codes_file:
            path = settings.path(settings.registry.codes_file)
            try:
                code_set = CodeSet.load(path)
            except (OSError, ValueError) as exc:
                raise ConfigError(f"registry.codes_file: cannot load {path}: {exc}") from exc
        return cls(database or Database(url), code_set=code_set)

    def register_document_set(self, submission: Submission) -> list[XDSError]:
        """Validate and register a submission, all of it or nothing; return warnings.

        The in-process entry point of other actors (wrapped by the repository's
        ``InProcessRegistryClient``). The caller's Submission is not modified.
        Standard: ITI TF-2 §3.42.4.1.3; ITI TF-3 §4.1, §4.2; codes ITI TF-3 Table 4.2.4.1-2.
        Raises: XDSErrorList with XDSRegistryMetadataError,
        XDSRegistryDuplicateUniqueIdInMessage, XDSPatientIdDoesNotMatch, XDSUnknownPatientId,
        UnresolvedReferenceException, XDSDuplicateUniqueIdInRegistry, XDSNonIdenticalHash,
        XDSNonIdenticalSize, XDSRegistryDeprecatedDocumentError; XDSRegistryBusy.
        """
        result = self.register_with_result(submission)
        return result.warnings

    def register_with_result(self, submission: Submission) -> RegistrationResult:
        """As :meth:`register_document_set`, returning what the registration did (ids, effects)."""
        submission = copy.deepcopy(submission)
        validate_submission(submission, rules=ITI_42_RULES, code_set=self.code_set)
        _check_logical_ids(submission)
        assign_uuids(submission)
        within = self._within if self.within_registration else None
        result = self.store.register(submission, now=self.clock(), within=within)
        for observer in self.after_registration:
            try:
                observer(submission)
            except Exception:  # registered already: an observer's failure is only logged
                log.exception("a registration observer failed")
        log.info(
            "ITI-42 registered SubmissionSet %s: %d documents, %d folders, %d deprecated",
            result.submission_set_id,
            len(result.document_entry_ids),
            len(result.folder_ids),
            len(result.deprecated),
        )
        return result

    def _within(self, conn: Connection, submission: Submission) -> None:
        for observer in self.within_registration:
            observer(conn, submission)

    def close(self) -> None:
        """Release the database connections."""
        self.db.dispose()


def _check_logical_ids(submission: Submission) -> None:
    """A new object's logicalID, when sent, is its own id: only Update Document Set (ITI-57)
    submits a second version of a logical object. Standard: ITI TF-3 §4.2.3.2 (logicalID)."""
    errors: list[XDSError] = []
    objects: list[DocumentEntry | Folder] = [*submission.document_entries, *submission.folders]
    for obj in objects:
        if obj.logical_id and obj.logical_id != obj.entry_uuid:
            errors.append(
                XDSRegistryMetadataError(
                    f"{type(obj).__name__} {obj.entry_uuid}: logicalID {obj.logical_id} differs "
                    "from the entryUUID; new versions are submitted with ITI-57, not ITI-42",
                    location=obj.entry_uuid,
                )
            )
    if errors:
        raise XDSErrorList(errors)


def handle(request: SoapRequest, ctx: Context, *, registry: Registry) -> SoapResponse:
    """Serve one ITI-42 request: lcm:SubmitObjectsRequest in, rs:RegistryResponse out.

    Errors propagate as XDSError to the SOAP boundary (``gateway.soap.dispatch``), which answers
    with a Failure RegistryResponse. Standard: ITI TF-2 §3.42.4.1, §3.42.4.2.
    """
    submission = ebrim.parse_submit_objects_request(request.body)
    ctx.audit.update(submission.audit_facts(), reply_to=request.addressing.reply_to)
    warnings = registry.register_document_set(submission)
    return SoapResponse(body=build_registry_response(status_for(warnings), warnings))


def bind(endpoint: Endpoint, registry: Registry) -> None:
    """Bind the ITI-42 handler of ``registry`` at the registry endpoint (``/xds/registry``)."""
    endpoint.bind(TRANSACTION, functools.partial(handle, registry=registry))
