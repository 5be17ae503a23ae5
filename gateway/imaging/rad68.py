"""RAD-68 Provide and Register Imaging Document Set - MTOM/XOP: the request and the repository.

RAD-68 is ITI-41 with imaging content (RAD TF-3 §4.68.4.1.2: the KOS manifest as a DICOM Part 10
file of MIME type application/dicom, in an MTOM/XOP package): an
``xdsb:ProvideAndRegisterDocumentSetRequest`` holding the ``lcm:SubmitObjectsRequest`` and one
``xdsb:Document`` whose ``id`` is the DocumentEntry's entryUUID and whose content is an
``xop:Include`` of the attachment (ITI TF-2 §3.41.4.1.2, Appendix V §V.3.3.2.2).

The imaging source talks to *a* repository through :class:`RepositoryClient`: in-process (a
callable the application wires to its own repository) or SOAP (``gateway.soap.client``) when
``imaging_source.repository_url`` names a remote one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from gateway.metadata.model import Submission
from gateway.metadata.provide import build_provide_request
from gateway.metadata.retrieve import (
    ResponseFormatError,
    Status,
    read_registry_response,
    response_status,
)
from gateway.soap.client import SoapClientError, call, make_client
from gateway.soap.message import Attachment, Element
from gateway.soap.transactions import ITI_41, REPOSITORY_PATH

ACTION = ITI_41.action
RESPONSE_ACTION = ITI_41.response_action
REQUEST_QNAME = ITI_41.request_qname
TF = "RAD TF-3 §4.68 (ITI TF-2 §3.41)"


class RepositoryClient(Protocol):
    """Sends one ITI-41 request (body element and attachments); returns rs:RegistryResponse."""

    def provide_and_register(
        self, request: Element, attachments: Sequence[Attachment]
    ) -> Element: ...


class PublishError(Exception):
    """The repository could not be reached or refused the submission."""

    def __init__(self, message: str, *, codes: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.codes = tuple(codes)


@dataclass(slots=True)
class InProcessRepositoryClient:
    """A repository in this process: ``handler(request, attachments) -> rs:RegistryResponse``."""

    handler: Callable[[Element, Sequence[Attachment]], Element]

    def provide_and_register(self, request: Element, attachments: Sequence[Attachment]) -> Element:
        """Hand the request to the repository of this process."""
        return self.handler(request, attachments)


@dataclass(slots=True)
class SoapRepositoryClient:
    """A remote repository at ``url`` (its ITI-41 endpoint), reached with SOAP 1.2 + MTOM."""

    url: str
    timeout: float = 60.0
    verify: bool | str = True
    cert: tuple[str, str] | None = None
    session_factory: Callable[[], Any] | None = None  # ITI-19: requests session on the TLS context
    trail: Any | None = None  # AuditTrail: each RAD-68 sent is recorded (initiator side)
    _client: object | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def provide_and_register(self, request: Element, attachments: Sequence[Attachment]) -> Element:
        """Send ITI-41. Raises PublishError when no RegistryResponse comes back."""
        with self._lock:  # one zeep client, one call at a time
            if self._client is None:
                self._client = make_client(
                    self.url,
                    transaction_path=REPOSITORY_PATH,
                    timeout=self.timeout,
                    verify=self.verify,
                    cert=self.cert,
                    session=self.session_factory() if self.session_factory else None,
                )
            try:
                response = call(self._client, ITI_41, request, attachments)  # type: ignore[arg-type]
            except SoapClientError as exc:
                self._audit(request, "Failure")
                raise PublishError(f"repository {self.url}: {exc}") from exc
        self._audit(request, response_status(response.body) or "Failure")
        return response.body

    def _audit(self, request: Element, outcome: str) -> None:
        """Record the RAD-68 sent (RAD TF-3 §4.68.4.1.4; ITI TF-2 §3.41.5.1.1, Source side)."""
        if self.trail is None:
            return
        from gateway.metadata.ebrim import parse_submit_objects_request

        try:
            facts = parse_submit_objects_request(request, repository=True).audit_facts()
        except Exception:  # auditing never fails a publication
            facts = {}
        self.trail.record_client_call("RAD-68", endpoint=self.url, outcome=outcome, facts=facts)


def build_request(submission: Submission, document_id: str, attachment: Attachment) -> Element:
    """The ITI-41 request body: SubmitObjectsRequest + one xdsb:Document (xop:Include).

    Standard: RAD TF-3 §4.68.4.1.2; ITI TF-2 §3.41.4.1.2; XOP 1.0 §2.1.
    """
    return build_provide_request(submission, [(document_id, attachment.content_id)])


def send(client: RepositoryClient, request: Element, attachment: Attachment) -> None:
    """Send one RAD-68 request. Raises PublishError unless the repository answers Success."""
    try:
        response = client.provide_and_register(request, [attachment])
    except PublishError:
        raise
    except OSError as exc:
        raise PublishError(f"repository unreachable: {exc}") from exc
    try:
        answer = read_registry_response(response)
    except ResponseFormatError as exc:
        raise PublishError(f"the repository's answer is not usable: {exc}") from exc
    if answer.status is not Status.SUCCESS:
        detail = "; ".join(str(error) for error in answer.errors)
        raise PublishError(
            f"repository answered {answer.status.short}" + (f" ({detail})" if detail else ""),
            codes=[error.code for error in answer.errors],
        )
