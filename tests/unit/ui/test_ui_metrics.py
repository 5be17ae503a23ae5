"""The metrics of one process and the per-run folder of multiprocess mode (gateway.ui.metrics)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.ui.metrics import ENV, Metrics, prepare_multiprocess_dir


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(metrics.render().decode())
        for s in family.samples
    }


def test_counts_and_gauges(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    metrics = Metrics(gauges=lambda: {"xdsi_documents": 7, "xdsi_audit_queue_depth": 2})
    metrics.observe("ITI-18", "Success", 0.02)
    metrics.observe("ITI-18", "Success", 0.3)
    metrics.observe(None, "Fault", 0.001)
    got = samples(metrics)
    assert got[("xdsi_requests_total", (("outcome", "Success"), ("transaction", "ITI-18")))] == 2
    assert got[("xdsi_requests_total", (("outcome", "Fault"), ("transaction", "none")))] == 1
    bucket = ("le", "0.025"), ("transaction", "ITI-18")
    assert got[("xdsi_request_duration_seconds_bucket", bucket)] == 1
    assert got[("xdsi_documents", ())] == 7 and got[("xdsi_audit_queue_depth", ())] == 2


def test_labeled_gauges_and_outbox_deliveries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    rows = [
        ({"kind": "forward", "state": "pending"}, 3.0),
        ({"kind": "webhook", "state": "sent"}, 5.0),
    ]
    metrics = Metrics(gauges=lambda: {"xdsi_outbox_rows": rows, "xdsi_documents": 1})
    metrics.delivery("forward", "retried")
    metrics.delivery("forward", "retried")
    metrics.delivery("webhook", "delivered")
    got = samples(metrics)
    assert got[("xdsi_outbox_rows", (("kind", "forward"), ("state", "pending")))] == 3
    assert got[("xdsi_outbox_rows", (("kind", "webhook"), ("state", "sent")))] == 5
    retried = (("kind", "forward"), ("outcome", "retried"))
    assert got[("xdsi_outbox_deliveries_total", retried)] == 2
    delivered = (("kind", "webhook"), ("outcome", "delivered"))
    assert got[("xdsi_outbox_deliveries_total", delivered)] == 1
    assert ("xdsi_outbox_deliveries_total", (("kind", "webhook"), ("outcome", "failed"))) not in got


def test_multiprocess_folder_is_fresh_per_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV, "")  # restored (removed) after the test, whatever the code sets
    first = prepare_multiprocess_dir(tmp_path, run_id=1)
    (first / "counter_123.db").write_bytes(b"old")
    second = prepare_multiprocess_dir(tmp_path, run_id=2)
    assert not first.exists() and second.is_dir() and not list(second.iterdir())
    assert os.environ[ENV] == str(second)
