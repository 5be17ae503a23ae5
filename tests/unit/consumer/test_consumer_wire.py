"""The consumer's ITI-18 bodies: the request valid against the official schemas, the answer read.

The ITI-43 / RAD-69 bodies are tested with their codec (tests/unit/metadata/test_retrieve.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from gateway.consumer import wire
from gateway.metadata.datatypes import Code
from gateway.metadata.ebrim import build_registry_object_list
from gateway.metadata.model import DocumentEntry
from gateway.soap import ns

SPEC = Path(__file__).resolve().parents[4] / "shared" / "conformance" / "spec"


def assert_schema_valid(element: etree._Element) -> None:
    from tests.conformance.nist.schema import validate

    if not SPEC.is_dir():
        pytest.skip(f"official schemas not found at {SPEC}")
    validate(element, SPEC)


def test_query_request_is_schema_valid_and_carries_slots() -> None:
    body = wire.build_query_request(
        "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d",
        [wire.QuerySlot("$XDSDocumentEntryPatientId", ("'P^^^&1.2&ISO'",))],
        return_type="ObjectRef",
        home="urn:oid:1.2.3",
    )
    assert_schema_valid(body)
    option = body.find(ns.qname(ns.QUERY, "ResponseOption"))
    assert option.get("returnType") == "ObjectRef"
    assert option.get("returnComposedObjects") == "true"
    query = body.find(ns.qname(ns.RIM, "AdhocQuery"))
    assert query.get("home") == "urn:oid:1.2.3"
    values = query.findall(f"{{{ns.RIM}}}Slot/{{{ns.RIM}}}ValueList/{{{ns.RIM}}}Value")
    assert [v.text for v in values] == ["'P^^^&1.2&ISO'"]
    with pytest.raises(ValueError):
        wire.build_query_request("urn:uuid:x", [], return_type="Everything")


def test_query_response_reads_status_errors_and_objects() -> None:
    entry = DocumentEntry(
        entry_uuid="urn:uuid:0b1f3c4e-1111-4222-8333-444455556666",
        unique_id="1.2.3.4",
        patient_id="P^^^&1.2&ISO",
        format_code=Code("1.2.840.10008.5.1.4.1.1.88.59", "1.2.840.10008.2.6.1", "KOS"),
        mime_type="application/dicom",
        availability_status="urn:oasis:names:tc:ebxml-regrep:StatusType:Approved",
    )
    root = etree.Element(
        ns.qname(ns.QUERY, "AdhocQueryResponse"),
        status="urn:ihe:iti:2007:ResponseStatusType:PartialSuccess",
    )
    errors = etree.SubElement(root, ns.qname(ns.RS, "RegistryErrorList"))
    etree.SubElement(
        errors,
        ns.qname(ns.RS, "RegistryError"),
        errorCode="XDSRegistryError",
        codeContext="one community down",
        severity="urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Warning",
    )
    root.append(build_registry_object_list([entry]))
    result = wire.parse_query_response(root)
    assert result.status == "PartialSuccess"
    assert result.errors[0].is_warning
    [found] = result.objects
    assert isinstance(found, DocumentEntry) and found.unique_id == "1.2.3.4"
    assert found.format_code is not None and found.format_code.code.endswith(".88.59")
    with pytest.raises(wire.ResponseFormatError):
        wire.parse_query_response(etree.Element("nothing"))
