"""HL7 v2.5 data types as XDS profiles them (ITI TF-3 Table 4.2.3.1.7-2)."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta, timezone

import pytest

from gateway.metadata import vocabulary as v
from gateway.metadata.datatypes import (
    CX,
    XON,
    Code,
    DataTypeError,
    check_document_unique_id,
    format_code_param,
    format_cx,
    format_dtm,
    is_home_community_id,
    is_oid,
    is_uuid_urn,
    new_uuid_urn,
    parse_code_param,
    parse_cx,
    parse_cxi,
    parse_dtm,
    parse_hd,
    parse_source_patient_info,
    parse_xcn,
    parse_xon,
    parse_xtn,
)

# --- CX ------------------------------------------------------------------------------------------


def test_cx_parses_id_and_iso_assigning_authority() -> None:
    cx = parse_cx("ST-1000^^^&1.3.6.1.4.1.21367.2003.3.9&ISO")
    assert cx == CX(id="ST-1000", assigning_authority="1.3.6.1.4.1.21367.2003.3.9")
    assert str(cx) == "ST-1000^^^&1.3.6.1.4.1.21367.2003.3.9&ISO"
    assert format_cx("a", "1.2") == "a^^^&1.2&ISO"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("^^^&1.2.3&ISO", "no ID"),
        ("X1", "no assigning authority"),
        ("X1^^^", "no assigning authority"),
        ("X1^^^&1.2.3&L", "not of the form &OID&ISO"),
        ("X1^^^&not.an.oid&ISO", "not of the form &OID&ISO"),
        ("X1^^^NS&1.2.3&ISO", "namespace id"),
        ("X1^^^&1.2.3&ISO^PI", "components other than"),
        ("X1^5^^&1.2.3&ISO", "components other than"),
        ("X1^^^&1.2.3&ISO&extra", "more than three subcomponents"),
    ],
)
def test_cx_rejects_what_xds_forbids(value: str, reason: str) -> None:
    with pytest.raises(DataTypeError, match=reason):
        parse_cx(value)


def test_cxi_reference_id_with_type_code() -> None:
    cxi = parse_cxi("ACC-1^^^&1.2.840.113619.6.197&ISO^urn:ihe:iti:xds:2013:accession")
    assert cxi.id == "ACC-1"
    assert cxi.id_type == "urn:ihe:iti:xds:2013:accession"
    assert cxi.assigning_authority is not None
    assert cxi.assigning_authority.universal_id == "1.2.840.113619.6.197"
    assert cxi.assigning_facility is None
    assert str(cxi) == "ACC-1^^^&1.2.840.113619.6.197&ISO^urn:ihe:iti:xds:2013:accession"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("^^^&1.2&ISO^urn:ihe:iti:xds:2013:accession", "no ID"),
        ("ACC-1^^^&1.2&ISO", "identifier type code"),
        ("ACC-1^x^^&1.2&ISO^urn:ihe:iti:xds:2013:order", "components other than"),
        ("ACC-1^^^&1.2&ISO^t^^extra", "components other than"),
    ],
)
def test_cxi_rejections(value: str, reason: str) -> None:
    with pytest.raises(DataTypeError, match=reason):
        parse_cxi(value)


def test_hd_split() -> None:
    hd = parse_hd("NS&1.2.3&ISO")
    assert (hd.namespace_id, hd.universal_id, hd.universal_id_type) == ("NS", "1.2.3", "ISO")
    assert str(hd) == "NS&1.2.3&ISO"
    assert str(parse_hd("&1.2&ISO")) == "&1.2&ISO"


# --- XCN, XON, XTN -------------------------------------------------------------------------------


def test_xcn_name_only_and_id_only() -> None:
    person = parse_xcn("^Smitty^Gerald^^^")
    assert (person.family_name, person.given_name, person.id) == ("Smitty", "Gerald", "")
    assert str(person) == "^Smitty^Gerald"
    # NIST/IHE samples put a free-text name in XCN.1; that is an ID as far as HL7 goes.
    assert parse_xcn("Gerald Smitty").id == "Gerald Smitty"


def test_xcn_with_assigning_authority() -> None:
    person = parse_xcn("11375^Welby^Marcus^J^Jr. MD^Dr^^^&1.2.840.113619.6.197&ISO")
    assert person.assigning_authority == "1.2.840.113619.6.197"
    assert person.prefix == "Dr"
    assert str(person) == "11375^Welby^Marcus^J^Jr. MD^Dr^^^&1.2.840.113619.6.197&ISO"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "neither an ID"),
        ("^^^Jr", "neither an ID"),
        ("11375^Welby^^^^^^^1.2.3", "&OID&ISO"),
    ],
)
def test_xcn_rejections(value: str, reason: str) -> None:
    with pytest.raises(DataTypeError, match=reason):
        parse_xcn(value)


def test_xon_forms() -> None:
    assert parse_xon("Cleveland Clinic") == XON(name="Cleveland Clinic")
    full = parse_xon("Some Hospital^^^^^&1.2.3.9.1789&ISO^^^^45")
    assert (full.assigning_authority, full.identifier) == ("1.2.3.9.1789", "45")
    assert str(full) == "Some Hospital^^^^^&1.2.3.9.1789&ISO^^^^45"
    # XON.10 that is itself an OID needs no assigning authority.
    assert parse_xon("Parma Community^^^^^^^^^1.2.3").identifier == "1.2.3"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("^^^^^&1.2&ISO^^^^45", "no organization name"),
        ("Hospital^X", "components other than"),
        ("Hospital^^^^^&1.2&ISO^x", "components other than"),
        ("Hospital^^^^^^^^^local-45", "XON.6 is required"),
        ("Hospital^^^^^1.2.3^^^^45", "&OID&ISO"),
    ],
)
def test_xon_rejections(value: str, reason: str) -> None:
    with pytest.raises(DataTypeError, match=reason):
        parse_xon(value)


def test_xtn_email_and_phone() -> None:
    assert parse_xtn("^^Internet^john@doe.net").email == "john@doe.net"
    phone = parse_xtn("^PRN^PH^^1^555^1234567")
    assert (phone.use_code, phone.area_code, phone.local_number) == ("PRN", "555", "1234567")
    assert parse_xtn("^WPN^PH^^^^^^^^^+15551234567").unformatted == "+15551234567"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("^^^john@doe.net", "equipment type"),
        ("^^Internet^", "email"),
        ("^^Internet^not-an-address", "email"),
        ("^PRN^PH", "telephone number"),
    ],
)
def test_xtn_rejections(value: str, reason: str) -> None:
    with pytest.raises(DataTypeError, match=reason):
        parse_xtn(value)


# --- DTM -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2005", datetime(2005, 1, 1, tzinfo=UTC)),
        ("200512", datetime(2005, 12, 1, tzinfo=UTC)),
        ("20051224", datetime(2005, 12, 24, tzinfo=UTC)),
        ("2005122408", datetime(2005, 12, 24, 8, tzinfo=UTC)),
        ("200512240801", datetime(2005, 12, 24, 8, 1, tzinfo=UTC)),
        ("20051224080159", datetime(2005, 12, 24, 8, 1, 59, tzinfo=UTC)),
    ],
)
def test_dtm_precisions(value: str, expected: datetime) -> None:
    assert parse_dtm(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "",
        "205",
        "20051",
        "200512241",
        "2005122408015",
        "200512240801590",
        "20051224080159.123",
        "20051224080159+0100",
        "2005-12-24",
        "20051332",
        "20050230",
        "2005122425",
        "200512241261",
    ],
)
def test_dtm_rejections(value: str) -> None:
    with pytest.raises(DataTypeError):
        parse_dtm(value)


def test_dtm_format_converts_to_utc_and_truncates() -> None:
    moment = datetime(2024, 1, 2, 4, 4, 5, tzinfo=timezone(timedelta(hours=1)))
    assert format_dtm(moment) == "20240102030405"
    assert format_dtm(moment, precision=8) == "20240102"
    assert format_dtm(datetime(2024, 1, 2, 3, 4)) == "20240102030400"  # naive = UTC
    with pytest.raises(ValueError, match="precision"):
        format_dtm(moment, precision=7)


# --- OID, UUID, uniqueId, homeCommunityId --------------------------------------------------------


@pytest.mark.parametrize("value", ["1.2.3", "2.16.840.1.113883.6.1", "0", "1.0.2", "3.4.5"])
def test_oid_accepts(value: str) -> None:
    assert is_oid(value)


@pytest.mark.parametrize(
    "value", ["", "1.", ".1", "1..2", "1.02", "1.2a", "urn:oid:1.2", "1.2 ", "1." + "1" * 63]
)
def test_oid_rejects(value: str) -> None:
    assert not is_oid(value)


def test_uuid_urn() -> None:
    assert is_uuid_urn("urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1")
    assert is_uuid_urn("urn:uuid:7EDCA82F-054D-47F2-A032-9B2A5B5186C1")
    assert not is_uuid_urn("7edca82f-054d-47f2-a032-9b2a5b5186c1")
    assert not is_uuid_urn("urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c")
    assert not is_uuid_urn("Document01")
    fresh = {new_uuid_urn() for _ in range(3)}
    assert len(fresh) == 3 and all(is_uuid_urn(value) for value in fresh)


def test_document_unique_id() -> None:
    check_document_unique_id("1.3.6.1.4.1.21367.2005.3.9999.32")
    check_document_unique_id("1.2.3^ext-16-chars_.")
    for bad in ("Document01", "1.2.3^", "1.2.3^" + "x" * 17, "1.2.3^a b", "1." + "2" * 64):
        with pytest.raises(DataTypeError):
            check_document_unique_id(bad)


def test_home_community_id() -> None:
    assert is_home_community_id("urn:oid:1.2.3")
    assert not is_home_community_id("1.2.3")
    assert not is_home_community_id("urn:oid:")
    assert not is_home_community_id("urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1")


# --- codes, sourcePatientInfo, vocabulary --------------------------------------------------------


def test_code_value_and_query_form() -> None:
    code = Code("34108-1", "2.16.840.1.113883.6.1", "Outpatient Note")
    assert code.matches(Code("34108-1", "2.16.840.1.113883.6.1"))
    assert not code.matches(Code("34108-1", "LOINC"))
    assert format_code_param(code) == "34108-1^^2.16.840.1.113883.6.1"
    assert parse_code_param("34108-1^^2.16.840.1.113883.6.1").matches(code)
    assert parse_code_param("34108-1^^^2.16.840.1.113883.6.1").matches(code)  # read leniently
    assert hash(code) == hash(Code("34108-1", "2.16.840.1.113883.6.1", "Outpatient Note"))
    for bad in ("34108-1", "34108-1^^", "^^LOINC", "a^b^c", "a^^b^c", "a^^^", "a^x^^b"):
        with pytest.raises(DataTypeError):
            parse_code_param(bad)


def test_source_patient_info_pairs() -> None:
    pairs = parse_source_patient_info(["PID-3|pid1^^^&1.2.3&ISO", "PID-5|Doe^John^^^"])
    assert pairs == [("PID-3", "pid1^^^&1.2.3&ISO"), ("PID-5", "Doe^John^^^")]
    for bad in (["PID-3"], ["PID3|x"], ["PV1-3|x"]):
        with pytest.raises(DataTypeError):
            parse_source_patient_info(bad)


def test_vocabulary_terms_know_their_names() -> None:
    assert v.DOCUMENT_ENTRY_CLASS_CODE == "urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a"
    assert v.DOCUMENT_ENTRY_CLASS_CODE.name == "XDSDocumentEntry.classCode"
    assert v.DOCUMENT_ENTRY_ON_DEMAND == "urn:uuid:34268e47-fdf5-41a6-ba33-82133c465248"
    assert v.lookup("urn:ihe:iti:2007:AssociationType:RPLC") is v.RPLC
    assert v.lookup("urn:uuid:00000000-0000-0000-0000-000000000000") is None
    assert v.SHORT_ASSOCIATION_TYPES["HasMember"] == v.HAS_MEMBER
    restored = pickle.loads(pickle.dumps(v.FOLDER_CODE_LIST))
    assert restored == v.FOLDER_CODE_LIST and restored.name == "XDSFolder.codeList"
    assert len({str(term) for term in v.CLASSIFICATION_SCHEMES}) == len(v.CLASSIFICATION_SCHEMES)
    with pytest.raises(ValueError, match="urn:uuid"):
        v.UUID("41a5887f-8865-4c09-adf7-e362475b143a", name="bad")
