"""ITI-18 Registry Stored Query at the Document Registry: the SOAP handler and the actor API.

``StoredQueries`` runs a stored query (``query:AdhocQueryRequest`` element or
:class:`~gateway.metadata.query.AdhocQuery`) in one read-only database snapshot and answers with
a ``query:AdhocQueryResponse``: status Success and a ``rim:RegistryObjectList`` of full ebRIM
objects (returnType LeafClass) or ``rim:ObjectRef`` elements (ObjectRef); on an XDS error, status
Failure, the ``rs:RegistryErrorList`` and an empty RegistryObjectList (query.xsd requires one).

Wiring (``gateway/app.py``)::

    queries = iti18.StoredQueries(database, max_leafclass_results=..., home_community_id=...)
    endpoint.bind(tx.ITI_18, queries.handle)

Standard: ITI TF-2 §3.18 (rev. 19.0 read): §3.18.4.1.2 request, §3.18.4.1.3 response and error
codes; ebRS 3.0 query.xsd (AdhocQueryRequest / AdhocQueryResponse); ITI TF-2 Appendix V (SOAP).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy.exc import SQLAlchemyError

from gateway.errors import XDSError, XDSRegistryError
from gateway.metadata.model import RegistryObject
from gateway.metadata.query import (
    AdhocQuery,
    build_query_response,
    parse_query_request,
    query_audit_facts,
)
from gateway.metadata.retrieve import failure_body
from gateway.registry.database import Database
from gateway.registry.queries import execute
from gateway.soap.dispatch import Context
from gateway.soap.message import Element, SoapRequest, SoapResponse
from gateway.soap.transactions import ITI_18

log = logging.getLogger(__name__)

ACTION = ITI_18.action
RESPONSE_ACTION = ITI_18.response_action
REQUEST_QNAME = ITI_18.request_qname
RESPONSE_QNAME = ITI_18.response_qname
TF = ITI_18.tf

_SNAPSHOT = "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"


def failure_element(error: XDSError) -> Element:
    """A Failure ``query:AdhocQueryResponse``: the errors and an empty RegistryObjectList.

    Standard: ITI TF-2 §3.18.4.1.3; ebRS 3.0 query.xsd.
    """
    return failure_body(ITI_18, error)


class StoredQueries:
    """The Document Registry's stored queries over its database (the ITI-18 actor).

    ``max_leafclass_results`` (0 = no limit) caps a LeafClass answer (XDSTooManyResults);
    ``home_community_id`` (``urn:oid:...``) is this registry's community, put on returned objects
    and checked against a request's ``home`` (XDSUnknownCommunity).
    """

    def __init__(
        self,
        database: Database,
        *,
        max_leafclass_results: int = 0,
        home_community_id: str | None = None,
    ) -> None:
        if max_leafclass_results < 0:
            raise ValueError("max_leafclass_results must be 0 (no limit) or positive")
        self.database = database
        self.max_leafclass_results = max_leafclass_results
        self.home_community_id = home_community_id or None
        # Applied to every answer's objects (patient consent, gateway.consent: what the caller
        # may not see is left out); None: answers as found.
        self.result_filter: Callable[[list[RegistryObject]], list[RegistryObject]] | None = None

    def query(self, request: AdhocQuery | Element) -> list[RegistryObject]:
        """Run a stored query; return LeafClass model objects or ``model.ObjectRef`` objects.

        For in-process consumers (no XML on the way back). Standard: ITI TF-2 §3.18.4.1.2-3.
        Raises: XDSError (XDSUnknownStoredQuery, XDSUnknownCommunity, XDSErrorList of parameter
        errors, XDSTooManyResults, XDSResultNotSinglePatient, XDSRegistryError).
        """
        adhoc = request if isinstance(request, AdhocQuery) else parse_query_request(request)
        try:
            with self.database.read() as conn:
                if conn.dialect.name == "postgresql":
                    # One snapshot for the several SELECTs of a query (psycopg2 has just sent
                    # BEGIN; SET TRANSACTION must come before the first statement).
                    conn.exec_driver_sql(_SNAPSHOT)
                objects = execute(
                    conn,
                    adhoc,
                    max_leafclass_results=self.max_leafclass_results,
                    home_community_id=self.home_community_id,
                )
        except SQLAlchemyError as exc:
            log.exception("stored query %s failed in the database", adhoc.query_id)
            raise XDSRegistryError("the registry database could not answer the query") from exc
        return objects if self.result_filter is None else self.result_filter(objects)

    def run(self, request: AdhocQuery | Element) -> Element:
        """Run a stored query and return its ``query:AdhocQueryResponse``, Failure included.

        Standard: ITI TF-2 §3.18.4.1.3.
        """
        try:
            return build_query_response(self.query(request))
        except XDSError as error:
            return failure_element(error)

    def handle(self, request: SoapRequest, ctx: Context) -> SoapResponse:
        """The ITI-18 SOAP handler: AdhocQueryRequest in, AdhocQueryResponse out.

        An XDS error is answered here with :func:`failure_element` (status Failure, the errors,
        the empty RegistryObjectList query.xsd requires) and logged at INFO: a refused query is
        an answer, not a fault of the gateway. The boundary reads status and codes from the body.
        Standard: ITI TF-2 §3.18.4.1 (ITI TF-2 Appendix V transport), §3.18.4.1.3.
        """
        ctx.audit.update(query_audit_facts(request.body), reply_to=request.addressing.reply_to)
        try:
            objects = self.query(request.body)
        except XDSError as error:
            log.info(
                "request %s %s failed: %s",
                ctx.request_id,
                ITI_18.name,
                "; ".join(f"{e.code}: {e.context}" for e in error),
            )
            return SoapResponse(body=failure_element(error))
        return SoapResponse(body=build_query_response(objects))
