"""The console's test store: written without Spark (the batch writer's commands, run records,
a stream's progress report, an audit), for tests/integration/ui and tests/e2e/ui; and a feature log
written by hand (Delta's JSON commits and parquet files) for the log reader's unit tests."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from featurestore.jobs.batch.validation import INPUT_ROWS_CHECK
from featurestore.jobs.core import feature_log as fl
from featurestore.jobs.core.control_plane import progress_key
from featurestore.jobs.core.run_records import RunRecord, record_run
from featurestore.jobs.streaming.events import progress_fields
from featurestore.jobs.ui.store import AUDITS_KEY
from featurestore.readers.definitions import FeatureView
from tests.helpers.reader import live, now_ms, scores, test_catalog, write_view


def populate(client: Any) -> None:
    """A fresh user 42, a stale user 7, runs (one refused by a guard), a stream report, an audit."""
    write_view(client, test_catalog, scores, {42: {"n_orders": 5, "segment": "gold"}})
    write_view(client, test_catalog, scores, {7: {"n_orders": 9}}, computed_at_ms=now_ms() - 2 * 3600 * 1000)
    for i in range(30):
        record_run(client, RunRecord(f"ok{i}", "scores", "2024-06-01", "orders", i, "succeeded", rows_read=100 + i))
    refused = RunRecord(
        "refused1", "scores", "2024-06-02", "orders", 31, "failed_validation", rows_read=12,
        error="view 'scores' failed validation, nothing was written: 2 check(s) failed",
        failures=[
            f"{INPUT_ROWS_CHECK}: orders ds=2024-06-02 has 12 rows, below its baseline (50% of the median 130)",
            "expect_column_values_to_be_between(column='n_orders', min_value=0): 2 of 12 values unexpected "
            "(16.67% of non-null), e.g. [-1, -3]",
        ],
        input_rows={"orders": {"2024-06-01": 130, "2024-06-02": 12}},
        feature_stats={"n_orders": {"rows": 12.0, "null_share": 0.0, "mean": 3.5, "std": 2.25}},
    )  # fmt: skip
    record_run(client, refused)
    report = {"events": 900, "events_per_second": 30.0, "written": 880, "skipped": 20, "dead_letters": 1,
              "latency_p50_seconds": 0.012, "latency_p99_seconds": 0.09, "lag": 4}  # fmt: skip
    client.hset(progress_key("live"), mapping=progress_fields(report, "kafka:clicks", now_ms()))
    audit = {"view": "scores", "ds": "2024-06-01", "audited_at": "2024-06-02T01:00:00", "sample": 100,
             "max_mismatch_rate": 0.01, "worst_rate": 0.0, "ok": True, "served": {}}  # fmt: skip
    client.xadd(AUDITS_KEY, {"audit": json.dumps(audit)})


# ---------------------------------------------------------------- a feature log written by hand (unit tier)
# The Delta protocol's minimum, as Spark writes it for the feature log (protocol 1/2, JSON commits,
# parquet data files under ds=<day>/, add actions with partitionValues and JSON stats), for the reader's
# unit tests; tests/spark/ui writes the log with Spark itself (feature_log.write_batch_log).

_ARROW_TYPES = {"int64": "int64", "float64": "float64", "float32": "float32", "string": "string", "bool": "bool_"}


def log_arrow_schema(view: FeatureView) -> Any:
    """The feature log's columns of ``view`` in the data files (``ds`` is the folder, not a column)."""
    import pyarrow as pa

    def arrow(dtype: str) -> Any:
        return pa.list_(pa.float32()) if dtype == "vector" else getattr(pa, _ARROW_TYPES[dtype])()

    key = pa.int64() if view.entity.id_dtype == "int64" else pa.string()
    columns = [pa.field(view.entity.join_key, key)] + [pa.field(f.name, arrow(str(f.dtype))) for f in view.features]
    columns += [
        pa.field(fl.VIEW, pa.string()), pa.field(fl.KIND, pa.string()), pa.field(fl.RUN_ID, pa.string()),
        pa.field(fl.TS_MS, pa.int64()), pa.field(fl.WRITTEN_AT_MS, pa.int64()),
        pa.field(fl.FIELDS, pa.list_(pa.string())),
    ]  # fmt: skip
    return pa.schema(columns)


