"""DSUB end to end (acceptance 3, DSUB part): a subscriber subscribes for a patient and the KOS
formatCode; every manifest published for that patient gets one ITI-53 Notify, others none; the
recipient down and the gateway restarted lose nothing; after Unsubscribe nothing more comes."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from lxml import etree

from gateway.imaging import synthetic
from tests.integration.imaging.conftest import run_storescu
from tests.integration.notify import dsub_client as client
from tests.integration.notify.support import DOMAIN, Receiver, feed, outbox_settles, start_gateway

KOS_FORMAT = "1.2.840.10008.5.1.4.1.1.88.59^^1.2.840.10008.2.6.1"
WSNT, RIM, LCM = client.WSNT, client.RIM, "urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0"


def _publish(gw, tmp_path: Path, patient: str, name: str) -> str:  # type: ignore[no-untyped-def]
    spec = synthetic.StudySpec(
        patient_id=patient,
        issuer_oid=DOMAIN,
        series=(synthetic.SeriesSpec(modality="CT", count=1),),
    )
    files = synthetic.write_study(synthetic.make_study(spec), tmp_path / name)
    run_storescu(*gw.imaging.address, files)
    result = gw.imaging.publish_study(spec.study_uid, force=True)
    assert result.manifest_uid, result
    return str(result.manifest_uid)


def test_notify_per_manifest_of_the_patient_until_unsubscribed(tmp_path: Path) -> None:
    recipient = Receiver(answer=lambda _r: (202, b"", "text/plain"))
    data = tmp_path / "data"
    gw = start_gateway(data)
    broker = gw.base_url + "/dsub/broker"
    try:
        p1 = feed(gw, "P-1")
        p2 = feed(gw, "P-2", "MSG-2")
        later = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        full = client.subscribe(
            broker,
            client.subscribe_body(
                recipient.url + "/full",
                "ihe:FullDocumentEntry",
                {
                    "$XDSDocumentEntryPatientId": [f"'{p1}'"],
                    "$XDSDocumentEntryFormatCode": [f"('{KOS_FORMAT}')"],
                },
                termination=later,
            ),
        )
        assert full.status == 200, etree.tostring(full.root)
        assert full.body.tag == f"{{{WSNT}}}SubscribeResponse"
        reference = full.body.find(f"{{{WSNT}}}SubscriptionReference")
        assert reference is not None
        assert full.body.findtext(f"{{{WSNT}}}TerminationTime") == later
        minimal = client.subscribe(
            broker,
            client.subscribe_body(
                recipient.url + "/minimal",
                "ihe:MinimalDocumentEntry",
                {"$XDSDocumentEntryPatientId": [f"'{p2}'"]},
            ),
        )
        assert minimal.status == 200
        first = _publish(gw, tmp_path, "P-1", "a")
        other = _publish(gw, tmp_path, "P-2", "b")  # another patient: the minimal one only
        before = recipient.wait_for(2)
        assert sorted(r.path for r in before) == ["/full", "/minimal"]
        [short] = [etree.fromstring(r.body) for r in before if r.path == "/minimal"]
        assert short.findtext(f".//{{{WSNT}}}Topic") == "ihe:MinimalDocumentEntry"
        refs = short.findall(f".//{{{RIM}}}RegistryObjectList/{{{RIM}}}ObjectRef")
        assert len(refs) == 1 and refs[0].get("id", "").startswith("urn:uuid:")
        assert short.find(f".//{{{RIM}}}ExtrinsicObject") is None
        assert other
        recipient.down()  # the recipient goes away
        second = _publish(gw, tmp_path, "P-1", "c")
    finally:
        gw.stop()
    gw = start_gateway(data)  # restarted while the recipient is down
    try:
        recipient.up()
        got = [r for r in recipient.wait_for(3) if r.path == "/full"]
        assert len(got) == 2
        uids = []
        for request in got:
            assert "NotificationConsumer/Notify" in request.headers["Content-Type"]
            root = etree.fromstring(request.body)
            message = root.find(f".//{{{WSNT}}}NotificationMessage")
            assert message is not None
            assert message.findtext(f"{{{WSNT}}}Topic") == "ihe:FullDocumentEntry"
            objects = message.find(
                f"{{{WSNT}}}Message/{{{LCM}}}SubmitObjectsRequest/{{{RIM}}}RegistryObjectList"
            )
            assert objects is not None
            [entry] = objects.findall(f"{{{RIM}}}ExtrinsicObject")
            for identifier in entry.findall(f"{{{RIM}}}ExternalIdentifier"):
                if identifier.get("identificationScheme") == (
                    "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab"  # uniqueId
                ):
                    uids.append(identifier.get("value"))
        assert uids == [first, second]
        # Unsubscribe, through the reference the broker gave: no more notifications
        with_new_address = etree.fromstring(etree.tostring(reference))
        address = with_new_address.find(f"{{{client.WSA}}}Address")
        assert address is not None
        address.text = gw.base_url + "/dsub/broker"  # the restarted gateway's port
        ended = client.unsubscribe(with_new_address)
        assert ended.status == 200
        assert ended.body.tag == f"{{{WSNT}}}UnsubscribeResponse"
        again = client.unsubscribe(with_new_address)
        assert again.status == 400
        assert again.fault_subcode is not None and again.fault_subcode.endswith(
            "ResourceUnknownFault"
        )
        _publish(gw, tmp_path, "P-1", "d")
        assert len(recipient.wait_for(4, timeout=3)) == 3  # nothing after the Unsubscribe
        assert gw.notifier is not None
        assert outbox_settles(gw, "dsub", {"sent": 3}) == {"sent": 3}
    finally:
        gw.stop()
        recipient.down()


def test_subscribe_faults(tmp_path: Path) -> None:
    gw = start_gateway(tmp_path / "data")
    broker = gw.base_url + "/dsub/broker"
    try:
        cases = {
            "UnacceptableInitialTerminationTimeFault": client.subscribe_body(
                "http://127.0.0.1:9/n",
                "ihe:FullDocumentEntry",
                {"$XDSDocumentEntryPatientId": ["'1^^^&1.2&ISO'"]},
                termination="2010-05-31T00:00:00Z",
            ),
            "TopicNotSupportedFault": client.subscribe_body(
                "http://127.0.0.1:9/n",
                "ihe:SubmissionSet",
                {"$XDSDocumentEntryPatientId": ["'1^^^&1.2&ISO'"]},
            ),
            "InvalidFilterFault": client.subscribe_body(
                "http://127.0.0.1:9/n",
                "ihe:FullDocumentEntry",
                {"$XDSDocumentEntryFormatCode": ["('x^^y')"]},  # no patient id
            ),
        }
        for name, body in cases.items():
            answer = client.subscribe(broker, body)
            assert answer.status == 400, name
            assert answer.fault_subcode is not None and answer.fault_subcode.endswith(name)
    finally:
        gw.stop()


def test_an_expired_subscription_is_not_notified(tmp_path: Path) -> None:
    recipient = Receiver()
    gw = start_gateway(tmp_path / "data")
    try:
        p1 = feed(gw, "P-1")
        answer = client.subscribe(
            gw.base_url + "/dsub/broker",
            client.subscribe_body(
                recipient.url + "/n",
                "ihe:MinimalDocumentEntry",
                {"$XDSDocumentEntryPatientId": [f"'{p1}'"]},
                termination="PT2S",  # a duration: two seconds from now
            ),
        )
        assert answer.status == 200
        assert answer.body.findtext(f"{{{WSNT}}}TerminationTime")
        time.sleep(2.5)
        _publish(gw, tmp_path, "P-1", "a")
        assert recipient.wait_for(1, timeout=3) == []
        assert gw.notifier is not None
        assert "dsub" not in gw.notifier.health()["outbox"]
    finally:
        gw.stop()
        recipient.down()
