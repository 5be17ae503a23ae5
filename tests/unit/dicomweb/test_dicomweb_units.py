"""Unit tests of the DICOMweb room: Accept negotiation, QIDO-RS parameters, bulk data paths,
rendering parameters, plain multipart parts, and the audit messages of the three services."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from lxml import etree

from gateway.audit import codes
from gateway.audit.messages import AuditSource, build_message, load_schema
from gateway.audit.model import RESPONDER, AuditEvent, Participant, StudyRef
from gateway.dicomweb import jsonmodel, qido, render, wado
from gateway.dicomweb.http import DicomWebError
from gateway.dicomweb.media import acceptable
from gateway.soap.mime import BodyTooLarge, MultipartError
from gateway.soap.mtom_reader import iter_parts

DICOM_MP = 'multipart/related; type="application/dicom"'


def test_accept_is_ordered_by_quality_then_position() -> None:
    ranges = acceptable(f"image/png;q=0.5, {DICOM_MP}; transfer-syntax=*, */*;q=0.1")
    assert [r.media for r in ranges] == ["multipart/related", "image/png", "*/*"]
    assert ranges[0].inner == "application/dicom" and ranges[0].transfer_syntax == "*"
    assert [r.media for r in acceptable(None)] == ["*/*"]
    assert [r.media for r in acceptable("image/gif", ["image/png"])] == ["image/png"]
    with pytest.raises(ValueError):
        acceptable("image/png;q=2")


def test_instance_syntaxes_default_to_explicit_vr_little_endian() -> None:
    assert wado.instance_syntaxes(acceptable(DICOM_MP)) == ["1.2.840.10008.1.2.1"]
    assert wado.instance_syntaxes(acceptable(f"{DICOM_MP}; transfer-syntax=*")) == ["*"]
    with pytest.raises(DicomWebError) as caught:
        wado.instance_syntaxes(acceptable(f"{DICOM_MP}; transfer-syntax=1.2.840.10008.1.2"))
    assert caught.value.status == 406


def test_frames_plan_by_stored_syntax() -> None:
    jls = "1.2.840.10008.1.2.4.80"
    octet = acceptable('multipart/related; type="application/octet-stream"')
    assert wado.frames_plan(octet, jls, True) == (
        "application/octet-stream",
        "1.2.840.10008.1.2.1",
        True,
    )
    assert (
        wado.frames_plan(acceptable('multipart/related; type="image/jls"'), jls, True)[2] is False
    )
    with pytest.raises(DicomWebError):
        wado.frames_plan(acceptable('multipart/related; type="image/jp2"'), jls, True)


def test_qido_parameters() -> None:
    search = qido.parse(
        "study",
        {
            "PatientID": ["P1"],
            "00080020": ["20240101-"],
            "includefield": ["StudyDescription,all"],
            "limit": ["5"],
            "fuzzymatching": ["true"],
        },
        max_results=100,
    )
    assert search.limit == 5 and search.include_all and len(search.conditions) == 2
    assert "StudyDescription" in search.include and search.warnings
    assert qido.parse("study", {"limit": ["5000"]}, max_results=100).limit == 100
    for bad in (
        {"StudyDate": ["2024"]},
        {"Nonsense": ["1"]},
        {"offset": ["x"]},
        {"StudyTime": ["25:00"]},
        {"SOPInstanceUID": ["1.2"]},
    ):
        with pytest.raises(DicomWebError) as caught:
            qido.parse("study", bad, max_results=100)
        assert caught.value.status == 400


def test_bulk_data_paths_round_trip() -> None:
    path = (0x00880200, 1, 0x7FE00010)
    assert jsonmodel.path_text(path) == "00880200/1/7FE00010"
    assert jsonmodel.parse_path("00880200/1/7FE00010") == path
    for bad in ("00880200", "7FE0", "00880200/0/7FE00010"):
        with pytest.raises(ValueError):
            jsonmodel.parse_path(bad if bad != "00880200" else "00880200/1")


def test_rendering_parameters() -> None:
    r = render.parameters(
        {"window": ["40,400,sigmoid"], "viewport": ["10,20"], "quality": ["50"]},
        acceptable("image/*"),
        thumbnail=False,
    )
    assert r.window == (40.0, 400.0, "sigmoid") and r.viewport == (10, 20) and r.quality == 50
    assert render.parameters({}, acceptable("*/*"), thumbnail=True).viewport == render.THUMBNAIL
    for bad in ({"window": ["1"]}, {"quality": ["0"]}, {"viewport": ["0,10"]}):
        with pytest.raises(DicomWebError):
            render.parameters(bad, acceptable("image/png"), thumbnail=False)


def _body(*parts: bytes) -> bytes:
    out = b"".join(b"--xx\r\nContent-Type: application/dicom\r\n\r\n" + p + b"\r\n" for p in parts)
    return out + b"--xx--\r\n"


def test_plain_multipart_parts_are_files_without_content_ids(tmp_path: Path) -> None:
    body = _body(b"A" * 300_000, b"second")
    parts = list(
        iter_parts(
            io.BytesIO(body),
            "multipart/related; boundary=xx",
            content_length=len(body),
            spool_dir=tmp_path,
        )
    )
    assert [p.content_id for p in parts] == ["part-1", "part-2"]
    assert [p.read_bytes() for p in parts] == [b"A" * 300_000, b"second"]
    assert all(p.path is not None and p.path.parent == tmp_path for p in parts)
    for part in parts:
        part.discard()
    assert not list(tmp_path.iterdir())


def test_plain_multipart_leaves_nothing_behind_when_bad(tmp_path: Path) -> None:
    body = _body(b"x" * 1000)
    with pytest.raises(BodyTooLarge):
        list(
            iter_parts(
                io.BytesIO(body),
                "multipart/related; boundary=xx",
                content_length=None,
                spool_dir=tmp_path,
                max_total_bytes=500,
            )
        )
    with pytest.raises(MultipartError):
        list(
            iter_parts(
                io.BytesIO(body[:-20]),
                "multipart/related; boundary=xx",
                content_length=None,
                spool_dir=tmp_path,
            )
        )
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("transaction", ["QIDO-RS", "WADO-RS", "STOW-RS"])
def test_audit_messages_of_the_services_are_valid(transaction: str) -> None:
    event = AuditEvent(
        transaction=transaction,
        side=RESPONDER,
        initiator=Participant(user_id="anonymous", host="10.0.0.7"),
        responder=Participant(user_id="http://gw/dicomweb/studies", host="gw"),
        patient_ids=("PAT-1",),
        query_id="1.2.840.10008.5.1.4.1.2.2.1",
        query_request=b"/studies?PatientID=PAT-1",
        studies=(
            StudyRef(study_uid="1.2.3", instances=(("1.2.840.10008.5.1.4.1.1.2", "1.2.3.4"),)),
        ),
    )
    message = build_message(event, AuditSource(source_id="gw"))
    schema = load_schema()
    assert schema.validate(message), schema.error_log
    event_id = message.find("EventIdentification/EventID").get("csd-code")
    expected = codes.QUERY if transaction == "QIDO-RS" else codes.INSTANCES_TRANSFERRED
    assert event_id == expected.code
    text = etree.tostring(message).decode()
    assert ("110181" in text) == (transaction == "QIDO-RS")
