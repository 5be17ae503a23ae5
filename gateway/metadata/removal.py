"""Codecs of the Remove Metadata and Documents (RMD) requests.

- ITI-62 Remove Metadata: ``lcm:RemoveObjectsRequest`` whose ``rim:ObjectRefList`` names the
  entryUUIDs of the objects to remove (ITI TF-2b §3.62.4.1.2: no AdhocQuery, no deletionScope
  other than the default).
- ITI-86 Remove Documents: ``rmd:RemoveDocumentsRequest`` (namespace ``urn:ihe:iti:rmd:2017``)
  holding ``xds:DocumentRequest`` elements as in ITI-43 (ITI TF-2b §3.86.4.1.2).

Both answer with a plain ``rs:RegistryResponse`` (``gateway.metadata.retrieve``).
"""

from __future__ import annotations

from collections.abc import Sequence

from lxml import etree

from gateway.errors import XDSRegistryError, XDSRepositoryError
from gateway.metadata.retrieve import DocumentRequest, _add_requests, _read_request
from gateway.soap import ns
from gateway.soap.transactions import ITI_62, ITI_86, RMD_NS

__all__ = [
    "RMD_NS",
    "build_remove_documents_request",
    "build_remove_objects_request",
    "parse_remove_documents_request",
    "parse_remove_objects_request",
]

_OBJECT_REF_LIST = ns.qname(ns.RIM, "ObjectRefList")
_OBJECT_REF = ns.qname(ns.RIM, "ObjectRef")
_ADHOC_QUERY = ns.qname(ns.RIM, "AdhocQuery")
_DOCUMENT_REQUEST = ns.qname(ns.XDSB, "DocumentRequest")
# ebRS 3.0 §5.3.1: the default scope removes the objects themselves, which is all XDS allows.
_DEFAULT_SCOPE = "urn:oasis:names:tc:ebxml-regrep:DeletionScopeType:DeleteAll"


def parse_remove_objects_request(element: etree._Element) -> list[str]:
    """The ids an ``lcm:RemoveObjectsRequest`` names, in order, without repeats.

    Standard: ITI TF-2b §3.62.4.1.2 (ObjectRefList required; AdhocQuery not used).
    Raises: XDSRegistryError for another element, an AdhocQuery, a deletionScope other than
    DeleteAll, no ObjectRef, or an ObjectRef without id.
    """
    if element.tag != ITI_62.request_qname:
        raise XDSRegistryError(f"expected lcm:RemoveObjectsRequest, got {element.tag}")
    scope = element.get("deletionScope")
    if scope and scope != _DEFAULT_SCOPE:
        raise XDSRegistryError(f"deletionScope {scope} is not supported (ITI TF-2b §3.62.4.1.2)")
    if element.find(_ADHOC_QUERY) is not None:
        raise XDSRegistryError("RemoveObjectsRequest: AdhocQuery is not allowed in ITI-62")
    ids: dict[str, None] = {}
    for ref_list in element.findall(_OBJECT_REF_LIST):
        for ref in ref_list.findall(_OBJECT_REF):
            ref_id = (ref.get("id") or "").strip()
            if not ref_id:
                raise XDSRegistryError("RemoveObjectsRequest: an ObjectRef has no id")
            ids.setdefault(ref_id, None)
    if not ids:
        raise XDSRegistryError("RemoveObjectsRequest names no object (ObjectRefList is empty)")
    return list(ids)


def build_remove_objects_request(ids: Sequence[str]) -> etree._Element:
    """Write an ``lcm:RemoveObjectsRequest`` for ``ids`` (ITI-62; ITI TF-2b §3.62.4.1.2).

    Raises: ValueError for no id.
    """
    if not ids:
        raise ValueError("a RemoveObjectsRequest names at least one object")
    root = etree.Element(ITI_62.request_qname, nsmap={"lcm": ns.LCM, "rim": ns.RIM})
    ref_list = etree.SubElement(root, _OBJECT_REF_LIST)
    for ref_id in ids:
        etree.SubElement(ref_list, _OBJECT_REF, id=ref_id)
    return root


def parse_remove_documents_request(element: etree._Element) -> list[DocumentRequest]:
    """The DocumentRequests of an ``rmd:RemoveDocumentsRequest`` (ITI TF-2b §3.86.4.1.2).

    Raises: XDSRepositoryError for another element or no DocumentRequest (schema: 1..n).
    """
    if element.tag != ITI_86.request_qname:
        raise XDSRepositoryError(f"expected rmd:RemoveDocumentsRequest, got {element.tag}")
    requests = [_read_request(item) for item in element.findall(_DOCUMENT_REQUEST)]
    if not requests:
        raise XDSRepositoryError("RemoveDocumentsRequest holds no DocumentRequest")
    return requests


def build_remove_documents_request(requests: Sequence[DocumentRequest]) -> etree._Element:
    """Write an ``rmd:RemoveDocumentsRequest`` (ITI-86; ITI TF-2b §3.86.4.1.2).

    Raises: ValueError for no request.
    """
    if not requests:
        raise ValueError("a RemoveDocumentsRequest names at least one document")
    root = etree.Element(ITI_86.request_qname, nsmap={"rmd": RMD_NS, "xds": ns.XDSB})
    _add_requests(root, requests)
    return root
