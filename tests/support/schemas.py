"""Two schema sets for one message: the project's own (``schemas/``) and the official XSDs of
``../shared/conformance/spec``, each compiled once into a wrapper that imports every namespace
the XDS/XDS-I messages use, resolved offline."""

from __future__ import annotations

import base64
import functools
from pathlib import Path

from lxml import etree

from gateway.soap import ns
from gateway.soap.wsdl import schema_directory

CONFORMANCE = Path(__file__).resolve().parents[3] / "shared" / "conformance"
SPEC = CONFORMANCE / "spec"
XSD = "http://www.w3.org/2001/XMLSchema"

OURS = (
    (ns.RIM, "rim.xsd"),
    (ns.RS, "rs.xsd"),
    (ns.LCM, "lcm.xsd"),
    (ns.QUERY, "query.xsd"),
    (ns.XDSB, "xds-b.xsd"),
    (ns.IHERAD, "xdsi-b.xsd"),
)
OFFICIAL = (
    (ns.RIM, "iti/schema/ebRS/rim.xsd"),
    (ns.RS, "iti/schema/ebRS/rs.xsd"),
    (ns.LCM, "iti/schema/ebRS/lcm.xsd"),
    (ns.QUERY, "iti/schema/ebRS/query.xsd"),
    (ns.XDSB, "iti/schema/IHE/XDS.b_DocumentRepository.xsd"),
    (ns.IHERAD, "iti/schema/IHE/XDSI.b_ImagingDocumentSource.xsd"),
)
NAMESPACES = frozenset(namespace for namespace, _ in OURS)


def _wrapper(folder: Path, imports: tuple[tuple[str, str], ...]) -> etree.XMLSchema:
    root = etree.Element(f"{{{XSD}}}schema", nsmap={"xs": XSD}, targetNamespace="urn:x-wrapper")
    for namespace, location in imports:
        uri = (folder / location).resolve().as_uri()
        etree.SubElement(root, f"{{{XSD}}}import", namespace=namespace, schemaLocation=uri)
    parser = etree.XMLParser(no_network=True, resolve_entities=False)
    document = etree.fromstring(etree.tostring(root), parser, base_url=(folder / "w.xsd").as_uri())
    return etree.XMLSchema(document)


@functools.cache
def ours() -> etree.XMLSchema:
    """The project's schemas, as packaged with the gateway."""
    return _wrapper(schema_directory(), OURS)


@functools.cache
def official() -> etree.XMLSchema | None:
    """The official ebRS 3.0 / IHE schemas, or None when ``../shared/conformance`` is absent."""
    return _wrapper(SPEC, OFFICIAL) if SPEC.is_dir() else None


def xop_infoset(element: etree._Element, content: bytes = b"\x00data") -> etree._Element:
    """A copy whose xop:Include elements are replaced by base64 ``content`` (XOP 1.0 §3.2: the
    infoset that is schema-validated is the one with each part's bytes in place)."""
    infoset = etree.fromstring(etree.tostring(element))
    for include in list(infoset.iter(ns.qname(ns.XOP, "Include"))):
        holder = include.getparent()
        assert holder is not None
        holder.remove(include)
        holder.text = base64.b64encode(content).decode()
    return infoset


def errors(schema: etree.XMLSchema, element: etree._Element) -> list[str]:
    """The validation errors of ``element`` (empty when valid), first three."""
    if schema.validate(etree.ElementTree(element)):
        return []
    return [f"line {e.line}: {e.message}" for e in list(schema.error_log)[:3]]
