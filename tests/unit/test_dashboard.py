"""The Grafana dashboard parses, every metric it queries is one the code emits, and it queries each
as its type wants: counters through rate()/increase(), histograms through histogram_quantile()."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from featurestore.jobs.core.job_metrics import COUNTER, HISTOGRAM, JOB_METRICS
from featurestore.readers import metrics

DASHBOARD = Path(__file__).resolve().parents[2] / "dashboards" / "featurestore.json"
HISTOGRAM_SERIES = ("_bucket", "_count", "_sum")
READER_TYPES = {metrics.CALL_SECONDS: HISTOGRAM, metrics.VALUES_TOTAL: COUNTER, metrics.ERRORS_TOTAL: COUNTER}
TYPES = {**{name: spec.kind for name, spec in JOB_METRICS.items()}, **READER_TYPES}
SERIES = re.compile(r"\bfeaturestore_[a-z0-9_]+")


def series_names(expr: str) -> list[str]:
    return SERIES.findall(expr)


def metric_of(series: str) -> str:
    """The metric a series belongs to (``x_bucket`` -> ``x`` for a histogram)."""
    for suffix in HISTOGRAM_SERIES:
        if series.endswith(suffix) and TYPES.get(series[: -len(suffix)]) == HISTOGRAM:
            return series[: -len(suffix)]
    return series


def expressions(document: dict[str, Any]) -> list[str]:
    """Every PromQL the dashboard runs: its panels' targets and its template variables' queries."""
    exprs = [target["expr"] for panel in document["panels"] for target in panel["targets"]]
    for variable in document.get("templating", {}).get("list", []):
        query = variable.get("query")
        if variable.get("type") == "query":
            exprs.append(query["query"] if isinstance(query, dict) else query)
    return exprs


def queried_metrics(document: dict[str, Any]) -> set[str]:
    return {metric_of(name) for expr in expressions(document) for name in series_names(expr)}


def load() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return document


def test_the_dashboard_queries_only_metrics_the_code_emits() -> None:
    document = load()
    queried = queried_metrics(document)
    assert queried <= set(TYPES), queried - set(TYPES)
    # what an operator looks for: freshness, served status mix, latency, load throughput, streaming
    assert {"featurestore_view_age_seconds", metrics.VALUES_TOTAL, metrics.CALL_SECONDS} <= queried
    assert {"featurestore_job_rows", "featurestore_job_stage_seconds"} <= queried
    assert all(panel["targets"] and panel["title"] for panel in document["panels"])
    assert len({panel["id"] for panel in document["panels"]}) == len(document["panels"])


def test_every_promised_streaming_figure_has_a_panel() -> None:
    exprs = expressions(load())

    def queried(pattern: str) -> bool:
        return any(re.search(pattern, expr) for expr in exprs)

    assert queried(r"rate\(featurestore_stream_events_total\{")  # events/s from a counter
    assert queried(r"rate\(featurestore_stream_events_written_total\{")
    assert queried(r"histogram_quantile\(0\.5, .*featurestore_stream_latency_seconds_bucket")
    assert queried(r"histogram_quantile\(0\.99, .*featurestore_stream_latency_seconds_bucket")
    assert queried(r"\bfeaturestore_stream_consumer_lag\b")
    assert queried(r"(rate|increase)\(featurestore_stream_dead_letters_total\{")
    assert not queried(r"\bderiv\(")  # a counter restarts at 0 with its process: deriv() goes negative


def test_each_metric_is_queried_as_its_type_wants() -> None:
    for expr in expressions(load()):
        for match in SERIES.finditer(expr):
            name, before = match.group(), expr[: match.start()]
            kind = TYPES.get(metric_of(name))
            if kind == COUNTER:
                assert re.search(r"(rate|increase)\($", before), f"counter {name} outside rate()/increase(): {expr}"
            elif kind == HISTOGRAM:
                assert name != metric_of(name), f"histogram {name} without _bucket/_count/_sum: {expr}"
                assert re.search(r"rate\($", before), f"histogram series {name} outside rate(): {expr}"


def test_a_view_variable_filters_every_panel_that_has_views() -> None:
    document = load()
    (variable,) = [v for v in document["templating"]["list"] if v["name"] == "view"]
    assert variable["type"] == "query" and variable["multi"] and variable["includeAll"]
    assert queried_metrics({"panels": [], "templating": {"list": [variable]}}) == {"featurestore_view_max_age_seconds"}
    for panel in document["panels"]:
        for target in panel["targets"]:
            if metrics.ERRORS_TOTAL not in target["expr"]:  # the reader's errors carry no view label
                assert "$view" in target["expr"], (panel["title"], target["expr"])


def test_a_made_up_metric_would_be_caught() -> None:
    expr = "rate(featurestore_reader_call_seconds_bucket[5m]) + featurestore_nope"
    document = {"panels": [{"targets": [{"expr": expr}]}]}
    assert queried_metrics(document) == {metrics.CALL_SECONDS, "featurestore_nope"}
