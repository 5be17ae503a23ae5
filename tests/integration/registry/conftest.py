"""Registry fixtures: a migrated database (SQLite and PostgreSQL), a registry with two patients
fed, and a hand-moved clock."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gateway.hl7.adt import Demographics
from gateway.registry.database import Database
from gateway.registry.iti42 import Registry
from tests.factories import PATIENT_ID
from tests.integration.registry.builders import OTHER_PATIENT_ID
from tests.integration.registry.support import Clock


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    database.upgrade()
    try:
        yield database
    finally:
        database.dispose()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def registry(db: Database, clock: Clock) -> Registry:
    """A registry that knows PATIENT_ID and OTHER_PATIENT_ID (fed as by ITI-8)."""
    reg = Registry(db, clock=clock)
    reg.patients.register(PATIENT_ID, Demographics(family_name="Doe"), other_ids=[])
    reg.patients.register(OTHER_PATIENT_ID, Demographics(family_name="Roe"), other_ids=[])
    return reg
