"""The instance and study index (gateway.imaging.index) on SQLite and, when configured,
PostgreSQL: upserts, the study state machine, claims, and concurrent writers."""

from __future__ import annotations

import dataclasses
import threading
import uuid
from collections.abc import Iterator

import pytest

from gateway.database.leases import Lease
from gateway.imaging.index import (
    HELD,
    PUBLISHED,
    PUBLISHING,
    RECEIVING,
    ImagingIndex,
    InstanceRecord,
    Manifest,
    ManifestInFlight,
    PendingManifest,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def index(db_url: str, clock: Clock) -> Iterator[ImagingIndex]:
    index = ImagingIndex.from_url(db_url, clock=clock)
    try:
        yield index
    finally:
        index.close()


def record(sop: str, study: str = "1.1", series: str = "1.1.1", **extra: object) -> InstanceRecord:
    values: dict[str, object] = {
        "sop_instance_uid": sop,
        "sop_class_uid": "1.2.840.10008.5.1.4.1.1.2",
        "study_instance_uid": study,
        "series_instance_uid": series,
        "transfer_syntax_uid": "1.2.840.10008.1.2.1",
        "path": f"{study}/{series}/{sop}.dcm",
        "size": 100,
    }
    values.update(extra)
    return InstanceRecord(**values)  # type: ignore[arg-type]


MANIFEST = Manifest(
    sop_instance_uid="2.25.1", series_instance_uid="2.25.2", entry_uuid="urn:uuid:e", patient_id="P"
)


def publish(index: ImagingIndex, study: str = "1.1") -> None:
    assert index.claim(study, (RECEIVING,)) is not None
    index.mark_published(study, MANIFEST)


def test_new_instance_creates_a_receiving_study(index: ImagingIndex, clock: Clock) -> None:
    assert index.record_instance(record("1.1.1.1", modality="CT", series_number=2)) is None
    stored = index.instance("1.1.1.1")
    assert stored is not None and stored.modality == "CT" and stored.series_number == 2
    assert stored.received_at == 1000.0
    study = index.study("1.1")
    assert study is not None
    assert (study.state, study.first_received, study.last_received) == (RECEIVING, 1000, 1000)
    assert study.publish_count == 0


def test_instances_are_listed_in_series_and_instance_order(index: ImagingIndex) -> None:
    index.record_instance(record("1.1.2.2", series="1.1.2", series_number=2, instance_number=2))
    index.record_instance(record("1.1.2.1", series="1.1.2", series_number=2, instance_number=1))
    index.record_instance(record("1.1.1.1", series="1.1.1", series_number=1, instance_number=1))
    assert [r.sop_instance_uid for r in index.instances_of_study("1.1")] == [
        "1.1.1.1",
        "1.1.2.1",
        "1.1.2.2",
    ]


def test_duplicate_replaces_the_row_and_leaves_a_published_study_alone(
    index: ImagingIndex, clock: Clock
) -> None:
    index.record_instance(record("1.1.1.1"))
    publish(index)
    clock.now = 2000.0
    old = index.record_instance(record("1.1.1.1", transfer_syntax_uid="1.2.840.10008.1.2", size=7))
    assert old is not None and old.transfer_syntax_uid == "1.2.840.10008.1.2.1"
    stored = index.instance("1.1.1.1")
    assert stored is not None and (stored.transfer_syntax_uid, stored.size) == (
        "1.2.840.10008.1.2",
        7,
    )
    study = index.study("1.1")
    assert study is not None and study.state == PUBLISHED and study.last_received == 1000.0


def test_duplicate_extends_a_study_still_receiving(index: ImagingIndex, clock: Clock) -> None:
    index.record_instance(record("1.1.1.1"))
    clock.now = 1005.0
    index.record_instance(record("1.1.1.1"))
    study = index.study("1.1")
    assert study is not None and study.last_received == 1005.0


def test_new_instance_after_publication_reopens_the_study(
    index: ImagingIndex, clock: Clock
) -> None:
    index.record_instance(record("1.1.1.1"))
    publish(index)
    clock.now = 3000.0
    index.record_instance(record("1.1.1.2"))
    study = index.study("1.1")
    assert study is not None
    assert (study.state, study.last_received) == (RECEIVING, 3000.0)
    assert study.manifest_entry_uuid == "urn:uuid:e"  # kept for the RPLC


def test_instance_moved_to_another_study_reopens_both(index: ImagingIndex) -> None:
    index.record_instance(record("9.9", study="1.1"))
    publish(index, "1.1")
    old = index.record_instance(record("9.9", study="2.2", series="2.2.1"))
    assert old is not None and old.study_instance_uid == "1.1"
    assert index.states(["1.1", "2.2"]) == {"1.1": RECEIVING, "2.2": RECEIVING}
    assert index.instances_of_study("1.1") == []


def test_held_study_stays_held_when_instances_arrive(index: ImagingIndex) -> None:
    index.record_instance(record("1.1.1.1"))
    assert index.claim("1.1", (RECEIVING,)) is not None
    index.mark_held("1.1", "patient unknown", retry_seconds=10)
    index.record_instance(record("1.1.1.2"))
    study = index.study("1.1")
    assert study is not None and study.state == HELD and study.held_reason == "patient unknown"


def test_claim_is_taken_once_and_respects_idle_time(index: ImagingIndex, clock: Clock) -> None:
    index.record_instance(record("1.1.1.1"))
    assert index.claim("1.1", (RECEIVING,), idle_seconds=5) is None  # not quiet yet
    clock.now = 1005.0
    claimed = index.claim("1.1", (RECEIVING,), idle_seconds=5)
    assert claimed is not None and claimed.state == PUBLISHING and claimed.claimed_at == 1005.0
    assert index.claim("1.1", (RECEIVING, PUBLISHED, HELD)) is None
    assert index.claim("unknown", (RECEIVING,)) is None


def test_instance_arriving_while_publishing_keeps_the_study_receiving(
    index: ImagingIndex,
) -> None:
    index.record_instance(record("1.1.1.1"))
    assert index.claim("1.1", (RECEIVING,)) is not None
    index.record_instance(record("1.1.1.2"))  # arrives during the publication
    index.mark_published("1.1", MANIFEST)
    study = index.study("1.1")
    assert study is not None
    assert study.state == RECEIVING  # another (replacing) manifest will follow
    assert (study.manifest_sop_instance_uid, study.publish_count) == ("2.25.1", 1)


def test_failure_gives_the_study_back_after_a_delay(index: ImagingIndex, clock: Clock) -> None:
    index.record_instance(record("1.1.1.1"))
    assert index.claim("1.1", (RECEIVING,)) is not None
    index.mark_failed("1.1", "repository down", retry_seconds=60)
    study = index.study("1.1")
    assert study is not None and (study.state, study.last_error) == (RECEIVING, "repository down")
    assert index.due_studies(RECEIVING, 0) == []
    clock.now = 1060.0
    assert index.due_studies(RECEIVING, 0) == ["1.1"]


def test_due_studies_are_the_quiet_ones_oldest_first(index: ImagingIndex, clock: Clock) -> None:
    index.record_instance(record("1.1.1.1", study="1.1"))
    clock.now = 1010.0
    index.record_instance(record("2.2.1.1", study="2.2"))
    clock.now = 1020.0
    index.record_instance(record("3.3.1.1", study="3.3"))
    assert index.due_studies(RECEIVING, 10) == ["1.1", "2.2"]


def other_process(index: ImagingIndex, clock: Clock, *, alive: bool) -> ImagingIndex:
    """An index of another gateway process on the same database: with a lease (alive) or
    with none (its process is gone)."""
    owner = Lease(index.engine).acquire().owner if alive else uuid.uuid4().hex
    return ImagingIndex(index.engine, owner=owner, clock=clock)


def test_a_live_process_keeps_its_claim_however_old(index: ImagingIndex, clock: Clock) -> None:
    index.record_instance(record("1.1.1.1"))
    assert index.claim("1.1", (RECEIVING,)) is not None
    clock.now += 10**6  # an hour, a week: a live owner's claim is never given away
    other = other_process(index, clock, alive=True)
    assert other.release_orphaned_claims() == 0
    assert other.claim("1.1", (RECEIVING, PUBLISHED, HELD)) is None
    study = index.study("1.1")
    assert study is not None and (study.state, study.claimed_by) == (PUBLISHING, index.owner)


def test_a_gone_process_claim_is_taken_back(index: ImagingIndex, clock: Clock) -> None:
    index.record_instance(record("1.1.1.1"))
    gone = other_process(index, clock, alive=False)
    assert gone.claim("1.1", (RECEIVING,)) is not None
    assert index.release_orphaned_claims() == 1
    claimed = index.claim("1.1", (RECEIVING,))
    assert claimed is not None and claimed.claimed_by == index.owner
    gone.mark_failed("1.1", "late answer of the gone process", retry_seconds=0)
    study = index.study("1.1")  # the gone process's late word does not end our claim
    assert study is not None and (study.state, study.claimed_by) == (PUBLISHING, index.owner)


def test_a_clean_stop_frees_the_claims_at_once(db_url: str, clock: Clock) -> None:
    first = ImagingIndex.from_url(db_url, clock=clock)
    second = ImagingIndex.from_url(db_url, clock=clock)
    try:
        first.record_instance(record("1.1.1.1"))
        assert first.claim("1.1", (RECEIVING,)) is not None
        assert second.release_orphaned_claims() == 0
        first.close()  # lease row deleted
        assert second.release_orphaned_claims() == 1
    finally:
        first.close()
        second.close()


def pending(study: str = "1.1", uid: str = "2.25.9") -> PendingManifest:
    return PendingManifest(
        study_instance_uid=study,
        sop_instance_uid=uid,
        series_instance_uid="2.25.2",
        entry_uuid="urn:uuid:p",
        patient_id="P^^^&1.2.3&ISO",
        replaces=None,
        instance_count=1,
        instances_digest="d" * 64,
        content_id="kos@test",
        request=b"<xdsb:ProvideAndRegisterDocumentSetRequest/>",
        kos=bytes(range(256)) * 40,  # binary, 10 KiB
    )


def test_pending_manifest_is_kept_until_settled(index: ImagingIndex, clock: Clock) -> None:
    index.record_instance(record("1.1.1.1"))
    assert index.claim("1.1", (RECEIVING,)) is not None
    assert index.pending("1.1") is None
    index.save_pending(pending())
    index.save_pending(pending(uid="2.25.10"))  # one pending manifest per study: the last
    kept = index.pending("1.1")
    assert kept is not None and kept.sop_instance_uid == "2.25.10"
    assert (kept.kos, kept.request, kept.created_at) == (pending().kos, pending().request, 1000.0)
    index.mark_failed("1.1", "answer lost", retry_seconds=0, forget_pending=False)
    assert index.pending("1.1") is not None  # still unsettled: sent again next time
    assert index.claim("1.1", (RECEIVING,)) is not None
    index.mark_failed("1.1", "refused", retry_seconds=0)
    assert index.pending("1.1") is None  # refused: forgotten
    assert index.claim("1.1", (RECEIVING,)) is not None
    index.save_pending(pending())
    index.mark_published("1.1", kept.manifest, reopen=True)
    study = index.study("1.1")
    assert study is not None and study.state == RECEIVING  # reopened: a replacement follows
    assert study.manifest_sop_instance_uid == "2.25.10" and index.pending("1.1") is None


def test_pending_manifest_of_a_live_process_is_left_alone(
    index: ImagingIndex, clock: Clock
) -> None:
    index.record_instance(record("1.1.1.1"))
    assert index.claim("1.1", (RECEIVING,)) is not None
    assert index.save_pending(pending())
    index.record_instance(record("1.1.1.2"))  # arrives while the manifest is on its way
    other = other_process(index, clock, alive=True)
    assert other.claim("1.1", (RECEIVING,)) is not None
    with pytest.raises(ManifestInFlight):
        other.take_pending("1.1")  # never sent twice at once
    assert not other.save_pending(pending(uid="2.25.77"))  # nor a second manifest beside it
    other.give_back("1.1", retry_seconds=0)
    kept = index.pending("1.1")
    assert kept is not None and kept.sop_instance_uid == "2.25.9"


def test_pending_manifest_of_a_gone_process_is_taken_over(
    index: ImagingIndex, clock: Clock
) -> None:
    index.record_instance(record("1.1.1.1"))
    gone = other_process(index, clock, alive=False)
    assert gone.claim("1.1", (RECEIVING,)) is not None
    assert gone.save_pending(pending())
    assert index.release_orphaned_claims() == 1
    assert index.claim("1.1", (RECEIVING,)) is not None
    taken = index.take_pending("1.1")
    assert taken is not None and (taken.sop_instance_uid, taken.kos) == ("2.25.9", pending().kos)
    gone.mark_published("1.1", taken.manifest)  # the gone one's late words change no claim
    assert index.pending("1.1") is not None  # and forget no pending manifest but its own
    index.mark_published("1.1", taken.manifest)
    study = index.study("1.1")
    assert study is not None and study.state == PUBLISHED and index.pending("1.1") is None


def test_new_manifest_only_replaces_the_last_registered_one(
    index: ImagingIndex, clock: Clock
) -> None:
    index.record_instance(record("1.1.1.1"))
    other = other_process(index, clock, alive=True)
    assert index.claim("1.1", (RECEIVING,)) is not None
    index.record_instance(record("1.1.1.2"))
    assert other.claim("1.1", (RECEIVING,)) is not None  # claims change hands ...
    assert not index.save_pending(pending())  # ... and the former holder sends nothing new
    assert other.save_pending(pending(uid="2.25.20"))
    other.mark_published("1.1", MANIFEST)  # registered: entry urn:uuid:e
    assert other.claim("1.1", (RECEIVING, PUBLISHED)) is not None
    assert not other.save_pending(pending(uid="2.25.21"))  # replaces None: stale
    assert other.save_pending(dataclasses.replace(pending(uid="2.25.22"), replaces="urn:uuid:e"))


def run_threads(targets: list[object]) -> list[BaseException]:
    errors: list[BaseException] = []

    def guarded(target: object) -> None:
        try:
            target()  # type: ignore[operator]
        except BaseException as exc:  # pragma: no cover - reported by the caller
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(t,)) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_concurrent_writers(index: ImagingIndex) -> None:
    """Eight threads (eight associations) index 25 instances each into one study."""

    def writer(worker: int) -> object:
        return lambda: [
            index.record_instance(record(f"1.1.{worker}.{n}", series=f"1.1.{worker}"))
            for n in range(25)
        ]

    assert run_threads([writer(n) for n in range(8)]) == []
    assert len(index.instances_of_study("1.1")) == 200
    assert index.states(["1.1"]) == {"1.1": RECEIVING}


def test_concurrent_claims_have_one_winner(index: ImagingIndex) -> None:
    index.record_instance(record("1.1.1.1"))
    claims: list[object] = []
    errors = run_threads([lambda: claims.append(index.claim("1.1", (RECEIVING,)))] * 8)
    assert errors == []
    assert sum(1 for claim in claims if claim is not None) == 1
