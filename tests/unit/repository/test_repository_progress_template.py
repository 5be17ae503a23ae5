"""The provide template (no sockets)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from lxml import etree

from gateway.metadata.datatypes import is_oid
from gateway.metadata.ebrim import build_submit_objects_request
from gateway.metadata.validate import ITI_41, validate_submission
from gateway.repository.template import (
    DEFAULT_SOURCE_ID,
    FillOptions,
    TemplateError,
    default_submission,
    fill,
    load_template,
    new_oid,
    parse_code,
)
from tests.factories import make_submission

PATIENT = "P1^^^&1.3.6.1.4.1.21367.13.20.1000&ISO"
NOW = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)


def test_parse_code() -> None:
    code = parse_code("IMAGES^Images^1.3.6.1.4.1.19376.1.2.6.1")
    assert (code.code, code.display_name, code.scheme) == (
        "IMAGES",
        "Images",
        "1.3.6.1.4.1.19376.1.2.6.1",
    )
    assert parse_code("N^^2.16.840.1.113883.5.25").display_name is None
    with pytest.raises(ValueError):
        parse_code("IMAGES^Images")


def test_new_oid_is_an_oid() -> None:
    assert is_oid(new_oid()) and is_oid(DEFAULT_SOURCE_ID) and new_oid() != new_oid()


def test_filled_default_template_is_valid_iti41_metadata() -> None:
    submission = default_submission()
    uids = iter(["1.2.3.1", "1.2.3.2"])
    entry = fill(
        submission,
        FillOptions(patient_id=PATIENT, mime_type="application/pdf"),
        file_name="a.pdf",
        size=3,
        sha1="a" * 40,
        now=NOW,
        new_uid=lambda: next(uids),
    )
    validate_submission(submission, rules=ITI_41, repository=True)
    assert submission.submission_set is not None
    assert (submission.submission_set.unique_id, entry.unique_id) == ("1.2.3.1", "1.2.3.2")
    assert submission.submission_set.submission_time == "20240506070809"
    assert (entry.patient_id, entry.source_patient_id, entry.title) == (PATIENT, PATIENT, "a.pdf")


def test_template_file_and_overrides(tmp_path: Path) -> None:
    template = tmp_path / "t.xml"
    template.write_bytes(etree.tostring(build_submit_objects_request(make_submission())))
    submission = load_template(template)
    code = parse_code("X^x^1.2.3")
    entry = fill(
        submission,
        FillOptions(
            patient_id=PATIENT,
            keep_ids=True,
            codes={"type_code": code, "content_type_code": code, "confidentiality_code": code},
        ),
        file_name="f",
        size=None,
        sha1=None,
        now=NOW,
    )
    assert entry.unique_id == make_submission().document_entries[0].unique_id  # kept
    assert entry.type_code == code and entry.confidentiality_code == [code]
    assert (
        submission.submission_set is not None
        and submission.submission_set.content_type_code == code
    )
    assert (entry.size, entry.hash) == (None, None)


def test_bad_templates(tmp_path: Path) -> None:
    bad = tmp_path / "bad.xml"
    bad.write_text("<not-ebrim/>")
    with pytest.raises(TemplateError):
        load_template(bad)
    two = tmp_path / "two.xml"
    two.write_bytes(etree.tostring(build_submit_objects_request(make_submission(entries=2))))
    with pytest.raises(TemplateError, match="one DocumentEntry"):
        load_template(two)
    with pytest.raises(TemplateError):
        load_template(tmp_path / "missing.xml")
