"""Reading KOS manifests and planning RAD-69 batches."""

from __future__ import annotations

import pytest

from gateway.consumer.errors import ManifestError
from gateway.consumer.manifest import (
    InstanceRef,
    group_by_location,
    merge_instances,
    plan_batches,
    read_manifest,
)
from tests.unit.consumer.consumer_support import LOCATION_A, LOCATION_B, kos_bytes


def test_evidence_gives_every_instance_with_its_retrieve_location() -> None:
    data = kos_bytes(
        "1.2.3",
        [("1.2.3.1", LOCATION_A, ["1.1", "1.2"]), ("1.2.3.2", LOCATION_B, ["2.1"])],
        accession="A-7",
    )
    manifest = read_manifest(data)
    assert manifest.study_instance_uid == "1.2.3"
    assert manifest.accession_numbers == ("A-7",)
    assert manifest.patient_id == "PAT-1"
    assert [
        (r.series_instance_uid, r.sop_instance_uid, r.retrieve_location_uid)
        for r in manifest.instances
    ] == [
        ("1.2.3.1", "1.1", LOCATION_A),
        ("1.2.3.1", "1.2", LOCATION_A),
        ("1.2.3.2", "2.1", LOCATION_B),
    ]
    assert manifest.instances[0].retrieve_ae_title == "SOURCE"
    assert manifest.instances[0].sop_class_uid == "1.2.840.10008.5.1.4.1.1.2"
    assert manifest.study_uids == ("1.2.3",)


def test_a_manifest_of_the_imaging_source_reads_back() -> None:
    from gateway.imaging import kos, synthetic

    spec = synthetic.StudySpec(series=(synthetic.SeriesSpec(modality="CT", count=3),))
    instances = synthetic.make_study(spec)
    refs = [
        kos.Reference(
            sop_class_uid=str(ds.SOPClassUID),
            sop_instance_uid=str(ds.SOPInstanceUID),
            series_instance_uid=str(ds.SeriesInstanceUID),
        )
        for ds in instances
    ]
    ds = kos.build_manifest(
        instances[0],
        refs,
        kos.ManifestIds(sop_instance_uid="1.2.9", series_instance_uid="1.2.9.1"),
        retrieve_location_uid=LOCATION_A,
        retrieve_ae_title="XDSI_SOURCE",
    )
    manifest = read_manifest(kos.encode_part10(ds))
    assert [r.sop_instance_uid for r in manifest.instances] == [
        str(d.SOPInstanceUID) for d in instances
    ]
    assert {r.retrieve_location_uid for r in manifest.instances} == {LOCATION_A}
    assert manifest.accession_numbers == (spec.accession_number,)


def test_a_missing_location_is_kept_as_none() -> None:
    manifest = read_manifest(kos_bytes("1.2.3", [("1.2.3.1", None, ["1.1"])]))
    assert manifest.instances[0].retrieve_location_uid is None
    with pytest.raises(ValueError):
        manifest.instances[0].imaging_request()


@pytest.mark.parametrize(
    "data, message",
    [
        (b"not dicom at all", "not a readable DICOM"),
        (
            kos_bytes("1.2", [("1.2.1", LOCATION_A, ["1"])], sop_class="1.2.840.10008.5.1.4.1.1.2"),
            "not a KOS",
        ),
        (kos_bytes("1.2", []), "lists no instance"),
    ],
)
def test_unusable_manifests_are_refused(data: bytes, message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        read_manifest(data)


def _ref(uid: str, series: str, location: str | None = LOCATION_A) -> InstanceRef:
    return InstanceRef(
        study_instance_uid="1.2",
        series_instance_uid=series,
        sop_instance_uid=uid,
        sop_class_uid="1.2.840.10008.5.1.4.1.1.2",
        retrieve_location_uid=location,
    )


def test_batches_are_per_location_bounded_and_keep_series_together() -> None:
    refs = [
        _ref("1", "s1"),
        _ref("2", "s2"),
        _ref("3", "s1"),
        _ref("4", "s2", LOCATION_B),
        _ref("5", "s1"),
        _ref("6", "s3", None),
    ]
    batches = plan_batches(refs, 2)
    assert [(loc, [r.sop_instance_uid for r in batch]) for loc, batch in batches] == [
        (LOCATION_A, ["1", "3"]),
        (LOCATION_A, ["5", "2"]),
        (LOCATION_B, ["4"]),
    ]
    assert list(group_by_location(refs)) == [LOCATION_A, LOCATION_B, None]
    with pytest.raises(ValueError):
        plan_batches(refs, 0)


def test_merge_lists_each_instance_once() -> None:
    first = read_manifest(kos_bytes("1.2", [("1.2.1", LOCATION_A, ["1", "2"])]))
    second = read_manifest(kos_bytes("1.2", [("1.2.1", LOCATION_B, ["2", "3"])]))
    merged = merge_instances([first, second])
    assert [(r.sop_instance_uid, r.retrieve_location_uid) for r in merged] == [
        ("1", LOCATION_A),
        ("2", LOCATION_A),
        ("3", LOCATION_B),
    ]
