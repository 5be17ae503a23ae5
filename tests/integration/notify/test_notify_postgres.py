"""The notifications of a registration on PostgreSQL: the outbox rows are written inside the
registry's REPEATABLE READ registration transaction and delivered from there."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.imaging import synthetic
from gateway.notify.webhook import SIGNATURE_HEADER, verify
from tests.integration.imaging.conftest import run_storescu
from tests.integration.notify import dsub_client as client
from tests.integration.notify.support import DOMAIN, Receiver, feed, start_gateway

pytestmark = pytest.mark.postgres


def test_webhook_and_dsub_on_postgresql(tmp_path: Path, postgres_database_url: str) -> None:
    receiver = Receiver()
    hooks = json.dumps([{"url": receiver.url + "/hook", "secret": "k"}])
    gw = start_gateway(
        tmp_path / "data",
        XDSI_GATEWAY_DATABASE_URL=postgres_database_url,
        XDSI_NOTIFY_WEBHOOK=hooks,
    )
    try:
        patient = feed(gw, "P-9")
        answer = client.subscribe(
            gw.base_url + "/dsub/broker",
            client.subscribe_body(
                receiver.url + "/dsub",
                "ihe:MinimalDocumentEntry",
                {"$XDSDocumentEntryPatientId": [f"'{patient}'"]},
            ),
        )
        assert answer.status == 200
        spec = synthetic.StudySpec(patient_id="P-9", issuer_oid=DOMAIN)
        files = synthetic.write_study(synthetic.make_study(spec), tmp_path / "s")
        assert gw.imaging is not None
        run_storescu(*gw.imaging.address, files)
        assert gw.imaging.publish_study(spec.study_uid, force=True).manifest_uid
        got = receiver.wait_for(2)
        assert sorted(r.path for r in got) == ["/dsub", "/hook"]
        [hook] = [r for r in got if r.path == "/hook"]
        assert verify("k", hook.body, hook.headers[SIGNATURE_HEADER])
        assert json.loads(hook.body)["data"]["studyInstanceUIDs"] == [spec.study_uid]
    finally:
        gw.stop()
        receiver.down()
