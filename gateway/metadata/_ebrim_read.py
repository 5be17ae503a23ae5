"""ebRIM 3.0 elements -> model (the reading half of ``gateway.metadata.ebrim``).

A :class:`Reader` walks one RegistryObjectList, collects every structural problem it meets
instead of stopping, and raises them together. Standard: ITI TF-3 §4.2.1-§4.2.3 (rev. 19.0),
ebRIM 3.0 rim.xsd.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from gateway.errors import XDSError, XDSErrorList
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
    Submission,
    SubmissionSet,
)

_CLASSIFICATION = c.rim("Classification")
_EXTERNAL_IDENTIFIER = c.rim("ExternalIdentifier")
_SLOT = c.rim("Slot")
_VALUE_PATH = f"{c.rim('ValueList')}/{c.rim('Value')}"
_LOCALIZED = c.rim("LocalizedString")
_LABELS = frozenset({v.SUBMISSION_SET, v.FOLDER})
_INTEGER = re.compile(r"^-?[0-9]+$")


@dataclass(slots=True)
class _Labels:
    """What the classifications of one object said, sorted by meaning."""

    authors: list[Author] = field(default_factory=list)
    codes: dict[str, list[Code]] = field(default_factory=dict)
    limited: bool = False


class Reader:
    """Reads one RegistryObjectList; ``strict`` also reports what it does not understand."""

    def __init__(self, error: type[XDSError], *, strict: bool) -> None:
        self.error = error
        self.strict = strict
        self.problems: list[XDSError] = []
        self._loose: dict[str, dict[str, list[etree._Element]]] = {}

    # --- problems -----------------------------------------------------------------------------
    def problem(self, message: str, location: str | None = None) -> None:
        self.problems.append(self.error(message, location=location))

    def unknown(self, message: str, location: str | None = None) -> None:
        if self.strict:
            self.problem(message, location)

    def raise_problems(self) -> None:
        if self.problems:
            raise XDSErrorList(self.problems)

    # --- the list -----------------------------------------------------------------------------
    def read_list(self, object_list: etree._Element) -> list[RegistryObject]:
        """Read every registry object of the list, in document order."""
        children = [child for child in object_list if isinstance(child.tag, str)]
        self._loose = {_CLASSIFICATION: {}, _EXTERNAL_IDENTIFIER: {}}
        for child in children:
            target = {_CLASSIFICATION: "classifiedObject", _EXTERNAL_IDENTIFIER: "registryObject"}
            if child.tag in target:
                owner = child.get(target[child.tag], "")
                self._loose[child.tag].setdefault(owner, []).append(child)
        readers: dict[str, Callable[[etree._Element], RegistryObject | None]] = {
            c.rim("ExtrinsicObject"): self._document_entry,
            c.rim("RegistryPackage"): self._package,
            c.rim("Association"): self._association,
            c.rim("ObjectRef"): self._object_ref,
        }
        objects: list[RegistryObject] = []
        for child in children:
            reader = readers.get(child.tag)
            if reader is not None:
                obj = reader(child)
                if obj is not None:
                    objects.append(obj)
            elif child.tag not in (_CLASSIFICATION, _EXTERNAL_IDENTIFIER):
                self.unknown(f"unsupported element {child.tag} in RegistryObjectList")
        for kind, leftovers in self._loose.items():
            for owner in leftovers:
                what = etree.QName(kind).localname
                self.unknown(f"{what} refers to {owner!r}, which is not in the RegistryObjectList")
        return objects

    # --- pieces -------------------------------------------------------------------------------
    def _slots(self, element: etree._Element, where: str) -> dict[str, list[str]]:
        slots: dict[str, list[str]] = {}
        for slot in element.iterchildren(_SLOT):
            name = slot.get("name", "")
            if name in slots:
                self.problem(f"{where}: slot {name!r} appears more than once", where)
                continue
            slots[name] = [value.text or "" for value in slot.iterfind(_VALUE_PATH)]
        return slots

    def _take(self, slots: dict[str, list[str]], field_: c.SlotField, where: str) -> Any:
        values = slots.pop(field_.slot, None)
        if values is None:
            return [] if field_.kind is c.Kind.MANY else None
        if field_.kind is c.Kind.MANY:
            return values
        if field_.kind is c.Kind.URI and len(values) > 1:
            return _join_uri(values, self, where)
        if len(values) != 1:
            self.problem(f"{where}: slot {field_.slot!r} needs exactly one value", where)
            return values[0] if values else None
        if field_.kind is c.Kind.INT:
            # plain decimal digits only: Python's int() would also take " 1", "+1" and "1_0"
            if not _INTEGER.match(values[0]):
                self.problem(f"{where}: slot {field_.slot!r} is not an integer", where)
                return None
            return int(values[0])
        return values[0]

    def _fill_slots(
        self, obj: Any, element: etree._Element, fields: tuple[c.SlotField, ...], where: str
    ) -> None:
        slots = self._slots(element, where)
        for field_ in fields:
            setattr(obj, field_.attr, self._take(slots, field_, where))
        obj.extra_slots = slots

    def _children(self, element: etree._Element, tag: str, owner: str, attr: str) -> list[Any]:
        found = []
        for child in element.iterchildren(tag):
            # A nested Classification/ExternalIdentifier without the attribute belongs to its
            # parent; some sources omit it (NIST ids_4801 validate-metadata), so read leniently.
            if child.get(attr) not in (None, owner):
                name = etree.QName(tag).localname
                self.problem(
                    f"{name} {child.get('id')!r} inside {owner!r} names {attr}={child.get(attr)!r}",
                    owner,
                )
            found.append(child)
        return found + self._loose[tag].pop(owner, [])

    def _code(self, classification: etree._Element, where: str) -> Code:
        slots = self._slots(classification, where)
        schemes = slots.pop(v.SLOT_CODING_SCHEME, [])
        if len(schemes) != 1:
            self.problem(f"{where}: a code needs exactly one codingScheme value", where)
        for name in slots:
            self.unknown(f"{where}: unexpected slot {name!r} on a code classification", where)
        display, lang, charset = _localized(classification, "Name")
        return Code(
            classification.get("nodeRepresentation", ""),
            schemes[0] if schemes else "",
            display,
            lang,
            charset,
        )

    def _author(self, classification: etree._Element, where: str) -> Author:
        author = Author()
        self._fill_slots(author, classification, c.AUTHOR_SLOTS, where)
        return author

    def _classify(self, classifications: list[Any], spec: c.Spec, where: str) -> _Labels:
        labels = _Labels(codes={field_.attr: [] for field_ in spec.codes})
        by_scheme = {field_.scheme: field_.attr for field_ in spec.codes}
        for classification in classifications:
            scheme = classification.get("classificationScheme")
            node = classification.get("classificationNode")
            if scheme is not None and scheme == spec.author_scheme:
                labels.authors.append(self._author(classification, where))
            elif scheme in by_scheme:
                labels.codes[by_scheme[scheme]].append(self._code(classification, where))
            elif node is not None and node == spec.limited_node:
                labels.limited = True
            elif node is not None and node == spec.package_node:
                continue  # the SubmissionSet / Folder label, already read by _package
            elif spec is c.DOCUMENT_ENTRY and node in v.DOCUMENT_ENTRY_OBJECT_TYPES:
                continue  # an XDS.a-era DocumentEntry node classification (CP-ITI-544): harmless
            else:
                self.unknown(f"{where}: unknown classification {scheme or node!r}", where)
        return labels

    def _apply(self, obj: Any, labels: _Labels, spec: c.Spec, where: str) -> None:
        if spec.author_scheme is not None:
            obj.author = labels.authors
        for field_ in spec.codes:
            codes = labels.codes[field_.attr]
            if field_.many:
                setattr(obj, field_.attr, codes)
                continue
            if len(codes) > 1:
                self.problem(f"{where}: {field_.scheme.name} appears {len(codes)} times", where)
            setattr(obj, field_.attr, codes[0] if codes else None)
        if spec.limited_node is not None:
            obj.limited_metadata = labels.limited

    def _identifiers(self, obj: Any, element: etree._Element, spec: c.Spec, where: str) -> None:
        by_scheme = {field_.scheme: field_ for field_ in spec.ids}
        seen: set[str] = set()
        for identifier in self._children(
            element, _EXTERNAL_IDENTIFIER, obj.entry_uuid, "registryObject"
        ):
            field_ = by_scheme.get(identifier.get("identificationScheme", ""))
            if field_ is None:
                scheme = identifier.get("identificationScheme")
                self.unknown(f"{where}: unknown identificationScheme {scheme!r}", where)
            elif field_.scheme in seen:
                self.problem(f"{where}: {field_.scheme.name} appears more than once", where)
            else:
                seen.add(field_.scheme)
                setattr(obj, field_.attr, identifier.get("value"))

    def _described(self, obj: Any, element: etree._Element, spec: c.Spec, where: str) -> None:
        """Fill everything DocumentEntry, SubmissionSet and Folder share."""
        obj.availability_status = element.get("status")
        obj.home_community_id = element.get("home")
        obj.title, obj.title_lang, obj.title_charset = _localized(element, "Name")
        obj.comments, obj.comments_lang, obj.comments_charset = _localized(element, "Description")
        if hasattr(obj, "logical_id"):
            obj.logical_id = element.get("lid")
            version = element.find(c.rim("VersionInfo"))
            obj.version = version.get("versionName") if version is not None else None
        self._fill_slots(obj, element, spec.slots, where)
        classifications = self._children(
            element, _CLASSIFICATION, obj.entry_uuid, "classifiedObject"
        )
        self._apply(obj, self._classify(classifications, spec, where), spec, where)
        self._identifiers(obj, element, spec, where)

    # --- objects ------------------------------------------------------------------------------
    def _document_entry(self, element: etree._Element) -> DocumentEntry:
        entry = DocumentEntry(entry_uuid=element.get("id", ""))
        entry.object_type = element.get("objectType")
        entry.mime_type = element.get("mimeType")
        self._described(entry, element, c.DOCUMENT_ENTRY, f"ExtrinsicObject {entry.entry_uuid}")
        return entry

    def _package(self, element: etree._Element) -> SubmissionSet | Folder | None:
        entry_uuid = element.get("id", "")
        where = f"RegistryPackage {entry_uuid}"
        nested = [cl.get("classificationNode") for cl in element.iterchildren(_CLASSIFICATION)]
        loose = [
            cl.get("classificationNode") for cl in self._loose[_CLASSIFICATION].get(entry_uuid, [])
        ]
        labels = {node for node in nested + loose if node in _LABELS}
        if len(labels) != 1:
            self.problem(f"{where} is not labelled as exactly one of SubmissionSet, Folder", where)
            return None
        package: SubmissionSet | Folder
        if labels == {v.SUBMISSION_SET}:
            package, spec = SubmissionSet(entry_uuid=entry_uuid), c.SUBMISSION_SET
        else:
            package, spec = Folder(entry_uuid=entry_uuid), c.FOLDER
        self._described(package, element, spec, where)
        return package

    def _association(self, element: etree._Element) -> Association:
        association_type = element.get("associationType", "")
        association = Association(
            entry_uuid=element.get("id", ""),
            association_type=v.SHORT_ASSOCIATION_TYPES.get(association_type, association_type),
            source_object=element.get("sourceObject", ""),
            target_object=element.get("targetObject", ""),
            availability_status=element.get("status"),
            home_community_id=element.get("home"),
        )
        where = f"Association {association.entry_uuid}"
        self._fill_slots(association, element, c.ASSOCIATION.slots, where)
        classifications = self._children(
            element, _CLASSIFICATION, association.entry_uuid, "classifiedObject"
        )
        labels = self._classify(classifications, c.ASSOCIATION, where)
        self._apply(association, labels, c.ASSOCIATION, where)
        return association

    def _object_ref(self, element: etree._Element) -> ObjectRef:
        ref = ObjectRef(entry_uuid=element.get("id", ""), home_community_id=element.get("home"))
        ref.extra_slots = self._slots(element, f"ObjectRef {ref.entry_uuid}")
        return ref


def to_submission(objects: list[RegistryObject], reader: Reader) -> Submission:
    """Sort read objects into a Submission; a second SubmissionSet is a problem.

    Standard: ITI TF-3 §4.1.1 (one SubmissionSet per submission).
    """
    submission = Submission()
    for obj in objects:
        if isinstance(obj, SubmissionSet):
            if submission.submission_set is not None:
                reader.problem(f"a second SubmissionSet {obj.entry_uuid!r} in one submission")
                continue
            submission.submission_set = obj
        elif isinstance(obj, DocumentEntry):
            submission.document_entries.append(obj)
        elif isinstance(obj, Folder):
            submission.folders.append(obj)
        elif isinstance(obj, Association):
            submission.associations.append(obj)
        else:
            submission.object_refs.append(obj)
    return submission


def _localized(element: etree._Element, tag: str) -> tuple[str | None, str | None, str | None]:
    """Value, xml:lang and charset of the first LocalizedString of Name/Description."""
    holder = element.find(c.rim(tag))
    if holder is None:
        return None, None, None
    string = holder.find(_LOCALIZED)
    if string is None:
        return None, None, None
    return string.get("value"), string.get(c.XML_LANG), string.get("charset")


def _join_uri(values: list[str], reader: Reader, where: str) -> str | None:
    """Join a URI split over several ``n|part`` values (ITI TF-3 §4.2.3.2 DocumentEntry.URI)."""
    parts: list[tuple[int, str]] = []
    for value in values:
        number, sep, part = value.partition("|")
        if not sep or not number.isdigit():
            reader.problem(f"{where}: a multi-valued URI slot needs 'n|part' values", where)
            return None
        parts.append((int(number), part))
    return "".join(part for _, part in sorted(parts))
