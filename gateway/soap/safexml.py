"""The only way XML input enters the gateway: a hardened lxml parser.

No DTDs, no entity expansion (XXE, billion laughs), no network access, a depth limit and a size
limit. A document that breaks a rule raises :class:`UnsafeXMLError` before anything is resolved.
"""

from __future__ import annotations

import functools

from lxml import etree

DEFAULT_MAX_BYTES = 64 * 1024 * 1024
DEFAULT_MAX_DEPTH = 256


class UnsafeXMLError(ValueError):
    """The input is not well-formed XML, or it breaks one of the safety rules."""


def _parser() -> etree.XMLParser:
    # resolve_entities=False with load_dtd=False: entity references are never expanded; any
    # DOCTYPE is refused below before the parse result is used. huge_tree stays off so libxml2's
    # own limits (text node size, nesting of 256 in libxml2 < 2.12) also apply.
    return etree.XMLParser(
        resolve_entities=False,
        load_dtd=False,
        dtd_validation=False,
        no_network=True,
        huge_tree=False,
        remove_comments=False,
        remove_pis=False,
        collect_ids=False,
    )


@functools.cache
def _too_deep(max_depth: int) -> etree.XPath:
    # The nodes max_depth child steps below the root sit at depth max_depth + 1 (the root is at
    # 1). Evaluated by libxml2 in C: each node is visited once, with no Python per element, which
    # matters for answers of thousands of elements (a merged cross-community query).
    # Elements, comments and processing instructions count as levels; text does not.
    steps = ["*"] * (max_depth - 1) + ["node()[not(self::text())]"]
    return etree.XPath("boolean(" + "/".join(steps) + ")")


def _check_depth(root: etree._Element, max_depth: int) -> None:
    if _too_deep(max_depth)(root):
        raise UnsafeXMLError(f"XML nesting deeper than {max_depth} levels")


def parse_bytes(
    data: bytes,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> etree._Element:
    """Parse untrusted XML bytes and return the root element.

    Raises:
        UnsafeXMLError: too large, not well-formed, has a DOCTYPE/entity declarations, or too deep.
    """
    if len(data) > max_bytes:
        raise UnsafeXMLError(f"XML document of {len(data)} bytes exceeds the limit of {max_bytes}")
    if not data.strip():
        raise UnsafeXMLError("empty XML document")
    parser = _parser()
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise UnsafeXMLError(f"not well-formed XML: {exc}") from exc
    tree = root.getroottree()
    # A DOCTYPE carries the DTD of any entity attack; SOAP 1.2 Part 1 §5 forbids DTDs outright.
    doctype: str = getattr(tree.docinfo, "doctype", "")  # lxml-stubs lack DocInfo.doctype
    if doctype or tree.docinfo.internalDTD is not None:
        raise UnsafeXMLError("XML with a document type declaration is refused")
    for node in root.iter(etree.Entity):
        raise UnsafeXMLError(f"XML entity reference {node.text} is refused")  # text: "&name;"
    _check_depth(root, max_depth)
    return root
