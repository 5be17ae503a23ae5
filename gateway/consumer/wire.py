"""The consumer's ITI-18 bodies: the stored-query request it sends and the answer it reads.

- ITI-18 ``query:AdhocQueryRequest``: ``query:ResponseOption`` (returnType LeafClass or ObjectRef,
  returnComposedObjects true) and one ``rim:AdhocQuery`` whose id is the stored query's UUID and
  whose ``rim:Slot`` elements carry the parameters (ITI TF-2 §3.18.4.1.2.1-§3.18.4.1.2.3; value
  coding in :mod:`gateway.consumer.queries`).
- ``query:AdhocQueryResponse``: status, rs:RegistryErrorList (read by
  :func:`gateway.metadata.retrieve.read_errors`), rim:RegistryObjectList read with
  :func:`gateway.metadata.ebrim.parse_registry_object_list`.

The ITI-43 and RAD-69 bodies the consumer sends and reads are those of
:mod:`gateway.metadata.retrieve`, shared with the repository and the imaging source.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from lxml import etree

from gateway.metadata.ebrim import parse_registry_object_list
from gateway.metadata.model import RegistryObject
from gateway.metadata.retrieve import RegistryError, ResponseFormatError, Status, read_errors
from gateway.soap import ns

RETURN_LEAF_CLASS = "LeafClass"
RETURN_OBJECT_REF = "ObjectRef"

_Q = ns.QUERY


# -- ITI-18 ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QuerySlot:
    """One stored-query parameter: its name and the coded text of each ``rim:Value``."""

    name: str
    values: tuple[str, ...]


def build_query_request(
    query_id: str,
    slots: Iterable[QuerySlot],
    *,
    return_type: str = RETURN_LEAF_CLASS,
    home: str | None = None,
) -> etree._Element:
    """Write an ITI-18 ``query:AdhocQueryRequest`` for a stored query.

    Standard: ITI TF-2 §3.18.4.1.2 (returnType LeafClass/ObjectRef §3.18.4.1.2.1, the
    AdhocQuery id §3.18.4.1.2.2, one Slot per parameter §3.18.4.1.2.3; ``home`` is the
    homeCommunityId attribute of §3.18.4.1.2.3.8).
    """
    if return_type not in (RETURN_LEAF_CLASS, RETURN_OBJECT_REF):
        raise ValueError(f"returnType must be LeafClass or ObjectRef, not {return_type!r}")
    root = etree.Element(ns.qname(_Q, "AdhocQueryRequest"), nsmap={"query": _Q, "rim": ns.RIM})
    etree.SubElement(
        root,
        ns.qname(_Q, "ResponseOption"),
        returnComposedObjects="true",
        returnType=return_type,
    )
    query = etree.SubElement(root, ns.qname(ns.RIM, "AdhocQuery"), id=query_id)
    if home:
        query.set("home", home)
    for slot in slots:
        slot_el = etree.SubElement(query, ns.qname(ns.RIM, "Slot"), name=slot.name)
        value_list = etree.SubElement(slot_el, ns.qname(ns.RIM, "ValueList"))
        for value in slot.values:
            etree.SubElement(value_list, ns.qname(ns.RIM, "Value")).text = value
    return root


@dataclass(slots=True, kw_only=True)
class QueryResponse:
    """An ``AdhocQueryResponse``: short status, errors and the returned objects in order."""

    status: str
    errors: list[RegistryError] = field(default_factory=list)
    objects: list[RegistryObject] = field(default_factory=list)


def parse_query_response(element: etree._Element) -> QueryResponse:
    """Read an ITI-18 ``query:AdhocQueryResponse``.

    Standard: ITI TF-2 §3.18.4.1.3 (status, RegistryErrorList, RegistryObjectList).
    Raises: ResponseFormatError for another body or status; XDSErrorList
    (XDSRegistryMetadataError) when the returned metadata cannot be read.
    """
    if element.tag != ns.ADHOC_QUERY_RESPONSE:
        raise ResponseFormatError(f"expected query:AdhocQueryResponse, got {element.tag}")
    return QueryResponse(
        status=Status.parse(element.get("status")).short,
        errors=read_errors(element),
        objects=parse_registry_object_list(element),
    )
