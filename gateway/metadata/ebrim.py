"""The symmetric codec between the metadata model and ebRIM 3.0 XML (lxml elements).

Reading (``parse_*``) accepts what ebRIM 3.0 allows and IHE writes: Classifications nested in
their object or at the top of the RegistryObjectList, the SubmissionSet/Folder label either way,
the short association type names of old samples (``HasMember``). Every structural problem is
collected and raised together as one ``XDSErrorList`` of XDSRegistryMetadataError (or
XDSRepositoryMetadataError with ``repository=True``). Attribute *content* is checked later by
``gateway.metadata.validate``.

Writing (``build_*``) is strict and deterministic: element order of rim.xsd
(Slot*, Name, Description, VersionInfo, Classification*, ExternalIdentifier*), ``objectType`` on
every object, ids of Classifications/ExternalIdentifiers derived from their owner (UUID v5), the
SubmissionSet/Folder label as a top-level Classification as in the ITI TF-3 examples.

Standards: ITI TF-3 §4.2 (rev. 19.0): §4.2.1 object types, §4.2.2 associations, §4.2.3 attribute
tables (slot names, classification and identification schemes); ebRIM 3.0 (rim.xsd v1.20),
ebRS 3.0 lcm.xsd (SubmitObjectsRequest).
"""

from __future__ import annotations

from collections.abc import Iterable

from lxml import etree

from gateway.errors import XDSErrorList, XDSRegistryMetadataError, XDSRepositoryMetadataError
from gateway.metadata import _ebrim_read, _ebrim_write
from gateway.metadata.model import RegistryObject, Submission
from gateway.soap import ns

__all__ = [
    "build_registry_object_list",
    "build_registry_objects",
    "build_submit_objects_request",
    "parse_registry_object_list",
    "parse_submit_objects_request",
]

_SUBMIT = ns.qname(ns.LCM, "SubmitObjectsRequest")
_PNR = ns.qname(ns.XDSB, "ProvideAndRegisterDocumentSetRequest")
_LIST = ns.qname(ns.RIM, "RegistryObjectList")


def parse_submit_objects_request(
    element: etree._Element, *, repository: bool = False
) -> Submission:
    """Read an ``lcm:SubmitObjectsRequest`` (or the one inside an ITI-41 request) as a Submission.

    Standard: ITI TF-2 §3.42.4.1 / §3.41.4.1 (request message), ITI TF-3 §4.2.
    Raises: XDSErrorList of XDSRegistryMetadataError (XDSRepositoryMetadataError when
    ``repository``) for structural problems (unknown elements, duplicate slots, a second
    SubmissionSet, a Classification pointing elsewhere than its parent ...).
    """
    error = XDSRepositoryMetadataError if repository else XDSRegistryMetadataError
    if element.tag == _PNR:
        found = element.find(_SUBMIT)
        if found is None:
            raise XDSErrorList([error("ProvideAndRegisterDocumentSetRequest has no request")])
        element = found
    if element.tag != _SUBMIT:
        raise XDSErrorList([error(f"expected lcm:SubmitObjectsRequest, got {element.tag}")])
    object_list = element.find(_LIST)
    if object_list is None:
        raise XDSErrorList([error("SubmitObjectsRequest has no rim:RegistryObjectList")])
    reader = _ebrim_read.Reader(error, strict=True)
    objects = reader.read_list(object_list)
    submission = _ebrim_read.to_submission(objects, reader)
    reader.raise_problems()
    return submission


def parse_registry_object_list(
    element: etree._Element, *, repository: bool = False
) -> list[RegistryObject]:
    """Read a ``rim:RegistryObjectList`` (or the element holding one, e.g. an
    ``query:AdhocQueryResponse``) into model objects in document order, ObjectRefs included.

    Lenient towards what a peer registry returns: unknown classification or identification
    schemes are skipped. Standard: ITI TF-2 §3.18.4.1.3 (LeafClass / ObjectRef results).
    Raises: XDSErrorList of XDSRegistryMetadataError (XDSRepositoryMetadataError when
    ``repository``) for structural problems.
    """
    error = XDSRepositoryMetadataError if repository else XDSRegistryMetadataError
    if element.tag != _LIST:
        found = element.find(_LIST)
        if found is None:
            return []  # e.g. an AdhocQueryResponse with no results carries no list
        element = found
    reader = _ebrim_read.Reader(error, strict=False)
    objects = reader.read_list(element)
    reader.raise_problems()
    return objects


def build_registry_objects(objects: Iterable[RegistryObject]) -> list[etree._Element]:
    """Return the ebRIM elements of model objects, in order: ExtrinsicObject, RegistryPackage
    followed by its SubmissionSet/Folder Classification, Association, ObjectRef.

    Standard: ITI TF-3 §4.2.1-§4.2.3. Raises: ValueError for a model that cannot be written
    (an extra slot named like an IHE slot).
    """
    elements: list[etree._Element] = []
    for obj in objects:
        elements.extend(_ebrim_write.build_object(obj))
    return elements


def build_registry_object_list(objects: Iterable[RegistryObject]) -> etree._Element:
    """Return a ``rim:RegistryObjectList`` holding the objects (e.g. for a query response)."""
    return _ebrim_write.build_object_list(objects)


def build_submit_objects_request(submission: Submission) -> etree._Element:
    """Return the ``lcm:SubmitObjectsRequest`` of a Submission: ObjectRefs, SubmissionSet,
    Folders, DocumentEntries, Associations.

    Standard: ITI TF-2 §3.42.4.1.2 (message semantics), ebRS 3.0 lcm.xsd.
    """
    request = etree.Element(_SUBMIT, nsmap={"lcm": ns.LCM, "rim": ns.RIM})
    ordered: list[RegistryObject] = [*submission.object_refs]
    if submission.submission_set is not None:
        ordered.append(submission.submission_set)
    ordered.extend(submission.folders)
    ordered.extend(submission.document_entries)
    ordered.extend(submission.associations)
    request.append(build_registry_object_list(ordered))
    etree.cleanup_namespaces(request)
    return request
