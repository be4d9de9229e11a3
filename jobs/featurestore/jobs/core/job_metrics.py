"""Prometheus metrics of the jobs: each batch run's figures, each stream's counts, and each view's status.

A nightly job lives for minutes, so Prometheus cannot scrape it; it hands its numbers over
the two usual ways, when asked (``$FEATURESTORE_METRICS_TEXTFILE_DIR``, ``$FEATURESTORE_PUSHGATEWAY_URL``):

* a **textfile** ``<dir>/featurestore_<name>.prom`` for node_exporter's textfile collector
  (written atomically: a scrape never sees half a file);
* a **push** to a Prometheus Pushgateway, grouped by view.

The samples are built here by pure functions (:func:`run_samples`, :func:`stream_samples`,
:func:`stream_progress_samples`; a view's status: :func:`featurestore.jobs.ops.status.status_samples`);
:func:`publish` is the only I/O.  prometheus-client (the ``[metrics]`` extra) is imported only
when something is published.  The metrics, each with its Prometheus type, are the ``*_METRICS``
tables below (docs/metrics.md); their names follow Prometheus' conventions: counters end in
``_total`` and count since their process started (a restart resets them, which ``rate()``
handles), latency is a histogram, and a rate or a quantile is the query's work, never a gauge.
The Grafana dashboard (``dashboards/featurestore.json``) uses only names listed here or in
:mod:`featurestore.readers.metrics` (unit tests check the names and the dashboard).
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
from featurestore.readers.metrics import label_value as label_value  # re-exported: the jobs' samples use it
from featurestore.readers.settings import redact_text

log = logging.getLogger(__name__)

GAUGE, COUNTER, HISTOGRAM = "gauge", "counter", "histogram"


@dataclass(frozen=True)
class MetricSpec:
    """A metric's Prometheus type and help text.  The names follow Prometheus' naming conventions
    (a unit test checks them): a counter ends in ``_total``, a unit is a suffix (``_seconds``), a
    rate or a quantile is never precomputed (counters and histograms; ``rate()`` and
    ``histogram_quantile()`` in the query), label values are ``snake_case``."""

    kind: str
    help: str


# every run metric carries the label `view`; they describe the view's last run (gauges: the next run replaces them)
RUN_METRICS: dict[str, MetricSpec] = {
    "featurestore_job_last_run_timestamp_seconds": MetricSpec(GAUGE, "When the view's last run finished (any status)"),
    "featurestore_job_last_run_succeeded": MetricSpec(GAUGE, "1 if the view's last run succeeded, else 0"),
    "featurestore_job_last_success_timestamp_seconds": MetricSpec(
        GAUGE, "When the view's last successful run finished"
    ),
    "featurestore_job_rows": MetricSpec(GAUGE, "Rows of the last run, by kind (read, out, written, failed)"),
    "featurestore_job_entities_written": MetricSpec(GAUGE, "Entities written by the last run"),
    "featurestore_job_retries": MetricSpec(GAUGE, "Retried pipelines in the last run"),
    "featurestore_job_stage_seconds": MetricSpec(
        GAUGE, "Seconds of each stage of the last run (read, transform, validate, write)"
    ),
    "featurestore_job_validation_failures": MetricSpec(
        GAUGE, "Failed checks of the last run (row checks, suite, guards)"
    ),
}
# every streaming metric carries the label `view`; the counters count since the query (or consumer) started,
# so they restart at 0 with it: rate() and increase() in the queries take the reset in their stride
STREAM_METRICS: dict[str, MetricSpec] = {
    "featurestore_stream_batches_total": MetricSpec(COUNTER, "Micro-batches written"),
    "featurestore_stream_events_total": MetricSpec(COUNTER, "Valid events read from the topic"),
    "featurestore_stream_events_written_total": MetricSpec(COUNTER, "Events written to Redis"),
    "featurestore_stream_events_skipped_total": MetricSpec(
        COUNTER, "Events skipped as older than the stored value (the out-of-order guard)"
    ),
    "featurestore_stream_last_batch_timestamp_seconds": MetricSpec(GAUGE, "When the last micro-batch was written"),
    "featurestore_stream_last_batch_seconds": MetricSpec(GAUGE, "How long the last micro-batch took to write"),
    "featurestore_stream_latency_seconds": MetricSpec(
        HISTOGRAM, "Event (Kafka timestamp) -> visible in Redis, per event"
    ),
    "featurestore_stream_consumer_lag": MetricSpec(GAUGE, "Records in the topic not yet read by the stream"),
    "featurestore_stream_dead_letters_total": MetricSpec(
        COUNTER, "Records that were not valid events (sent to the dead-letter topic)"
    ),
    "featurestore_stream_late_events_total": MetricSpec(
        COUNTER, "Events dropped by the watermark (later than the allowed lateness)"
    ),
    "featurestore_stream_ignored_events_total": MetricSpec(COUNTER, "Events older than every window of their entity"),
}
# every status metric carries the label `view`
STATUS_METRICS: dict[str, MetricSpec] = {
    "featurestore_view_age_seconds": MetricSpec(
        GAUGE, "Age of the view's newest values (last successful run or newest sampled _ts)"
    ),
    "featurestore_view_max_age_seconds": MetricSpec(GAUGE, "The view's max_age: older values are served as stale"),
    "featurestore_view_healthy": MetricSpec(GAUGE, "0 if the view is stale or failing, else 1"),
    "featurestore_view_verdict": MetricSpec(
        GAUGE, "1 for the view's verdict (fresh, ageing, stale, never_materialized, never_written, refused, failing)"
    ),
}
JOB_METRICS: dict[str, MetricSpec] = {**RUN_METRICS, **STREAM_METRICS, **STATUS_METRICS}
# event -> Redis latency: a plain consumer's tens of milliseconds to a Spark micro-batch's seconds
STREAM_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


@dataclass(frozen=True)
class Sample:
    """One value of one metric (a gauge's value, or a counter's count so far)."""

    name: str
    labels: tuple[tuple[str, str], ...]
    value: float


@dataclass(frozen=True)
class HistogramSample:
    """One histogram: the cumulative count of observations ``<= le`` per bucket bound, their sum
    and their count (the ``+Inf`` bucket), as Prometheus exposes them."""

    name: str
    labels: tuple[tuple[str, str], ...]
    buckets: tuple[tuple[float, int], ...]
    sum: float
    count: int


Samples = Sequence[Sample | HistogramSample]


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
        samples.append(Sample("featurestore_job_stage_seconds", (*view, ("stage", label_value(stage))), float(seconds)))
    samples.append(Sample("featurestore_job_validation_failures", view, float(len(record.failures))))
    return samples


def stream_samples(
    view: str, batches: int, written: int, skipped: int, finished_at: float, seconds: float
) -> list[Sample]:
    """The samples of a streaming query after a micro-batch (``batches``, ``written``, ``skipped``:
    counts since the query started)."""
    labels = (("view", view),)
    return [
        Sample("featurestore_stream_batches_total", labels, float(batches)),
        Sample("featurestore_stream_events_written_total", labels, float(written)),
        Sample("featurestore_stream_events_skipped_total", labels, float(skipped)),
        Sample("featurestore_stream_last_batch_timestamp_seconds", labels, finished_at),
        Sample("featurestore_stream_last_batch_seconds", labels, seconds),
    ]


def stream_progress_samples(view: str, report: dict[str, Any]) -> list[Sample | HistogramSample]:
    """The samples of a stream's progress report (:meth:`.streaming.events.StreamStats.report`): the
    counts since the stream started and its latency histogram; events/s and p50/p99 are the queries'
    work (``rate()``, ``histogram_quantile()``), not precomputed here."""
    labels = (("view", view),)
    samples: list[Sample | HistogramSample] = [
        Sample("featurestore_stream_events_total", labels, float(report["events"])),
        Sample("featurestore_stream_dead_letters_total", labels, float(report["dead_letters"])),
    ]
    if report.get("latency_buckets") is not None:
        buckets = tuple((float(le), int(count)) for le, count in report["latency_buckets"])
        total, count = float(report["latency_sum_seconds"]), int(report["latency_count"])
        samples.append(HistogramSample("featurestore_stream_latency_seconds", labels, buckets, total, count))
    if report.get("lag") is not None:
        samples.append(Sample("featurestore_stream_consumer_lag", labels, float(report["lag"])))
    for name, key in (
        ("featurestore_stream_late_events_total", "late"),
        ("featurestore_stream_ignored_events_total", "ignored"),
    ):
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


def _families(samples: Samples, specs: dict[str, MetricSpec]) -> list[Any]:
    """The samples as prometheus-client metric families of their declared type (a name without a
    spec: a gauge)."""
    core = _prometheus().metrics_core  # the [metrics] extra (a clear error without it)
    types = {COUNTER: core.CounterMetricFamily, HISTOGRAM: core.HistogramMetricFamily, GAUGE: core.GaugeMetricFamily}
    families: dict[str, Any] = {}
    for sample in samples:
        spec = specs.get(sample.name, MetricSpec(GAUGE, sample.name))
        family = families.get(sample.name)
        label_names = [key for key, _ in sample.labels]
        label_values = [value for _, value in sample.labels]
        if family is None:
            family = families[sample.name] = types[spec.kind](sample.name, spec.help, labels=label_names)
        if isinstance(sample, HistogramSample):
            buckets = [(_bound(le), float(count)) for le, count in sample.buckets] + [("+Inf", float(sample.count))]
            family.add_metric(label_values, buckets, sample.sum)
        else:
            family.add_metric(label_values, sample.value)
    return list(families.values())


def _bound(le: float) -> str:
    return repr(float(le))  # prometheus-client's own form of a bucket bound: 0.5, 1.0


class _Fixed:
    """A collector that hands prometheus-client a fixed set of families (one publication)."""

    def __init__(self, families: list[Any]) -> None:
        self.families = families

    def collect(self) -> list[Any]:
        return self.families


def _registry(samples: Samples, specs: dict[str, MetricSpec]) -> Any:
    prometheus_client = _prometheus()
    registry = prometheus_client.CollectorRegistry()
    registry.register(_Fixed(_families(samples, specs)))
    return registry


def publish(samples: Samples, target: MetricsTarget, name: str, grouping: dict[str, str]) -> list[str]:
    """Write ``samples`` to the textfile ``featurestore_<name>.prom`` and/or push them (grouped by
    ``grouping``); returns where they went.  Raises on failure (callers decide whether it matters)."""
    if not target.enabled or not samples:
        return []
    prometheus_client = _prometheus()
    registry = _registry(samples, JOB_METRICS)
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


def publish_quietly(samples: Samples, target: MetricsTarget, name: str, grouping: dict[str, str]) -> None:
    """:func:`publish`, logging instead of raising: metrics never fail the run they describe."""
    try:
        for place in publish(samples, target, name, grouping):
            log.info("metrics written to %s", place)
    except Exception as exc:
        log.warning("could not publish the metrics (%s): %s", name, redact_text(f"{type(exc).__name__}: {exc}"))
