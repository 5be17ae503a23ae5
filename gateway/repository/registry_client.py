"""How the repository reaches *a* registry: one narrow interface, in-process or SOAP.

:class:`RegistryClient` has two calls. ``register`` sends an ITI-42 ``lcm:SubmitObjectsRequest``
and returns the registry's ``rs:RegistryResponse`` as it came (XDS errors and warnings travel
inside it; the repository passes it back to its own caller unchanged, ITI TF-2 §3.41.4.2).
``is_registered`` asks, through an ITI-18 GetDocuments query, whether the registry lists a
DocumentEntry uniqueId of this repository; the crash-recovery sweep needs the answer.

- :class:`InProcessRegistryClient` wraps two callables that ``gateway/app.py`` binds to the
  registry actor of the same process (no import of ``gateway.registry`` here).
- :class:`SoapRegistryClient` calls a remote registry with the gateway's SOAP client
  (:class:`gateway.soap.client.SoapClient`: WS-Addressing headers, TLS when the URL is https;
  one instance serves every thread of the repository).

Failures to get an answer raise :class:`~gateway.errors.XDSRegistryNotAvailable` from ``register``
(translated where they enter, ARCHITECTURE.md "Errors") and give ``None`` from ``is_registered``.
Every failure of the SOAP client counts, including an answer cut off while it was being read: the
registry may then have registered the submission, which is why the repository asks
``is_registered`` and, for the rows still unsettled, waits ``settle_seconds`` before it judges
them (``gateway.repository.recovery``).

Standards: ITI TF-2 §3.42 (Register Document Set-b), §3.18.4.1.2.3.7.5 (GetDocuments, query id
``urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4``; ``$XDSDocumentEntryUniqueId`` a list of quoted
strings, §3.18.4.1.2.3.5), ebRS 3.0 §6.3 (AdhocQueryRequest, ResponseOption returnType).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from gateway.errors import XDSError, XDSErrorList, XDSRegistryNotAvailable
from gateway.metadata.ebrim import parse_submit_objects_request
from gateway.metadata.model import DocumentEntry, Submission
from gateway.metadata.query import (
    LEAF_CLASS,
    AdhocQuery,
    build_query_request,
    parse_query_response,
)
from gateway.metadata.query_values import quote_list
from gateway.metadata.retrieve import (
    ResponseFormatError,
    build_registry_response,
    failure_body,
    response_status,
    status_for,
)
from gateway.soap.client import SessionFactory, SoapClient, SoapClientError
from gateway.soap.message import Element
from gateway.soap.transactions import ITI_18, ITI_42

log = logging.getLogger("gateway.repository")

GET_DOCUMENTS = "urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4"  # ITI TF-2 §3.18.4.1.2.3.7.5

RegisterFunc = Callable[[Element], Element]
QueryFunc = Callable[[Element], Element]
ModelRegisterFunc = Callable[[Submission], Sequence[XDSError]]


class RegistryClient(Protocol):
    """What the repository needs from a registry."""

    def register(self, request: Element) -> Element:
        """ITI-42: lcm:SubmitObjectsRequest in, rs:RegistryResponse out.

        Raises:
            XDSRegistryNotAvailable: no answer (the outcome is unknown).
        """
        ...

    def is_registered(self, unique_id: str, repository_unique_id: str) -> bool | None:
        """Whether the registry lists a DocumentEntry with this uniqueId in this repository;
        None when the registry cannot be asked."""
        ...


class InProcessRegistryClient:
    """The registry of this process, reached through plain callables.

    ``register`` takes the SubmitObjectsRequest element and returns the RegistryResponse
    element; ``query`` (optional) takes a query:AdhocQueryRequest and returns the
    query:AdhocQueryResponse. An XDSError raised by ``register`` becomes a failure response, as
    the SOAP boundary would make it; any other exception leaves the outcome unknown.
    """

    def __init__(self, register: RegisterFunc, query: QueryFunc | None = None) -> None:
        self._register = register
        self._query = query

    def register(self, request: Element) -> Element:
        """Call the registry actor. Standard: ITI TF-2 §3.42.4.1.

        Raises:
            XDSRegistryNotAvailable: the registry raised something other than an XDSError.
        """
        try:
            return self._register(request)
        except XDSError as error:
            return failure_body(ITI_42, error)
        except Exception as exc:
            log.exception("in-process registry failed on ITI-42")
            raise XDSRegistryNotAvailable(f"The registry failed: {exc}") from exc

    def is_registered(self, unique_id: str, repository_unique_id: str) -> bool | None:
        """Ask the registry actor with GetDocuments. Standard: ITI TF-2 §3.18.4.1.2.3.7.5."""
        if self._query is None:
            return None
        try:
            response = self._query(get_documents_request(unique_id))
        except Exception:
            log.exception("in-process registry failed on ITI-18")
            return None
        return registered_in(response, unique_id, repository_unique_id)


class SoapRegistryClient:
    """A remote registry's ``/xds/registry`` endpoint over SOAP 1.2 (WS-Addressing).

    ``url`` is the endpoint address; https URLs use TLS with ``verify`` (True, False or a CA
    bundle path) and the optional client ``cert`` (certificate file, key file), or the sessions
    ``session_factory`` makes on the node's TLS context (ITI-19). Safe to share between threads.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 60,
        verify: bool | str = True,
        cert: tuple[str, str] | None = None,
        session_factory: SessionFactory | None = None,
        trail: Any | None = None,
    ) -> None:
        """``trail``: an ``AuditTrail`` recording each ITI-42 sent (initiator side, ITI-20)."""
        self.trail = trail
        self.url = url
        self.timeout = timeout
        self._soap = SoapClient(
            url, timeout=timeout, verify=verify, cert=cert, session_factory=session_factory
        )

    def close(self) -> None:
        """Close idle connections (the client stays usable)."""
        self._soap.close()

    def register(self, request: Element) -> Element:
        """Send ITI-42; return the RegistryResponse. Standard: ITI TF-2 §3.42.4.1-2.

        Raises:
            XDSRegistryNotAvailable: refused, timed out, TLS failure, a SOAP fault or no usable
                SOAP answer.
        """
        try:
            body = self._soap.call(ITI_42, request).body
        except SoapClientError as exc:
            self._audit(request, "Failure")
            raise XDSRegistryNotAvailable(f"Registry {self.url} did not answer: {exc}") from exc
        self._audit(request, response_status(body) or "Failure")
        return body

    def _audit(self, request: Element, outcome: str) -> None:
        """Record the ITI-42 this repository sent (ITI TF-2 §3.42.5.1.1, Document Repository)."""
        if self.trail is None:
            return
        try:
            facts = parse_submit_objects_request(request).audit_facts()
        except Exception:  # auditing never fails a registration
            log.exception("ITI-42 audit facts could not be read")
            facts = {}
        self.trail.record_client_call("ITI-42", endpoint=self.url, outcome=outcome, facts=facts)

    def is_registered(self, unique_id: str, repository_unique_id: str) -> bool | None:
        """GetDocuments over ITI-18. Standard: ITI TF-2 §3.18.4.1.2.3.7.5."""
        try:
            answer = self._soap.call(ITI_18, get_documents_request(unique_id))
        except SoapClientError as exc:
            log.warning("registry %s cannot be asked about %s: %s", self.url, unique_id, exc)
            return None
        return registered_in(answer.body, unique_id, repository_unique_id)