def log_file(table: Path, view: FeatureView, ds: str, rows: list[dict[str, Any]], stats: bool = True) -> dict[str, Any]:
    """One parquet data file of ``rows`` (missing columns null) in ``ds``'s folder; its ``add`` action."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = log_arrow_schema(view)
    folder = table / f"{fl.PARTITION}={ds}"
    folder.mkdir(parents=True, exist_ok=True)
    name = f"part-{uuid.uuid4()}.c000.snappy.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), folder / name)
    ids = [r[view.entity.join_key] for r in rows]
    add: dict[str, Any] = {
        "path": f"{fl.PARTITION}={ds}/{name}", "partitionValues": {fl.PARTITION: ds},
        "size": (folder / name).stat().st_size, "modificationTime": 0, "dataChange": True,
    }  # fmt: skip
    if stats:
        key = view.entity.join_key
        add["stats"] = json.dumps({"numRecords": len(rows), "minValues": {key: min(ids)}, "maxValues": {key: max(ids)}})
    return add


def log_commit(table: Path, version: int, *actions: dict[str, Any], protocol: dict[str, Any] | None = None) -> None:
    """Commit ``version`` of the table: ``add``/``remove`` actions (the first commit also metadata and protocol)."""
    folder = table / "_delta_log"
    folder.mkdir(parents=True, exist_ok=True)
    lines: list[dict[str, Any]] = [{"commitInfo": {"operation": "WRITE"}}]
    if version == 0:
        lines.append({"metaData": {"id": str(uuid.uuid4()), "format": {"provider": "parquet"}, "schemaString": "{}",
                                   "partitionColumns": [fl.PARTITION], "configuration": {}}})  # fmt: skip
        lines.append({"protocol": protocol or {"minReaderVersion": 1, "minWriterVersion": 2}})
    lines += [a if "remove" in a or "add" in a else {"add": a} for a in actions]
    (folder / f"{version:020d}.json").write_text("".join(json.dumps(line) + "\n" for line in lines))


def log_row(view: FeatureView, entity_id: Any, run_id: str, written_at_ms: int, **values: Any) -> dict[str, Any]:
    """A log row of ``view``: a batch row (every feature) unless ``_fields`` is given (a streaming event)."""
    fields = values.pop(fl.FIELDS, None)
    return {view.entity.join_key: entity_id, **values, fl.VIEW: view.name,
            fl.KIND: "batch" if fields is None else "streaming", fl.RUN_ID: run_id,
            fl.TS_MS: written_at_ms - 1000, fl.WRITTEN_AT_MS: written_at_ms, fl.FIELDS: fields}  # fmt: skip


def write_feature_log(settings: fl.LogSettings, entity_id: int = 7) -> None:
    """A feature log of the test catalogue for the entity page: three nightly runs of ``scores`` and a
    few streaming events of ``live`` for ``entity_id`` (written by hand: the Spark-written log is tests/spark/ui's)."""
    day, written = 86_400_000, now_ms() - 4 * 86_400_000
    table = settings.path(scores)
    for n, ds in enumerate(("2024-05-31", "2024-06-01", "2024-06-02")):
        rows = [log_row(scores, entity_id, f"scores-{ds}", written + n * day, n_orders=9 + n, spend=120.5 + n,
                        ratio=0.25, segment="silver", is_vip=False, embedding=[0.5, 0.25, 1.0])]  # fmt: skip
        log_commit(table, n, log_file(table, scores, ds, rows))
    table, streamed = settings.path(live), written + 3 * day
    events = [log_row(live, entity_id, f"stream-{streamed + i}", streamed + i * 1000, clicks_1m=i,
                      _fields=["clicks_1m"]) for i in range(1, 4)]  # fmt: skip
    day_written = datetime.fromtimestamp(streamed / 1000, UTC).date().isoformat()  # a streaming row's ds
    log_commit(table, 0, log_file(table, live, day_written, events))


def log_checkpoint(table: Path, version: int, adds: list[dict[str, Any]], hint: bool = True) -> None:
    """A classic checkpoint of ``version`` holding ``adds`` (and the protocol), as Delta writes it;
    ``hint``: also ``_last_checkpoint`` naming it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    add_type = pa.struct([
        ("path", pa.string()), ("partitionValues", pa.map_(pa.string(), pa.string())), ("size", pa.int64()),
        ("modificationTime", pa.int64()), ("dataChange", pa.bool_()), ("stats", pa.string()),
    ])  # fmt: skip
    protocol_type = pa.struct([("minReaderVersion", pa.int32()), ("minWriterVersion", pa.int32())])
    rows = [{"add": None, "protocol": {"minReaderVersion": 1, "minWriterVersion": 2}}]
    rows += [{"add": {**a, "partitionValues": list(a["partitionValues"].items())}, "protocol": None} for a in adds]
    schema = pa.schema([("add", add_type), ("protocol", protocol_type)])
    checkpoint = table / "_delta_log" / f"{version:020d}.checkpoint.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), checkpoint)
    if hint:
        (table / "_delta_log" / "_last_checkpoint").write_text(json.dumps({"version": version, "size": len(rows)}))
