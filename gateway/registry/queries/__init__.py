"""ITI-18 Registry Stored Query: the fourteen stored queries of ITI TF-2 §3.18.4.1.2.4 as SQL.

Modules: ``table`` (query ids and parameter tables), ``values`` (the text coding of a Value),
``request`` (AdhocQueryRequest -> checked, typed parameters), ``sql`` (filters and fetches),
``find`` / ``get`` / ``contents`` (one function per query), ``result`` (rows -> LeafClass or
ObjectRef objects), ``run`` (one query from id to objects). The SOAP handler and the actor-level
:class:`gateway.registry.iti18.StoredQueries` sit on top.
"""

from gateway.registry.queries.request import (
    LEAF_CLASS,
    OBJECT_REF,
    AdhocQuery,
    parse_request,
)
from gateway.registry.queries.run import execute
from gateway.registry.queries.values import quote, quote_list

__all__ = [
    "LEAF_CLASS",
    "OBJECT_REF",
    "AdhocQuery",
    "execute",
    "parse_request",
    "quote",
    "quote_list",
]
