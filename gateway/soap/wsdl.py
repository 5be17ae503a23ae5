"""The gateway's own WSDL documents: where they live, which one an endpoint serves, and rendering.

The files are the top-level ``wsdl/`` folder of the repository (WSDL 1.1, SOAP 1.2 binding,
document/literal, WS-Addressing 1.0 actions; see each file's header comment). They are reached
through ``gateway/soap/wsdl_files``, a symbolic link to ``../../wsdl``: in a source checkout or an
editable install the link points at the repository's folder, and a wheel built from the checkout
holds real copies of the files there (``[tool.setuptools.package-data]`` in pyproject.toml), so one
lookup works for both kinds of install.

Standards: WSDL 1.1 §2 and its SOAP 1.2 binding (W3C Submission 2006-04-05), WS-Addressing 1.0 WSDL
Binding §4.4 (wsaw:Action) and Metadata §4.4 (wsam:Action), ITI TF-2 Appendix V §V.3.1 (IHE WSDL
naming conventions), ARCHITECTURE.md "Endpoints" (any endpoint + ``?wsdl``).
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

_FILES: dict[str, str] = {
    transactions.REGISTRY_PATH: "DocumentRegistry.wsdl",
    transactions.REPOSITORY_PATH: "DocumentRepository.wsdl",
    transactions.IMAGING_SOURCE_PATH: "ImagingDocumentSource.wsdl",
}


def wsdl_directory() -> Path:
    """Return the folder holding the gateway's WSDL files (the repository's ``wsdl/``).

    Raises:
        FileNotFoundError: the installation carries no WSDL files (a broken build).
    """
    directory = Path(__file__).resolve().parent / "wsdl_files"
    if not directory.is_dir():
        raise FileNotFoundError(
            f"WSDL folder missing: {directory} (the package data was not installed)"
        )
    return directory.resolve()


def wsdl_for_path(path: str) -> str | None:
    """Return the WSDL file name for an endpoint path (``/xds/registry`` ...), or None.

    A trailing slash is ignored. Standard: ARCHITECTURE.md "Endpoints".
    """
    return _FILES.get(path.rstrip("/") or "/")


@cache
def _parsed(name: str) -> etree._ElementTree:
    # Our own file, parsed once per process; render_wsdl works on a copy, so this stays untouched.
    return parse_bytes((wsdl_directory() / name).read_bytes()).getroottree()


def render_wsdl(path: str, address: str) -> bytes:
    """Return the WSDL of the endpoint at ``path``, every soap12:address/@location = ``address``.

    The address is set as an attribute value through lxml, so any character in it is escaped as XML
    requires. Standard: WSDL 1.1 SOAP 1.2 binding §3.8 (soap12:address).
    Raises:
        ValueError: no endpoint of the gateway is served at ``path``.
    """
    name = wsdl_for_path(path)
    if name is None:
        raise ValueError(f"No WSDL for endpoint path {path!r}")
    tree = copy.deepcopy(_parsed(name))  # the whole document: keeps the header comment
    for element in tree.iter(etree.QName(WSDL_SOAP12, "address").text):
        element.set("location", address)
    return etree.tostring(tree, xml_declaration=True, encoding="UTF-8")
