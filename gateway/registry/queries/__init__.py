"""ITI-18 Registry Stored Query: the fourteen stored queries of ITI TF-2 §3.18.4.1.2.4 as SQL.

Modules: ``table`` (query ids and parameter tables), ``request`` (an AdhocQuery's slots ->
checked, typed parameters), ``sql`` (filters and fetches), ``find`` / ``get`` / ``contents`` (one
function per query), ``result`` (rows -> LeafClass or ObjectRef objects), ``run`` (one query from
id to objects). The SOAP handler and the actor-level :class:`gateway.registry.iti18.StoredQueries`
sit on top; the AdhocQueryRequest/Response bodies and the text coding of a Value are
:mod:`gateway.metadata.query` and :mod:`gateway.metadata.query_values`, shared with consumers.
"""

from gateway.metadata.query import LEAF_CLASS, OBJECT_REF, AdhocQuery
from gateway.metadata.query_values import quote, quote_list
from gateway.registry.queries.run import execute

__all__ = [
    "LEAF_CLASS",
    "OBJECT_REF",
    "AdhocQuery",
    "execute",
    "quote",
    "quote_list",
]
