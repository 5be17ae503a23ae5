"""Submission metadata preparation (ids the NIST engine assigns) and the view of returned metadata.

Preparation mirrors the NIST ``BasicTransaction.prepareMetadata`` order (read, not copied):
patient id (unless ``NoPatientId``) -> ``UseId`` linkage -> fresh uniqueIds (unless
``NoAssignUids``) -> sourceId -> symbolic ids to ``urn:uuid:`` (with ``AssignUuids``). Every
assignment returns the map object id (symbolic, as in the file) -> value, which is what later
steps read through ``UseId section="Assigned..."``. The functions work on 2.1 and 3.0 trees
alike (local names only), so the 2.1 -> 3.0 translation can run last, as in the toolkit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from tests.conformance.nist import ns
from tests.conformance.nist.xmlutil import Element, first, kids, local, walk

# Attributes that refer to another object by id (ebRIM 3.0; NIST IdParser referencing set).
_REFERENCING = (
    "sourceObject",
    "targetObject",
    "classifiedObject",
    "registryObject",
    "classificationScheme",
    "identificationScheme",
    "classificationNode",
)


def top_level_objects(root: Element) -> list[Element]:
    """Children of the (Leaf)RegistryObjectList of a submission or response."""
    for name in ("RegistryObjectList", "LeafRegistryObjectList"):
        container = next(walk(root, name), None)
        if container is not None:
            return kids(container)
    return []


def _objects(root: Element, name: str) -> list[Element]:
    return [o for o in top_level_objects(root) if local(o) == name]


def _assign(
    root: Element,
    element_name: str,
    schemes: Iterable[str],
    allocate: Callable[[], str],
    skip_id: str = "",
) -> dict[str, str]:
    """Set the ``value`` of matching ExternalIdentifiers; return object id -> value assigned."""
    assigned: dict[str, str] = {}
    wanted = set(schemes)
    for obj in _objects(root, element_name):
        object_id = obj.get("id", "")
        if skip_id and object_id == skip_id:
            continue
        for identifier in kids(obj, "ExternalIdentifier"):
            if identifier.get("identificationScheme") in wanted:
                value = allocate()
                identifier.set("value", value)
                assigned[object_id] = value
    return assigned


def assign_patient_ids(root: Element, patient_id: str) -> dict[str, str]:
    """Write ``patient_id`` into every DocumentEntry, SubmissionSet and Folder patientId."""
    assigned = _assign(root, "ExtrinsicObject", [ns.DE_PATIENT_ID], lambda: patient_id)
    assigned.update(
        _assign(root, "RegistryPackage", [ns.SS_PATIENT_ID, ns.FOL_PATIENT_ID], lambda: patient_id)
    )
    return assigned


def assign_unique_ids(
    root: Element, allocate: Callable[[], str], skip_id: str = ""
) -> dict[str, str]:
    """Give every DocumentEntry, SubmissionSet and Folder a fresh uniqueId (except ``skip_id``)."""
    assigned = _assign(root, "ExtrinsicObject", [ns.DE_UNIQUE_ID], allocate, skip_id)
    assigned.update(
        _assign(root, "RegistryPackage", [ns.SS_UNIQUE_ID, ns.FOL_UNIQUE_ID], allocate, skip_id)
    )
    return assigned


def assign_source_ids(root: Element, source_id: str) -> dict[str, str]:
    """Write the runner's sourceId into every SubmissionSet."""
    return _assign(root, "RegistryPackage", [ns.SS_SOURCE_ID], lambda: source_id)


