"""The console's test store: written without Spark (the batch writer's commands, run records,
a stream's progress report, an audit), for tests/integration/ui and tests/e2e/ui."""

from __future__ import annotations

import json
from typing import Any

from featurestore.jobs.core.control_plane import progress_key
from featurestore.jobs.core.run_records import RunRecord, record_run
from featurestore.jobs.streaming.events import progress_fields
from featurestore.jobs.ui.store import AUDITS_KEY
from tests.helpers.reader import now_ms, scores, test_catalog, write_view


def populate(client: Any) -> None:
    """A fresh user 42, a stale user 7, runs (one refused by a guard), a stream report, an audit."""
    write_view(client, test_catalog, scores, {42: {"n_orders": 5, "segment": "gold"}})
    write_view(client, test_catalog, scores, {7: {"n_orders": 9}}, computed_at_ms=now_ms() - 2 * 3600 * 1000)
    for i in range(30):
        record_run(client, RunRecord(f"ok{i}", "scores", "2024-06-01", "orders", i, "succeeded", rows_read=100 + i))
    refused = RunRecord(
        "refused1", "scores", "2024-06-02", "orders", 31, "failed_validation",
        error="guards refused the input", failures=["input: orders ds=2024-06-02 has 12 rows, below its baseline"],
    )  # fmt: skip
    record_run(client, refused)
    report = {"events": 900, "events_per_second": 30.0, "written": 880, "skipped": 20, "dead_letters": 1,
              "latency_p50_seconds": 0.012, "latency_p99_seconds": 0.09, "lag": 4}  # fmt: skip
    client.hset(progress_key("live"), mapping=progress_fields(report, "kafka:clicks", now_ms()))
    audit = {"view": "scores", "ds": "2024-06-01", "audited_at": "2024-06-02T01:00:00", "sample": 100,
             "max_mismatch_rate": 0.01, "worst_rate": 0.0, "ok": True, "served": {}}  # fmt: skip
    client.xadd(AUDITS_KEY, {"audit": json.dumps(audit)})
