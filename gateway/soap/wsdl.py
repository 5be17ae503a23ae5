"""The gateway's own WSDL documents and XML schemas: where they live, which endpoint serves which,
and rendering.

The WSDLs are the top-level ``wsdl/`` folder of the repository (WSDL 1.1, SOAP 1.2 binding,
document/literal, WS-Addressing 1.0 actions; see each file's header comment), the schemas they
import the top-level ``schemas/`` folder (the project's own rendition of the ebRS/ebRIM 3.0,
XDS.b and XDS-I.b schemas; see each file's header). They are reached through
``gateway/soap/wsdl_files`` and ``gateway/soap/schema_files``, symbolic links to ``../../wsdl``
and ``../../schemas``: in a source checkout or an editable install the links point at the
repository's folders, and a wheel built from the checkout holds real copies of the files there
(``[tool.setuptools.package-data]`` in pyproject.toml), so one lookup works for both.

Every endpoint serves its WSDL at ``?wsdl`` and every schema at ``?xsd=NAME``. In what it serves,
each ``schemaLocation`` names its schema as ``?xsd=NAME``, a reference relative to the document's
own URL (RFC 3986 §5.2: a reference of only a query keeps the path), so a client that fetched
``?wsdl`` resolves every schema from the same gateway, whatever host name or proxy it went
through. A client that loads a WSDL from disk (a third-party client in the tests; the gateway's
own client needs no WSDL) renders the locations as paths into the installed schema folder
instead (``schema_base``).

Standards: WSDL 1.1 §2 and its SOAP 1.2 binding (W3C Submission 2006-04-05), WS-Addressing 1.0 WSDL
Binding §4.4 (wsaw:Action) and Metadata §4.4 (wsam:Action), XML Schema 1.0 Part 1 §4.2.3
(import), ITI TF-2 Appendix V §V.3.1 (IHE WSDL naming conventions), ARCHITECTURE.md "Endpoints"
(any endpoint + ``?wsdl``).
"""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path

from lxml import etree

from gateway.soap import transactions
from gateway.soap.safexml import parse_bytes

WSDL11 = "http://schemas.xmlsoap.org/wsdl/"
WSDL_SOAP12 = "http://schemas.xmlsoap.org/wsdl/soap12/"
XSD = "http://www.w3.org/2001/XMLSchema"
SERVED_SCHEMA_BASE = "?xsd="  # what a served document's schemaLocation puts before a name

_FILES: dict[str, str] = {
    transactions.REGISTRY_PATH: "DocumentRegistry.wsdl",
    transactions.REPOSITORY_PATH: "DocumentRepository.wsdl",
    transactions.IMAGING_SOURCE_PATH: "ImagingDocumentSource.wsdl",
    transactions.RESPONDING_GATEWAY_PATH: "RespondingGateway.wsdl",
    transactions.INITIATING_GATEWAY_PATH: "InitiatingGateway.wsdl",
}
# xs:import, xs:include and xs:redefine carry a schemaLocation (XML Schema 1.0 Part 1 §4.2).
_REFERENCES = tuple(etree.QName(XSD, local).text for local in ("import", "include", "redefine"))


def _package_folder(link: str, what: str) -> Path:
    directory = Path(__file__).resolve().parent / link
    if not directory.is_dir():
        raise FileNotFoundError(
            f"{what} folder missing: {directory} (the package data was not installed)"
        )
    return directory.resolve()


def wsdl_directory() -> Path:
    """Return the folder holding the gateway's WSDL files (the repository's ``wsdl/``).

    Raises:
        FileNotFoundError: the installation carries no WSDL files (a broken build).
    """
    return _package_folder("wsdl_files", "WSDL")


def schema_directory() -> Path:
    """Return the folder holding the gateway's XML schemas (the repository's ``schemas/``).

    Raises:
        FileNotFoundError: the installation carries no schema files (a broken build).
    """
    return _package_folder("schema_files", "Schema")


@cache
def schema_names() -> frozenset[str]:
    """Return the names served at ``?xsd=NAME``: the ``.xsd`` files of :func:`schema_directory`.

    The set is fixed when first read; a request names one of them or gets a 404, so no file
    name from a request ever reaches the file system.
    """
    return frozenset(p.name for p in schema_directory().glob("*.xsd") if p.is_file())


def local_schema_base() -> str:
    """Return a ``schema_base`` for :func:`render_wsdl` that points into the installed schema
    folder (a path ending in "/"), for a client that loads the WSDL locally."""
    return str(schema_directory()) + "/"


def wsdl_for_path(path: str) -> str | None:
    """Return the WSDL file name for an endpoint path (``/xds/registry`` ...), or None.

    A trailing slash is ignored. Standard: ARCHITECTURE.md "Endpoints".
    """
    return _FILES.get(path.rstrip("/") or "/")


@cache
def _parsed(path: Path) -> etree._ElementTree:
    # Our own files, parsed once per process; rendering works on a copy, so these stay untouched.
    return parse_bytes(path.read_bytes()).getroottree()


def _relocate(tree: etree._ElementTree, schema_base: str) -> None:
    """Point every schema reference that names one of our schemas at ``schema_base + name``."""
    known = schema_names()
    for element in tree.iter(*_REFERENCES):
        location = element.get("schemaLocation")
        name = location.rsplit("/", 1)[-1] if location else None
        if name in known:
            element.set("schemaLocation", schema_base + name)


def render_wsdl(path: str, address: str, *, schema_base: str | None = None) -> bytes:
    """Return the WSDL of the endpoint at ``path``, every soap12:address/@location = ``address``.

    The address is set as an attribute value through lxml, so any character in it is escaped as XML
    requires. Each imported schema is named ``?xsd=NAME`` (served beside the WSDL), or
    ``schema_base + NAME`` when ``schema_base`` is given (see :func:`local_schema_base`).
    Standard: WSDL 1.1 SOAP 1.2 binding §3.8 (soap12:address); XML Schema 1.0 Part 1 §4.2.3.
    Raises:
        ValueError: no endpoint of the gateway is served at ``path``.
    """
    name = wsdl_for_path(path)
    if name is None:
        raise ValueError(f"No WSDL for endpoint path {path!r}")
    tree = copy.deepcopy(_parsed(wsdl_directory() / name))  # the whole document, header included
    for element in tree.iter(etree.QName(WSDL_SOAP12, "address").text):
        element.set("location", address)
    _relocate(tree, SERVED_SCHEMA_BASE if schema_base is None else schema_base)
    return etree.tostring(tree, xml_declaration=True, encoding="UTF-8")


def render_schema(name: str) -> bytes | None:
    """Return the schema served at ``?xsd=NAME``, or None when the gateway has no such schema.

    Its imports name the other schemas as ``?xsd=NAME`` too, so they resolve through the same
    endpoint. Standard: XML Schema 1.0 Part 1 §4.2.3 (import, schemaLocation).
    """
    # Checked before the cache, which therefore holds only our own few names.
    return _rendered_schema(name) if name in schema_names() else None


@cache
def _rendered_schema(name: str) -> bytes:
    tree = copy.deepcopy(_parsed(schema_directory() / name))
    _relocate(tree, SERVED_SCHEMA_BASE)
    return etree.tostring(tree, xml_declaration=True, encoding="UTF-8")
