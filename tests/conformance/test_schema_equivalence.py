"""The project's schemas (``schemas/``) against the official ebRS 3.0 / IHE XSDs, on every sample
message of ``../shared/conformance``: the same verdict for each, the same verdict for thousands of
small corruptions of the valid ones, and zeep (through the gateway's WSDLs) reads every valid one.

Samples: every XML file of the corpus outside ``spec/`` (IHE examples, NIST test plans, metadata
files and message-validator fixtures, IPF and dcm4chee captures); for HTTP/MTOM captures, the SOAP
envelopes found in them. From each, every outermost element in one of the six XDS namespaces is a
message (a SOAP body, a metadata file, a response in a test plan). xop:Include children are
replaced by base64 content first (XOP 1.0 §3.2).
"""

from __future__ import annotations

import hashlib
import io
import random
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import zeep
from lxml import etree

from gateway.soap import transactions
from gateway.soap.wsdl import local_schema_base, render_wsdl
from tests.support import schemas

pytestmark = pytest.mark.skipif(
    not schemas.SPEC.is_dir(), reason=f"{schemas.CONFORMANCE} (official schemas, samples) is absent"
)

_ENVELOPE = re.compile(rb"<(?:[\w.-]+:)?Envelope\b.*?</(?:[\w.-]+:)?Envelope>", re.S)
_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, remove_comments=True, remove_pis=True
)
_MARKERS = tuple(namespace.encode() for namespace in schemas.NAMESPACES)


def _documents(path: Path) -> Iterator[etree._Element]:
    data = path.read_bytes()
    try:
        yield etree.fromstring(data, _PARSER)
        return
    except etree.XMLSyntaxError:
        pass
    for match in _ENVELOPE.finditer(data):  # an HTTP or MTOM capture
        try:
            yield etree.fromstring(match.group(0), _PARSER)
        except etree.XMLSyntaxError:
            continue  # broken on purpose (samples/MANIFEST.md)


def _is_message(element: etree._Element) -> bool:
    if not isinstance(element.tag, str) or etree.QName(element).namespace not in schemas.NAMESPACES:
        return False
    parent = element.getparent()
    return parent is None or etree.QName(parent).namespace not in schemas.NAMESPACES


def _collect() -> list[tuple[str, etree._Element]]:
    if not schemas.SPEC.is_dir():
        return []
    found: list[tuple[str, etree._Element]] = []
    for path in sorted(schemas.CONFORMANCE.rglob("*")):
        if not path.is_file() or schemas.SPEC in path.parents:
            continue
        if not any(marker in path.read_bytes() for marker in _MARKERS):
            continue
        where = str(path.relative_to(schemas.CONFORMANCE))
        for document in _documents(path):
            for element in document.iter():
                if _is_message(element):
                    found.append((where, schemas.xop_infoset(element)))
    return found


SAMPLES = _collect()


def _verdicts(element: etree._Element) -> tuple[bool, bool]:
    official = schemas.official()
    assert official is not None
    return (
        official.validate(etree.ElementTree(element)),
        schemas.ours().validate(etree.ElementTree(element)),
    )


def _distinct_valid() -> list[etree._Element]:
    seen: set[str] = set()
    valid = []
    for _where, element in SAMPLES:
        digest = hashlib.sha1(etree.tostring(element, method="c14n")).hexdigest()
        if digest not in seen and _verdicts(element)[0]:
            seen.add(digest)
            valid.append(element)
    return valid


