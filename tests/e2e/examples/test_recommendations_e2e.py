"""The recommendations example end to end, with no code of its own in the package (issue 20, item 3).

Its batch path, in one Spark session on small data: the example's ``generate`` hook writes the
warehouse → both batch views materialize through the example's suites (and into the feature
log) → the reader serves them → the point-in-time training set equals what the reader served,
value by value and status by status, and holds nothing before the run's computed-at time.

Its streaming path, from a copy made by ``featurestore init --example recommendations``: the copy's
``events`` hook on a real Kafka topic (late events, malformed records) → one ``featurestore stream``
driver over both declared views (sliding and tumbling windows, ``where`` filters, a distinct count,
last values) → Redis holds what ``windows.reference`` computes from the produced events → the reader
serves it → the point-in-time training set equals what it served.

The nightly DAG of the repository (parse and ``dag.test()``): tests/e2e/airflow/test_repository_dag.py.
"""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import redis

from featurestore.jobs.core import feature_log as fl
from featurestore.jobs.dev.kafka_command import produce
from featurestore.jobs.dev.sample_data import sample_module
from featurestore.jobs.examples import example_path
from featurestore.jobs.examples.recommendations import sample_data
from featurestore.jobs.examples.recommendations.definitions import catalog
from featurestore.jobs.repo.init_command import init_repository
from featurestore.jobs.streaming.events import EventSchema, Rejected, parse_event
from featurestore.jobs.streaming.windows import ViewProgram, reference
from featurestore.jobs.training.training_set import build_training_set
from featurestore.readers import Catalog, Feature, FeatureBatch, FeatureReader, FeatureView
from featurestore.readers.repository import load_catalog
from tests.helpers.batch import run
from tests.helpers.streaming import finish_driver, report_of

DS = date(2024, 5, 31)
HOUR_MS = 3_600_000


def _same(dtype: str, served: Any, trained: Any) -> bool:
    if dtype == "float32" and served is not None and trained is not None:
        return struct.pack("<f", served) == struct.pack("<f", trained)  # the same float32
    return bool(served == trained)


def _training_equals_serving(
    spark: Any,
    definitions: Catalog,
    vectors: FeatureBatch,
    key: str,
    ids: list[Any],
    features: list[Feature],
    log: Any,
    before_ms: int,
) -> set[tuple[str, str]]:
    """The point-in-time training set at the moment of the read ``vectors`` equals what they served,
    value by value and status by status; at ``before_ms`` (before any write) every feature is missing
    with its default.  Returns the (feature, status) pairs served."""
    names = [f.name for f in features]
    labels = spark.createDataFrame(
        [(moment, entity_id, at) for moment, at in (("read", vectors.read_at_ms), ("before", before_ms))
         for entity_id in ids],
        f"moment string, {key} {'long' if isinstance(ids[0], int) else 'string'}, ts long",
    )  # fmt: skip
    rows = build_training_set(spark, labels, names, catalog=definitions, feature_log=log, statuses=True).collect()
    by_key = {(r["moment"], r[key]): r for r in rows}
    assert len(by_key) == 2 * len(ids)
    seen: set[tuple[str, str]] = set()
    mismatches = []
    for entity_id, vector in zip(ids, vectors):
        for feature in features:
            served, status = vector[feature.name], vector.status(feature.name).value
            seen.add((feature.name, status))
            row = by_key[("read", entity_id)]
            if not _same(feature.dtype, served, row[feature.name]) or status != row[feature.name + "__status"]:
                mismatches.append(
                    (entity_id, feature.name, (served, status), (row[feature.name], row[f"{feature.name}__status"]))
                )
            before = by_key[("before", entity_id)]
            assert before[feature.name + "__status"] == "missing", (entity_id, feature.name)
            assert before[feature.name] == feature.default, (entity_id, feature.name)
    assert mismatches == []
    return seen


def _compare(
    spark: Any, reader: FeatureReader, entity: str, key: str, ids: list[Any], log: fl.LogSettings, computed_at: int
) -> set[tuple[str, str]]:
    """Read ``ids``' batch features now; the training set at the read's moment and just before the runs."""
    features = [f for v in catalog.batch_views if v.entity.name == entity for f in v.features]
    vectors = reader.get_many(ids, [f.name for f in features], entity=entity)
    return _training_equals_serving(spark, catalog, vectors, key, ids, features, log, computed_at - 1)


