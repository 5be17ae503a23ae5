"""The ITI-18 bodies, both ends: ``query:AdhocQueryRequest`` and ``query:AdhocQueryResponse``.

A stored-query invocation is an :class:`AdhocQuery` (query id, returnType, ``home`` and the
``rim:Slot`` parameters as sent). Consumers and the repository's registry client build one and
write it with :func:`build_query_request`; the registry reads it with
:func:`parse_query_request`. The registry answers with :func:`build_query_response` (Success) or
``gateway.metadata.retrieve.failure_body`` (Failure); a consumer reads the answer with
:func:`parse_query_response`. The text inside a ``rim:Value`` (quoted strings, lists, numbers)
is coded by :mod:`gateway.metadata.query_values`.

Standard: ITI TF-2 §3.18.4.1.2 (request: ResponseOption returnType LeafClass or ObjectRef
§3.18.4.1.2.1, the AdhocQuery id §3.18.4.1.2.2, one Slot per parameter §3.18.4.1.2.3, ``home``
§3.18.4.1.2.3.8), §3.18.4.1.3 (response: status, RegistryErrorList, RegistryObjectList);
ebRS 3.0 query.xsd; rev. 19.0 read.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from lxml import etree

from gateway.errors import XDSRegistryError
from gateway.metadata.ebrim import build_registry_object_list, parse_registry_object_list
from gateway.metadata.model import RegistryObject
from gateway.metadata.query_values import Item, ValueFormatError, parse_value, quote, quote_list
from gateway.metadata.retrieve import (
    RegistryError,
    ResponseFormatError,
    Status,
    build_error_list,
    read_errors,
)
from gateway.soap import ns

LEAF_CLASS = "LeafClass"
OBJECT_REF = "ObjectRef"
RETURN_TYPES = (LEAF_CLASS, OBJECT_REF)

# The slots naming the patient of a stored query (ITI TF-2 §3.18.4.1.2.3.7).
PATIENT_SLOTS = ("$XDSDocumentEntryPatientId", "$XDSSubmissionSetPatientId", "$XDSFolderPatientId")

_REQUEST = ns.qname(ns.QUERY, "AdhocQueryRequest")
_RESPONSE = ns.qname(ns.QUERY, "AdhocQueryResponse")
_RESPONSE_OPTION = ns.qname(ns.QUERY, "ResponseOption")
_ADHOC_QUERY = ns.qname(ns.RIM, "AdhocQuery")
_SLOT = ns.qname(ns.RIM, "Slot")
_VALUE_LIST = ns.qname(ns.RIM, "ValueList")
_VALUE = ns.qname(ns.RIM, "Value")
_REQUEST_NSMAP = {"query": ns.QUERY, "rim": ns.RIM}
_RESPONSE_NSMAP = {"query": ns.QUERY, "rs": ns.RS, "rim": ns.RIM}


class QuerySlot(NamedTuple):
    """One stored-query parameter as sent: its name and the text of each ``rim:Value``."""

    name: str
    values: tuple[str, ...]


@dataclass(slots=True, kw_only=True)
class AdhocQuery:
    """A stored-query invocation: query id, returnType, ``home`` and the slots as sent.

    ``slots`` keeps every ``rim:Slot`` in document order; a name may repeat (AND semantics of
    code parameters, ITI TF-2 §3.18.4.1.2.3.5). Build one with :meth:`add`.
    """

    query_id: str
    return_type: str = LEAF_CLASS
    home: str | None = None
    slots: list[QuerySlot] = field(default_factory=list)

    def add(self, name: str, *values: str) -> AdhocQuery:
        """Append a slot with these Value texts (see ``query_values.quote`` and ``quote_list``)."""
        self.slots.append(QuerySlot(name, tuple(values)))
        return self


def build_query_request(query: AdhocQuery) -> etree._Element:
    """Write a ``query:AdhocQueryRequest`` (returnComposedObjects true).

    Standard: ITI TF-2 §3.18.4.1.2. Raises: ValueError for a returnType ITI-18 does not allow.
    """
    if query.return_type not in RETURN_TYPES:
        raise ValueError(f"returnType must be LeafClass or ObjectRef, not {query.return_type!r}")
    root = etree.Element(_REQUEST, nsmap=_REQUEST_NSMAP)
    etree.SubElement(
        root, _RESPONSE_OPTION, returnComposedObjects="true", returnType=query.return_type
    )
    adhoc = etree.SubElement(root, _ADHOC_QUERY, id=query.query_id)
    if query.home:
        adhoc.set("home", query.home)
    for slot in query.slots:
        value_list = etree.SubElement(etree.SubElement(adhoc, _SLOT, name=slot.name), _VALUE_LIST)
        for value in slot.values:
            etree.SubElement(value_list, _VALUE).text = value
    return root


def parse_query_request(element: etree._Element) -> AdhocQuery:
    """Read a ``query:AdhocQueryRequest``.

    Standard: ITI TF-2 §3.18.4.1.2 (request message), ebRS 3.0 query.xsd.
    Raises: XDSRegistryError (not an AdhocQueryRequest, no AdhocQuery, bad returnType).
    """
    if element.tag != _REQUEST:
        raise XDSRegistryError(f"expected query:AdhocQueryRequest, got {element.tag}")
    option = element.find(_RESPONSE_OPTION)
    # query.xsd makes ResponseOption required with returnType defaulting to RegistryObject, which
    # ITI-18 does not allow; a missing element is read as that default and refused below.
    return_type = "RegistryObject" if option is None else option.get("returnType", "RegistryObject")
    if return_type not in RETURN_TYPES:
        raise XDSRegistryError(
            f"returnType {return_type!r} is not supported: use LeafClass or ObjectRef "
            "(ITI TF-2 §3.18.4.1.2.1)"
        )
    adhoc = element.find(_ADHOC_QUERY)
    if adhoc is None:
        raise XDSRegistryError("AdhocQueryRequest has no rim:AdhocQuery")
    # The id is an xsd:anyURI, whose whitespace facet is "collapse": outer blanks do not count.
    return AdhocQuery(
        query_id=(adhoc.get("id") or "").strip(),
        return_type=return_type,
        home=(adhoc.get("home") or "").strip() or None,
        slots=_slots(adhoc),
    )


def _slots(adhoc: etree._Element) -> list[QuerySlot]:
    slots = []
    for slot in adhoc.iterfind(_SLOT):
        values = slot.find(_VALUE_LIST)
        texts = () if values is None else tuple(v.text or "" for v in values.iterfind(_VALUE))
        slots.append(QuerySlot(slot.get("name", ""), texts))
    return slots


def query_audit_facts(element: etree._Element) -> dict[str, Any]:
    """The audit facts of an AdhocQueryRequest, read leniently (a request the registry refuses is
    audited too): query id, the request itself, the patient ids and the ``home``.

    Standard: ITI TF-2 §3.18.5.1 (Query Parameters ParticipantObject: the query id as
    ParticipantObjectID, the whole AdhocQueryRequest in ParticipantObjectQuery, the
    homeCommunityId in ParticipantObjectDetail).
    """
    adhoc = element.find(_ADHOC_QUERY)
    patients: list[str] = []
    for slot in element.iter(_SLOT):
        if slot.get("name") in PATIENT_SLOTS:
            for value in slot.iter(_VALUE):
                text = (value.text or "").strip().strip("'")
                if text:
                    patients.append(text)
    home = adhoc.get("home") if adhoc is not None else None
    return {
        "query_id": adhoc.get("id") if adhoc is not None else None,
        "query_request": etree.tostring(element),
        "patient_ids": list(dict.fromkeys(patients)),
        "home_community_ids": [home] if home else [],
    }


# -- response -------------------------------------------------------------------------------------


def build_query_response(objects: Iterable[RegistryObject]) -> etree._Element:
    """A Success ``query:AdhocQueryResponse`` holding ``objects`` (LeafClass objects or
    ObjectRefs). Standard: ITI TF-2 §3.18.4.1.3; query.xsd (RegistryObjectList is required)."""
    element = etree.Element(_RESPONSE, nsmap=_RESPONSE_NSMAP)
    element.set("status", Status.SUCCESS.value)
    element.append(build_registry_object_list(list(objects)))
    return element


@dataclass(slots=True, kw_only=True)
class QueryResponse:
    """An ``AdhocQueryResponse``: short status, errors and the returned objects in order."""

    status: str
    errors: list[RegistryError] = field(default_factory=list)
    objects: list[RegistryObject] = field(default_factory=list)


def parse_query_response(element: etree._Element) -> QueryResponse:
    """Read a ``query:AdhocQueryResponse``.

    Standard: ITI TF-2 §3.18.4.1.3 (status, RegistryErrorList, RegistryObjectList).
    Raises: ResponseFormatError for another body or status; XDSErrorList
    (XDSRegistryMetadataError) when the returned metadata cannot be read.
    """
    if element.tag != _RESPONSE:
        raise ResponseFormatError(f"expected query:AdhocQueryResponse, got {element.tag}")
    return QueryResponse(
        status=Status.parse(element.get("status")).short,
        errors=read_errors(element),
        objects=parse_registry_object_list(element),
    )


# -- cross-community answers (ITI-38, and ITI-18 at an Initiating Gateway) -------------------------

# Every parameter naming the patient of a stored query: the three of PATIENT_SLOTS and GetAll's
# $patientId (ITI TF-2 §3.18.4.1.2.3.7.1-§3.18.4.1.2.3.7.4, §3.18.4.1.2.3.7.14).
PATIENT_PARAMETERS = (*PATIENT_SLOTS, "$patientId")
_HOME = "home"


def has_patient_parameter(query: AdhocQuery) -> bool:
    """True when the query names a patient; the others need ``home`` across communities.

    Standard: ITI TF-2 §3.38.1 ("homeCommunityId ... in all Cross-Community Queries which do not
    contain a patient identifier"), §3.38.4.1.3 (XDSMissingHomeCommunityId).
    """
    return any(slot.name in PATIENT_PARAMETERS for slot in query.slots)


def patient_ids(query: AdhocQuery) -> list[str]:
    """The patient ids the query's patient parameters hold (quotes removed), in order."""
    found: list[str] = []
    for slot in query.slots:
        if slot.name in PATIENT_PARAMETERS:
            for value in slot.values:
                found.extend(item.text for item in _items(value))
    return list(dict.fromkeys(found))


def with_patient_ids(query: AdhocQuery, mapping: dict[str, str]) -> AdhocQuery:
    """A copy of ``query`` whose patient parameters name ``mapping[pid]`` instead of each pid.

    For an Initiating Gateway sending a query to a community of another patient identifier
    domain (ITI TF-1 §18.2.3: the patient's identifier in the responding community).
    """
    slots: list[QuerySlot] = []
    for slot in query.slots:
        if slot.name in PATIENT_PARAMETERS:
            values = tuple(_requote(value, mapping) for value in slot.values)
            slots.append(QuerySlot(slot.name, values))
        else:
            slots.append(slot)
    return AdhocQuery(
        query_id=query.query_id, return_type=query.return_type, home=query.home, slots=slots
    )


def _items(value: str) -> tuple[Item, ...]:
    try:
        return parse_value(value).items
    except ValueFormatError:
        return ()


def _requote(value: str, mapping: dict[str, str]) -> str:
    try:
        parsed = parse_value(value)
    except ValueFormatError:
        return value  # the registry that receives it reports the malformed value
    texts = [mapping.get(item.text, item.text) for item in parsed.items]
    return quote_list(texts) if parsed.is_list else quote(texts[0])


@dataclass(slots=True, kw_only=True)
class QueryAnswer:
    """An ``AdhocQueryResponse`` kept as elements: status, errors, and the top-level children
    of its RegistryObjectList, untouched (a gateway passes them on without rebuilding them)."""

    status: Status
    errors: list[RegistryError] = field(default_factory=list)
    objects: list[etree._Element] = field(default_factory=list)


def read_query_answer(element: etree._Element) -> QueryAnswer:
    """Read an ``AdhocQueryResponse`` without turning its objects into models.

    Standard: ITI TF-2 §3.18.4.1.3, §3.38.4.1.3. Raises: ResponseFormatError (another body, an
    unknown status).
    """
    if element.tag != _RESPONSE:
        raise ResponseFormatError(f"expected query:AdhocQueryResponse, got {element.tag}")
    holder = element.find(ns.qname(ns.RIM, "RegistryObjectList"))
    objects = (
        [child for child in holder if isinstance(child.tag, str)] if holder is not None else []
    )
    return QueryAnswer(
        status=Status.parse(element.get("status")),
        errors=read_errors(element.find(ns.REGISTRY_ERROR_LIST)),
        objects=objects,
    )


def build_query_answer(answer: QueryAnswer) -> etree._Element:
    """Write an ``AdhocQueryResponse``: status, RegistryErrorList (if any), RegistryObjectList
    holding ``answer.objects`` (moved, not copied).

    Standard: ITI TF-2 §3.18.4.1.3 (PartialSuccess from an Initiating Gateway: §3.38.4.1.3);
    query.xsd / rs.xsd element order.
    """
    element = etree.Element(_RESPONSE, nsmap=_RESPONSE_NSMAP)
    element.set("status", answer.status.value)
    error_list = build_error_list(answer.errors)
    if error_list is not None:
        element.append(error_list)
    holder = etree.SubElement(element, ns.qname(ns.RIM, "RegistryObjectList"))
    holder.extend(answer.objects)
    return element


def set_home(objects: Iterable[etree._Element], home: str) -> None:
    """Put ``home`` (the homeCommunityId) on every returned object (ObjectRef included).

    Standard: ITI TF-2 §3.38.4.1.3 (the Responding Gateway returns homeCommunityId on every
    ExtrinsicObject, RegistryPackage and ObjectRef); ebRIM 3.0 rim.xsd (``home`` of
    IdentifiableType, so Associations and Classifications may carry it too).
    """
    for element in objects:
        element.set(_HOME, home)


def home_of(element: etree._Element) -> str | None:
    """The ``home`` attribute of a returned object, or None."""
    return element.get(_HOME) or None


def object_label(element: etree._Element) -> str:
    """``ExtrinsicObject urn:uuid:...``: an object's kind and id, for error contexts."""
    return f"{etree.QName(element).localname} {element.get('id', '?')}"
