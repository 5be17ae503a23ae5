"""Fixtures: an in-process gateway on 127.0.0.1:0 whose /xds/repository is a Repository backed by
a fake registry (see ``repo_support``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.repository.repo_support import FakeRegistry, RepositorySystem, start_system


@pytest.fixture
def registry() -> FakeRegistry:
    return FakeRegistry()


@pytest.fixture
def system(tmp_path: Path, registry: FakeRegistry) -> Iterator[RepositorySystem]:
    running = start_system(tmp_path / "data", registry)
    try:
        yield running
    finally:
        running.stop()
