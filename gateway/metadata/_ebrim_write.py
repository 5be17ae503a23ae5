"""Model -> ebRIM 3.0 elements (the writing half of ``gateway.metadata.ebrim``).

The objects are written as XML text and parsed once into lxml elements: a query answer holds
about a hundred elements per DocumentEntry, and one C parse of the whole list costs a fraction
of creating them one lxml call at a time. The text is this module's own (every value escaped
here), so it is parsed with a plain parser rather than the hardened input parser of
``soap/safexml.py``; the tree is exactly the one the lxml API would build (same elements,
attribute order, texts, one ``rim`` namespace declaration per top-level element), hence the
same serialised bytes. What a code or an author renders to depends on its values only, so
those fragments are memoised (bounded).

Standard: ITI TF-3 §4.2.1-§4.2.3 (rev. 19.0); element order of ebRIM 3.0 rim.xsd
RegistryObjectType: Slot*, Name?, Description?, VersionInfo?, Classification*, ExternalIdentifier*.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Iterable
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

# LongName (ebRIM 3.0 rim.xsd) limits a slot Value to 256 characters; a longer URI is split into
# "n|part" values (ITI TF-3 §4.2.3.2 DocumentEntry.URI).
_URI_PART = 250
_DECLARE = f' xmlns:rim="{ns.RIM}"'
_CLASSIFICATION_TYPE = str(v.OBJECT_TYPE_CLASSIFICATION)
_EXTERNAL_ID = f'<rim:ExternalIdentifier id="{{}}" objectType="{v.OBJECT_TYPE_EXTERNAL_IDENTIFIER}"'
_PACKAGE_TYPE = str(v.OBJECT_TYPE_REGISTRY_PACKAGE)
_ASSOCIATION_TYPE = str(v.OBJECT_TYPE_ASSOCIATION)
_MEMO_SIZE = 4096  # distinct codes / authors kept rendered (an affinity domain has few)

# XML 1.0 §3.3.3: in an attribute, whitespace other than a space would be normalised by the
# parser, so tab, newline and carriage return travel as character references (as lxml writes
# them); in text only the carriage return would be (end-of-line handling, §2.11).
_ATTRIBUTE_SPECIAL = re.compile('[&<>"\t\n\r]').search
_TEXT_SPECIAL = re.compile("[&<>\r]").search
_ESCAPES = str.maketrans(
    {
        "&": "&amp;",
        "<": "&lt;",
        ">": "&gt;",
        '"': "&quot;",
        "\t": "&#9;",
        "\n": "&#10;",
        "\r": "&#13;",
    }
)
_TEXT_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"})
_LOCAL = threading.local()  # one parser per thread (an lxml parser is not shared by threads)


def _attr(value: str) -> str:
    """An attribute value, escaped. Raises: TypeError for anything but a str."""
    return value if _ATTRIBUTE_SPECIAL(value) is None else value.translate(_ESCAPES)


def _opt(name: str, value: str | None) -> str:
    """`` name="value"``, or nothing for None (lxml leaves such an attribute out)."""
    return "" if value is None else f' {name}="{_attr(value)}"'


def _text(value: str | None) -> str:
    """Element text, escaped; an empty (not absent) text stays one, as ``element.text = ""``."""
    if value is None:
        return ""
    if not value:
        if not isinstance(value, str):
            raise TypeError(f"element text must be a string, not {type(value).__name__}")
        return "<![CDATA[]]>"
    return value if _TEXT_SPECIAL(value) is None else value.translate(_TEXT_ESCAPES)


# --- public ---------------------------------------------------------------------------------------


def build_object(obj: RegistryObject) -> list[etree._Element]:
    """Return the element(s) of one model object (a package comes with its label); each
    declares the ``rim`` namespace itself."""
    out: list[str] = ["<holder>"]
    write_object(out, obj, declare=True)
    out.append("</holder>")
    holder = _parse(out)
    elements = list(holder)
    for element in elements:
        holder.remove(element)  # keeps its own namespace declaration
    return elements


def build_object_list(objects: Iterable[RegistryObject]) -> etree._Element:
    """Return a ``rim:RegistryObjectList`` of the objects' elements, the ``rim`` namespace
    declared once, on the list."""
    out = [f"<rim:RegistryObjectList{_DECLARE}>"]
    for obj in objects:
        write_object(out, obj, declare=False)
    out.append("</rim:RegistryObjectList>")
    return _parse(out)


def write_object(out: list[str], obj: RegistryObject, *, declare: bool) -> None:
    """Append the XML text of one model object to ``out`` (``declare``: the ``rim`` namespace
    declaration on each top-level element). Raises: TypeError for a non-model object,
    ValueError for an extra slot named like an IHE slot."""
    decl = _DECLARE if declare else ""
    if isinstance(obj, DocumentEntry):
        _document_entry(out, obj, decl)
    elif isinstance(obj, SubmissionSet | Folder):
        _package(out, obj, decl)
    elif isinstance(obj, Association):
        _association(out, obj, decl)
    elif isinstance(obj, ObjectRef):
        out.append(f"<rim:ObjectRef{decl}{_opt('id', obj.entry_uuid)}")
        out.append(f"{_opt('home', obj.home_community_id)}>")
        _slots(out, obj, _NO_SLOTS)
        out.append("</rim:ObjectRef>")
    else:
        raise TypeError(f"not a metadata model object: {type(obj).__name__}")


def _parse(out: list[str]) -> etree._Element:
    parser = getattr(_LOCAL, "parser", None)
    if parser is None:
        parser = _LOCAL.parser = etree.XMLParser(
            resolve_entities=False, no_network=True, collect_ids=False, huge_tree=True
        )
    try:
        return etree.fromstring("".join(out).encode("utf-8"), parser)
    except etree.XMLSyntaxError as exc:
        # What the lxml API says of a value it cannot hold (a control character).
        raise ValueError(
            "All strings must be XML compatible: Unicode or ASCII, no NULL bytes or control "
            f"characters ({exc})"
        ) from exc


# --- slots and names ------------------------------------------------------------------------------


def _slot(out: list[str], name: str, values: Iterable[str]) -> None:
    out.append(f'<rim:Slot name="{_attr(name)}"><rim:ValueList>')
    for value in values:
        out.append(f"<rim:Value>{_text(value)}</rim:Value>")
    out.append("</rim:ValueList></rim:Slot>")


_VALUE_LIST_END = "</rim:ValueList></rim:Slot>"


class _Slots:
    """The slots of one object type, prepared once: (attribute, kind, start tags) per slot."""

    __slots__ = ("fields", "reserved")

    def __init__(self, fields: tuple[c.SlotField, ...]) -> None:
        self.fields = tuple(
            (f.attr, f.kind, f'<rim:Slot name="{_attr(f.slot)}"><rim:ValueList>') for f in fields
        )
        self.reserved = frozenset(f.slot for f in fields)


def _slots(out: list[str], obj: Any, plan: _Slots) -> None:
    for attr, kind, start in plan.fields:
        value = getattr(obj, attr)
        if value is None:
            continue
        if kind is c.Kind.MANY:
            if value:
                out.append(start)
                out.extend(f"<rim:Value>{_text(item)}</rim:Value>" for item in value)
                out.append(_VALUE_LIST_END)
        elif kind is c.Kind.URI and len(value) > _URI_PART:
            parts = [value[i : i + _URI_PART] for i in range(0, len(value), _URI_PART)]
            out.append(start)
            numbered = (f"{n}|{part}" for n, part in enumerate(parts, start=1))
            out.extend(f"<rim:Value>{_text(item)}</rim:Value>" for item in numbered)
            out.append(_VALUE_LIST_END)
        else:
            text = str(value)
            if not text or _TEXT_SPECIAL(text) is not None:
                text = _text(text)
            out.append(f"{start}<rim:Value>{text}</rim:Value>{_VALUE_LIST_END}")
    if obj.extra_slots:
        for name, values in obj.extra_slots.items():
            if name in plan.reserved:
                raise ValueError(f"extra slot {name!r} reuses the name of an IHE slot")
            _slot(out, name, values)


_AUTHOR_SLOTS = _Slots(c.AUTHOR_SLOTS)
_NO_SLOTS = _Slots(())


def _localized(tag: str, value: str, lang: str | None, charset: str | None) -> str:
    return (
        f"<rim:{tag}><rim:LocalizedString{_opt('xml:lang', lang)}{_opt('charset', charset)}"
        f' value="{_attr(value)}"/></rim:{tag}>'
    )


def _names_and_version(out: list[str], obj: Any) -> None:
    if obj.title is not None:
        out.append(_localized("Name", obj.title, obj.title_lang, obj.title_charset))
    if obj.comments is not None:
        out.append(_localized("Description", obj.comments, obj.comments_lang, obj.comments_charset))
    version = getattr(obj, "version", None)
    if version is not None:
        out.append(f'<rim:VersionInfo versionName="{_attr(version)}"/>')


# --- classifications and external identifiers -----------------------------------------------------


class _Owner:
    """What the children of one object repeat: derived ids and the reference to the owner."""

    __slots__ = ("classified", "ids", "registry_object")

    def __init__(self, owner_id: str) -> None:
        self.ids = c.ChildIds(owner_id)
        self.classified = _opt("classifiedObject", owner_id)
        self.registry_object = _opt("registryObject", owner_id)

    def classification(self, index: int) -> str:
        """The start tag, up to its owner reference, of the index-th Classification."""
        child = self.ids.child("Classification", index)
        return (
            f'<rim:Classification id="{child}" objectType="{_CLASSIFICATION_TYPE}"{self.classified}'
        )


_CodeKey = tuple[str, str, str, str | None, str | None, str | None]


def _code_key(scheme: str, code: Code) -> _CodeKey:
    # A tuple of strings hashes and compares in C; the Code dataclass would call Python methods.
    return (scheme, code.code, code.scheme, code.display_name, code.lang, code.charset)


@functools.lru_cache(maxsize=_MEMO_SIZE)
def _code_rest(key: _CodeKey) -> str:
    """A code's Classification after the owner reference (scheme, node, codingScheme, Name)."""
    scheme, node, coding_scheme, display_name, lang, charset = key
    out = [f"{_opt('classificationScheme', scheme)}{_opt('nodeRepresentation', node)}>"]
    _slot(out, v.SLOT_CODING_SCHEME, [coding_scheme])
    if display_name is not None:
        out.append(_localized("Name", display_name, lang, charset))
    out.append("</rim:Classification>")
    return "".join(out)


