"""The recommendations example end to end, with no code of its own in the package (issue 20, §3.4 item 1).

Its batch path, in one Spark session on small data: the example's ``generate`` hook writes the
warehouse → both batch views materialize through the example's suites (and into the feature
log) → the reader serves them → the point-in-time training set equals what the reader served,
value by value and status by status, and holds nothing before the run's computed-at time.

TODO(stream, after the merge of branch `stream`): the streaming half of §3.4 item 1 (local Kafka,
two rounds of the example's ``events``, late and bad records, ``featurestore stream --view
item_popularity --view user_recent --feature-log``, reader == ``windows.reference``, the training
set at three moments) needs the generic stream job; ``plan`` and ``init --example`` come with
branch `repo`.
"""

from __future__ import annotations

import struct
import time
from datetime import date
from pathlib import Path
from typing import Any

from featurestore.jobs.core import feature_log as fl
from featurestore.jobs.examples import example_path
from featurestore.jobs.examples.recommendations import sample_data
from featurestore.jobs.examples.recommendations.definitions import catalog
from featurestore.jobs.training.training_set import build_training_set
from featurestore.readers import FeatureReader
from tests.helpers.batch import run

DS = date(2024, 5, 31)
HOUR_MS = 3_600_000


def _same(dtype: str, served: Any, trained: Any) -> bool:
    if dtype == "float32" and served is not None and trained is not None:
        return struct.pack("<f", served) == struct.pack("<f", trained)  # the same float32
    return bool(served == trained)


def _compare(
    spark: Any, reader: FeatureReader, entity: str, key: str, ids: list[Any], log: fl.LogSettings, computed_at: int
) -> set[tuple[str, str]]:
    """Read ``ids`` now and build the training set at the read's moment and just before the runs."""
    view_features = [f for v in catalog.batch_views if v.entity.name == entity for f in v.features]
    names = [f.name for f in view_features]
    vectors = reader.get_many(ids, names, entity=entity)
    labels = spark.createDataFrame(
        [(moment, entity_id, at) for moment, at in (("read", vectors.read_at_ms), ("before", computed_at - 1))
         for entity_id in ids],
        f"moment string, {key} {'long' if isinstance(ids[0], int) else 'string'}, ts long",
    )  # fmt: skip
    rows = build_training_set(spark, labels, names, catalog=catalog, feature_log=log, statuses=True).collect()
    by_key = {(r["moment"], r[key]): r for r in rows}
    assert len(by_key) == 2 * len(ids)
    seen: set[tuple[str, str]] = set()
    mismatches = []
    for entity_id, vector in zip(ids, vectors):
        for feature in view_features:
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
