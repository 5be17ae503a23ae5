"""The fast header path (gateway.imaging.header, ingest.fast_header) against pydicom.

Whenever the fast path answers, its answer must be pydicom's (the path it replaces,
``header_of(read_header(...))``); when it cannot vouch for a data set it must say so (None), never
guess. Data sets: the synthetic studies in every native syntax, sequences of defined and
undefined length (nested, empty, with an encapsulated icon), private and UN elements, character
sets, odd values, truncations, and a few thousand byte-level mutations.

Standard: DICOM PS3.5 §7.1 (elements), §7.5 (sequences), §6.2.2 (UN), §6.1 (character sets).
"""

from __future__ import annotations

import io
import random
import struct
import warnings
from typing import Any

import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from gateway.imaging import header, synthetic
from gateway.imaging.ingest import Header, InstanceRejected, fast_header, header_of, read_header
from tests.unit.imaging.support import study_spec

CT = synthetic.SOP_CLASSES["CT"]


def split(ds: Dataset) -> tuple[bytes, bytes, str]:
    """(File Meta part, data set part, transfer syntax) of ``ds`` written by pydicom."""
    data = synthetic.encode(ds)
    body = synthetic.dataset_bytes(data)
    return data[: len(data) - len(body)], body, str(ds.file_meta.TransferSyntaxUID)


