"""The consumer's three clients: ITI-18 to a registry, ITI-43 to a repository, RAD-69 to an
imaging document source, each on the gateway's SOAP client (``gateway.soap.client``).

Foreign failures are translated where they enter (``SoapClientError``, a malformed body, metadata
that cannot be read) into :class:`~gateway.consumer.errors.PeerError`; a registry answering
Failure to a query is :class:`~gateway.consumer.errors.RequestFailed`. Retrieve answers are
returned whole, Failure included, because the caller decides per document what is missing.

MTOM parts of retrieve answers arrive as temporary files in ``spool_dir`` (parts above
``memory_threshold``; smaller ones stay in memory); the caller owns them: ``save_to`` each one
it keeps, :meth:`RetrieveDocumentSetResponse.discard` the rest. A spool folder on the same file
system as the destination makes saving a rename.

Each client holds one :class:`~gateway.soap.client.SoapClient`, which is safe to share between
threads, so one instance can serve a thread pool.

Standards: ITI TF-2 §3.18 (Registry Stored Query), §3.43 (Retrieve Document Set); RAD TF-3 §4.69
(Retrieve Imaging Document Set); ITI TF-2 Appendix V (SOAP 1.2, WS-Addressing, MTOM/XOP).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from gateway import netcause
from gateway.consumer.errors import PeerError, RequestFailed
from gateway.errors import XDSError
from gateway.metadata.query import (
    LEAF_CLASS,
    AdhocQuery,
    QueryResponse,
    QuerySlot,
    build_query_request,
    parse_query_response,
)
from gateway.metadata.retrieve import (
    DocumentRequest,
    ImagingDocumentRequest,
    ResponseFormatError,
    RetrieveDocumentSetResponse,
    RetrieveImagingDocumentSetRequest,
    build_imaging_request,
    build_retrieve_request,
    parse_retrieve_response,
)
from gateway.soap.client import (
    ClientResponse,
    SessionFactory,
    SoapClient,
    SoapClientError,
    SoapTransportError,
)
from gateway.soap.message import Element
from gateway.soap.transactions import ITI_18, ITI_43, RAD_69, Transaction

DEFAULT_MEMORY_THRESHOLD = 1024 * 1024


class _Client:
    """One endpoint, reached through a thread-safe SoapClient.

    ``verify``: True, False or a CA bundle path (requests semantics); ``cert``: the client
    certificate and key files (ITI-19). With a CA bundle and a certificate and no
    ``session_factory``, sessions use a client context of the node's TLS policy (BCP 195).
    """

    transaction: Transaction

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 120.0,
        verify: bool | str = True,
        cert: tuple[str, str] | None = None,
        spool_dir: str | os.PathLike[str] | None = None,
        memory_threshold: int = DEFAULT_MEMORY_THRESHOLD,
        session_factory: SessionFactory | None = None,
    ) -> None:
        self.url = url
        if session_factory is None and isinstance(verify, str) and cert is not None:
            session_factory = _tls_sessions(verify, cert)
        self._soap = SoapClient(
            url,
            timeout=timeout,
            verify=verify,
            cert=cert,
            session_factory=session_factory,
            spool_dir=spool_dir,
            memory_threshold=memory_threshold,
        )

    def _call(self, body: Element) -> ClientResponse:
        try:
            return self._soap.call(self.transaction, body)
        except ValueError as exc:  # TlsConfigError: unusable certificate, key or CA file
            raise PeerError(f"{self.transaction.name} to {self.url}: {exc}") from exc
        except SoapTransportError as exc:
            # its message names the URL and the cause already (gateway.soap.client_transport);
            # nothing listening, an unknown host or a certificate mismatch stay so on a retry
            raise PeerError(
                f"{self.transaction.name}: {exc}", transient=exc.kind not in netcause.LASTING
            ) from exc
        except SoapClientError as exc:
            raise PeerError(f"{self.transaction.name} to {self.url}: {exc}") from exc

    def close(self) -> None:
        """Close idle connections (the client stays usable)."""
        self._soap.close()


def _tls_sessions(ca_file: str, cert: tuple[str, str]) -> SessionFactory:
    """A factory of sessions on one client context (made on first use; errors then)."""
    contexts: list[Any] = []

    def session() -> Any:
        from gateway.security.tls import client_context, requests_session

        if not contexts:
            contexts.append(client_context(ca_file, cert[0], cert[1]))
        return requests_session(contexts[0])

    return session


class RegistryQueryClient(_Client):
    """ITI-18 Registry Stored Query against one registry endpoint."""

    transaction = ITI_18

    def query(
        self,
        query_id: str,
        slots: Sequence[QuerySlot],
        *,
        return_type: str = LEAF_CLASS,
        home: str | None = None,
    ) -> QueryResponse:
        """Run a stored query; return status, errors (warnings, PartialSuccess) and objects.

        Standard: ITI TF-2 §3.18.4.1 (request), §3.18.4.1.3 (response).
        Raises: RequestFailed (status Failure), PeerError (no usable answer).
        """
        query = AdhocQuery(query_id=query_id, return_type=return_type, home=home, slots=[*slots])
        body = build_query_request(query)
        answer = self._call(body)
        try:
            result = parse_query_response(answer.body)
        except (ResponseFormatError, XDSError) as exc:
            raise PeerError(f"ITI-18 answer from {self.url} is not usable: {exc}") from exc
        if result.status == "Failure":
            raise RequestFailed(f"ITI-18 to {self.url} failed", result.errors)
        return result


class _RetrieveClient(_Client):
    def _retrieve(self, body: Element) -> RetrieveDocumentSetResponse:
        answer = self._call(body)
        try:
            return parse_retrieve_response(answer.body, answer.attachments)
        except ResponseFormatError as exc:
            answer.discard_attachments()
            raise PeerError(
                f"{self.transaction.name} answer from {self.url} is not usable: {exc}"
            ) from exc


class RepositoryRetrieveClient(_RetrieveClient):
    """ITI-43 Retrieve Document Set against one repository endpoint."""

    transaction = ITI_43

    def retrieve(self, refs: Sequence[DocumentRequest]) -> RetrieveDocumentSetResponse:
        """Retrieve documents; the result holds what came back and the errors for the rest.

        Standard: ITI TF-2 §3.43.4.1, §3.43.4.2. Raises: PeerError (no usable answer).
        """
        return self._retrieve(build_retrieve_request(refs))


class ImagingSourceClient(_RetrieveClient):
    """RAD-69 Retrieve Imaging Document Set against one imaging document source endpoint."""

    transaction = RAD_69

    def retrieve(
        self, refs: Sequence[ImagingDocumentRequest], transfer_syntaxes: Sequence[str]
    ) -> RetrieveDocumentSetResponse:
        """Retrieve instances in one of ``transfer_syntaxes``; the result holds the instances
        returned (MTOM parts) and the errors for the others.

        Standard: RAD TF-3 §4.69.4.1.2 (request), §4.69.4.2.2-§4.69.4.2.3 (response).
        Raises: PeerError (no usable answer).
        """
        request = RetrieveImagingDocumentSetRequest.of(refs, transfer_syntaxes)
        return self._retrieve(build_imaging_request(request))
