"""ebRIM 2.1 -> 3.0 translation of submission metadata, as the NIST engine does it for XDS.b.

Most R.b/PnR.b metadata files of the testkit are ebRIM 2.1 (``rs:SubmitObjectsRequest`` of
``registry:xsd:2.1`` with a ``rim:LeafRegistryObjectList``). Before sending over XDS.b the NIST
engine translates them (toolkit ``registrymetadata`` ``TranslateToV3``; behaviour read, not
copied):

* ``rs:SubmitObjectsRequest/rim:LeafRegistryObjectList`` -> ``lcm:SubmitObjectsRequest/
  rim:RegistryObjectList``; every element moves to the rim 3.0 namespace;
* ``ObjectRef`` elements are dropped (3.0 does not need them for the XDS UUIDs);
* children are re-ordered to the 3.0 sequence: Slot, Name, Description, VersionInfo,
  Classification, ExternalIdentifier, then anything else (ebRIM 3.0 RegistryObjectType);
* ``Association`` and ``Classification`` without ``id`` get ``id_<n>``; every
  ``ExternalIdentifier`` gets an ``id`` (``id_<n>`` when missing) and ``registryObject`` = the id
  of the object that contains it (both required in 3.0);
* ``status`` values get the ``urn:oasis:names:tc:ebxml-regrep:StatusType:`` prefix; short
  ``associationType`` values get ``urn:ihe:iti:2007:AssociationType:`` (RPLC, XFRM, APND,
  XFRM_RPLC, signs, ...) or ``urn:oasis:names:tc:ebxml-regrep:AssociationType:`` (HasMember, ...)
  — ITI TF-3 §4.2.2;
* ``objectType`` of RegistryPackage, Association, Classification and ExternalIdentifier is set to
  ``urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:<element>``;
* ``majorVersion``/``minorVersion`` (2.1 only) are dropped; ``lang`` becomes ``xml:lang``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

from lxml import etree

from tests.conformance.nist import ns
from tests.conformance.nist.xmlutil import Element, first, kids, local, namespace

_ORDER = ("Slot", "Name", "Description", "VersionInfo", "Classification", "ExternalIdentifier")
_TYPED = frozenset({"RegistryPackage", "Association", "Classification", "ExternalIdentifier"})
_NEEDS_ID = frozenset({"Association", "Classification"})
_DROPPED_ATTRIBUTES = frozenset({"majorVersion", "minorVersion"})


def is_v21(root: Element) -> bool:
    """True when ``root`` is ebRIM/ebRS 2.1 metadata."""
    return namespace(root) in (ns.RS21, ns.RIM21)


def add_namespace(value: str, prefix: str) -> str:
    """Prefix a short value (no ':' in it), leave a qualified one alone (NIST ``addNamespace``)."""
    return value if ":" in value else prefix + value


def association_type_v3(value: str) -> str:
    """Qualify a 2.1 short association type with the IHE or ebXML namespace (ITI TF-3 §4.2.2)."""
    prefix = ns.IHE_ASSOC if value in ns.IHE_ASSOC_TYPES else ns.EB_ASSOC
    return add_namespace(value, prefix)


def to_v3(root: Element) -> Element:
    """Translate a 2.1 ``SubmitObjectsRequest`` into an ebRS 3.0 ``lcm:SubmitObjectsRequest``."""
    if not is_v21(root):
        raise ValueError(f"not ebRIM 2.1 metadata: {root.tag}")
    container = first(root, "LeafRegistryObjectList")
    if container is None:
        container = first(root, "RegistryObjectList")
    if container is None:
        container = root
    request = etree.Element(
        ns.q(ns.LCM, "SubmitObjectsRequest"), nsmap={"lcm": ns.LCM, "rim": ns.RIM}
    )
    objects = etree.SubElement(request, ns.q(ns.RIM, "RegistryObjectList"))
    ids = (f"id_{n}" for n in itertools.count(1))
    for child in kids(container):
        if local(child) != "ObjectRef":
            objects.append(_translate(child, ids))
    return request


def _translate(source: Element, ids: Iterator[str]) -> Element:
    name = local(source)
    target = etree.Element(ns.q(ns.RIM, name))
    _copy_attributes(source, target)
    if name in _NEEDS_ID and not target.get("id"):
        target.set("id", next(ids))
    owner_id = source.get("id", "")
    for wanted in _ORDER:
        for child in kids(source, wanted):
            copied = _translate(child, ids)
            if wanted == "ExternalIdentifier":
                if not copied.get("id"):
                    copied.set("id", next(ids))
                copied.set("registryObject", owner_id)
            target.append(copied)
    for child in kids(source):
        if local(child) not in _ORDER and local(child) != "ObjectRef":
            target.append(_translate(child, ids))
    if not kids(source) and source.text is not None:
        target.text = source.text
    return target


def _copy_attributes(source: Element, target: Element) -> None:
    name = local(source)
    for key, value in source.attrib.items():
        attribute = key.rpartition("}")[2]
        if attribute in _DROPPED_ATTRIBUTES:
            continue
        if attribute == "status":
            value = add_namespace(value, ns.STATUS_TYPE)
        elif attribute == "associationType":
            value = association_type_v3(value)
        if attribute == "lang":
            target.set(ns.q(ns.XML, "lang"), value)
        else:
            target.set(attribute, value)
    if name in _TYPED:
        target.set("objectType", ns.OBJECT_TYPE + name)
