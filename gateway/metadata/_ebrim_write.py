"""Model -> ebRIM 3.0 elements (the writing half of ``gateway.metadata.ebrim``).

Standard: ITI TF-3 §4.2.1-§4.2.3 (rev. 19.0); element order of ebRIM 3.0 rim.xsd
RegistryObjectType: Slot*, Name?, Description?, VersionInfo?, Classification*, ExternalIdentifier*.
"""

from __future__ import annotations

from typing import Any

from lxml import etree

from gateway.metadata import _ebrim_common as c
from gateway.metadata import vocabulary as v
from gateway.metadata.datatypes import Code
from gateway.metadata.model import (
    Association,
    Author,
    DocumentEntry,
    Folder,
    ObjectRef,
    RegistryObject,
    SubmissionSet,
)
from gateway.soap import ns

_NSMAP = {"rim": ns.RIM}
# LongName (ebRIM 3.0 rim.xsd) limits a slot Value to 256 characters; a longer URI is split into
# "n|part" values (ITI TF-3 §4.2.3.2 DocumentEntry.URI).
_URI_PART = 250


def build_object(obj: RegistryObject) -> list[etree._Element]:
    """Return the element(s) of one model object (a package comes with its label)."""
    if isinstance(obj, DocumentEntry):
        return [_document_entry(obj)]
    if isinstance(obj, SubmissionSet | Folder):
        return _package(obj)
    if isinstance(obj, Association):
        return [_association(obj)]
    if isinstance(obj, ObjectRef):
        return [_object_ref(obj)]
    raise TypeError(f"not a metadata model object: {type(obj).__name__}")


def _element(tag: str, attrib: dict[str, str | None], parent: Any = None) -> etree._Element:
    clean = {key: value for key, value in attrib.items() if value is not None}
    if parent is None:
        return etree.Element(c.rim(tag), clean, nsmap=_NSMAP)
    return etree.SubElement(parent, c.rim(tag), clean)


def _slot(parent: etree._Element, name: str, values: list[str]) -> None:
    slot = _element("Slot", {"name": name}, parent)
    value_list = _element("ValueList", {}, slot)
    for value in values:
        _element("Value", {}, value_list).text = value


def _slot_values(field: c.SlotField, value: Any) -> list[str] | None:
    """The Values of a slot for an attribute value, ``None`` when the slot is left out."""
    if value is None or (field.kind is c.Kind.MANY and not value):
        return None
    if field.kind is c.Kind.MANY:
        return list(value)
    if field.kind is c.Kind.URI and len(value) > _URI_PART:
        parts = [value[i : i + _URI_PART] for i in range(0, len(value), _URI_PART)]
        return [f"{n}|{part}" for n, part in enumerate(parts, start=1)]
    return [str(value)]


def _slots(parent: etree._Element, obj: Any, fields: tuple[c.SlotField, ...]) -> None:
    for field in fields:
        values = _slot_values(field, getattr(obj, field.attr))
        if values is not None:
            _slot(parent, field.slot, values)
    reserved = {field.slot for field in fields}
    for name, values in obj.extra_slots.items():
        if name in reserved:
            raise ValueError(f"extra slot {name!r} reuses the name of an IHE slot")
        _slot(parent, name, list(values))


def _localized(
    parent: etree._Element, tag: str, value: str | None, lang: str | None, charset: str | None
) -> None:
    if value is None:
        return
    holder = _element(tag, {}, parent)
    _element("LocalizedString", {c.XML_LANG: lang, "charset": charset, "value": value}, holder)


def _common_attrs(obj: Any, object_type: str | None) -> dict[str, str | None]:
    return {
        "id": obj.entry_uuid,
        "lid": getattr(obj, "logical_id", None),
        "objectType": object_type,
        "status": obj.availability_status,
        "home": obj.home_community_id,
    }


def _names_and_version(element: etree._Element, obj: Any) -> None:
    _localized(element, "Name", obj.title, obj.title_lang, obj.title_charset)
    _localized(element, "Description", obj.comments, obj.comments_lang, obj.comments_charset)
    version = getattr(obj, "version", None)
    if version is not None:
        _element("VersionInfo", {"versionName": version}, element)