def test_recommendations_batch_path_end_to_end(batch_spark: Any, redis_url: str, tmp_path: Path) -> None:
    from pyspark.sql import functions as F

    generated = sample_data.generate(batch_spark, tmp_path / "warehouse", end_date=DS, days=8, scale=0.1, seed=5)
    assert set(generated.rows) == {"items", "interactions"} and generated.rows["interactions"] > 500
    log = fl.LogSettings.resolve(generated.path, tmp_path / "log")
    suites = Path(str(example_path("recommendations"))) / "expectations"
    computed_at = int(time.time() * 1000) - HOUR_MS
    for view in catalog.batch_views:
        outcome = run(
            batch_spark, redis_url, view.name, generated.path, ds=DS, catalog=catalog, expectations_dir=suites,
            feature_log=log.root, computed_at_ms=computed_at,
        )  # fmt: skip
        assert outcome.record.status == "succeeded", outcome.record.error
        assert outcome.record.entities_written > 0

    interactions = batch_spark.read.format("delta").load(str(generated.path / "interactions"))
    pairs = [
        f"{r['user_id']}:{r['item_id']}"
        for r in interactions.where(F.col("ds") == DS.isoformat())
        .select("user_id", "item_id")
        .distinct()
        .limit(15)
        .collect()
    ]
    items = [sample_data.item_id(i) for i in range(1, generated.rows["items"] + 1)]
    with FeatureReader(redis_url, catalog=catalog) as reader:  # the registry check passes: written by this run
        item_seen = _compare(batch_spark, reader, "item", "item_id", [*items, "i9999"], log, computed_at)
        pair_seen = _compare(batch_spark, reader, "user_item", "user_item_id", [*pairs, "1:i9999"], log, computed_at)
        vector = reader.get(pairs[0], "user_item_affinity", entity="user_item")
    assert {
        ("item_purchases_7d", "present"),
        ("item_purchases_7d", "missing"),
        ("item_category", "present"),
    } <= item_seen
    assert {("ui_affinity_30d", "present"), ("ui_affinity_30d", "missing")} <= pair_seen
    assert vector["ui_affinity_30d"] > 0 and vector.status("ui_affinity_30d").value == "present"


# --- the streaming half -------------------------------------------------------------------------

STREAM_VIEWS = {"item_popularity": "item_id", "user_recent": "user_id"}  # view -> its id field
STREAM_EVENTS = 240
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _event_ms(stamp: str) -> int:
    """The producer's ISO-8601 event time (UTC, milliseconds) as epoch milliseconds."""
    return (datetime.fromisoformat(stamp) - EPOCH) // timedelta(milliseconds=1)


def _accepted(view: FeatureView, good: list[dict[str, Any]], bad: list[bytes]) -> dict[Any, list[dict[str, Any]]]:
    """The events ``view`` takes, by entity id: every good event, and the malformed records its own
    schema accepts (a record without ``item_id`` is a dead letter of the view keyed by item, an
    event of the view keyed by user)."""
    assert view.stream is not None
    schema = EventSchema.of(view.stream)
    parsed = [p for p in (parse_event(record, schema) for record in bad) if not isinstance(p, Rejected)]
    by_id: dict[Any, list[dict[str, Any]]] = {}
    for event in [*good, *parsed]:
        by_id.setdefault(event[view.stream.id_field], []).append(event)
    return by_id


def _expected(view: FeatureView, events: list[dict[str, Any]], as_of: int, read_at: int) -> dict[str, Any]:
    """What the reader must serve for one entity: ``windows.reference`` (the written semantics, by brute
    force over the events) at its ``_ts``, as (value, status) per feature: an absent value is missing
    with the default; a ``_ts`` older than the view's max_age is stale with the default."""
    want = reference(ViewProgram.of(view), events, as_of)
    out = {}
    for feature in view.features:
        value = want[feature.name]
        if value is None:
            out[feature.name] = (feature.default, "missing")
        elif read_at - as_of > view.max_age_seconds * 1000:
            out[feature.name] = (feature.default, "stale")
        else:
            out[feature.name] = (value, "present")
    return out


