"""The fast paths of the body codec give exactly what the reference paths give."""

from __future__ import annotations

import json

import pytest

from gateway.metadata.datatypes import DataTypeError, format_dtm, parse_dtm
from gateway.registry import codec
from tests.factories import make_document_entry


def _reference(value: str) -> str:
    return format_dtm(parse_dtm(value.strip()))


@pytest.mark.parametrize(
    "value",
    [
        "2004",
        "200412",
        "20041231",
        "2004123123",
        "200412312359",
        "20041231235959",
        " 20240229 ",
        "1000",
        "99991231235959",
    ],
)
def test_normalise_dtm_pads_like_the_reference(value: str) -> None:
    assert codec.normalise_dtm(value) == _reference(value)


@pytest.mark.parametrize(
    "value",
    ["20230229", "20041301", "2004123124", "20041231236000", "200", "20041", "2004-12", "abcd"],
)
def test_normalise_dtm_refuses_what_the_reference_refuses(value: str) -> None:
    with pytest.raises(DataTypeError):
        _reference(value)
    with pytest.raises(DataTypeError):
        codec.normalise_dtm(value)


def test_a_code_with_a_key_of_a_newer_model_still_reads() -> None:
    entry = make_document_entry(entry_uuid="urn:uuid:5a3c0dff-b5a6-4d4b-9a8c-0a4c1b1d6c01")
    data = json.loads(codec.to_json(entry))
    data["class_code"]["future"] = "x"
    data["future_field"] = 1
    assert codec.from_json("DocumentEntry", json.dumps(data)) == entry
