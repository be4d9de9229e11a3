"""Every metric the store emits follows Prometheus' naming conventions
(https://prometheus.io/docs/practices/naming/): counters end in ``_total`` and nothing else does,
a unit is the last word of a name, no precomputed rate or quantile gauge, ``snake_case`` label
values; and the types written to the textfile are the declared ones (parsed back by
prometheus-client's own parser)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from featurestore.jobs.core.job_metrics import (
    COUNTER,
    GAUGE,
    HISTOGRAM,
    JOB_METRICS,
    HistogramSample,
    MetricsTarget,
    Sample,
    label_value,
    publish,
    run_samples,
    stream_progress_samples,
    stream_samples,
)
from featurestore.jobs.ops.status import FAILING, NEVER, NEVER_WRITTEN, ViewStatus, status_samples
from featurestore.jobs.streaming.events import StreamStats
from featurestore.readers.metrics import ReaderMetrics, error_label
from tests.helpers.post_load_check import ok_run

NAME = re.compile(r"^featurestore_[a-z][a-z0-9]*(_[a-z0-9]+)*$")
SNAKE = re.compile(r"^[a-z0-9]+(_[a-z0-9]+)*(\.[0-9]+)?$")  # a view, a status, a verdict (no spaces, no capitals)
PRECOMPUTED = ("per_second", "_rate", "_ratio_per", "quantile", "_p50", "_p99", "percentile")


def reader_types() -> dict[str, str]:
    """The reader's metrics by name and type, as prometheus-client registers them."""
    registry = CollectorRegistry()
    ReaderMetrics(registry)
    types = {}
    for family in registry.collect():
        name = family.name + ("_total" if family.type == COUNTER else "")
        types[name] = family.type
    return types


ALL = {**{name: spec.kind for name, spec in JOB_METRICS.items()}, **reader_types()}


@pytest.mark.parametrize("name", sorted(ALL))
def test_a_metric_name_follows_the_conventions(name: str) -> None:
    kind = ALL[name]
    assert NAME.match(name), name
    assert kind in (GAUGE, COUNTER, HISTOGRAM)
    assert name.endswith("_total") == (kind == COUNTER), f"{name} is a {kind}: only counters end in _total"
    assert not any(word in name for word in PRECOMPUTED), f"{name}: a rate or quantile is the query's work"
    if kind == HISTOGRAM:
        assert name.endswith("_seconds"), f"{name}: a histogram names its unit"
    if "seconds" in name:
        assert name.endswith(("_seconds", "_seconds_total")), f"{name}: the unit is the last word"


def test_the_reader_metrics_are_the_documented_types() -> None:
    assert reader_types() == {
        "featurestore_reader_call_seconds": HISTOGRAM,
        "featurestore_reader_values_total": COUNTER,
        "featurestore_reader_errors_total": COUNTER,
    }


def test_label_values_are_snake_case() -> None:
    assert label_value("never materialized") == "never_materialized"
    assert label_value("FeatureNotFoundError") == "feature_not_found_error"
    assert error_label(KeyError) == "key_error" and label_value("already_snake") == "already_snake"
    blank = dict.fromkeys(("age_seconds", "ttl_seconds", "last_success_run", "last_success_at", "last_failure_run",
                           "last_failure_at", "last_failure_reason", "entities_written", "memory_per_entity_bytes",
                           "newest_write_age_seconds"))  # fmt: skip
    statuses = [
        ViewStatus(view="user_profile", kind="batch", verdict=verdict, max_age_seconds=60, keys_sampled=0,
                   keys_with_view=0, **blank)  # type: ignore[arg-type]
        for verdict in (NEVER, NEVER_WRITTEN, FAILING)
    ]  # fmt: skip
    stats = StreamStats(started=0.0, late=1, ignored=2)
    stats.events, stats.lag = 5, 0
    stats.add_latencies([0.2, 0.3])
    samples = [
        *status_samples(statuses),
        *run_samples(ok_run(durations={"read": 1.0, "write": 2.0})),
        *stream_samples("user_realtime", 1, 2, 3, 4.0, 5.0),
        *stream_progress_samples("user_realtime", stats.report(1.0)),
    ]
    for sample in samples:
        assert sample.name in JOB_METRICS, sample.name
        for label, value in sample.labels:
            assert SNAKE.match(label) and SNAKE.match(value), (sample.name, label, value)
    verdicts = {dict(s.labels)["verdict"] for s in samples if s.name == "featurestore_view_verdict"}
    assert verdicts == {"never_materialized", "never_written", "failing"}


def test_the_textfile_carries_the_declared_types(tmp_path: Path) -> None:
    stats = StreamStats(started=0.0)
    stats.events, stats.dead_letters, stats.lag = 40, 2, 7
    stats.add_latencies([0.004, 0.2, 0.2, 45.0])
    samples: list[Sample | HistogramSample] = [
        *stream_samples("user_realtime", 3, 38, 2, 1_700_000_000.0, 0.5),
        *stream_progress_samples("user_realtime", stats.report(10.0)),
    ]
    publish(samples, MetricsTarget(textfile_dir=str(tmp_path)), "stream_user_realtime", {"view": "user_realtime"})
    text = (tmp_path / "featurestore_stream_user_realtime.prom").read_text()
    families = {family.name: family for family in text_string_to_metric_families(text)}
    types = {name: family.type for name, family in families.items()}
    assert types["featurestore_stream_events"] == COUNTER  # the parser names a counter's family without _total
    assert types["featurestore_stream_events_written"] == COUNTER
    assert types["featurestore_stream_dead_letters"] == COUNTER
    assert types["featurestore_stream_latency_seconds"] == HISTOGRAM
    assert types["featurestore_stream_consumer_lag"] == GAUGE
    assert 'featurestore_stream_events_total{view="user_realtime"} 40.0' in text
    assert 'featurestore_stream_events_written_total{view="user_realtime"} 38.0' in text
    assert 'featurestore_stream_latency_seconds_bucket{le="0.005",view="user_realtime"} 1.0' in text
    assert 'featurestore_stream_latency_seconds_bucket{le="0.25",view="user_realtime"} 3.0' in text
    assert 'featurestore_stream_latency_seconds_bucket{le="+Inf",view="user_realtime"} 4.0' in text
    assert 'featurestore_stream_latency_seconds_count{view="user_realtime"} 4.0' in text
    # every metric of the file is a declared one, with its declared type
    for name, family in families.items():
        declared = name + "_total" if family.type == COUNTER else name
        assert JOB_METRICS[declared].kind == family.type