def test_every_sample_gets_the_official_verdict() -> None:
    differ = [(where, e.tag, _verdicts(e)) for where, e in SAMPLES if len(set(_verdicts(e))) > 1]
    assert differ == []
    valid = sum(_verdicts(e)[0] for _w, e in SAMPLES)
    # The corpus is what the test stands on: hundreds of valid messages, and the invalid ones
    # (wrong element order, ebRIM 2.1 names, ...) must be refused by ours too.
    assert valid > 700 and len(SAMPLES) - valid > 20, (valid, len(SAMPLES))
    tags = {etree.QName(e).localname for _w, e in SAMPLES}
    assert {
        "SubmitObjectsRequest",
        "ProvideAndRegisterDocumentSetRequest",
        "AdhocQueryRequest",
        "AdhocQueryResponse",
        "RegistryResponse",
        "RetrieveDocumentSetRequest",
        "RetrieveDocumentSetResponse",
        "RetrieveImagingDocumentSetRequest",
        "RemoveObjectsRequest",
    } <= tags


# -- corruptions: required attributes dropped, values too long, elements repeated, dropped or
# -- reordered, text and attributes added; each must get the same verdict from both schema sets.

Mutation = Callable[[etree._Element], None]


def _mutations(element: etree._Element) -> Iterator[Mutation]:
    def drop_attribute(name: str) -> Mutation:
        return lambda e: e.attrib.pop(name)

    def long_attribute(name: str) -> Mutation:
        return lambda e: e.set(name, "x" * 1100)  # past LongName (256) and FreeFormText (1024)

    def duplicate(e: etree._Element) -> None:
        e.addnext(etree.fromstring(etree.tostring(e)))

    def drop(e: etree._Element) -> None:
        e.getparent().remove(e)

    def swap(e: etree._Element) -> None:
        following = e.getnext()
        e.getparent().remove(following)
        e.addprevious(following)

    for name in element.attrib:
        yield drop_attribute(name)
        yield long_attribute(name)
    if element.getparent() is not None:
        yield duplicate
        yield drop
        if element.getnext() is not None:
            yield swap
    yield lambda e: setattr(e, "text", (e.text or "") + "zz")
    yield lambda e: e.set("unknownAttribute", "1")


def test_corrupted_samples_get_the_same_verdict() -> None:
    rng = random.Random(14)  # fixed: the same corruptions every run
    counts = {True: 0, False: 0}
    differ = []
    for sample in _distinct_valid():
        positions = list(enumerate(sample.iter()))
        candidates = [(i, m) for i, e in positions for m in _mutations(e)]
        for index, mutation in rng.sample(candidates, min(40, len(candidates))):
            corrupted = etree.fromstring(etree.tostring(sample))
            mutation(list(corrupted.iter())[index])
            official, ours = _verdicts(corrupted)
            counts[official] += 1
            if official != ours:
                differ.append((sample.tag, index, official, ours))
    assert differ == []
    assert counts[True] > 1000 and counts[False] > 5000, counts


def test_what_is_left_out_is_refused_and_said_so() -> None:
    # rim.xsd's header: ebRIM classes XDS never sends are not declared.
    listing = etree.fromstring(
        '<rim:RegistryObjectList xmlns:rim="urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0">'
        '<rim:ClassificationNode id="urn:uuid:1" code="x"/></rim:RegistryObjectList>'
    )
    assert _verdicts(listing) == (True, False)


# -- zeep reads every valid sample through the types of the gateway's own WSDLs --------------------


def test_zeep_reads_every_valid_sample_with_the_wsdl_types() -> None:
    settings = zeep.Settings(strict=True, forbid_dtd=True, forbid_entities=True)
    clients = [
        zeep.Client(
            io.BytesIO(render_wsdl(path, "http://gw" + path, schema_base=local_schema_base())),
            settings=settings,
        )
        for path in transactions.ENDPOINTS
    ]
    failed = []
    valid = _distinct_valid()
    for sample in valid:
        problems = []
        for client in clients:
            try:
                element = client.get_element(sample.tag)
            except (zeep.exceptions.LookupError, zeep.exceptions.NamespaceError):
                continue  # this endpoint's WSDL does not import the namespace
            try:
                element.parse(sample, client.wsdl.types)
                break
            except zeep.exceptions.Error as exc:
                problems.append(str(exc))
        else:
            failed.append((sample.tag, problems))
    assert failed == []
    assert len(valid) > 400
