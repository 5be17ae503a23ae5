"""IOCM at the source: deprecating the manifest of a study whose every instance was rejected.

The imaging document source asks the registry where its manifests are registered to change the
manifest's availabilityStatus from Approved to Deprecated with an ITI-57 Update Document Set
request (XDS Metadata Update option, ITI TF-2b §3.57.4.1.3.3.3 "Update availabilityStatus"): a
SubmissionSet for the manifest's patient and one ``UpdateAvailabilityStatus`` association from
the SubmissionSet to the manifest's DocumentEntry with the slots ``OriginalStatus`` (Approved)
and ``NewStatus`` (Deprecated). The registry applies it with its own rules (latest version only,
the status the sender saw, all or nothing) and keeps the request as a SubmissionSet.

How the request travels (:class:`RegistryUpdater`):

- :class:`InProcessRegistryUpdater`: the registry of this process, through a callable the
  assembly binds to the registry's ITI-57 side (``gateway/app.py``);
- :class:`SoapRegistryUpdater`: a remote registry's ``/xds/registry`` endpoint over SOAP 1.2
  (``imaging_source.registry_url``, or ``repository.registry_url`` when the repository of this
  process registers the manifests).

:class:`ManifestDeprecator` builds the request, sends it and judges the answer: Success, or a
failure whose only code is ``XDSMetadataUpdateError`` (the one error a status change of a
registered, latest-version DocumentEntry gets when it is no longer Approved: a deprecation whose
answer was lost and is sent again), counts as done; anything else raises
:class:`~gateway.imaging.rad68.PublishError` and the study is published again later. Each request
sent is audited on the initiator side (ITI TF-2b §3.57.5.1).

Standard: IHE RAD TF-1 §37 (IOCM), ITI TF-2b §3.57, ITI TF-3 §4.2.3.2 (availabilityStatus).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from pydicom.uid import generate_uid

from gateway.imaging.rad68 import PublishError
from gateway.metadata import vocabulary as v
from gateway.metadata.datatypes import format_dtm, new_uuid_urn
from gateway.metadata.ebrim import build_submit_objects_request
from gateway.metadata.model import Association, Code, Submission, SubmissionSet
from gateway.metadata.retrieve import ResponseFormatError, read_registry_response, response_status
from gateway.soap.client import SessionFactory, SoapClient, SoapClientError
from gateway.soap.message import Element
from gateway.soap.transactions import ITI_57

log = logging.getLogger("gateway.imaging")

ORIGINAL_STATUS = "OriginalStatus"  # ITI TF-2b §3.57.4.1.3.3.1
NEW_STATUS = "NewStatus"
ALREADY_CHANGED = "XDSMetadataUpdateError"  # ITI TF-3 Table 4.2.4.1-2


class RegistryUpdater(Protocol):
    """Where ITI-57 requests go: ``update`` takes the lcm:SubmitObjectsRequest, returns the
    rs:RegistryResponse, raises PublishError when no answer came."""

    endpoint: str

    def update(self, request: Element) -> Element: ...


class InProcessRegistryUpdater:
    """The registry of this process: ``handler(request) -> rs:RegistryResponse`` (XDS errors
    answered as a Failure RegistryResponse, as the SOAP boundary answers them)."""

    endpoint = "in-process registry"

    def __init__(self, handler: Callable[[Element], Element]) -> None:
        self._handler = handler

    def update(self, request: Element) -> Element:
        """Hand the ITI-57 request to the registry actor. Standard: ITI TF-2b §3.57.4.1."""
        try:
            return self._handler(request)
        except Exception as exc:
            log.exception("in-process registry failed on ITI-57")
            raise PublishError(f"the registry failed on ITI-57: {exc}") from exc


class SoapRegistryUpdater:
    """A remote registry's ITI-57 endpoint (``/xds/registry``) over SOAP 1.2 + WS-Addressing."""

    def __init__(
        self, url: str, *, timeout: float = 60.0, session_factory: SessionFactory | None = None
    ) -> None:
        self.endpoint = url
        self._soap = SoapClient(url, timeout=timeout, session_factory=session_factory)

    def update(self, request: Element) -> Element:
        """Send ITI-57; return the rs:RegistryResponse. Standard: ITI TF-2b §3.57.4.1.

        Raises: PublishError when the registry cannot be reached, faults or does not answer.
        """
        try:
            return self._soap.call(ITI_57, request).body
        except SoapClientError as exc:
            raise PublishError(f"registry {self.endpoint} (ITI-57): {exc}") from exc

    def close(self) -> None:
        """Close idle connections."""
        self._soap.close()


