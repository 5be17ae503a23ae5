"""Acceptance 3 of issue 18: ``/metrics`` parses with the Prometheus text parser
(``prometheus_client.parser.text_string_to_metric_families``) and its counters move with
traffic: in one process, and summed over the workers of ``serve --workers 2`` (multiprocess
mode, PostgreSQL)."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from gateway.app import Gateway
from gateway.demo import send_files
from gateway.imaging import synthetic
from gateway.notify.outbox import Message
from tests.integration.repository.serve_process import ServeProcess
from tests.integration.ui.conftest import DOMAIN, feed, publish_study, start_gateway, wait_for


def scrape(base: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of ``/metrics``: (name, sorted labels) -> value."""
    answer = requests.get(base + "/metrics", timeout=30)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Gateway]:
    gw = start_gateway(tmp_path)
    try:
        yield gw
    finally:
        gw.stop()


def test_metrics_parse_and_move_with_traffic(gateway: Gateway, tmp_path: Path) -> None:
    base = gateway.base_url
    before = scrape(base)
    for name in ("xdsi_patients", "xdsi_documents", "xdsi_instances_stored"):
        assert (name, ()) in before  # gauges read from the database
    feed(gateway, "UI-0300")
    publish_study(gateway, tmp_path / "study", "UI-0300", ct=4)
    for _ in range(3):
        assert requests.get(base + "/dicomweb/studies", timeout=30).status_code == 200
    assert requests.get(base + "/dicomweb/studies/1.2.3", timeout=30).status_code == 404
    after = scrape(base)
    qido = {"transaction": "QIDO-RS", "outcome": "Success"}
    assert (
        value(after, "xdsi_requests_total", **qido)
        == value(before, "xdsi_requests_total", **qido) + 3
    )
    wado = {"transaction": "WADO-RS", "outcome": "Failure"}
    assert value(after, "xdsi_requests_total", **wado) == 1
    assert value(after, "xdsi_request_duration_seconds_count", transaction="QIDO-RS") >= 3
    assert value(after, "xdsi_mllp_messages_total", outcome="accepted") == 1
    assert value(after, "xdsi_patients") == value(before, "xdsi_patients") + 1
    assert value(after, "xdsi_instances_stored") == value(before, "xdsi_instances_stored") + 6
    assert value(after, "xdsi_manifests_published") == value(before, "xdsi_manifests_published") + 1
    assert value(after, "xdsi_documents") == value(before, "xdsi_documents") + 1

    # a DICOM association (C-STORE of 3 instances) moves the association counter
    spec = synthetic.StudySpec(patient_id="UI-0300", issuer_oid=DOMAIN)
    paths = synthetic.write_study(synthetic.make_study(spec), tmp_path / "sent")
    assert gateway.imaging is not None
    host, port = gateway.imaging.address
    ae = gateway.settings.imaging_source.ae_title
    assert send_files((ae, host, port), paths) == len(paths)
    wait_for(lambda: value(scrape(base), "xdsi_dicom_associations_total", outcome="released"))
    final = scrape(base)
    assert value(final, "xdsi_dicom_associations_total", outcome="released") == 1
    assert value(final, "xdsi_instances_stored") == value(after, "xdsi_instances_stored") + 3


@pytest.mark.postgres
@pytest.mark.slow
def test_metrics_of_two_workers_are_summed(tmp_path: Path, postgres_database_url: str) -> None:
    process = ServeProcess(
        tmp_path / "data",
        {
            "XDSI_HTTP_WORKERS": "2",
            "XDSI_REGISTRY_DATABASE_URL": postgres_database_url,
            "XDSI_IMAGING_SOURCE_ENABLED": "true",
        },
    )
    try:
        process._wait_for(re.compile("all 2 workers ready"), lambda m: m[0])
        folders = list((tmp_path / "data" / "tmp" / "metrics").iterdir())
        assert len(folders) == 1  # this run's, fresh
        for _ in range(20):  # a new connection each: the kernel spreads them over the workers
            answer = requests.get(
                process.base + "/dicomweb/studies", headers={"Connection": "close"}, timeout=30
            )
            assert answer.status_code == 204  # no study yet: an empty match (PS3.18 §8.3.4.4)
        qido = {"transaction": "QIDO-RS", "outcome": "Success"}
        totals = {value(scrape(process.base), "xdsi_requests_total", **qido) for _ in range(6)}
        assert totals == {20.0}  # whichever worker answers the scrape, the sum of both
        writers = {re.sub(r"\D", "", p.stem.rsplit("_", 1)[-1]) for p in folders[0].glob("*.db")}
        assert len(writers) >= 2, writers  # both workers counted
    finally:
        process.stop()


def test_outbox_rows_and_deliveries_move_with_traffic(tmp_path: Path) -> None:
    """Issue 21 "visible in metrics": a forward rule to a port where nothing listens leaves
    its rows pending (retried); a push of a study by XDR-I to this gateway's own Document
    Recipient is delivered."""
    with socket.socket() as probe:  # a port nothing listens on once closed
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]
    rules = json.dumps([{"destination": f"NOBODY@127.0.0.1:{dead}"}])
    gw = start_gateway(
        tmp_path,
        XDSI_IMAGING_SOURCE_FORWARD=rules,
        XDSI_NOTIFY_RETRY_INITIAL_SECONDS="1",
        XDSI_NOTIFY_RETRY_MAX_SECONDS="1",
    )
    try:
        base = gw.base_url
        before = scrape(base)
        pending = {"kind": "forward", "state": "pending"}
        assert ("xdsi_outbox_rows", tuple(sorted(pending.items()))) in before  # zero, listed
        assert value(before, "xdsi_outbox_rows", **pending) == 0
        feed(gw, "UI-0400")
        study = publish_study(gw, tmp_path / "study", "UI-0400", ct=0)  # loaded: not forwarded
        spec = synthetic.StudySpec(patient_id="UI-0400", issuer_oid=DOMAIN)
        paths = synthetic.write_study(synthetic.make_study(spec), tmp_path / "sent")
        assert gw.imaging is not None
        host, port = gw.imaging.address
        ae = gw.settings.imaging_source.ae_title
        assert send_files((ae, host, port), paths) == len(paths)  # C-STORE: forwarded
        assert value(scrape(base), "xdsi_outbox_rows", **pending) == len(paths)
        retried = {"kind": "forward", "outcome": "retried"}
        wait_for(lambda: value(scrape(base), "xdsi_outbox_deliveries_total", **retried) >= 2)

        assert gw.notifier is not None
        gw.notifier.outbox.add([Message("xdr", base + "/xdr/recipient", {"study": study})])
        gw.notifier.dispatcher.wake()
        sent = {"kind": "xdr", "state": "sent"}

        def pushed() -> dict[Any, float] | None:
            got = scrape(base)
            return got if value(got, "xdsi_outbox_rows", **sent) else None

        after = wait_for(pushed)
        assert (
            value(after, "xdsi_outbox_rows", **sent)
            == value(before, "xdsi_outbox_rows", **sent) + 1
        )
        delivered = {"kind": "xdr", "outcome": "delivered"}
        assert value(after, "xdsi_outbox_deliveries_total", **delivered) == 1
        assert value(after, "xdsi_outbox_rows", **pending) == len(paths)  # nobody listens yet
        assert (
            value(after, "xdsi_outbox_deliveries_total", kind="forward", outcome="delivered") == 0
        )
    finally:
        gw.stop()
