"""The NIST toolkit's DSUB test plans (``../shared/conformance/nist-testkit/selftest/dsub``;
INDEX.md: the kit has no DSUB conformance test, only this self-test) against /dsub/broker.

``subscribe``: its inline ``wsnt:Subscribe`` (FindDocuments filter id, patient and
healthcareFacilityTypeCode, topic ``ihe:FullDocumentEntry``) sent as written, the plan expects
Success. Its InitialTerminationTime is 2010-05-31, in the past today, which WS-BaseNotification
§4.2 answers with UnacceptableInitialTerminationTimeFault: so it is sent twice, as written (that
fault) and with only that date moved a year ahead (Success, the plan's expectation). ``publish``
is ITI-54 Document Metadata Publish, a transaction of the Publisher/Broker pair this gateway
does not serve (its broker is grouped with the registry and learns of documents by ITI-42).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from lxml import etree

from tests.conformance.nist.catalog import SHARED_CONFORMANCE
from tests.integration.notify import dsub_client as client
from tests.integration.notify.support import start_gateway

PLAN = SHARED_CONFORMANCE / "nist-testkit" / "selftest" / "dsub" / "subscribe" / "testplan.xml"
pytestmark = pytest.mark.skipif(not PLAN.is_file(), reason=f"{PLAN} is absent")


def _subscribe_of_the_plan() -> etree._Element:
    plan = etree.parse(str(PLAN))
    assert plan.findtext(".//ExpectedStatus") == "Success"
    [subscribe] = plan.iterfind(f".//{{{client.WSNT}}}Subscribe")
    return subscribe


def test_nist_dsub_subscribe(tmp_path: Path) -> None:
    gw = start_gateway(tmp_path / "data")
    broker = gw.base_url + "/dsub/broker"
    try:
        as_written = client.subscribe(broker, _subscribe_of_the_plan())
        assert as_written.status == 400
        assert as_written.fault_subcode is not None
        assert as_written.fault_subcode.endswith("UnacceptableInitialTerminationTimeFault")

        moved = _subscribe_of_the_plan()
        when = moved.find(f"{{{client.WSNT}}}InitialTerminationTime")
        assert when is not None and when.text is not None and when.text.startswith("2010-")
        when.text = (datetime.now(UTC) + timedelta(days=365)).strftime("%Y-%m-%dT%H:%M:%S.00000Z")
        answer = client.subscribe(broker, moved)
        assert answer.status == 200, etree.tostring(answer.root)
        assert answer.body.tag == f"{{{client.WSNT}}}SubscribeResponse"
        reference = answer.body.find(f"{{{client.WSNT}}}SubscriptionReference")
        assert reference is not None
        assert reference.findtext(f"{{{client.WSA}}}Address") == broker
        assert client.unsubscribe(reference).status == 200
    finally:
        gw.stop()
