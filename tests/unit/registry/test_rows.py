"""Model objects -> table rows: indexed columns, normalised times, side-table rows."""

from __future__ import annotations

from gateway.metadata import vocabulary as v
from gateway.metadata.datatypes import Code
from gateway.metadata.model import Author
from gateway.registry import rows
from gateway.registry.codec import from_json
from gateway.registry.schema import document_entry, folder, submission_set
from tests.factories import (
    CLASS_CODE,
    CONFIDENTIALITY_CODE,
    EVENT_CODE,
    make_document_entry,
    make_folder,
    make_has_member,
    make_submission_set,
)


def test_document_entry_row_fills_every_indexed_column() -> None:
    entry = make_document_entry(entry_uuid="urn:uuid:e", availability_status=v.STATUS_APPROVED)
    row = rows.document_entry_row(entry, submission_set_id="urn:uuid:ss", seq=7)
    assert set(row) == set(document_entry.c.keys())
    assert row["logical_id"] == "urn:uuid:e"
    assert row["version"] == 1
    assert row["class_code"] == CLASS_CODE.code
    assert row["class_scheme"] == CLASS_CODE.scheme
    assert row["creation_time"] == "20240102030405"
    assert row["service_start_time"] == "20240102000000"
    assert row["service_stop_time"] == "20240102040000"
    assert row["object_type"] == v.DOCUMENT_ENTRY_STABLE
    assert row["status"] == v.STATUS_APPROVED
    assert row["submission_set_id"] == "urn:uuid:ss"
    assert row["seq"] == 7
    assert from_json("DocumentEntry", row["body"]) == entry


def test_absent_times_and_codes_are_null() -> None:
    entry = make_document_entry(service_start_time=None, practice_setting_code=None)
    row = rows.document_entry_row(entry, submission_set_id="s", seq=1)
    assert row["service_start_time"] is None
    assert row["practice_setting_code"] is None
    assert row["practice_setting_scheme"] is None


def test_submission_set_and_folder_rows() -> None:
    ss = make_submission_set(entry_uuid="urn:uuid:s", submission_time="2024")
    row = rows.submission_set_row(ss, seq=1)
    assert set(row) == set(submission_set.c.keys())
    assert row["submission_time"] == "20240101000000"
    assert row["content_type_code"] == "22232009"
    f = make_folder(entry_uuid="urn:uuid:f", last_update_time="20240601120000")
    row = rows.folder_row(f, seq=2)
    assert set(row) == set(folder.c.keys())
    assert row["last_update_time"] == "20240601120000"
    assert row["logical_id"] == "urn:uuid:f"


def test_association_row_keeps_submission_set_status() -> None:
    row = rows.association_row(make_has_member("urn:uuid:a", "urn:uuid:b"), seq=3)
    assert row["submission_set_status"] == "Original"
    assert row["source_id"] == "urn:uuid:a"
    assert row["status"] == v.STATUS_APPROVED


def test_code_rows_name_each_attribute_once_per_code() -> None:
    entry = make_document_entry(
        entry_uuid="E",
        event_code_list=[EVENT_CODE, EVENT_CODE, Code("MR", "1.2.840.10008.2.16.4")],
    )
    got = {(r["attribute"], r["code"]) for r in rows.code_rows(entry)}
    assert ("classCode", CLASS_CODE.code) in got
    assert ("confidentialityCode", CONFIDENTIALITY_CODE.code) in got
    assert ("eventCodeList", "CT") in got
    assert ("eventCodeList", "MR") in got
    assert len(rows.code_rows(entry)) == len(got)  # the repeated CT is stored once
    assert {r["attribute"] for r in rows.code_rows(make_submission_set())} == {"contentTypeCode"}
    assert {r["attribute"] for r in rows.code_rows(make_folder())} == {"codeList"}


def test_author_and_reference_rows() -> None:
    entry = make_document_entry(
        entry_uuid="E",
        author=[Author(person="^A"), Author(role=["r"]), Author(person="^A"), Author(person="^B")],
        reference_id_list=["1^^^^urn:x", "1^^^^urn:x", "2^^^^urn:y"],
    )
    assert [r["person"] for r in rows.author_rows(entry)] == ["^A", "^B"]
    assert [r["value"] for r in rows.reference_id_rows(entry)] == ["1^^^^urn:x", "2^^^^urn:y"]
