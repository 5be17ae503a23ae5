"""RAD-68 Provide and Register Imaging Document Set - MTOM/XOP: the request and the repository.

RAD-68 is ITI-41 with imaging content (RAD TF-3 §4.68.4.1.2: the KOS manifest as a DICOM Part 10
file of MIME type application/dicom, in an MTOM/XOP package): an
``xdsb:ProvideAndRegisterDocumentSetRequest`` holding the ``lcm:SubmitObjectsRequest`` and one
``xdsb:Document`` whose ``id`` is the DocumentEntry's entryUUID and whose content is an
``xop:Include`` of the attachment (ITI TF-2 §3.41.4.1.2, Appendix V §V.3.3.2.2).

The imaging source talks to *a* repository through :class:`RepositoryClient`: in-process (a
callable the application wires to its own repository) or SOAP (``gateway.soap.client``) when
``imaging_source.repository_url`` names a remote one.

What can go wrong, as the publisher sees it::

    PublishError                  the manifest is not registered now: refused (``codes``) or
     │                            the repository was not reached
     └── PublishOutcomeUnknown    no answer that settles it: the repository's answer was lost,
                                  or it could not reach its registry (XDSRegistryNotAvailable);
                                  the manifest may be registered, so it is sent again unchanged
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from gateway.metadata.model import Submission
from gateway.metadata.provide import build_provide_request
from gateway.metadata.retrieve import (
    ResponseFormatError,
    Status,
    read_registry_response,
    response_status,
)
from gateway.soap.client import (
    SessionFactory,
    SoapClient,
    SoapClientError,
    SoapConnectError,
    SoapFaultError,
)
from gateway.soap.message import Attachment, Element
from gateway.soap.transactions import ITI_41

ACTION = ITI_41.action
RESPONSE_ACTION = ITI_41.response_action
REQUEST_QNAME = ITI_41.request_qname
TF = "RAD TF-3 §4.68 (ITI TF-2 §3.41)"

# The repository could not get an answer from its registry: the submission may be registered
# (ITI TF-3 Table 4.2.4.1-2; our repository then settles it later, gateway.repository.recovery).
OUTCOME_UNKNOWN_CODES = frozenset({"XDSRegistryNotAvailable"})


class RepositoryClient(Protocol):
    """Sends one ITI-41 request (body element and attachments); returns rs:RegistryResponse."""

    def provide_and_register(
        self, request: Element, attachments: Sequence[Attachment]
    ) -> Element: ...


class PublishError(Exception):
    """The manifest is not registered now: the repository refused it (``codes``, the
    RegistryError codes of its answer) or could not be reached."""

    def __init__(self, message: str, *, codes: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.codes = tuple(codes)


class PublishOutcomeUnknown(PublishError):
    """No answer that settles the submission: it may have been registered (the answer was
    lost, or the repository's registry did not answer). Send the same submission again."""


@dataclass(slots=True)
class InProcessRepositoryClient:
    """A repository in this process: ``handler(request, attachments) -> rs:RegistryResponse``."""

    handler: Callable[[Element, Sequence[Attachment]], Element]

    def provide_and_register(self, request: Element, attachments: Sequence[Attachment]) -> Element:
        """Hand the request to the repository of this process."""
        return self.handler(request, attachments)


class SoapRepositoryClient:
    """A remote repository at ``url`` (its ITI-41 endpoint), reached with SOAP 1.2 + MTOM.

    Safe to share between threads: manifests of different studies are sent at the same time
    (the publisher bounds how many). ``session_factory`` makes sessions on the node's TLS
    context (ITI-19); ``trail`` (an AuditTrail) records each RAD-68 sent (initiator side).
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 60.0,
        verify: bool | str = True,
        cert: tuple[str, str] | None = None,
        session_factory: SessionFactory | None = None,
        trail: Any | None = None,
    ) -> None:
        self.url = url
        self.trail = trail
        self._soap = SoapClient(
            url, timeout=timeout, verify=verify, cert=cert, session_factory=session_factory
        )

    def provide_and_register(self, request: Element, attachments: Sequence[Attachment]) -> Element:
        """Send ITI-41; return the rs:RegistryResponse.

        Raises:
            PublishError: not delivered (connection refused, TLS), or a SOAP fault.
            PublishOutcomeUnknown: delivered, but no usable answer came back.
        """
        try:
            response = self._soap.call(ITI_41, request, attachments)
        except (SoapConnectError, SoapFaultError) as exc:
            self._audit(request, "Failure")
            raise PublishError(f"repository {self.url}: {exc}") from exc
        except SoapClientError as exc:
            self._audit(request, "Failure")
            raise PublishOutcomeUnknown(f"repository {self.url}: {exc}") from exc
        self._audit(request, response_status(response.body) or "Failure")
        return response.body

    def close(self) -> None:
        """Close idle connections (the client stays usable)."""
        self._soap.close()

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
    """Send one RAD-68 request; return when the repository answers Success.

    Raises:
        PublishOutcomeUnknown: no answer, or XDSRegistryNotAvailable (may be registered).
        PublishError: refused (the answer's RegistryError codes), not reached, or answered
            with something that is no RegistryResponse.
    """
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
        codes = [error.code for error in answer.errors]
        error = PublishOutcomeUnknown if OUTCOME_UNKNOWN_CODES.intersection(codes) else PublishError
        raise error(
            f"repository answered {answer.status.short}" + (f" ({detail})" if detail else ""),
            codes=codes,
        )
