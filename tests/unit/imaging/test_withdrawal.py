"""The imaging source's ITI-57 deprecation request (IOCM) and how it judges the answer."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway.errors import XDSMetadataUpdateError, XDSMetadataVersionError
from gateway.imaging.rad68 import PublishError
from gateway.imaging.withdrawal import InProcessRegistryUpdater, ManifestDeprecator
from gateway.metadata import ebrim
from gateway.metadata import vocabulary as v
from gateway.metadata.retrieve import build_registry_response, failure_body, status_for
from gateway.soap.message import Element
from gateway.soap.transactions import ITI_57

PATIENT = "P1^^^&1.3.6.1.4.1.21367.13.20.1000&ISO"


class Registry:
    """Answers every request with ``answer``; keeps what it was sent."""

    def __init__(self, answer: Element | Exception) -> None:
        self.answer = answer
        self.sent: list[Element] = []

    def __call__(self, request: Element) -> Element:
        self.sent.append(request)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def _deprecator(registry: Registry) -> ManifestDeprecator:
    return ManifestDeprecator(
        InProcessRegistryUpdater(registry),
        source_id="1.2.3",
        content_type_code=None,
        now=lambda: datetime(2026, 12, 6, 12, 0, tzinfo=UTC),
    )


def test_the_request_is_one_update_availability_status_association() -> None:
    registry = Registry(build_registry_response(status_for([])))
    _deprecator(registry)("urn:uuid:manifest", PATIENT)
    [request] = registry.sent
    submission = ebrim.parse_submit_objects_request(request)
    assert submission.submission_set is not None
    assert submission.submission_set.patient_id == PATIENT
    assert submission.submission_set.source_id == "1.2.3"
    assert not submission.document_entries and not submission.folders
    [change] = submission.associations
    assert change.association_type == v.UPDATE_AVAILABILITY_STATUS
    assert change.source_object == submission.submission_set.entry_uuid
    assert change.target_object == "urn:uuid:manifest"
    assert change.extra_slots == {
        "OriginalStatus": [v.STATUS_APPROVED],
        "NewStatus": [v.STATUS_DEPRECATED],
    }


def test_a_manifest_no_longer_approved_counts_as_deprecated() -> None:
    answer = failure_body(ITI_57, [XDSMetadataUpdateError("is Deprecated, not Approved")])
    _deprecator(Registry(answer))("urn:uuid:manifest", PATIENT)  # no error


@pytest.mark.parametrize(
    "answer",
    [
        failure_body(ITI_57, [XDSMetadataVersionError("not the latest version")]),
        RuntimeError("database gone"),
    ],
)
def test_other_failures_leave_the_study_to_publish_again(answer: Element | Exception) -> None:
    with pytest.raises(PublishError):
        _deprecator(Registry(answer))("urn:uuid:manifest", PATIENT)


def test_each_request_is_audited_as_iti57_with_its_outcome() -> None:
    recorded: list[object] = []

    class Trail:
        def record_client_call(self, transaction: str, **kwargs: object) -> None:
            recorded.append((transaction, kwargs["endpoint"], kwargs["outcome"]))

    deprecator = _deprecator(Registry(build_registry_response(status_for([]))))
    deprecator.trail = Trail()
    deprecator("urn:uuid:manifest", PATIENT)
    deprecator.registry = InProcessRegistryUpdater(Registry(RuntimeError("gone")))
    with pytest.raises(PublishError):
        deprecator("urn:uuid:manifest", PATIENT)
    endpoint = InProcessRegistryUpdater.endpoint
    assert recorded == [("ITI-57", endpoint, "Success"), ("ITI-57", endpoint, "Failure")]
