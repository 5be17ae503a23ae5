"""Webhooks end to end: studies arrive by DICOM, are published (RAD-68, ITI-42), and the webhook
receiver gets one signed CloudEvent per matching manifest; with the receiver down and the
gateway restarted in between, every event still arrives (acceptance 3, webhook part)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.imaging import synthetic
from gateway.notify.webhook import CONTENT_TYPE, SIGNATURE_HEADER, verify
from tests.integration.imaging.conftest import run_storescu
from tests.integration.notify.support import Receiver, feed, outbox_settles, start_gateway

KOS_FORMAT = "1.2.840.10008.5.1.4.1.1.88.59"
SECRET = "s3cret-of-the-receiver"


def _study(tmp_path: Path, patient: str, name: str) -> tuple[str, list[Path]]:
    spec = synthetic.StudySpec(
        patient_id=patient,
        issuer_oid="1.3.6.1.4.1.21367.13.20.1000",
        series=(synthetic.SeriesSpec(modality="CT", count=2),),
    )
    files = synthetic.write_study(synthetic.make_study(spec), tmp_path / name)
    return spec.study_uid, files


def test_signed_cloudevents_survive_a_down_receiver_and_a_restart(tmp_path: Path) -> None:
    receiver = Receiver()
    hooks = json.dumps(
        [
            {
                "url": receiver.url + "/hook",
                "secret": SECRET,
                "filter": {
                    "patient_id": "P-1^^^&1.3.6.1.4.1.21367.13.20.1000&ISO",
                    "format_code": KOS_FORMAT,
                },
            }
        ]
    )
    extra = {"XDSI_NOTIFY_WEBHOOK": hooks}
    data = tmp_path / "data"
    gw = start_gateway(data, **extra)
    try:
        wanted = feed(gw, "P-1")
        feed(gw, "P-2", "MSG-2")
        studies = {}
        for patient, name in (("P-1", "a"), ("P-2", "b"), ("P-1", "c")):
            uid, files = _study(tmp_path, patient, name)
            run_storescu(*gw.imaging.address, files)  # type: ignore[union-attr]
            studies[uid] = patient
        receiver.down()  # the receiver is away while the manifests are published
        for uid in studies:
            result = gw.imaging.publish_study(uid, force=True)  # type: ignore[union-attr]
            assert result.manifest_uid, result
        assert gw.notifier is not None
        pending = gw.notifier.health()["outbox"]["webhook"]
        assert pending == {"pending": 2}  # P-1's two manifests only
    finally:
        gw.stop()
    receiver.up()
    gw = start_gateway(data, **extra)
    try:
        got = receiver.wait_for(2)
        assert len(got) == 2
        events = []
        for request in got:
            assert request.path == "/hook"
            assert request.headers["Content-Type"] == CONTENT_TYPE
            assert verify(SECRET, request.body, request.headers.get(SIGNATURE_HEADER))
            assert not verify("another secret", request.body, request.headers[SIGNATURE_HEADER])
            events.append(json.loads(request.body))
        assert {e["specversion"] for e in events} == {"1.0"}
        assert len({e["id"] for e in events}) == 2
        assert {e["data"]["patientId"] for e in events} == {wanted}
        published = {uid for uid, p in studies.items() if p == "P-1"}
        assert {e["data"]["studyInstanceUIDs"][0] for e in events} == published
        for event in events:
            assert event["subject"] == event["data"]["documentUniqueId"]
            assert event["data"]["formatCode"] == KOS_FORMAT
            links = event["data"]["retrieve"][event["data"]["studyInstanceUIDs"][0]]
            assert links["rad69"].endswith("/xdsi/source")
            assert links["wadoRs"].endswith("/studies/" + event["data"]["studyInstanceUIDs"][0])
        assert gw.notifier is not None
        assert outbox_settles(gw, "webhook", {"sent": 2}) == {"sent": 2}
    finally:
        gw.stop()
        receiver.down()


def test_an_unknown_filter_key_stops_start_up(tmp_path: Path) -> None:
    from gateway.errors import ConfigError

    hooks = json.dumps([{"url": "http://127.0.0.1:9/", "filter": {"colour": "red"}}])
    with pytest.raises(ConfigError, match="colour"):
        start_gateway(tmp_path / "d", XDSI_NOTIFY_WEBHOOK=hooks)