def test_recommendations_streaming_path_end_to_end(
    batch_spark: Any, kafka: Any, kafka_topic: str, redis_url: str, tmp_path: Path
) -> None:
    """`featurestore init --example recommendations`, the repository's own `events` hook on a real Kafka
    topic (late events, malformed records), one `featurestore stream` driver over both declared views
    (--available-now, the feature log on), then: Redis holds exactly the fields `windows.reference` says at
    each entity's `_ts`, the reader serves them, and the point-in-time training set equals what it served.

    The whole topic is one micro-batch per view (no --max-offsets-per-trigger), and a watermark holds only
    from the micro-batch after the one that moved it, so no event is dropped as late (`late` is 0) and the
    reference over every event is exact; the watermark's timers may still move an entity's `_ts` (a bucket
    that left its window), hence the reference at the stored `_ts`.  Too-late events and restarts: the
    fraud example's tests/e2e/streaming and tests/spark/streaming."""
    repo = init_repository(tmp_path / "recs_stream", example="recommendations").folder
    definitions = load_catalog(repo)  # the copy's definitions.py: nothing of the package's example
    module = sample_module(None, repo)  # the copy's sample_data.py, as `featurestore kafka produce` finds it
    assert Path(module.__file__ or "").parent == repo
    sent = produce(kafka.bootstrap, module, topic=kafka_topic, events=STREAM_EVENTS, late_share=0.1,
                   bad_share=0.03, seed=11)  # fmt: skip
    assert sent.bad >= len(module.BAD_RECORDS)  # each kind of malformed record at least once
    good = [{**event, "event_time": _event_ms(event["event_time"])} for _, _, event in sent.events]
    # `produce` mixes the hook's BAD_RECORDS in, in turn
    bad = [module.BAD_RECORDS[i % len(module.BAD_RECORDS)] for i in range(sent.bad)]
    late = [e for e in good if e["event_time"] < int(time.time() * 1000) - 30_000]
    assert late  # some late events, within and beyond the views' 2-minute allowed lateness

    # the repository's own settings (no --repo: its folder is the working directory), without the
    # tests' fraud catalogue and suites, which would outrank them; Redis and Kafka as a user exports them
    env = {k: v for k, v in os.environ.items() if k not in ("FEATURESTORE_CATALOG", "FEATURESTORE_EXPECTATIONS")}
    env.update(FEATURESTORE_REDIS_URL=redis_url, FEATURESTORE_KAFKA_BOOTSTRAP=kafka.bootstrap)
    log_root = repo / ".featurestore" / "stream-log"
    command = [sys.executable, "-m", "featurestore.jobs.cli", "stream", "--topic", kafka_topic, "--available-now",
               "--feature-log", str(log_root), "--trigger-seconds", "0.5", "--report-seconds", "1",
               "--partitions", "1",  # one state partition per view: half the Python workers on 2 cores
               *(arg for view in STREAM_VIEWS for arg in ("--view", view))]  # fmt: skip
    before_ms = int(time.time() * 1000)
    output = tmp_path / "stream.log"
    with open(output, "ab") as out:
        driver = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=repo,
                                  start_new_session=True)  # fmt: skip
    try:
        finish_driver(driver, output, timeout=240)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait()

    client = redis.Redis.from_url(redis_url)
    log = fl.LogSettings.resolve(log_root, log_root)
    seen: dict[str, set[tuple[str, str]]] = {}
    with FeatureReader(redis_url, catalog=definitions) as reader:
        for name, id_field in STREAM_VIEWS.items():
            view = definitions.view(name)
            by_id = _accepted(view, good, bad)
            report = report_of(output, name)
            assert report["events"] == sum(len(events) for events in by_id.values()), report
            assert report["dead_letters"] == sent.bad - (report["events"] - len(good)) and report["late"] == 0
            ids = sorted(by_id)
            vectors = reader.get_many(ids, name)
            mismatches = []
            for entity_id, vector in zip(ids, vectors):
                key = f"fs:{view.entity.name}:{{{entity_id}}}"
                stored = {k.decode(): v for k, v in client.hgetall(key).items()}
                as_of = int(stored[f"_ts:{name}"])
                assert as_of >= max(e["event_time"] for e in by_id[entity_id]), (key, stored)
                want = _expected(view, by_id[entity_id], as_of, vectors.read_at_ms)
                # a null is an absent field: the hash holds exactly the features with a value
                assert set(stored) == {f"_ts:{name}"} | {f for f, (_, s) in want.items() if s != "missing"}, key
                assert client.ttl(key) == -1  # streaming never sets a key TTL
                for feature in view.features:
                    served = (vector[feature.name], vector.status(feature.name).value)
                    value, status = want[feature.name]
                    if served[1] != status or not _same(feature.dtype, served[0], value):
                        mismatches.append((entity_id, feature.name, served, want[feature.name]))
            assert mismatches == [], mismatches[:10]
            seen[name] = _training_equals_serving(
                batch_spark, definitions, vectors, id_field, ids, list(view.features), log, before_ms
            )
    # the windows, filters, distinct count and last values all served something, and missing where empty
    assert {("item_views_1h", "present"), ("item_views_24h", "present"), ("item_buyers_24h", "present"),
            ("item_buyers_24h", "missing"), ("item_revenue_1h", "present")} <= seen["item_popularity"]  # fmt: skip
    assert {("last_category", "present"), ("user_events_10m", "present"), ("user_max_price_10m", "present"),
            ("last_item_id", "missing")} <= seen["user_recent"]  # fmt: skip
    # with seed 11, user 3's only event is the malformed record of 2026-01-01 without an item_id: a dead
    # letter of item_popularity, an event of user_recent, whose _ts it makes old: served stale, never current
    assert 3 not in {e["user_id"] for e in good} and ("last_category", "stale") in seen["user_recent"]