def deprecation_request(
    entry_uuid: str,
    patient_id: str,
    *,
    source_id: str,
    content_type_code: Code | None,
    now: datetime,
) -> Submission:
    """The ITI-57 request that deprecates one Approved DocumentEntry (by entryUUID).

    Standard: ITI TF-2b §3.57.4.1.3.3.1, §3.57.4.1.3.3.3; ITI TF-3 §4.2.3.3 (SubmissionSet).
    """
    submission_set = SubmissionSet(
        entry_uuid=new_uuid_urn(),
        content_type_code=content_type_code,
        patient_id=patient_id,
        source_id=source_id,
        submission_time=format_dtm(now),
        unique_id=str(generate_uid(prefix=None)),
    )
    change = Association(
        entry_uuid=new_uuid_urn(),
        association_type=v.UPDATE_AVAILABILITY_STATUS,
        source_object=submission_set.entry_uuid,
        target_object=entry_uuid,
        extra_slots={
            ORIGINAL_STATUS: [v.STATUS_APPROVED],
            NEW_STATUS: [v.STATUS_DEPRECATED],
        },
    )
    return Submission(submission_set=submission_set, associations=[change])


class ManifestDeprecator:
    """Deprecates a registered manifest through ITI-57 (see the module docstring)."""

    def __init__(
        self,
        registry: RegistryUpdater,
        *,
        source_id: str,
        content_type_code: Code | None,
        trail: Any | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.registry = registry
        self.source_id = source_id
        self.content_type_code = content_type_code
        self.trail = trail
        self.now = now

    def __call__(self, entry_uuid: str, patient_id: str) -> None:
        """Set the manifest ``entry_uuid`` of ``patient_id`` to Deprecated.

        Raises: PublishError (not deprecated now; the study is published again later).
        """
        submission = deprecation_request(
            entry_uuid,
            patient_id,
            source_id=self.source_id,
            content_type_code=self.content_type_code,
            now=self.now(),
        )
        request = build_submit_objects_request(submission)
        try:
            response = self.registry.update(request)
        except PublishError:
            self._audit(submission, "Failure")
            raise
        self._audit(submission, response_status(response) or "Failure")
        try:
            answer = read_registry_response(response)
        except ResponseFormatError as exc:
            raise PublishError(f"registry {self.registry.endpoint} (ITI-57): {exc}") from exc
        codes = {e.code for e in answer.errors if not e.is_warning}
        if answer.status.short == "Success":
            return
        if codes == {ALREADY_CHANGED}:
            log.warning(
                "manifest %s is no longer Approved (%s); taken as deprecated",
                entry_uuid,
                "; ".join(e.context for e in answer.errors),
            )
            return
        details = "; ".join(f"{e.code}: {e.context}" for e in answer.errors) or "no error"
        raise PublishError(
            f"registry {self.registry.endpoint} refused to deprecate manifest {entry_uuid} "
            f"(ITI-57): {details}"
        )

    def _audit(self, submission: Submission, outcome: str) -> None:
        """ITI TF-2b §3.57.5.1: the Update Initiator's record (like ITI-42's)."""
        if self.trail is None:
            return
        self.trail.record_client_call(
            "ITI-57",
            endpoint=self.registry.endpoint,
            outcome=outcome,
            facts=submission.audit_facts(),
        )
