"""Offline schema validation of message bodies against the official XSDs in ``conformance/spec``.

One wrapper schema imports ebRS 3.0 rs/query/lcm/rim and the IHE XDS.b and XDS-I.b schemas
(``spec/MANIFEST.md`` "Validation"); every relative ``schemaLocation`` resolves inside ``spec/``
so nothing is fetched from the network. The NIST engine schema-validates every response it gets
(``BasicTransaction.validateSchema``); the runner does the same.
"""

from __future__ import annotations

import functools
from pathlib import Path

from lxml import etree

from tests.conformance.nist import ns
from tests.conformance.nist.xmlutil import Element

_IMPORTS = (
    (ns.RIM, "iti/schema/ebRS/rim.xsd"),
    (ns.RS, "iti/schema/ebRS/rs.xsd"),
    (ns.LCM, "iti/schema/ebRS/lcm.xsd"),
    (ns.QUERY, "iti/schema/ebRS/query.xsd"),
    (ns.XDSB, "iti/schema/IHE/XDS.b_DocumentRepository.xsd"),
    (ns.IHERAD, "iti/schema/IHE/XDSI.b_ImagingDocumentSource.xsd"),
)


class SchemaError(ValueError):
    """A body is not valid against the official schemas."""


@functools.lru_cache(maxsize=4)
def wrapper_schema(spec_dir: Path) -> etree.XMLSchema:
    """Compile (once per spec folder) a schema importing every namespace the runner checks."""
    xs = "http://www.w3.org/2001/XMLSchema"
    root = etree.Element(
        f"{{{xs}}}schema", nsmap={"xs": xs}, targetNamespace="urn:xdsi-gateway:nist-runner:wrapper"
    )
    for namespace, location in _IMPORTS:
        path = (spec_dir / location).resolve()
        if not path.exists():
            raise FileNotFoundError(f"schema {path} missing")
        etree.SubElement(root, f"{{{xs}}}import", namespace=namespace, schemaLocation=path.as_uri())
    parser = etree.XMLParser(no_network=True, resolve_entities=False)
    document = etree.fromstring(
        etree.tostring(root), parser, base_url=(spec_dir / "wrapper.xsd").as_uri()
    )
    return etree.XMLSchema(document)


def validate(element: Element, spec_dir: Path) -> None:
    """Raise :class:`SchemaError` (first three problems) unless ``element`` is schema-valid."""
    schema = wrapper_schema(spec_dir)
    document = etree.ElementTree(etree.fromstring(etree.tostring(element)))
    if schema.validate(document):
        return
    problems = [f"line {e.line}: {e.message}" for e in list(schema.error_log)[:3]]
    raise SchemaError("; ".join(problems))


def is_valid(element: Element, spec_dir: Path) -> bool:
    """True when ``element`` validates."""
    try:
        validate(element, spec_dir)
    except SchemaError:
        return False
    return True
