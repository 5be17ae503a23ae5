"""Running one stored query: id -> query function, checks in the standard's order, result objects.

Order of the checks (each stops the query): unknown query id (XDSUnknownStoredQuery), unknown
community (XDSUnknownCommunity), parameters (XDSStoredQueryMissingParam / ParamNumber /
XDSRegistryError), then the database work, then the size and single-patient rules of a LeafClass
answer (XDSTooManyResults, XDSResultNotSinglePatient).

Standard: ITI TF-2 §3.18.4.1.2.4 (query ids), §3.18.4.1.2.3.8 (homeCommunityId), §3.18.4.1.3
(expected actions and error codes), rev. 19.0.
"""

from __future__ import annotations

from collections.abc import Callable
from types import MappingProxyType

from sqlalchemy import Connection

from gateway.errors import XDSRegistryError, XDSStoredQueryParamNumber, XDSUnknownCommunity
from gateway.metadata.model import RegistryObject
from gateway.metadata.query import LEAF_CLASS, AdhocQuery
from gateway.registry.queries import contents, find, get, result, sql
from gateway.registry.queries import table as t
from gateway.registry.queries.request import Params, bind, spec_for
from gateway.registry.queries.sql import Found, Scope

QueryFunction = Callable[[Scope, Params], Found]

# One function per stored query id (ITI TF-2 Table 3.18.4.1.2.4-1); a plain table, nothing
# registers itself.
FUNCTIONS: MappingProxyType[str, QueryFunction] = MappingProxyType(
    {
        t.FIND_DOCUMENTS: find.find_documents,
        t.FIND_DOCUMENTS_BY_REFERENCE_ID: find.find_documents,
        t.FIND_SUBMISSION_SETS: find.find_submission_sets,
        t.FIND_FOLDERS: find.find_folders,
        t.GET_ALL: contents.get_all,
        t.GET_DOCUMENTS: get.get_documents,
        t.GET_FOLDERS: get.get_folders,
        t.GET_ASSOCIATIONS: get.get_associations,
        t.GET_DOCUMENTS_AND_ASSOCIATIONS: get.get_documents_and_associations,
        t.GET_SUBMISSION_SETS: get.get_submission_sets,
        t.GET_SUBMISSION_SET_AND_CONTENTS: contents.get_submission_set_and_contents,
        t.GET_FOLDER_AND_CONTENTS: contents.get_folder_and_contents,
        t.GET_FOLDERS_FOR_DOCUMENT: get.get_folders_for_document,
        t.GET_RELATED_DOCUMENTS: get.get_related_documents,
    }
)


def check_community(requested: str | None, own: str | None) -> None:
    """Accept a request for this registry's community (or any, when it has none configured).

    A registry of one affinity domain without a homeCommunityId serves every request: NIST test
    11901/homeCommunityId sends ``home="urn:oid:1.1.1"`` and expects the documents.
    Standard: ITI TF-2 §3.18.4.1.2.3.8. Raises: XDSUnknownCommunity.
    """
    if requested is not None and own is not None and requested != own:
        raise XDSUnknownCommunity(
            f"homeCommunityId {requested!r} is not this registry's community ({own})"
        )


def metadata_level(query: AdhocQuery) -> int:
    """The ``$MetadataLevel`` of a query: 1 when absent, else its one value, 1 or 2.

    Standard: ITI TF-2 §3.18.4.1.2.3.5.1 (Metadata Update option). Raises:
    XDSStoredQueryParamNumber for several values, XDSRegistryError for another value.
    """
    values = [value for name, texts in query.slots if name == t.METADATA_LEVEL for value in texts]
    if not values:
        return 1
    if len(values) > 1:
        raise XDSStoredQueryParamNumber(f"{t.METADATA_LEVEL} takes one value, got {len(values)}")
    text = values[0].strip().strip("'\"()")
    if text not in {"1", "2"}:
        raise XDSRegistryError(f"{t.METADATA_LEVEL} is 1 or 2, not {values[0]!r}")
    return int(text)


def execute(
    conn: Connection,
    query: AdhocQuery,
    *,
    max_leafclass_results: int = 0,
    home_community_id: str | None = None,
) -> list[RegistryObject]:
    """Run a stored query in ``conn``'s transaction; return the response objects.

    LeafClass gives full model objects, ObjectRef gives ``model.ObjectRef`` objects.
    Standard: ITI TF-2 §3.18.4.1.2, §3.18.4.1.3.
    Raises: XDSUnknownStoredQuery, XDSUnknownCommunity, XDSErrorList (parameter errors),
    XDSTooManyResults, XDSResultNotSinglePatient.
    """
    spec = spec_for(query.query_id)
    check_community(query.home, home_community_id)
    params = bind(spec, query)
    scope = Scope(
        conn=conn,
        full=query.return_type == LEAF_CLASS,
        limit=max_leafclass_results,
        metadata_level=metadata_level(query),
    )
    found = FUNCTIONS[spec.id](scope, params)
    if not scope.full:
        return result.object_refs(found, home_community_id)
    sql.check_limit(scope, found.count())
    result.check_single_patient(conn, found)
    return result.leaf_objects(found, home_community_id)
