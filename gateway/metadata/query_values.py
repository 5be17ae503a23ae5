"""The text form of stored-query parameter values: reading and writing one ``rim:Value``.

Shared by both ends of ITI-18: the registry reads values, consumers and the repository write them.

A Value holds a single value or a list (ITI TF-2 §3.18.4.1.2.3.5, rev. 19.0):

- a string is enclosed in single quotes, a quote inside it doubled (``'O''Hara'``), the SQL
  convention ebRS 3.0 stored queries inherit;
- a number (times are numbers, §3.18.4.1.2.3.3) is written without quotes: ``200412252300``;
- a list is parenthesised and comma-separated: ``('a', 'b')``; whitespace around the items
  is insignificant.

Anything else is malformed and raises :class:`ValueFormatError`; the caller names the parameter
and turns it into an XDS error (a malformed value is an error, never an empty result).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

_NUMBER = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?")
_SPACE = " \t\r\n"


class ValueFormatError(ValueError):
    """A Value does not follow the coding rules of ITI TF-2 §3.18.4.1.2.3.5."""


@dataclass(frozen=True, slots=True)
class Item:
    """One value: its text (quotes removed, doubled quotes undone) and whether it was quoted."""

    text: str
    quoted: bool


@dataclass(frozen=True, slots=True)
class Value:
    """A parsed ``rim:Value``: its items, and whether it was written as a list."""

    items: tuple[Item, ...]
    is_list: bool


def parse_value(text: str | None) -> Value:
    """Parse the text of one ``rim:Value`` into its items.

    Standard: ITI TF-2 §3.18.4.1.2.3.5 (coding of single and multiple values).
    Raises: ValueFormatError.
    """
    source = (text or "").strip(_SPACE)
    if not source:
        raise ValueFormatError("empty value")
    if source.startswith("("):
        items, end = _parse_list(source, 0)
        is_list = True
    else:
        item, end = _parse_item(source, 0)
        items, is_list = (item,), False
    if source[end:].strip(_SPACE):
        raise ValueFormatError(f"unexpected text after the value: {source[end:]!r}")
    return Value(items=items, is_list=is_list)


def _skip_space(source: str, pos: int) -> int:
    while pos < len(source) and source[pos] in _SPACE:
        pos += 1
    return pos


def _parse_list(source: str, pos: int) -> tuple[tuple[Item, ...], int]:
    items: list[Item] = []
    pos = _skip_space(source, pos + 1)  # after "("
    if pos < len(source) and source[pos] == ")":
        raise ValueFormatError("empty list ()")
    while True:
        item, pos = _parse_item(source, pos)
        items.append(item)
        pos = _skip_space(source, pos)
        if pos >= len(source):
            raise ValueFormatError("list without closing parenthesis")
        if source[pos] == ")":
            return tuple(items), pos + 1
        if source[pos] != ",":
            raise ValueFormatError(f"expected ',' or ')' in list, found {source[pos]!r}")
        pos += 1


def _parse_item(source: str, pos: int) -> tuple[Item, int]:
    pos = _skip_space(source, pos)
    if pos < len(source) and source[pos] == "'":
        return _parse_string(source, pos)
    match = _NUMBER.match(source, pos)
    if match is None:
        found = source[pos : pos + 20] or "end of value"
        raise ValueFormatError(f"expected a quoted string or a number, found {found!r}")
    return Item(text=match.group(), quoted=False), match.end()


def _parse_string(source: str, pos: int) -> tuple[Item, int]:
    chars: list[str] = []
    pos += 1  # after the opening quote
    while pos < len(source):
        char = source[pos]
        if char == "'":
            if source.startswith("''", pos):  # a doubled quote stands for one quote
                chars.append("'")
                pos += 2
                continue
            return Item(text="".join(chars), quoted=True), pos + 1
        chars.append(char)
        pos += 1
    raise ValueFormatError("string without closing quote")


def quote(value: str) -> str:
    """Write a string value: single quotes, inner quotes doubled (ITI TF-2 §3.18.4.1.2.3.5)."""
    return "'" + value.replace("'", "''") + "'"


def quote_list(values: Iterable[str]) -> str:
    """Write a list of string values: ``('a','b')`` (ITI TF-2 §3.18.4.1.2.3.5)."""
    items = [quote(value) for value in values]
    if not items:
        raise ValueError("a list value needs at least one item")
    return "(" + ",".join(items) + ")"
