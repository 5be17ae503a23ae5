"""Small XML helpers: safe parsing, local-name navigation, placeholder substitution, XPath.

The NIST test plans address elements by local name (``//*[local-name()='ExtrinsicObject']``) and
the engine treats 2.1 and 3.0 metadata alike, so the helpers here match on local names only.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

from lxml import etree

Element = etree._Element


def parse_xml(data: bytes | str | Path) -> Element:
    """Parse XML from bytes, text or a file without entity expansion or network access."""
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, remove_comments=True, huge_tree=False
    )
    if isinstance(data, Path):
        data = data.read_bytes()
    if isinstance(data, str):
        data = data.encode("utf-8")
    return etree.fromstring(data.strip(), parser)


def local(element: Element) -> str:
    """Local name of an element (empty for comments and processing instructions)."""
    tag = element.tag
    if not isinstance(tag, str):
        return ""
    return tag.rpartition("}")[2]


def namespace(element: Element) -> str:
    """Namespace URI of an element ('' when it has none)."""
    tag = element.tag
    return tag[1:].partition("}")[0] if isinstance(tag, str) and tag.startswith("{") else ""


def kids(element: Element, name: str | None = None) -> list[Element]:
    """Element children, optionally only those with local name ``name``."""
    return [c for c in element if isinstance(c.tag, str) and (name is None or local(c) == name)]


def first(element: Element, name: str) -> Element | None:
    """First element child with local name ``name``."""
    found = kids(element, name)
    return found[0] if found else None


def walk(element: Element, name: str) -> Iterator[Element]:
    """All descendants (and the element itself) with local name ``name``, document order."""
    for node in element.iter():
        if isinstance(node.tag, str) and local(node) == name:
            yield node


def text(element: Element | None) -> str:
    """Stripped text content of an element ('' for None)."""
    if element is None:
        return ""
    return "".join(element.itertext()).strip()


def substitute(root: Element, mapping: Mapping[str, str]) -> None:
    """Replace every occurrence of each key by its value in element text and attribute values.

    This is the NIST ``Linkage`` / ``UseReport`` behaviour: placeholders such as ``$ssuid$`` are
    plain substrings of attribute values or text anywhere in the document.
    """
    if not mapping:
        return
    for node in root.iter():
        if not isinstance(node.tag, str):
            continue
        if node.text:
            node.text = _replace(node.text, mapping)
        if node.tail:
            node.tail = _replace(node.tail, mapping)
        for key, value in node.attrib.items():
            new = _replace(value, mapping)
            if new != value:
                node.set(key, new)


def _replace(value: str, mapping: Mapping[str, str]) -> str:
    for key, new in mapping.items():
        if key in value:
            value = value.replace(key, new)
    return value


def xpath_value(expression: str, context: Element) -> str:
    """Evaluate an XPath 1.0 expression and return its string value (like Jaxen ``stringValueOf``).

    Booleans become ``true``/``false``, numbers their shortest decimal form, node-sets the string
    value of their first node.
    """
    result = etree.XPath(expression.strip())(context)
    return _string_value(result)


def _string_value(result: object) -> str:
    if isinstance(result, bool):
        return "true" if result else "false"
    if isinstance(result, float):
        return str(int(result)) if result.is_integer() else repr(result)
    if isinstance(result, list):
        if not result:
            return ""
        node = result[0]
        if isinstance(node, str):
            return str(node)
        return "".join(node.itertext()) if isinstance(node, etree._Element) else str(node)
    return str(result)


def to_bytes(element: Element) -> bytes:
    """Serialise an element as UTF-8 XML without declaration."""
    return etree.tostring(element, encoding="utf-8")


def copy(element: Element) -> Element:
    """Deep copy of an element as a new document root."""
    return etree.fromstring(etree.tostring(element))