def _classification(
    parent: etree._Element, owner: str, index: int, attrib: dict[str, str | None]
) -> etree._Element:
    attributes = {
        "id": c.child_id(owner, "Classification", index),
        "objectType": v.OBJECT_TYPE_CLASSIFICATION,
        "classifiedObject": owner,
        **attrib,
    }
    return _element("Classification", attributes, parent)


def _code(parent: etree._Element, owner: str, index: int, scheme: str, code: Code) -> None:
    attrib = {"classificationScheme": scheme, "nodeRepresentation": code.code}
    classification = _classification(parent, owner, index, attrib)
    _slot(classification, v.SLOT_CODING_SCHEME, [code.scheme])
    _localized(classification, "Name", code.display_name, code.lang, code.charset)


def _author(parent: etree._Element, owner: str, index: int, scheme: str, author: Author) -> None:
    attrib = {"classificationScheme": scheme, "nodeRepresentation": ""}
    _slots(_classification(parent, owner, index, attrib), author, c.AUTHOR_SLOTS)


def _classifications(element: etree._Element, obj: Any, spec: c.Spec) -> None:
    owner = obj.entry_uuid
    index = 0
    if spec.author_scheme is not None:
        for author in obj.author:
            _author(element, owner, index, spec.author_scheme, author)
            index += 1
    for field in spec.codes:
        value = getattr(obj, field.attr)
        for code in value if field.many else [value] if value is not None else []:
            _code(element, owner, index, field.scheme, code)
            index += 1
    if spec.limited_node is not None and obj.limited_metadata:
        _classification(element, owner, index, {"classificationNode": spec.limited_node})


def _external_identifiers(element: etree._Element, obj: Any, spec: c.Spec) -> None:
    for index, field in enumerate(spec.ids):
        value = getattr(obj, field.attr)
        if value is None:
            continue
        attrib = {
            "id": c.child_id(obj.entry_uuid, "ExternalIdentifier", index),
            "objectType": v.OBJECT_TYPE_EXTERNAL_IDENTIFIER,
            "registryObject": obj.entry_uuid,
            "identificationScheme": field.scheme,
            "value": value,
        }
        identifier = _element("ExternalIdentifier", attrib, element)
        _localized(identifier, "Name", field.scheme.name, None, None)


def _document_entry(entry: DocumentEntry) -> etree._Element:
    attrib = _common_attrs(entry, entry.object_type)
    attrib["mimeType"] = entry.mime_type
    element = _element("ExtrinsicObject", attrib)
    _slots(element, entry, c.DOCUMENT_ENTRY.slots)
    _names_and_version(element, entry)
    _classifications(element, entry, c.DOCUMENT_ENTRY)
    _external_identifiers(element, entry, c.DOCUMENT_ENTRY)
    return element


def _package(obj: SubmissionSet | Folder) -> list[etree._Element]:
    spec = c.SUBMISSION_SET if isinstance(obj, SubmissionSet) else c.FOLDER
    element = _element("RegistryPackage", _common_attrs(obj, v.OBJECT_TYPE_REGISTRY_PACKAGE))
    _slots(element, obj, spec.slots)
    _names_and_version(element, obj)
    _classifications(element, obj, spec)
    _external_identifiers(element, obj, spec)
    # The label is written as a top-level Classification, as in the ITI TF-3 §4.2.1 examples.
    label = etree.Element(
        c.rim("Classification"),
        {
            "id": c.child_id(obj.entry_uuid, "Label", 0),
            "objectType": v.OBJECT_TYPE_CLASSIFICATION,
            "classifiedObject": obj.entry_uuid,
            "classificationNode": str(spec.package_node),
        },
        nsmap=_NSMAP,
    )
    return [element, label]


def _association(association: Association) -> etree._Element:
    attrib = _common_attrs(association, v.OBJECT_TYPE_ASSOCIATION)
    attrib["associationType"] = association.association_type
    attrib["sourceObject"] = association.source_object
    attrib["targetObject"] = association.target_object
    element = _element("Association", attrib)
    _slots(element, association, c.ASSOCIATION.slots)
    _classifications(element, association, c.ASSOCIATION)
    return element


def _object_ref(ref: ObjectRef) -> etree._Element:
    element = _element("ObjectRef", {"id": ref.entry_uuid, "home": ref.home_community_id})
    _slots(element, ref, ())
    return element
