"""Outbound SOAP calls are audited on the initiator side: ITI-42 (repository -> remote registry)
and RAD-68 (imaging source -> remote repository), also when the peer cannot be reached."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from gateway.errors import XDSRegistryNotAvailable
from gateway.imaging.rad68 import PublishError, SoapRepositoryClient
from gateway.metadata.ebrim import build_submit_objects_request
from gateway.repository.registry_client import SoapRegistryClient
from tests.integration.repository.repo_support import provide_body, submission_with


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def record_client_call(self, transaction: str, **kwargs: Any) -> None:
        self.calls.append((transaction, kwargs))


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # closed again when the block ends: refused


def test_iti42_to_an_unreachable_registry_is_audited_as_failure() -> None:
    submission = submission_with([b"x"])
    trail = Recorder()
    url = f"http://127.0.0.1:{closed_port()}/xds/registry"
    client = SoapRegistryClient(url, timeout=5, trail=trail)
    with pytest.raises(XDSRegistryNotAvailable):
        client.register(build_submit_objects_request(submission))
    [(transaction, call)] = trail.calls
    assert transaction == "ITI-42"
    assert call["endpoint"] == url and call["outcome"] == "Failure"
    assert call["facts"]["patient_ids"] == [submission.submission_set.patient_id]
    assert call["facts"]["submission_set_unique_id"] == submission.submission_set.unique_id


def test_rad68_to_an_unreachable_repository_is_audited_as_failure() -> None:
    submission = submission_with([b"x"])
    body, attachments = provide_body(submission, [b"x"])
    trail = Recorder()
    url = f"http://127.0.0.1:{closed_port()}/xds/repository"
    client = SoapRepositoryClient(url, timeout=5, trail=trail)
    with pytest.raises(PublishError):
        client.provide_and_register(body, attachments)
    [(transaction, call)] = trail.calls
    assert (transaction, call["outcome"]) == ("RAD-68", "Failure")
    assert call["facts"]["submission_set_unique_id"] == submission.submission_set.unique_id
