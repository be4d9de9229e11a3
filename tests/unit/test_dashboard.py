"""The Grafana dashboard parses, and every metric it queries is one the code emits."""

from __future__ import annotations

import json
import re
from pathlib import Path

from featurestore.jobs.core.job_metrics import RUN_METRICS, STATUS_METRICS, STREAM_METRICS
from featurestore.readers import metrics

DASHBOARD = Path(__file__).resolve().parents[2] / "dashboards" / "featurestore.json"
HISTOGRAM_SERIES = ("_bucket", "_count", "_sum")


def queried_metrics(document: dict[str, object]) -> set[str]:
    names = set()
    for panel in document["panels"]:  # type: ignore[attr-defined]
        for target in panel["targets"]:
            for name in re.findall(r"\bfeaturestore_[a-z0-9_]+", target["expr"]):
                names.add(next((name[: -len(s)] for s in HISTOGRAM_SERIES if name.endswith(s)), name))
    return names


def test_the_dashboard_queries_only_metrics_the_code_emits() -> None:
    document = json.loads(DASHBOARD.read_text())
    reader = {metrics.CALL_SECONDS, metrics.VALUES_TOTAL, metrics.ERRORS_TOTAL}
    emitted = {*reader, *RUN_METRICS, *STREAM_METRICS, *STATUS_METRICS}
    queried = queried_metrics(document)
    assert queried <= emitted, queried - emitted
    # what an operator looks for: freshness, served status mix, latency, load throughput, streaming
    assert {"featurestore_view_age_seconds", metrics.VALUES_TOTAL, metrics.CALL_SECONDS} <= queried
    assert {"featurestore_job_rows", "featurestore_job_stage_seconds", "featurestore_stream_events_written"} <= queried
    assert all(panel["targets"] and panel["title"] for panel in document["panels"])
    assert len({panel["id"] for panel in document["panels"]}) == len(document["panels"])


def test_a_made_up_metric_would_be_caught() -> None:
    expr = "rate(featurestore_reader_call_seconds_bucket[5m]) + featurestore_nope"
    document = {"panels": [{"targets": [{"expr": expr}]}]}
    assert queried_metrics(document) == {metrics.CALL_SECONDS, "featurestore_nope"}
