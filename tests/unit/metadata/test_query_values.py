"""The text coding of stored-query values (ITI TF-2 §3.18.4.1.2.3.5): read and write."""

from __future__ import annotations

import pytest

from gateway.metadata.query_values import (
    Item,
    ValueFormatError,
    parse_value,
    quote,
    quote_list,
)


def texts(value: str) -> list[str]:
    return [item.text for item in parse_value(value).items]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("'urn:x'", [Item("urn:x", True)]),
        ("  'a b'  ", [Item("a b", True)]),
        ("200412252300", [Item("200412252300", False)]),
        ("('a')", [Item("a", True)]),
        ("('a','b')", [Item("a", True), Item("b", True)]),
        ("( 'a' ,\n 'b' )", [Item("a", True), Item("b", True)]),
        ("(2004, '2005')", [Item("2004", False), Item("2005", True)]),
        ("'O''Brien'", [Item("O'Brien", True)]),
        ("('it''s', '''')", [Item("it's", True), Item("'", True)]),
        ("'a,b)'", [Item("a,b)", True)]),
        ("'x^^^&1.2.3&ISO'", [Item("x^^^&1.2.3&ISO", True)]),
    ],
)
def test_parse_value(value: str, expected: list[Item]) -> None:
    assert list(parse_value(value).items) == expected


def test_list_flag() -> None:
    assert parse_value("('a')").is_list is True
    assert parse_value("'a'").is_list is False


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        None,
        "urn:x",  # unquoted string
        "'unterminated",
        "('a'",  # no closing parenthesis
        "()",
        "('a' 'b')",  # missing comma
        "('a',)",
        "'a' 'b'",  # text after the value
        "'a')",
        "\u2018Emergency Department\u2019",  # typographic quotes (the IHE sample's slip)
        "'593603^^^&2.16.756&ISO''%20and%20611%3d611--%20",  # IPF's hostile sample
        "2004-01-01",
    ],
)
def test_malformed_values(value: str | None) -> None:
    with pytest.raises(ValueFormatError):
        parse_value(value)


@pytest.mark.parametrize("value", ["plain", "O'Brien", "''", "a,b", "(x)", "%_"])
def test_quote_round_trip(value: str) -> None:
    assert texts(quote(value)) == [value]


def test_quote_list_round_trip() -> None:
    values = ["a", "it's", "c,d"]
    assert texts(quote_list(values)) == values
    assert quote_list(["a", "b"]) == "('a','b')"
    with pytest.raises(ValueError):
        quote_list([])
