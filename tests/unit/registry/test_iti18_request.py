"""Checking an AdhocQuery's parameters against the query tables (reading the AdhocQueryRequest
itself is tested with its codec, ``tests/unit/metadata/test_query.py``).

Standard: ITI TF-2 §3.18.4.1.2 (request), §3.18.4.1.2.3.5-7 (values, parameters), §3.18.4.1.2.4
(query ids), §3.18.4.1.3 (error codes), rev. 19.0; ebRS 3.0 §6.3.2.1 (undefined parameters).
"""

from __future__ import annotations

import pytest

from gateway.errors import XDSError
from gateway.metadata.datatypes import Code
from gateway.metadata.query import AdhocQuery
from gateway.registry.queries import table as t
from gateway.registry.queries.request import bind, spec_for

PID = "'PAT-1^^^&1.2.3&ISO'"
APPROVED = "('urn:oasis:names:tc:ebxml-regrep:StatusType:Approved')"
UUID_1 = "urn:uuid:11111111-1111-4111-8111-111111111111"
UUID_2 = "urn:uuid:22222222-2222-4222-8222-222222222222"


def codes(raised: pytest.ExceptionInfo[XDSError]) -> list[str]:
    return sorted(e.code for e in raised.value)


def bound(query_id: str, *slots: tuple[str, ...]) -> dict[str, object]:
    query = AdhocQuery(query_id=query_id)
    for name, *values in slots:
        query.add(name, *values)
    return bind(spec_for(query_id), query).values


def test_unknown_query_id() -> None:
    with pytest.raises(XDSError) as raised:
        spec_for("urn:uuid:00000000-0000-4000-8000-000000000000")
    assert codes(raised) == ["XDSUnknownStoredQuery"]


# --- bind ----------------------------------------------------------------------------------------
def test_bind_types_values() -> None:
    values = bound(
        t.FIND_DOCUMENTS,
        (t.DE_PATIENT_ID, PID),
        (t.DE_STATUS, APPROVED),
        (t.DE_CLASS_CODE, "('A^^s1', 'B^^s2')"),
        (t.DE_CREATION_TIME_FROM, "2004"),
        (t.DE_AUTHOR_PERSON, "'%Smith%'"),
    )
    assert values[t.DE_PATIENT_ID] == "PAT-1^^^&1.2.3&ISO"
    assert values[t.DE_STATUS] == ["urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"]
    assert values[t.DE_CLASS_CODE] == [[Code("A", "s1"), Code("B", "s2")]]
    assert values[t.DE_CREATION_TIME_FROM] == "2004"
    assert values[t.DE_AUTHOR_PERSON] == ["%Smith%"]


def test_code_parameters_keep_one_or_list_per_slot() -> None:
    values = bound(
        t.FIND_DOCUMENTS,
        (t.DE_PATIENT_ID, PID),
        (t.DE_STATUS, APPROVED),
        (t.DE_EVENT_CODE_LIST, "('a^^s')", "('b^^s')"),
        (t.DE_EVENT_CODE_LIST, "('c^^s')"),
    )
    assert values[t.DE_EVENT_CODE_LIST] == [[Code("a", "s"), Code("b", "s")], [Code("c", "s")]]


def test_other_multiple_parameters_merge_repeated_slots() -> None:
    values = bound(
        t.FIND_DOCUMENTS,
        (t.DE_PATIENT_ID, PID),
        (t.DE_STATUS, "('s1')"),
        (t.DE_STATUS, "('s2', 's3')"),
    )
    assert values[t.DE_STATUS] == ["s1", "s2", "s3"]


def test_undefined_parameters_and_empty_slots_are_ignored() -> None:
    values = bound(
        t.FIND_DOCUMENTS,
        (t.DE_PATIENT_ID, PID),
        (t.DE_STATUS, APPROVED),
        ("$XDSDocumentEntryPracticeSettingCodeScheme", "('Connect-a-thon')"),
        ("$MetadataLevel", "1"),
        (t.DE_CLASS_CODE,),
    )
    assert set(values) == {t.DE_PATIENT_ID, t.DE_STATUS}


def test_missing_required_parameters_are_all_reported() -> None:
    with pytest.raises(XDSError) as raised:
        bound(t.FIND_DOCUMENTS, (t.DE_CLASS_CODE, "('A^^s')"))
    assert codes(raised) == ["XDSStoredQueryMissingParam", "XDSStoredQueryMissingParam"]
    assert {t.DE_PATIENT_ID, t.DE_STATUS} <= {
        name for e in raised.value for name in (t.DE_PATIENT_ID, t.DE_STATUS) if name in e.context
    }


