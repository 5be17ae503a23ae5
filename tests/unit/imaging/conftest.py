"""Fixtures of the imaging unit tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.imaging.source import ImagingSource
from tests.unit.imaging.support import RecordingRepository, close_sources, make_source


@pytest.fixture(autouse=True)
def _close_sources() -> Iterator[None]:
    """Every source a test made ends like a stopped process: its lease goes."""
    yield
    close_sources()


@pytest.fixture
def repository() -> RecordingRepository:
    return RecordingRepository()


@pytest.fixture
def source(tmp_path: Path, repository: RecordingRepository) -> ImagingSource:
    """A source that is never started (no sockets): ingest, publish and retrieve directly."""
    return make_source(tmp_path, repository)
