"""Prometheus metrics of the jobs: each batch run's counters, and each view's status.

A nightly job lives for minutes, so Prometheus cannot scrape it; it hands its numbers over
the two usual ways, when asked (``$FEATURESTORE_METRICS_TEXTFILE_DIR``, ``$FEATURESTORE_PUSHGATEWAY_URL``):

* a **textfile** ``<dir>/featurestore_<name>.prom`` for node_exporter's textfile collector
  (written atomically: a scrape never sees half a file);
* a **push** to a Prometheus Pushgateway, grouped by view.

The samples are built here by pure functions (:func:`run_samples`, :func:`stream_samples`;
a view's status: :func:`featurestore.jobs.ops.status.status_samples`);
:func:`publish` is the only I/O.  prometheus-client (the ``[metrics]`` extra) is imported only
when something is published.  The metric names are the ``*_METRICS`` tuples below; the Grafana
dashboard (``dashboards/featurestore.json``) uses only names listed here or in
:mod:`featurestore.readers.metrics` (a unit test checks it).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from featurestore.jobs.core.run_records import RunRecord, epoch_seconds
from featurestore.jobs.core.settings import Settings
from featurestore.readers.errors import ConfigurationError
from featurestore.readers.settings import redact_text

log = logging.getLogger(__name__)

# name -> help; every run metric carries the label `view`
RUN_METRICS: dict[str, str] = {
    "featurestore_job_last_run_timestamp_seconds": "When the view's last run finished (any status)",
    "featurestore_job_last_run_succeeded": "1 if the view's last run succeeded, else 0",
    "featurestore_job_last_success_timestamp_seconds": "When the view's last successful run finished",
    "featurestore_job_rows": "Rows of the last run, by kind (read, out, written, failed)",
    "featurestore_job_entities_written": "Entities written by the last run",
    "featurestore_job_retries": "Retried pipelines in the last run",
    "featurestore_job_stage_seconds": "Seconds of each stage of the last run (read, transform, validate, write)",
    "featurestore_job_validation_failures": "Failed checks of the last run (row checks, suite, guards)",
}
# every streaming metric carries the label `view`; totals since the query started
STREAM_METRICS: dict[str, str] = {
    "featurestore_stream_batches": "Micro-batches written since the query started",
    "featurestore_stream_events_written": "Events written since the query started",
    "featurestore_stream_events_skipped": "Events skipped as older than the stored value (the out-of-order guard)",
    "featurestore_stream_last_batch_timestamp_seconds": "When the last micro-batch was written",
    "featurestore_stream_last_batch_seconds": "How long the last micro-batch took to write",
    "featurestore_stream_events_per_second": "Events read per second since the previous progress report",
    "featurestore_stream_latency_seconds": "Event (Kafka timestamp) -> visible in Redis, by quantile (0.5, 0.99)",
    "featurestore_stream_consumer_lag": "Records in the topic not yet read by the stream",
    "featurestore_stream_dead_letters": "Records that were not valid events (sent to the dead-letter topic)",
    "featurestore_stream_late_events": "Events dropped by the watermark (later than the allowed lateness)",
    "featurestore_stream_ignored_events": "Events older than every window of their entity",
}
# every status metric carries the label `view`
STATUS_METRICS: dict[str, str] = {
    "featurestore_view_age_seconds": "Age of the view's newest values (last successful run or newest sampled _ts)",
    "featurestore_view_max_age_seconds": "The view's max_age: older values are served as stale",
    "featurestore_view_healthy": "0 if the view is stale or failing, else 1",
    "featurestore_view_verdict": "1 for the view's verdict (fresh, ageing, stale, never materialized, failing)",
}


@dataclass(frozen=True)
class Sample:
    """One value of one metric."""

    name: str
    labels: tuple[tuple[str, str], ...]
    value: float


@dataclass(frozen=True)
class MetricsTarget:
    """Where the jobs' metrics go; nothing is published when both are None."""

    textfile_dir: str | None = None
    pushgateway_url: str | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.textfile_dir or self.pushgateway_url)

    @classmethod
    def of(cls, settings: Settings) -> MetricsTarget:
        """The settings' ``metrics_textfile_dir`` and ``pushgateway_url``
        (``$FEATURESTORE_METRICS_TEXTFILE_DIR``, ``$FEATURESTORE_PUSHGATEWAY_URL``, the settings file)."""
        return cls(settings.metrics_textfile_dir, settings.pushgateway_url)

    @classmethod
    def from_env(cls) -> MetricsTarget:
        """:meth:`of` the environment's settings: for the library entry points that take no settings
        (``StreamingWriter.foreach_batch`` called without ``metrics``, the DAG's tasks)."""
        return cls.of(Settings.from_env())


