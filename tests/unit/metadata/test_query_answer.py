"""Cross-community query bodies: answers kept as elements, homes, patient parameters."""

from __future__ import annotations

import pytest
from lxml import etree

from gateway.errors import SEVERITY_WARNING
from gateway.metadata.query import (
    AdhocQuery,
    QueryAnswer,
    build_query_answer,
    build_query_response,
    has_patient_parameter,
    home_of,
    object_label,
    patient_ids,
    read_query_answer,
    set_home,
    with_patient_ids,
)
from gateway.metadata.retrieve import RegistryError, ResponseFormatError, Status
from gateway.soap import ns
from tests.factories import PATIENT_ID, make_document_entry
from tests.support import schemas

OTHER = "X9^^^&1.3.6.1.4.1.21367.13.20.2000&ISO"


def test_answer_round_trip_keeps_objects_and_writes_partial_success_valid() -> None:
    first = read_query_answer(build_query_response([make_document_entry(), make_document_entry()]))
    assert first.status is Status.SUCCESS and len(first.objects) == 2 and first.errors == []
    set_home(first.objects, "urn:oid:1.2.3")
    warning = RegistryError(code="XDSUnknownPatientId", severity=SEVERITY_WARNING, location="h")
    error = RegistryError(code="XDSUnavailableCommunity", context="down", location="urn:oid:9")
    merged = QueryAnswer(
        status=Status.PARTIAL_SUCCESS, errors=[warning, error], objects=first.objects
    )
    element = build_query_answer(merged)
    assert schemas.errors(schemas.ours(), element) == []
    again = read_query_answer(etree.fromstring(etree.tostring(element)))
    assert again.status is Status.PARTIAL_SUCCESS
    assert [(e.code, e.location, e.is_warning) for e in again.errors] == [
        ("XDSUnknownPatientId", "h", True),
        ("XDSUnavailableCommunity", "urn:oid:9", False),
    ]
    assert [home_of(o) for o in again.objects] == ["urn:oid:1.2.3"] * 2
    assert object_label(again.objects[0]) == "ExtrinsicObject Document01"


def test_reading_another_body_is_a_format_error() -> None:
    with pytest.raises(ResponseFormatError):
        read_query_answer(etree.Element(ns.REGISTRY_RESPONSE))


def test_patient_parameters_are_found_and_replaced() -> None:
    find = AdhocQuery(query_id="q").add("$XDSDocumentEntryPatientId", f"'{PATIENT_ID}'")
    get_all = AdhocQuery(query_id="q").add("$patientId", f"('{PATIENT_ID}')").add("$x", "'y'")
    get = AdhocQuery(query_id="q").add("$XDSDocumentEntryUniqueId", "('1.2')")
    assert has_patient_parameter(find) and has_patient_parameter(get_all)
    assert not has_patient_parameter(get)
    assert patient_ids(find) == [PATIENT_ID] == patient_ids(get_all)
    moved = with_patient_ids(get_all, {PATIENT_ID: OTHER})
    assert [s.values for s in moved.slots] == [(f"('{OTHER}')",), ("'y'",)]
    assert get_all.slots[0].values == (f"('{PATIENT_ID}')",)  # the original is untouched
