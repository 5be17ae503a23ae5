"""ITI-18 Registry Stored Query at the Document Registry: the SOAP handler and the actor API.

``StoredQueries`` runs a stored query (``query:AdhocQueryRequest`` element or
:class:`~gateway.registry.queries.AdhocQuery`) in one read-only database snapshot and answers with
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
from typing import Any

from lxml import etree
from sqlalchemy.exc import SQLAlchemyError

from gateway.errors import XDSError, XDSRegistryError
from gateway.metadata import ebrim
from gateway.metadata.model import RegistryObject
from gateway.metadata.retrieve import Status, failure_body
from gateway.registry.database import Database
from gateway.registry.queries import AdhocQuery, execute, parse_request
from gateway.soap import ns
from gateway.soap.dispatch import Context
from gateway.soap.message import SoapRequest, SoapResponse
from gateway.soap.transactions import ITI_18

log = logging.getLogger(__name__)

ACTION = ITI_18.action
RESPONSE_ACTION = ITI_18.response_action
REQUEST_QNAME = ITI_18.request_qname
RESPONSE_QNAME = ITI_18.response_qname
TF = ITI_18.tf

_OBJECT_LIST = ns.qname(ns.RIM, "RegistryObjectList")
_SNAPSHOT = "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"
_NSMAP = {"query": ns.QUERY, "rs": ns.RS, "rim": ns.RIM}


def response_element(objects: list[RegistryObject]) -> etree._Element:
    """A Success ``query:AdhocQueryResponse`` holding ``objects``.

    Standard: ITI TF-2 §3.18.4.1.3; ebRS 3.0 query.xsd (RegistryObjectList is required).
    """
    element = etree.Element(RESPONSE_QNAME, nsmap=_NSMAP)
    element.set("status", Status.SUCCESS.value)
    element.append(ebrim.build_registry_object_list(objects))
    return element


def failure_element(error: XDSError) -> etree._Element:
    """A Failure ``query:AdhocQueryResponse``: the errors and an empty RegistryObjectList.

    Standard: ITI TF-2 §3.18.4.1.3; ebRS 3.0 query.xsd.
    """
    element = failure_body(ITI_18, error)
    if element.find(_OBJECT_LIST) is None:
        etree.SubElement(element, _OBJECT_LIST, nsmap={"rim": ns.RIM})
    return element


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

    def query(self, request: AdhocQuery | etree._Element) -> list[RegistryObject]:
        """Run a stored query; return LeafClass model objects or ``model.ObjectRef`` objects.

        For in-process consumers (no XML on the way back). Standard: ITI TF-2 §3.18.4.1.2-3.
        Raises: XDSError (XDSUnknownStoredQuery, XDSUnknownCommunity, XDSErrorList of parameter
        errors, XDSTooManyResults, XDSResultNotSinglePatient, XDSRegistryError).
        """
        adhoc = request if isinstance(request, AdhocQuery) else parse_request(request)
        try:
            with self.database.read() as conn:
                if conn.dialect.name == "postgresql":
                    # One snapshot for the several SELECTs of a query (psycopg2 has just sent
                    # BEGIN; SET TRANSACTION must come before the first statement).
                    conn.exec_driver_sql(_SNAPSHOT)
                return execute(
                    conn,
                    adhoc,
                    max_leafclass_results=self.max_leafclass_results,
                    home_community_id=self.home_community_id,
                )
        except SQLAlchemyError as exc:
            log.exception("stored query %s failed in the database", adhoc.query_id)
            raise XDSRegistryError("the registry database could not answer the query") from exc

    def run(self, request: AdhocQuery | etree._Element) -> etree._Element:
        """Run a stored query and return its ``query:AdhocQueryResponse``, Failure included.

        Standard: ITI TF-2 §3.18.4.1.3.
        """
        try:
            return response_element(self.query(request))
        except XDSError as error:
            return failure_element(error)

    def handle(self, request: SoapRequest, ctx: Context) -> SoapResponse:
        """The ITI-18 SOAP handler: AdhocQueryRequest in, AdhocQueryResponse out.

        An XDS error is answered here with :func:`failure_element` rather than left to the SOAP
        boundary, whose generic failure body has no RegistryObjectList and would not be valid
        against query.xsd; the boundary still reads status and error codes from the body.
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
        return SoapResponse(body=response_element(objects))


_PATIENT_SLOTS = ("$XDSDocumentEntryPatientId", "$XDSSubmissionSetPatientId", "$XDSFolderPatientId")


def query_audit_facts(body: etree._Element) -> dict[str, Any]:
    """The audit facts of an AdhocQueryRequest: query id, the request itself, patient, home.

    Standard: ITI TF-2 §3.18.5.1 (Query Parameters ParticipantObject: the query id as
    ParticipantObjectID, the whole AdhocQueryRequest base64 in ParticipantObjectQuery, and the
    homeCommunityId in ParticipantObjectDetail).
    """
    query = body.find(f"{{{ns.RIM}}}AdhocQuery")
    patients: list[str] = []
    for slot in body.iter(f"{{{ns.RIM}}}Slot"):
        if slot.get("name") in _PATIENT_SLOTS:
            for value in slot.iter(f"{{{ns.RIM}}}Value"):
                text = (value.text or "").strip().strip("'")
                if text:
                    patients.append(text)
    home = query.get("home") if query is not None else None
    return {
        "query_id": query.get("id") if query is not None else None,
        "query_request": etree.tostring(body),
        "patient_ids": list(dict.fromkeys(patients)),
        "home_community_ids": [home] if home else [],
    }