def run_samples(record: RunRecord, last_success_at: str | None = None) -> list[Sample]:
    """The samples of one batch run.  ``last_success_at``: the finish time of the view's last
    successful run (the record's own when it succeeded)."""
    view = (("view", record.view),)
    samples = []
    finished = epoch_seconds(record.finished_at)
    if finished is not None:
        samples.append(Sample("featurestore_job_last_run_timestamp_seconds", view, finished))
    samples.append(Sample("featurestore_job_last_run_succeeded", view, 1.0 if record.status == "succeeded" else 0.0))
    success = epoch_seconds(record.finished_at if record.status == "succeeded" else (last_success_at or ""))
    if success is not None:
        samples.append(Sample("featurestore_job_last_success_timestamp_seconds", view, success))
    for kind, rows in (
        ("read", record.rows_read),
        ("out", record.rows_out),
        ("written", record.rows_written),
        ("failed", record.rows_failed),
    ):
        samples.append(Sample("featurestore_job_rows", (*view, ("kind", kind)), float(rows)))
    samples.append(Sample("featurestore_job_entities_written", view, float(record.entities_written)))
    samples.append(Sample("featurestore_job_retries", view, float(record.retries)))
    for stage, seconds in record.durations.items():
        samples.append(Sample("featurestore_job_stage_seconds", (*view, ("stage", stage)), float(seconds)))
    samples.append(Sample("featurestore_job_validation_failures", view, float(len(record.failures))))
    return samples


def stream_samples(
    view: str, batches: int, written: int, skipped: int, finished_at: float, seconds: float
) -> list[Sample]:
    """The samples of a streaming query after a micro-batch."""
    labels = (("view", view),)
    return [
        Sample("featurestore_stream_batches", labels, float(batches)),
        Sample("featurestore_stream_events_written", labels, float(written)),
        Sample("featurestore_stream_events_skipped", labels, float(skipped)),
        Sample("featurestore_stream_last_batch_timestamp_seconds", labels, finished_at),
        Sample("featurestore_stream_last_batch_seconds", labels, seconds),
    ]


def stream_progress_samples(view: str, report: dict[str, Any]) -> list[Sample]:
    """The samples of a stream's progress report (:meth:`.streaming.events.StreamStats.report`)."""
    labels = (("view", view),)
    samples = [
        Sample("featurestore_stream_events_per_second", labels, float(report["events_per_second"])),
        Sample("featurestore_stream_dead_letters", labels, float(report["dead_letters"])),
    ]
    for quantile, key in (("0.5", "latency_p50_seconds"), ("0.99", "latency_p99_seconds")):
        if report.get(key) is not None:
            quantile_labels = (*labels, ("quantile", quantile))
            samples.append(Sample("featurestore_stream_latency_seconds", quantile_labels, report[key]))
    if report.get("lag") is not None:
        samples.append(Sample("featurestore_stream_consumer_lag", labels, float(report["lag"])))
    for name, key in (("featurestore_stream_late_events", "late"), ("featurestore_stream_ignored_events", "ignored")):
        if report.get(key) is not None:  # the Spark job of a declared view
            samples.append(Sample(name, labels, float(report[key])))
    return samples


def _prometheus() -> Any:
    try:
        import prometheus_client
    except ImportError:
        raise ConfigurationError(
            "publishing job metrics needs prometheus-client: pip install 'redis-feature-store[metrics]'"
        ) from None
    return prometheus_client


def _registry(samples: Sequence[Sample], helps: dict[str, str]) -> Any:
    prometheus_client = _prometheus()
    registry = prometheus_client.CollectorRegistry()
    gauges: dict[str, Any] = {}
    for sample in samples:
        gauge = gauges.get(sample.name)
        if gauge is None:
            labels = [key for key, _ in sample.labels]
            gauge = gauges[sample.name] = prometheus_client.Gauge(
                sample.name, helps.get(sample.name, sample.name), labels, registry=registry
            )
        gauge.labels(*(value for _, value in sample.labels)).set(sample.value)
    return registry


def publish(samples: Sequence[Sample], target: MetricsTarget, name: str, grouping: dict[str, str]) -> list[str]:
    """Write ``samples`` to the textfile ``featurestore_<name>.prom`` and/or push them (grouped by
    ``grouping``); returns where they went.  Raises on failure (callers decide whether it matters)."""
    if not target.enabled or not samples:
        return []
    prometheus_client = _prometheus()
    registry = _registry(samples, {**RUN_METRICS, **STREAM_METRICS, **STATUS_METRICS})
    places = []
    if target.textfile_dir:
        path = Path(target.textfile_dir) / f"featurestore_{name}.prom"
        path.parent.mkdir(parents=True, exist_ok=True)
        prometheus_client.write_to_textfile(str(path), registry)  # atomic: a temp file, then rename
        places.append(str(path))
    if target.pushgateway_url:
        prometheus_client.push_to_gateway(target.pushgateway_url, job="featurestore", registry=registry,
                                          grouping_key=grouping)  # fmt: skip
        places.append(redact_text(target.pushgateway_url))
    return places


def publish_quietly(samples: Sequence[Sample], target: MetricsTarget, name: str, grouping: dict[str, str]) -> None:
    """:func:`publish`, logging instead of raising: metrics never fail the run they describe."""
    try:
        for place in publish(samples, target, name, grouping):
            log.info("metrics written to %s", place)
    except Exception as exc:
        log.warning("could not publish the metrics (%s): %s", name, redact_text(f"{type(exc).__name__}: {exc}"))