def _author_key(scheme: str, author: Author) -> tuple[Any, ...]:
    extra = tuple((name, tuple(values)) for name, values in author.extra_slots.items())
    lists = (author.institution, author.role, author.specialty, author.telecom)
    return (scheme, author.person, *(tuple(values) for values in lists), extra)


@functools.lru_cache(maxsize=_MEMO_SIZE)
def _author_rest(key: tuple[Any, ...]) -> str:
    """An author's Classification after the owner reference (scheme, empty node, slots)."""
    scheme, person, institution, role, specialty, telecom, extra = key
    author = Author(
        person=person,
        institution=list(institution),
        role=list(role),
        specialty=list(specialty),
        telecom=list(telecom),
        extra_slots={name: list(values) for name, values in extra},
    )
    out = [f'{_opt("classificationScheme", scheme)} nodeRepresentation="">']
    _slots(out, author, _AUTHOR_SLOTS)
    out.append("</rim:Classification>")
    return "".join(out)


def _classifications(out: list[str], obj: Any, spec: c.Spec, owner: _Owner) -> None:
    index = 0
    if spec.author_scheme is not None:
        for author in obj.author:
            out.append(owner.classification(index))
            out.append(_author_rest(_author_key(spec.author_scheme, author)))
            index += 1
    for field in spec.codes:
        value = getattr(obj, field.attr)
        for code in value if field.many else [value] if value is not None else []:
            out.append(owner.classification(index))
            out.append(_code_rest(_code_key(field.scheme, code)))
            index += 1
    if spec.limited_node is not None and obj.limited_metadata:
        node = _opt("classificationNode", spec.limited_node)
        out.append(f"{owner.classification(index)}{node}/>")