def model_register(register: ModelRegisterFunc) -> RegisterFunc:
    """Adapt a registry entry point that takes the model (Submission in, warnings returned, XDS
    errors raised, e.g. ``gateway.registry.iti42.Registry.register_document_set``) to the
    element form :class:`InProcessRegistryClient` takes. Raised errors become a Failure
    response in :meth:`InProcessRegistryClient.register`. Standard: ITI TF-2 §3.42.4.2.
    """

    def register_element(request: Element) -> Element:
        warnings = list(register(parse_submit_objects_request(request)))
        return build_registry_response(status_for(warnings), warnings)

    return register_element


def get_documents_request(unique_id: str) -> Element:
    """A GetDocuments AdhocQueryRequest (LeafClass) for one DocumentEntry uniqueId.

    Standard: ITI TF-2 §3.18.4.1.2.3.7.5; value syntax ``('value')`` with ``'`` doubled inside,
    §3.18.4.1.2.3.5.
    """
    query = AdhocQuery(query_id=GET_DOCUMENTS, return_type=LEAF_CLASS)
    return build_query_request(query.add("$XDSDocumentEntryUniqueId", quote_list([unique_id])))


def registered_in(response: Element, unique_id: str, repository_unique_id: str) -> bool | None:
    """Read a GetDocuments AdhocQueryResponse: True when it lists a DocumentEntry with this
    uniqueId whose repositoryUniqueId is ours (or absent), False when it lists none, None when
    the query failed. Standard: ITI TF-2 §3.18.4.1.3."""
    try:
        result = parse_query_response(response)
    except (ResponseFormatError, XDSErrorList):
        return None
    if result.status != "Success":
        return None
    return any(
        isinstance(obj, DocumentEntry)
        and obj.unique_id == unique_id
        and obj.repository_unique_id in (None, repository_unique_id)
        for obj in result.objects
    )
