"""FHIR JSON parsing limits, content negotiation and OperationOutcome."""

from __future__ import annotations

import pytest

from gateway.fhir.wire import FhirError, Issue, operation_outcome, parse_json, wants_json
from tests.support.fhir_check import check_resource


def test_parse_json_accepts_one_object() -> None:
    assert parse_json(b'{"resourceType": "Patient", "id": "a"}')["id"] == "a"


@pytest.mark.parametrize(
    "body",
    [
        b"[]",
        b'"text"',
        b"{",
        b'{"a": NaN}',
        b'{"a": Infinity}',
        b'{"a": 1, "a": 2}',
        b"\xff\xfe{}",
        b'{"a":' * 65 + b"1" + b"}" * 65,
        b"[" * 200_000 + b"]" * 200_000,
    ],
)
def test_parse_json_refuses_with_400_structure(body: bytes) -> None:
    with pytest.raises(FhirError) as caught:
        parse_json(body)
    assert caught.value.status == 400
    assert caught.value.issues[0].code == "structure"


def test_depth_limit_counts_levels() -> None:
    assert parse_json(b'{"a":' * 63 + b"1" + b"}" * 63)
    with pytest.raises(FhirError):
        parse_json(b'{"a":' * 4 + b"1" + b"}" * 4, max_depth=4)


@pytest.mark.parametrize(
    ("format_param", "accept", "json_ok"),
    [
        (None, None, True),
        (None, "*/*", True),
        (None, "application/fhir+json;q=0.9, application/fhir+xml", True),
        (None, "application/fhir+xml", False),
        (None, "application/xml, text/xml", False),
        ("json", "application/fhir+xml", True),
        ("application/fhir+json", None, True),
        ("xml", None, False),
        ("html", None, False),
    ],
)
def test_wants_json(format_param: str | None, accept: str | None, json_ok: bool) -> None:
    assert wants_json(format_param, accept) is json_ok


def test_operation_outcome_carries_the_xds_code_in_details() -> None:
    issue = Issue(
        code="not-found",
        diagnostics="patient PAT-9 is not known",
        xds_code="XDSUnknownPatientId",
        expression="Bundle.entry[0].resource.subject",
    )
    outcome = operation_outcome([issue])
    check_resource(outcome)
    [item] = outcome["issue"]
    assert item["details"]["coding"] == [
        {
            "code": "XDSUnknownPatientId",
            "display": "The patient id is not known to the receiving actor.",
        }
    ]
    assert item["expression"] == ["Bundle.entry[0].resource.subject"]
    check_resource(operation_outcome([]))
