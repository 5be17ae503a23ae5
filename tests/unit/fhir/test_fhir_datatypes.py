"""FHIR <-> XDS data types: times, codes, identifiers, hashes, resource ids."""

from __future__ import annotations

import hashlib

import pytest

from gateway.fhir import datatypes as d
from gateway.metadata.datatypes import CX, Code

DOMAIN = "1.3.6.1.4.1.21367.13.20.1000"


@pytest.mark.parametrize(
    ("dtm", "fhir"),
    [
        ("2024", "2024"),
        ("202403", "2024-03"),
        ("20240301", "2024-03-01"),
        ("2024030110", "2024-03-01T10:00:00Z"),
        ("202403011015", "2024-03-01T10:15:00Z"),
        ("20240301101530", "2024-03-01T10:15:30Z"),
    ],
)
def test_dtm_to_datetime_keeps_precision(dtm: str, fhir: str) -> None:
    assert d.datetime_of_dtm(dtm) == fhir


@pytest.mark.parametrize("bad", [None, "", "2024-03", "20240", "abcd"])
def test_dtm_to_datetime_of_nothing_usable(bad: str | None) -> None:
    assert d.datetime_of_dtm(bad) is None


@pytest.mark.parametrize(
    ("fhir", "dtm"),
    [
        ("2024", "2024"),
        ("2024-03", "202403"),
        ("2024-03-01", "20240301"),
        ("2024-03-01T10:15:30Z", "20240301101530"),
        ("2024-03-01T10:15:30.123+01:00", "20240301091530"),
        ("2024-01-01T00:30:00+02:00", "20231231223000"),
        ("2024-03-01T10:15+00:00", "202403011015"),
    ],
)
def test_datetime_to_dtm_in_utc(fhir: str, dtm: str) -> None:
    assert d.dtm_of_datetime(fhir, "x") == dtm


@pytest.mark.parametrize(
    "bad", ["2024-03-01T10:15:30", "2024-13-01T00:00:00Z", "yesterday", 20240301]
)
def test_datetime_to_dtm_refuses(bad: object) -> None:
    with pytest.raises(d.DataTypeError):
        d.dtm_of_datetime(bad, "x")


@pytest.mark.parametrize(
    ("dtm", "after"),
    [
        ("2024", "2025"),
        ("202412", "202501"),
        ("202402", "202403"),
        ("20240228", "20240229"),
        ("20241231", "20250101"),
        ("2024123123", "2025010100"),
        ("20240301101559", "20240301101600"),
    ],
)
def test_next_period(dtm: str, after: str) -> None:
    assert d.next_period(dtm) == after


def test_code_systems_round_trip() -> None:
    for code in (
        Code("18842-5", "2.16.840.1.113883.6.1"),
        Code("N", "2.16.840.1.113883.5.25"),
        Code("CT", "1.2.840.10008.2.16.4"),
        Code("x", "1.2.3.4"),
        Code("y", "http://example.org/cs"),
    ):
        coding = d.coding(code)
        assert d.code_of_coding(coding, "c") == code
    assert d.coding(Code("18842-5", "2.16.840.1.113883.6.1"))["system"] == "http://loinc.org"
    assert d.coding(Code("x", "1.2.3.4"))["system"] == "urn:oid:1.2.3.4"


def test_codes_need_a_system() -> None:
    with pytest.raises(d.DataTypeError):
        d.code_of_coding({"code": "x"}, "c")
    with pytest.raises(d.DataTypeError):
        d.code_of_concept({"text": "free"}, "c")


def test_hashes_hex_and_base64() -> None:
    digest = hashlib.sha1(b"").hexdigest()
    assert d.base64_of_hex(digest) == "2jmj7l5rSw0yVb/vlWAYkK/YBwk="  # MHD ITI TF-3 §4.5.1.2
    assert d.hex_of_base64("2jmj7l5rSw0yVb/vlWAYkK/YBwk=", "h") == digest
    for bad in ("not base64!", "AAAA"):
        with pytest.raises(d.DataTypeError):
            d.hex_of_base64(bad, "h")


def test_patient_identifiers() -> None:
    cx = f"PAT-1^^^&{DOMAIN}&ISO"
    identifier = d.patient_identifier(cx)
    assert identifier == {"system": f"urn:oid:{DOMAIN}", "value": "PAT-1"}
    assert d.cx_of_identifier(identifier, "i") == cx
    with pytest.raises(d.DataTypeError):
        d.cx_of_identifier({"system": "http://hospital.example/mrn", "value": "1"}, "i")


@pytest.mark.parametrize("value", ["PAT-1", "12.34", "x.y", "MRN 7", "Zoë", "a/b", "x." + "0" * 10])
def test_patient_resource_ids_round_trip(value: str) -> None:
    resource_id = d.patient_resource_id(CX(id=value, assigning_authority=DOMAIN))
    assert resource_id is not None and d.is_resource_id(resource_id)
    assert d.patient_cx_of_resource_id(resource_id, DOMAIN) == f"{value}^^^&{DOMAIN}&ISO"


def test_patient_resource_id_of_another_domain_is_none() -> None:
    assert d.patient_id_in_domain("PAT-1^^^&1.2.3&ISO", DOMAIN) is None
    assert d.patient_id_in_domain(f"PAT-1^^^&{DOMAIN}&ISO", DOMAIN) == "PAT-1"
    assert d.patient_resource_id(CX(id="é" * 40, assigning_authority=DOMAIN)) is None


def test_entry_uuid_resource_ids() -> None:
    uuid = "urn:uuid:0f3c1a4e-5b6d-4e7f-8a9b-0c1d2e3f4a5b"
    resource_id = d.resource_id_of_uuid(uuid)
    assert resource_id == uuid[len("urn:uuid:") :]
    assert d.uuid_of_resource_id(resource_id.upper()) == uuid
    assert d.uuid_of_resource_id("PAT-1") is None
    assert d.uri_identifier("1.2.3") == {"system": "urn:ietf:rfc:3986", "value": "urn:oid:1.2.3"}
    assert d.unique_id_of("urn:oid:1.2.3") == "1.2.3"