def _identifier_plan(spec: c.Spec) -> tuple[tuple[str, int, str, str], ...]:
    """Per ExternalIdentifier of a Spec: attribute, index, the text between the owner
    reference and the value, and the text after the value (its Name)."""
    return tuple(
        (
            field.attr,
            index,
            f' identificationScheme="{_attr(field.scheme)}" value="',
            f'">{_localized("Name", field.scheme.name, None, None)}</rim:ExternalIdentifier>',
        )
        for index, field in enumerate(spec.ids)
    )


class _Layout:
    """Everything written for one object type, prepared once from its ``Spec``."""

    __slots__ = ("identifiers", "slots", "spec")

    def __init__(self, spec: c.Spec) -> None:
        self.spec = spec
        self.slots = _Slots(spec.slots)
        self.identifiers = _identifier_plan(spec)


def _external_identifiers(out: list[str], obj: Any, layout: _Layout, owner: _Owner) -> None:
    for attr, index, middle, end in layout.identifiers:
        value = getattr(obj, attr)
        if value is not None:
            child = owner.ids.child("ExternalIdentifier", index)
            out.append(
                f"{_EXTERNAL_ID.format(child)}{owner.registry_object}{middle}{_attr(value)}{end}"
            )


# --- objects --------------------------------------------------------------------------------------


