"""The study fetch without sockets: a scripted imaging source behind the source factory."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import pytest

from gateway.consumer.fetch import FetchRequest, StudyFetcher, entry_matches, match_documents
from gateway.consumer.manifest import Manifest
from gateway.consumer.settings import ConsumerSettings
from gateway.consumer.store import FolderDestination
from gateway.imaging import synthetic
from gateway.metadata.datatypes import Code
from gateway.metadata.model import DocumentEntry
from gateway.metadata.retrieve import (
    DocumentResponse,
    RegistryError,
    RetrieveDocumentSetResponse,
    Status,
)
from gateway.soap.message import Attachment
from tests.unit.consumer.consumer_support import LOCATION_A, PATIENT, FakeSource, study

SOURCE_URL = "http://source.invalid/xdsi/source"


def fixture(
    tmp_path: Path, count: int, *, series: int = 1, **settings: object
) -> tuple[StudyFetcher, FakeSource, Manifest, FolderDestination]:
    instances, refs = study(count, series)
    source = FakeSource({str(ds.SOPInstanceUID): synthetic.encode(ds) for ds in instances})
    consumer = ConsumerSettings(imaging_sources={LOCATION_A: SOURCE_URL}, **settings)  # type: ignore[arg-type]
    destination = FolderDestination(tmp_path / "out")
    fetcher = StudyFetcher(
        consumer,
        destination,
        progress=io.StringIO(),
        retry_delay=0,
        source_factory=lambda url: source if url == SOURCE_URL else None,  # type: ignore[return-value]
    )
    manifest = Manifest(
        sop_instance_uid="9.9",
        study_instance_uid=refs[0].study_instance_uid,
        patient_id="PAT-1",
        patient_name="",
        accession_numbers=(),
        instances=tuple(refs),
    )
    return fetcher, source, manifest, destination


def fetch(fetcher: StudyFetcher, manifest: Manifest):  # type: ignore[no-untyped-def]
    return fetcher.fetch_study(
        FetchRequest(patient_id=PATIENT, transfer_syntaxes=("1.2.840.10008.1.2.1",)),
        manifest.study_instance_uid,
        [manifest],
    )


def test_every_instance_is_fetched_in_bounded_batches(tmp_path: Path) -> None:
    fetcher, source, manifest, destination = fixture(tmp_path, 23, series=2, batch_size=5)
    outcome = fetch(fetcher, manifest)
    assert outcome.fetched == 46 and outcome.present == 0 and not outcome.missing
    assert outcome.requests == len(source.calls) == 10
    assert all(len(call) <= 5 for call in source.calls)
    assert {s for call in source.syntaxes for s in call} == {"1.2.840.10008.1.2.1"}
    assert destination.existing(PATIENT, list(manifest.instances)) == {
        r.sop_instance_uid for r in manifest.instances
    }
    assert outcome.bytes == sum(len(b) for b in source.files.values())


def test_requests_in_flight_never_exceed_parallel_requests(tmp_path: Path) -> None:
    fetcher, source, manifest, _ = fixture(tmp_path, 40, batch_size=2, parallel_requests=3)
    gate = threading.Event()
    source.gate = gate
    threading.Timer(0.2, gate.set).start()  # let requests pile up against the bound first
    outcome = fetch(fetcher, manifest)
    assert outcome.fetched == 40
    assert source.max_in_flight == 3


def test_a_rerun_skips_what_is_present_and_asks_only_for_the_rest(tmp_path: Path) -> None:
    fetcher, source, manifest, destination = fixture(tmp_path, 10, batch_size=4)
    source.withhold = {r.sop_instance_uid for r in manifest.instances[6:]}
    first = fetch(fetcher, manifest)
    assert first.fetched == 6 and len(first.missing) == 4
    source.withhold = set()
    source.calls.clear()
    second = fetch(fetcher, manifest)
    assert (second.present, second.fetched, second.missing) == (6, 4, {})
    asked = [uid for call in source.calls for uid in call]
    assert sorted(asked) == sorted(r.sop_instance_uid for r in manifest.instances[6:])
    third = fetch(fetcher, manifest)
    assert (third.present, third.fetched, third.requests) == (10, 0, 0)
    assert destination.finish() == []


def test_a_corrupt_instance_is_asked_for_again(tmp_path: Path) -> None:
    fetcher, source, manifest, _ = fixture(tmp_path, 6, batch_size=10)
    bad = manifest.instances[2].sop_instance_uid
    source.corrupt_once = {bad}
    outcome = fetch(fetcher, manifest)
    assert outcome.fetched == 6 and not outcome.missing
    assert source.calls[1] == [bad]  # the retry asks only for it


def test_instances_that_never_come_are_reported_after_the_retries(tmp_path: Path) -> None:
    fetcher, source, manifest, _ = fixture(tmp_path, 4, retries=2)
    gone = manifest.instances[1].sop_instance_uid
    source.withhold = {gone}
    outcome = fetch(fetcher, manifest)
    assert outcome.fetched == 3
    assert list(outcome.missing) == [gone]
    assert "XDSDocumentUniqueIdError" in outcome.missing[gone]
    assert len(source.calls) == 3  # first try + 2 retries


def test_a_peer_failure_is_retried_then_succeeds(tmp_path: Path) -> None:
    fetcher, source, manifest, _ = fixture(tmp_path, 4, batch_size=2, retries=1)
    source.fail_calls = 2
    outcome = fetch(fetcher, manifest)
    assert outcome.fetched == 4 and not outcome.missing and outcome.requests == 4


def test_unknown_locations_and_missing_locations_are_reported_without_requests(
    tmp_path: Path,
) -> None:
    import dataclasses

    fetcher, source, manifest, _ = fixture(tmp_path, 3)
    refs = list(manifest.instances)
    refs[0] = dataclasses.replace(refs[0], retrieve_location_uid="7.7.7")
    refs[1] = dataclasses.replace(refs[1], retrieve_location_uid=None)
    manifest = dataclasses.replace(manifest, instances=tuple(refs))
    outcome = fetch(fetcher, manifest)
    assert outcome.fetched == 1
    assert (
        "no RAD-69 endpoint for Retrieve Location UID 7.7.7"
        in outcome.missing[refs[0].sop_instance_uid]
    )
    assert "names no Retrieve Location UID" in outcome.missing[refs[1].sop_instance_uid]
    assert source.calls == [[refs[2].sop_instance_uid]]


def test_progress_shows_instances_and_bytes(tmp_path: Path) -> None:
    fetcher, _, manifest, _ = fixture(tmp_path, 5)
    stream = io.StringIO()
    fetcher.progress_stream = stream
    fetch(fetcher, manifest)
    line = stream.getvalue().strip()
    assert line.startswith("study ") and "5/5 instances" in line and line.endswith("B/s")


def test_match_documents_discards_unrequested_and_names_the_reason(tmp_path: Path) -> None:
    _, refs = study(2)
    extra = Attachment.from_bytes(b"x")
    result = RetrieveDocumentSetResponse(
        status=Status.PARTIAL_SUCCESS,
        errors=[
            RegistryError(
                code="XDSRepositoryError", context=f"cannot convert {refs[1].sop_instance_uid}"
            )
        ],
        documents=[],
    )
    result.documents = [
        DocumentResponse(
            repository_unique_id="x",
            document_unique_id=refs[0].sop_instance_uid,
            mime_type="",
            attachment=extra,
        ),
        DocumentResponse(
            repository_unique_id="x", document_unique_id="1.999", mime_type="", attachment=extra
        ),
    ]
    items, reasons = match_documents(refs, result)
    assert [r.sop_instance_uid for r, _ in items] == [refs[0].sop_instance_uid]
    assert "cannot convert" in reasons[refs[1].sop_instance_uid]


def test_entries_are_matched_on_reference_ids() -> None:
    kos = Code("1.2.840.10008.5.1.4.1.1.88.59", "1.2.840.10008.2.6.1")
    entry = DocumentEntry(
        entry_uuid="urn:uuid:1",
        format_code=kos,
        reference_id_list=[
            "1.2.3^^^^urn:ihe:iti:xds:2016:studyInstanceUID",
            "A7^^^&1.2&ISO^urn:ihe:iti:xds:2013:accession",
        ],
    )
    assert entry_matches(entry, FetchRequest(patient_id=PATIENT, study_uid="1.2.3", accession="A7"))
    assert not entry_matches(entry, FetchRequest(patient_id=PATIENT, study_uid="1.2.4"))
    assert not entry_matches(entry, FetchRequest(patient_id=PATIENT, accession="B1"))
    other = DocumentEntry(entry_uuid="urn:uuid:2", format_code=Code("x", "y"))
    assert not entry_matches(other, FetchRequest(patient_id=PATIENT))
    bare = DocumentEntry(entry_uuid="urn:uuid:3", format_code=kos)
    assert entry_matches(bare, FetchRequest(patient_id=PATIENT, study_uid="1.2.3"))


def test_transient_failures_of_single_requests_are_retried(tmp_path: Path) -> None:
    from gateway.consumer.errors import PeerError

    fetcher, *_ = fixture(tmp_path, 1, retries=2)
    calls: list[int] = []

    def flaky(failures: int, transient: bool):  # type: ignore[no-untyped-def]
        def request() -> str:
            calls.append(1)
            if len(calls) <= failures:
                raise PeerError("cut off", transient=transient)
            return "answer"

        return request

    assert fetcher._retrying("ITI-18", flaky(2, True)) == "answer" and len(calls) == 3
    calls.clear()
    with pytest.raises(PeerError):
        fetcher._retrying("ITI-18", flaky(3, True))
    assert len(calls) == 3  # the first request and two retries
    calls.clear()
    with pytest.raises(PeerError):
        fetcher._retrying("ITI-43", flaky(1, False))  # a fault or a bad body: not repeated
    assert len(calls) == 1


class _Narrow(FolderDestination):
    """A destination taking the SOP Classes of ``takes`` only in those syntaxes."""

    def __init__(self, root: Path, takes: dict[str, tuple[str, ...]] | Exception) -> None:
        super().__init__(root)
        self.takes = takes
        self.asked: list[tuple[list[str], list[str]]] = []

    def transfer_syntaxes(self, sop_classes, requested):  # type: ignore[no-untyped-def]
        self.asked.append((list(sop_classes), list(requested)))
        if isinstance(self.takes, Exception):
            raise self.takes
        return {c: self.takes.get(c, tuple(requested)) for c in sop_classes}

    def describe(self) -> str:
        return "PACS TEST"


EXPLICIT, IMPLICIT = "1.2.840.10008.1.2.1", "1.2.840.10008.1.2"
CT = "1.2.840.10008.5.1.4.1.1.2"


def narrowed(
    tmp_path: Path, takes: dict[str, tuple[str, ...]] | Exception, **settings: object
) -> tuple[StudyFetcher, FakeSource, Manifest, _Narrow]:
    fetcher, source, manifest, _ = fixture(tmp_path, 4, **settings)
    destination = _Narrow(tmp_path / "pacs", takes)
    fetcher.destination = destination
    return fetcher, source, manifest, destination


def fetch_both(fetcher: StudyFetcher, manifest: Manifest):  # type: ignore[no-untyped-def]
    return fetcher.fetch_study(
        FetchRequest(patient_id=PATIENT, transfer_syntaxes=(EXPLICIT, IMPLICIT)),
        manifest.study_instance_uid,
        [manifest],
    )


def test_rad69_lists_only_what_the_destination_takes(tmp_path: Path) -> None:
    fetcher, source, manifest, destination = narrowed(tmp_path, {CT: (IMPLICIT,)})
    outcome = fetch_both(fetcher, manifest)
    assert outcome.fetched == 4 and not outcome.missing
    assert destination.asked == [([CT], [EXPLICIT, IMPLICIT])]  # once per study, per SOP Class
    assert source.syntaxes == [(IMPLICIT,)]


def test_an_instance_the_source_cannot_give_in_those_syntaxes_is_not_asked_again(
    tmp_path: Path,
) -> None:
    fetcher, source, manifest, _ = narrowed(tmp_path, {CT: (IMPLICIT,)}, retries=3)
    gone = manifest.instances[1].sop_instance_uid
    source.withhold = {gone}
    outcome = fetch_both(fetcher, manifest)
    assert outcome.fetched == 3 and list(outcome.missing) == [gone]
    assert outcome.missing[gone].startswith(
        "PACS TEST takes CT Image Storage only in Implicit VR Little Endian; "
        "the imaging source answered: unknown"
    )
    assert outcome.unfixable == {gone}
    assert len(source.calls) == 1  # no retry: it would get the same answer


def test_a_sop_class_the_destination_takes_in_no_syntax_is_not_requested(tmp_path: Path) -> None:
    fetcher, source, manifest, _ = narrowed(tmp_path, {CT: ()})
    outcome = fetch_both(fetcher, manifest)
    assert outcome.fetched == 0 and source.calls == []
    assert set(outcome.missing.values()) == {
        "PACS TEST does not accept CT Image Storage in Explicit VR Little Endian, "
        "Implicit VR Little Endian"
    }
    assert outcome.unfixable == set(outcome.missing)


def test_a_destination_that_cannot_be_asked_leaves_everything_missing(tmp_path: Path) -> None:
    from gateway.consumer.errors import PeerError

    fetcher, source, manifest, _ = narrowed(tmp_path, PeerError("PACS TEST cannot be reached"))
    outcome = fetch_both(fetcher, manifest)
    assert source.calls == [] and len(outcome.missing) == 4
    assert set(outcome.missing.values()) == {"PACS TEST cannot be reached"}
    assert outcome.unfixable == set()  # it may be up next time