@pytest.mark.parametrize(
    "slots",
    [
        [(t.DE_PATIENT_ID, "('p1^^^&1.2&ISO', 'p2^^^&1.2&ISO')")],
        [(t.DE_PATIENT_ID, PID, PID)],
        [(t.DE_PATIENT_ID, PID), (t.DE_PATIENT_ID, PID)],
    ],
)
def test_single_valued_parameter_with_several_values(slots: list[tuple[str, ...]]) -> None:
    with pytest.raises(XDSError) as raised:
        bound(t.FIND_DOCUMENTS, (t.DE_STATUS, APPROVED), *slots)
    assert codes(raised) == ["XDSStoredQueryParamNumber"]


def test_single_valued_parameter_as_one_item_list() -> None:
    values = bound(t.FIND_DOCUMENTS, (t.DE_PATIENT_ID, f"({PID})"), (t.DE_STATUS, APPROVED))
    assert values[t.DE_PATIENT_ID] == "PAT-1^^^&1.2.3&ISO"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        (t.DE_PATIENT_ID, "PAT-1^^^&1.2.3&ISO"),  # unquoted (the old IHE sample)
        (t.DE_PATIENT_ID, "'PAT-1'"),  # not a CX
        (t.DE_CLASS_CODE, "('Dialysis')"),  # NIST 11897/old_scheme
        (t.DE_CLASS_CODE, "('DEMO^^1.3.6', 'a^^')"),  # NIST classcode_scheme_mismatch
        (t.DE_CLASS_CODE, "('A^x^^1.3.6')"),  # four components, the text one filled
        (t.DE_CREATION_TIME_FROM, "'20041332'"),
        (t.DE_CREATION_TIME_FROM, "2004.5"),
        (t.DE_CREATION_TIME_TO, "20041224120000+0100"),
        (t.DE_STATUS, "(2004)"),  # a number where a string is due
        (t.DE_STATUS, "('')"),
        (t.DE_AUTHOR_PERSON, "(Smith)"),
    ],
)
def test_malformed_values_are_registry_errors(name: str, value: str) -> None:
    slots = {t.DE_PATIENT_ID: PID, t.DE_STATUS: APPROVED, name: value}
    with pytest.raises(XDSError) as raised:
        bound(t.FIND_DOCUMENTS, *slots.items())
    assert codes(raised) == ["XDSRegistryError"]
    assert name in raised.value.context


def test_errors_of_several_parameters_come_together() -> None:
    with pytest.raises(XDSError) as raised:
        bound(
            t.FIND_DOCUMENTS,
            (t.DE_PATIENT_ID, PID, PID),
            (t.DE_CLASS_CODE, "('x')"),
        )
    assert codes(raised) == [
        "XDSRegistryError",
        "XDSStoredQueryMissingParam",
        "XDSStoredQueryParamNumber",
    ]


@pytest.mark.parametrize(
    ("slots", "expected"),
    [
        ([], ["XDSStoredQueryMissingParam"]),
        (
            [(t.DE_ENTRY_UUID, f"('{UUID_1}')"), (t.DE_UNIQUE_ID, "('1.2.3')")],
            ["XDSStoredQueryParamNumber"],
        ),
    ],
)
def test_r_star_pairs(slots: list[tuple[str, ...]], expected: list[str]) -> None:
    with pytest.raises(XDSError) as raised:
        bound(t.GET_DOCUMENTS, *slots)
    assert codes(raised) == expected


def test_uuid_parameters() -> None:
    values = bound(t.GET_DOCUMENTS, (t.DE_ENTRY_UUID, f"('{UUID_1}')", f"('{UUID_2}')"))
    assert values[t.DE_ENTRY_UUID] == [UUID_1, UUID_2]
    with pytest.raises(XDSError) as raised:
        bound(t.GET_DOCUMENTS, (t.DE_ENTRY_UUID, "('Document01')"))
    assert codes(raised) == ["XDSRegistryError"]


def test_single_uuid_of_get_related_documents() -> None:
    values = bound(
        t.GET_RELATED_DOCUMENTS,
        (t.DE_ENTRY_UUID, f"'{UUID_1}'"),
        (t.ASSOCIATION_TYPES, "('urn:ihe:iti:2007:AssociationType:RPLC')"),
    )
    assert values[t.DE_ENTRY_UUID] == UUID_1
