"""``/metrics``: the gateway's metrics in the Prometheus text format (prometheus-client).

Counted as requests are answered (an observer of the HTTP boundary, SOAP and mounted services
alike): ``xdsi_requests_total{transaction,outcome}`` and the latency histogram
``xdsi_request_duration_seconds{transaction}``; ``xdsi_mllp_messages_total{outcome}`` (ITI-8
messages answered); ``xdsi_dicom_associations_total{outcome}`` (``released``, ``aborted``,
``refused`` by the access rules). Read from the gateway database and the audit queue at each
scrape (so every worker reports the same totals): ``xdsi_patients``, ``xdsi_documents``,
``xdsi_studies``, ``xdsi_instances_stored``, ``xdsi_manifests_published``,
``xdsi_audit_queue_depth``, and the durable outbox of ``gateway.notify`` (issue 21: webhooks,
DSUB notifications, DICOM forwarding, XDR pushes and imports): ``xdsi_outbox_rows{kind,state}``.
Counted by the outbox's dispatcher as it sends: ``xdsi_outbox_deliveries_total{kind,outcome}``
(``delivered``, ``retried`` after a failed attempt, ``failed`` for good).

Under ``serve --workers N`` the library's multiprocess mode is used: the supervisor makes a
fresh folder per run (:func:`prepare_multiprocess_dir`, cleaned at start) and names it in
``PROMETHEUS_MULTIPROC_DIR`` before the workers start; each worker writes its counters there,
and a scrape of any worker sums them (prometheus_client ``MultiProcessCollector``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# A gauge with labels: (labels, value) per sample.
Labeled = Sequence[tuple[Mapping[str, str], float]]
Gauges = Callable[[], Mapping[str, float | Labeled]]  # name -> value(s), read at each scrape
GAUGE_HELP = {
    "xdsi_patients": "Patients known to the registry",
    "xdsi_documents": "DocumentEntries in the registry",
    "xdsi_studies": "Studies held by the imaging document source",
    "xdsi_instances_stored": "DICOM instances stored by the imaging document source",
    "xdsi_manifests_published": "Studies whose KOS manifest was published (RAD-68)",
    "xdsi_audit_queue_depth": "Audit records stored and not yet delivered",
    "xdsi_outbox_rows": "Rows of the notification outbox (gateway.notify), by kind and state",
}


def prepare_multiprocess_dir(data_dir: Path, run_id: int | None = None) -> Path:
    """A fresh, empty folder for this run's multiprocess metric files, named in the environment
    (``PROMETHEUS_MULTIPROC_DIR``) so that the workers started next inherit it. Folders of
    earlier runs are removed (their counts belong to processes that are gone)."""
    parent = data_dir / "tmp" / "metrics"
    parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    for old in parent.iterdir():
        shutil.rmtree(old, ignore_errors=True)
    folder = parent / f"run-{run_id if run_id is not None else os.getpid()}"
    folder.mkdir(mode=0o700)
    os.environ[ENV] = str(folder)
    return folder


def worker_gone(pid: int) -> None:
    """Tell the multiprocess files that a worker died (its live gauges no longer count)."""
    if os.environ.get(ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


class Metrics:
    """The counters of one process and the ``/metrics`` WSGI application."""

    def __init__(self, gauges: Gauges | None = None) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.multiprocess = bool(os.environ.get(ENV))
        # Multiprocess mode: values go to the files of PROMETHEUS_MULTIPROC_DIR; a private
        # registry keeps this process's metrics apart from the library's default one.
        self._own = CollectorRegistry()
        self.requests = Counter(
            "xdsi_requests",
            "Requests answered, by transaction and outcome",
            ["transaction", "outcome"],
            registry=self._own,
        )
        self.latency = Histogram(
            "xdsi_request_duration_seconds",
            "Time to answer a request, by transaction",
            ["transaction"],
            registry=self._own,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
        )
        self.mllp = Counter(
            "xdsi_mllp_messages",
            "HL7 v2 messages answered over MLLP (ITI-8), by outcome",
            ["outcome"],
            registry=self._own,
        )
        self.associations = Counter(
            "xdsi_dicom_associations",
            "DICOM associations of the imaging source's listener: released, aborted, refused",
            ["outcome"],
            registry=self._own,
        )
        self.deliveries = Counter(
            "xdsi_outbox_deliveries",
            "Outbox delivery attempts (gateway.notify), by kind and outcome: delivered, "
            "retried, failed",
            ["kind", "outcome"],
            registry=self._own,
        )
        self._gauges = gauges

    def delivery(self, kind: str, outcome: str) -> None:
        """Count one outbox delivery attempt (an observer of ``gateway.notify``'s dispatcher)."""
        try:
            self.deliveries.labels(kind, outcome).inc()
        except Exception:  # metrics never break a delivery
            pass

    def observe(self, transaction: str | None, outcome: str, seconds: float) -> None:
        """Count one answered request."""
        name = transaction or "none"
        self.requests.labels(name, outcome).inc()
        self.latency.labels(name).observe(seconds)

    def observer(self) -> Callable[[Any], None]:
        """An observer of the HTTP boundary's ``TransactionCompleted`` notifications."""

        def observe(done: Any) -> None:
            try:
                self.observe(done.transaction, done.outcome, done.duration_ms / 1000.0)
            except Exception:  # observers never break a response
                pass

        return observe

    def registry(self) -> Any:
        """The registry a scrape reads: this process's (or all workers') metrics and gauges."""
        from prometheus_client import CollectorRegistry, multiprocess

        if self.multiprocess:
            scrape = CollectorRegistry()
            multiprocess.MultiProcessCollector(scrape)
        else:
            scrape = CollectorRegistry()
            scrape.register(_Forward(self._own))
        if self._gauges is not None:
            scrape.register(_GaugeCollector(self._gauges))
        return scrape

    def render(self) -> bytes:
        """The text exposition of :meth:`registry`."""
        from prometheus_client import generate_latest

        return bytes(generate_latest(self.registry()))

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        """``GET /metrics`` (mounted by the assembly); access rule name ``METRICS``."""
        from gateway.mount import exchange_of

        exchange = exchange_of(environ)
        if environ.get("PATH_INFO", "") not in ("", "/"):
            return _plain(start_response, "404 Not Found", b"not found\n")
        if environ.get("REQUEST_METHOD", "GET").upper() not in ("GET", "HEAD"):
            return _plain(start_response, "405 Method Not Allowed", b"GET only\n")
        if not exchange.authorize("METRICS"):
            exchange.outcome = "Failure"
            return _plain(start_response, "403 Forbidden", b"refused by the access rules\n")
        body = self.render()
        start_response(
            "200 OK", [("Content-Type", CONTENT_TYPE), ("Content-Length", str(len(body)))]
        )
        return [body]


def _plain(start_response: Callable[..., Any], status: str, body: bytes) -> list[bytes]:
    start_response(
        status,
        [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))],
    )
    return [body]


class _Forward:
    """Collects the metrics of another registry (this process's own)."""

    def __init__(self, registry: Any) -> None:
        self._registry = registry

    def collect(self) -> Iterator[Any]:
        yield from self._registry.collect()


class _GaugeCollector:
    """Gauges read at scrape time (database counts, audit queue depth)."""

    def __init__(self, read: Gauges) -> None:
        self._read = read

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        for name, value in self._read().items():
            if isinstance(value, int | float):
                yield GaugeMetricFamily(name, GAUGE_HELP.get(name, name), value=value)
                continue
            names = sorted({label for labels, _ in value for label in labels})
            family = GaugeMetricFamily(name, GAUGE_HELP.get(name, name), labels=names)
            for labels, sample in value:
                family.add_metric([labels.get(n, "") for n in names], sample)
            yield family