def assign_uuids(root: Element, allocate: Callable[[], str]) -> dict[str, str]:
    """Replace every symbolic ``id`` with a fresh ``urn:uuid:`` and fix all references to it."""
    mapping: dict[str, str] = {}
    for obj in top_level_objects(root):
        for node in obj.iter():
            if not isinstance(node.tag, str):
                continue
            value = node.get("id")
            if value and not value.startswith("urn:uuid:") and value not in mapping:
                mapping[value] = allocate()
            if value in mapping:
                node.set("id", mapping[value])
    for obj in top_level_objects(root):
        for node in obj.iter():
            if not isinstance(node.tag, str):
                continue
            for attribute in _REFERENCING:
                value = node.get(attribute)
                if value in mapping:
                    node.set(attribute, mapping[value])
    return mapping


@dataclass(slots=True, kw_only=True)
class MetadataView:
    """Objects of a query response sorted the way the NIST ``Metadata`` class sorts them."""

    extrinsic_objects: list[Element] = field(default_factory=list)
    submission_sets: list[Element] = field(default_factory=list)
    folders: list[Element] = field(default_factory=list)
    associations: list[Element] = field(default_factory=list)
    object_refs: list[Element] = field(default_factory=list)

    @property
    def submission_set(self) -> Element | None:
        """The first SubmissionSet (NIST ``getSubmissionSet``)."""
        return self.submission_sets[0] if self.submission_sets else None


def view(root: Element) -> MetadataView:
    """Sort the RegistryObjectList of ``root`` into documents, sets, folders, associations, refs.

    A RegistryPackage is a SubmissionSet or Folder by its classification (ITI TF-3 §4.2.3.3.1 and
    §4.2.3.4.1: nested or top-level Classification with the SubmissionSet/Folder node) or, failing
    that, by its uniqueId ExternalIdentifier scheme.
    """
    objects = top_level_objects(root)
    nodes: dict[str, set[str]] = {}
    for c in objects:
        if local(c) == "Classification":
            nodes.setdefault(c.get("classifiedObject", ""), set()).add(c.get("classificationNode"))
    result = MetadataView()
    for obj in objects:
        name = local(obj)
        if name == "ExtrinsicObject":
            result.extrinsic_objects.append(obj)
        elif name == "Association":
            result.associations.append(obj)
        elif name == "ObjectRef":
            result.object_refs.append(obj)
        elif name == "RegistryPackage":
            kind = _package_kind(obj, nodes.get(obj.get("id", ""), set()))
            if kind == "SubmissionSet":
                result.submission_sets.append(obj)
            elif kind == "Folder":
                result.folders.append(obj)
    return result


def _package_kind(package: Element, top_level_nodes: set[str]) -> str:
    found = {c.get("classificationNode") for c in kids(package, "Classification")}
    found |= top_level_nodes
    schemes = {e.get("identificationScheme") for e in kids(package, "ExternalIdentifier")}
    if ns.SUBMISSION_SET_NODE in found or ns.SS_UNIQUE_ID in schemes:
        return "SubmissionSet"
    if ns.FOLDER_NODE in found or ns.FOL_UNIQUE_ID in schemes:
        return "Folder"
    return ""


def simple_status(element: Element) -> str:
    """``Approved``/``Deprecated``/... from a namespaced status (NIST ``stripNamespace``)."""
    return (element.get("status") or "").rpartition(":")[2]


def simple_association_type(association: Element) -> str:
    """``HasMember``/``RPLC``/... from a namespaced associationType."""
    return (association.get("associationType") or "").rpartition(":")[2]


def slot_value(element: Element, name: str) -> str:
    """First value of the slot ``name`` of ``element`` ('' if absent)."""
    for slot in kids(element, "Slot"):
        if slot.get("name") == name:
            values = first(slot, "ValueList")
            value = first(values, "Value") if values is not None else None
            return (value.text or "").strip() if value is not None else ""
    return ""


def external_identifier(element: Element, scheme: str) -> str:
    """Value of the ExternalIdentifier of ``element`` with ``scheme`` ('' if absent)."""
    for identifier in kids(element, "ExternalIdentifier"):
        if identifier.get("identificationScheme") == scheme:
            return identifier.get("value", "")
    return ""