def _common_attrs(obj: Any, object_type: str | None) -> str:
    return (
        f"{_opt('id', obj.entry_uuid)}{_opt('lid', getattr(obj, 'logical_id', None))}"
        f"{_opt('objectType', object_type)}{_opt('status', obj.availability_status)}"
        f"{_opt('home', obj.home_community_id)}"
    )


_DOCUMENT_ENTRY = _Layout(c.DOCUMENT_ENTRY)
_SUBMISSION_SET = _Layout(c.SUBMISSION_SET)
_FOLDER = _Layout(c.FOLDER)
_ASSOCIATION = _Layout(c.ASSOCIATION)


def _document_entry(out: list[str], entry: DocumentEntry, decl: str) -> None:
    attrs = _common_attrs(entry, entry.object_type) + _opt("mimeType", entry.mime_type)
    out.append(f"<rim:ExtrinsicObject{decl}{attrs}>")
    owner = _Owner(entry.entry_uuid)
    _slots(out, entry, _DOCUMENT_ENTRY.slots)
    _names_and_version(out, entry)
    _classifications(out, entry, c.DOCUMENT_ENTRY, owner)
    _external_identifiers(out, entry, _DOCUMENT_ENTRY, owner)
    out.append("</rim:ExtrinsicObject>")


def _package(out: list[str], obj: SubmissionSet | Folder, decl: str) -> None:
    layout = _SUBMISSION_SET if isinstance(obj, SubmissionSet) else _FOLDER
    owner = _Owner(obj.entry_uuid)
    out.append(f"<rim:RegistryPackage{decl}{_common_attrs(obj, _PACKAGE_TYPE)}>")
    _slots(out, obj, layout.slots)
    _names_and_version(out, obj)
    _classifications(out, obj, layout.spec, owner)
    _external_identifiers(out, obj, layout, owner)
    out.append("</rim:RegistryPackage>")
    # The label is written as a top-level Classification, as in the ITI TF-3 §4.2.1 examples.
    label = owner.ids.child("Label", 0)
    node = _opt("classificationNode", layout.spec.package_node)
    out.append(
        f'<rim:Classification{decl} id="{label}" objectType="{_CLASSIFICATION_TYPE}"'
        f"{owner.classified}{node}/>"
    )


def _association(out: list[str], association: Association, decl: str) -> None:
    attrs = (
        _common_attrs(association, _ASSOCIATION_TYPE)
        + _opt("associationType", association.association_type)
        + _opt("sourceObject", association.source_object)
        + _opt("targetObject", association.target_object)
    )
    out.append(f"<rim:Association{decl}{attrs}>")
    _slots(out, association, _ASSOCIATION.slots)
    _classifications(out, association, c.ASSOCIATION, _Owner(association.entry_uuid))
    out.append("</rim:Association>")
