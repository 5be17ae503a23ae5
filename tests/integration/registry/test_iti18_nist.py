"""The NIST XDS Toolkit stored-query test plans, run end to end against the gateway's registry.

The plans' own preload (12346, 12374 after the feeds 15817/15818) goes through ITI-8 (MLLP) and
ITI-42 (SOAP) exactly as the toolkit sends it; then every ITI-18 plan of the ``stored_query`` list
(11897-11909, 12368, 15803) queries over SOAP and checks status, error codes and contents.

The registry's clock runs an hour behind: 11899/in_updatetime asks for Folders updated before
``$now$`` (exclusive, ITI TF-2 §3.18.4.1.2.3.7.3), and a preload in the same second as the query
would sit on that edge; a tester's preload is minutes older.

Skipped without ``../shared/conformance``. Standard: ITI TF-2 §3.18 (rev. 19.0).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.app import Gateway
from gateway.config import load_settings
from gateway.hl7.feed import PatientFeedHandler
from gateway.hl7.mllp import MLLPServer
from gateway.registry import iti42
from gateway.registry.database import Database
from gateway.registry.iti18 import StoredQueries
from gateway.soap.dispatch import SoapApplication
from gateway.soap.transactions import ENDPOINTS, ITI_18, REGISTRY_PATH
from tests.conformance.nist import catalog
from tests.conformance.nist.context import DEFAULT_AFFINITY_DOMAIN
from tests.conformance.nist.execution import Endpoints, RunConfig
from tests.conformance.nist.runner import Runner

pytestmark = pytest.mark.skipif(
    not catalog.TESTKIT.is_dir() or not catalog.SPEC.is_dir(),
    reason=f"NIST testkit/spec not found under {catalog.SHARED_CONFORMANCE}",
)


def _an_hour_ago() -> datetime:
    return datetime.now(UTC) - timedelta(hours=1)


@pytest.fixture
def registry_endpoints(db_url: str, tmp_path: Path) -> Iterator[Endpoints]:
    """A gateway serving ITI-42 and ITI-18 at /xds/registry and an ITI-8 MLLP listener."""
    db = Database(db_url)
    db.upgrade()
    registry = iti42.Registry(db, clock=_an_hour_ago)
    queries = StoredQueries(db)
    settings = load_settings(
        environ={
            "XDSI_GATEWAY_DATA_DIR": str(tmp_path / "data"),
            "XDSI_HTTP_PORT": "0",
            "XDSI_REGISTRY_ENABLED": "false",
            "XDSI_REPOSITORY_ENABLED": "false",
            "XDSI_IMAGING_SOURCE_ENABLED": "false",
            "XDSI_HL7_ENABLED": "false",
        }
    )

    def configure(app: SoapApplication) -> None:
        endpoint = app.endpoint(REGISTRY_PATH, ENDPOINTS[REGISTRY_PATH])
        iti42.bind(endpoint, registry)
        endpoint.bind(ITI_18, queries.handle)

    gateway = Gateway(settings, configure=configure)
    host, port = gateway.start()
    feed = MLLPServer(PatientFeedHandler(registry.patients, DEFAULT_AFFINITY_DOMAIN), port=0)
    try:
        mllp = feed.start()
        url = f"http://{host}:{port}{REGISTRY_PATH}"
        yield Endpoints(registry=url, repository=url, mllp=mllp)
    finally:
        feed.stop()
        gateway.stop()
        db.dispose()


def test_nist_stored_query_plans(registry_endpoints: Endpoints) -> None:
    config = RunConfig(
        endpoints=registry_endpoints,
        testkit=catalog.TESTKIT,
        spec=catalog.SPEC,
        timeout=30,
        wait_scale=0,
    )
    out = io.StringIO()
    runner = Runner(config, out=out)
    results = runner.run_all(catalog.expand(["stored_query"]))
    failed = [result for result in results if not result.passed]
    assert not failed, "\n".join(result.report() for result in failed)
    ran = {result.test for result in results}
    assert set(catalog.STORED_QUERY) <= ran
    steps = sum(len(result.steps) for result in results if result.test in catalog.STORED_QUERY)
    assert steps >= 90  # 11897 alone has 29 sections; nothing was silently skipped