def by_pydicom(meta: bytes, body: bytes) -> Header | None:
    """pydicom's reading as in production: its warnings (odd values) are not errors there."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return header_of(read_header(meta + body))
        except InstanceRejected:
            return None


def instance(syntax: str = ExplicitVRLittleEndian, **changes: Any) -> Dataset:
    ds = synthetic.make_study(study_spec(series=(synthetic.SeriesSpec(modality="CT", count=1),)))[0]
    ds.file_meta.TransferSyntaxUID = syntax
    for keyword, value in changes.items():
        setattr(ds, keyword, value)
    return ds


def item(**values: Any) -> Dataset:
    ds = Dataset()
    for keyword, value in values.items():
        setattr(ds, keyword, value)
    return ds


def with_sequences(ds: Dataset, *, undefined: bool) -> Dataset:
    """Sequences before, between and after the wanted elements, nested and empty ones too."""
    inner = item(CodeValue="T-D0050", CodingSchemeDesignator="SRT", CodeMeaning="Tissue")
    ref = item(ReferencedSOPClassUID=CT, ReferencedSOPInstanceUID="1.2.3.4")
    ref.PurposeOfReferenceCodeSequence = Sequence([inner])
    ds.ReferencedImageSequence = Sequence([ref, item(ReferencedSOPClassUID=CT)])
    ds.ProcedureCodeSequence = Sequence([])
    ds.RequestAttributesSequence = Sequence([item(ScheduledProcedureStepID="S1")])
    ds.ReferencedPerformedProcedureStepSequence = Sequence([item(), item()])
    for element in ds.iterall():
        if element.VR == "SQ":
            element.is_undefined_length = undefined
            for entry in element.value:
                entry.is_undefined_length_sequence_item = undefined
    return ds


@pytest.mark.parametrize(
    "syntax",
    [ExplicitVRLittleEndian, ImplicitVRLittleEndian, synthetic.JPEGBaseline8Bit],
)
@pytest.mark.parametrize("undefined", [False, True])
def test_same_header_as_pydicom_with_sequences(syntax: str, undefined: bool) -> None:
    ds = with_sequences(instance(), undefined=undefined)
    if syntax == synthetic.JPEGBaseline8Bit:
        ds = synthetic.make_study(
            study_spec(
                series=(synthetic.SeriesSpec(modality="US", count=1, transfer_syntax=syntax),)
            )
        )[0]
        ds = with_sequences(ds, undefined=undefined)
    else:
        ds.file_meta.TransferSyntaxUID = syntax
    meta, body, ts = split(ds)
    found = fast_header(body, ts, complete=True)
    assert found is not None
    assert found == by_pydicom(meta, body)


def test_every_synthetic_instance_matches_pydicom() -> None:
    spec = study_spec(
        series=(
            synthetic.SeriesSpec(modality="CT", count=3),
            synthetic.SeriesSpec(modality="MR", count=3, transfer_syntax=ImplicitVRLittleEndian),
            synthetic.SeriesSpec(
                modality="US", count=2, transfer_syntax=synthetic.JPEGBaseline8Bit
            ),
        )
    )
    for ds in synthetic.make_study(spec):
        meta, body, ts = split(ds)
        found = fast_header(body, ts, complete=True)
        assert found is not None and found == by_pydicom(meta, body)


def test_private_and_un_elements_are_walked_over() -> None:
    ds = instance()
    block = ds.private_block(0x0009, "XDSI TEST", create=True)
    block.add_new(0x01, "LO", "private text")
    block.add_new(0x02, "OB", b"\x01\x02\x03\x04")
    ds.add_new(0x00111010, "UN", b"unknown value!")
    meta, body, ts = split(ds)
    assert fast_header(body, ts, complete=True) == by_pydicom(meta, body)


def test_undefined_length_un_holds_implicit_items() -> None:
    """PS3.5 §6.2.2: a UN of undefined length is a sequence encoded in Implicit VR LE."""
    ds = instance()
    meta, body, ts = split(ds)
    implicit_item = struct.pack("<HHI", 0x0008, 0x0100, 4) + b"T-1 "
    un = (
        struct.pack("<HH2sHI", 0x0011, 0x1010, b"UN", 0, 0xFFFFFFFF)
        + struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF)
        + implicit_item
        + struct.pack("<HHI", 0xFFFE, 0xE00D, 0)
        + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
    )
    position = body.index(struct.pack("<HH", 0x0018, 0x0050))  # before Slice Thickness
    spliced = body[:position] + un + body[position:]
    found = fast_header(spliced, ts, complete=True)
    assert found is not None and found == by_pydicom(meta, spliced)


@pytest.mark.parametrize(
    ("charset", "patient"),
    [("ISO_IR 100", "Müller-Lüdenscheidt"), ("ISO_IR 192", "Ωmega-Δ-42"), ("", "PLAIN-1")],
)
def test_patient_id_in_the_supported_character_sets(charset: str, patient: str) -> None:
    ds = instance(PatientID=patient)
    if charset:
        ds.SpecificCharacterSet = charset
    meta, body, ts = split(ds)
    found = fast_header(body, ts, complete=True)
    assert found is not None and found.patient_id == patient
    assert found == by_pydicom(meta, body)


@pytest.mark.parametrize(
    "changes",
    [
        {"SpecificCharacterSet": ["", "ISO 2022 IR 87"]},  # code extensions: pydicom's work
        {"PatientID": "A\\B"},  # two values of a single-valued element
        {"SeriesNumber": "1.0"},  # an IS pydicom reads as text
        {"Modality": "Ç"},  # not the default repertoire
    ],
)
def test_values_the_fast_path_leaves_to_pydicom(changes: dict[str, Any]) -> None:
    ds = instance()
    with warnings.catch_warnings():  # pydicom warns about the odd values it is made to write
        warnings.simplefilter("ignore")
        for keyword, value in changes.items():
            setattr(ds, keyword, value)
        _meta, body, ts = split(ds)
    assert fast_header(body, ts, complete=True) is None


def test_missing_uid_is_left_to_pydicom_which_refuses() -> None:
    ds = instance()
    del ds.SeriesInstanceUID
    meta, body, ts = split(ds)
    assert fast_header(body, ts, complete=True) is None
    with pytest.raises(InstanceRejected) as refused:
        header_of(read_header(meta + body))
    assert refused.value.status == 0xC001


def test_integers_and_text_values() -> None:
    assert header.integer(b" 12 ") == 12
    assert header.integer(b"+7\0") == 7
    assert header.integer(b"") is None and header.integer(None) is None
    assert header.integer(b"99999999999") is None  # beyond 32 bits: the index keeps None
    with pytest.raises(ValueError):
        header.integer(b"1e3")
    assert header.uid(b"1.2.3\0") == "1.2.3"
    assert header.uid(b"1.2.03") is None
    assert header.text(b"CT ", None) == "CT"
    with pytest.raises(ValueError):
        header.text(b"x", b"GB18030")


def test_deflated_and_big_endian_go_to_pydicom() -> None:
    ds = instance()
    _meta, body, _ts = split(ds)
    assert fast_header(body, synthetic.DeflatedExplicitVRLittleEndian, complete=True) is None
    assert fast_header(body, "1.2.840.10008.1.2.2", complete=True) is None


def test_a_beginning_answers_only_once_it_reaches_the_pixel_data() -> None:
    ds = instance()
    meta, body, ts = split(ds)
    pixel = body.index(struct.pack("<HH", 0x7FE0, 0x0010))
    assert fast_header(body[: pixel + 12], ts, complete=False) == by_pydicom(meta, body)
    assert fast_header(body[: pixel - 1], ts, complete=False) is None
    assert fast_header(body[:pixel], ts, complete=True) == by_pydicom(meta, body)  # no pixels
    assert fast_header(body[: pixel - 3], ts, complete=True) is None  # an element cut short


def test_byte_mutations_never_give_an_answer_pydicom_would_not() -> None:
    """A few thousand damaged data sets: the fast path answers pydicom's answer or nothing."""
    rng = random.Random(14)
    sources = [
        split(with_sequences(instance(syntax), undefined=u))
        for syntax, u in (
            (ExplicitVRLittleEndian, True),
            (ImplicitVRLittleEndian, False),
            (ExplicitVRLittleEndian, False),
        )
    ]
    answered = disagreements = 0
    for _ in range(3000):
        meta, body, ts = rng.choice(sources)
        damaged = bytearray(body[: body.index(struct.pack("<HH", 0x7FE0, 0x0010)) + 12])
        for _flip in range(rng.randint(1, 3)):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        data = bytes(damaged)
        found = fast_header(data, ts, complete=False)
        if found is None:
            continue
        answered += 1
        expected = by_pydicom(meta, data + bytes(64))
        if found != expected:
            disagreements += 1
    assert answered > 100  # most single-byte damage is in values the header does not use
    assert disagreements == 0


def test_scan_survives_random_bytes() -> None:
    rng = random.Random(5)
    for _ in range(2000):
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 300)))
        for syntax in (ExplicitVRLittleEndian, ImplicitVRLittleEndian):
            header.scan(data, syntax, complete=bool(rng.randrange(2)))


def test_file_meta_round_trip_of_the_receiver() -> None:
    from gateway.imaging.cstore import file_meta

    meta = file_meta(
        sop_class_uid=CT,
        sop_instance_uid="1.2.3",
        transfer_syntax_uid=ExplicitVRLittleEndian,
        source_ae="ODD_AE",
    )
    read = pydicom.dcmread(io.BytesIO(meta + instance_body()), stop_before_pixels=True)
    assert isinstance(read.file_meta, FileMetaDataset)
    assert read.file_meta.MediaStorageSOPClassUID == CT
    assert read.file_meta.MediaStorageSOPInstanceUID == "1.2.3"
    assert read.file_meta.SourceApplicationEntityTitle == "ODD_AE"
    assert read.file_meta.FileMetaInformationGroupLength == len(meta) - 132 - 12


def instance_body() -> bytes:
    return split(instance())[1]
