"""The recommendations example's batch transforms: pure DataFrame -> DataFrame functions.

Each is a :func:`~featurestore.readers.definitions.batch_transform` given to its view in
``definitions.py``.  They do no I/O and never create a Spark session: the job hands them the
input tables (read at a pinned Delta version, only the ``ds`` partitions of ``lookback_days``)
and the run's as-of instant (the end of ``ds``, exclusive); they only use what happened
before it, so a re-run, a backfill or a training set computes the same values
(tests/spark/examples/test_recommendation_transforms.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING

from featurestore.jobs.batch.transforms import in_window, timestamp
from featurestore.readers.definitions import batch_transform

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

# how much one interaction of a kind says about a user's interest in an item
KIND_WEIGHTS = {"view": 1.0, "click": 3.0, "purchase": 10.0}
AFFINITY_HALF_LIFE_DAYS = 7.0  # the decay constant: weight x exp(-age_days / 7)


@batch_transform(sources=("interactions", "items"), lookback_days={"interactions": 7, "items": None})
def item_stats(inputs: Mapping[str, DataFrame], as_of: datetime) -> DataFrame:
    """Every item listed before ``as_of``: category, price, purchases and click-through over 7 days.

    An item without interactions gets 0 purchases and no click-through rate (absent: nothing
    to divide); an interaction with an item missing from the catalogue still counts, with the
    category served as its default.
    """
    from pyspark.sql import functions as F

    recent = inputs["interactions"].where(in_window("event_time", as_of, 7))
    kind = F.col("kind")
    traffic = recent.groupBy("item_id").agg(
        F.count(F.when(kind == "purchase", True)).alias("item_purchases_7d"),
        F.count(F.when(kind == "view", True)).alias("_views"),
        F.count(F.when(kind == "click", True)).alias("_clicks"),
    )
    listed = (
        inputs["items"]
        .where(F.col("created_at") < timestamp(as_of))
        .select("item_id", F.col("category").alias("item_category"), F.col("price").alias("item_price"))
    )
    joined = listed.join(traffic, "item_id", "full").fillna({"item_purchases_7d": 0, "_views": 0, "_clicks": 0})
    ctr = F.when(F.col("_views") > 0, F.col("_clicks") / F.col("_views"))
    return joined.select("item_id", "item_category", "item_price", "item_purchases_7d", ctr.alias("item_ctr_7d"))


@batch_transform(sources=("interactions",), lookback_days={"interactions": 30})
def user_item_affinity(inputs: Mapping[str, DataFrame], as_of: datetime) -> DataFrame:
    """One row per (user, item) pair with interactions in the 30 days before ``as_of``.

    ``ui_affinity_30d`` sums each interaction's kind weight decayed by its age in days
    (``exp(-age / 7)``), so yesterday's purchase outweighs last month's views.
    """
    from pyspark.sql import functions as F

    recent = inputs["interactions"].where(in_window("event_time", as_of, 30))
    weight = F.coalesce(
        *(F.when(F.col("kind") == kind, F.lit(value)) for kind, value in KIND_WEIGHTS.items()), F.lit(0.0)
    )
    age_days = (F.unix_micros(timestamp(as_of)) - F.unix_micros(F.col("event_time"))) / 86_400_000_000
    decayed = weight * F.exp(-age_days / AFFINITY_HALF_LIFE_DAYS)
    pairs = recent.groupBy("user_id", "item_id").agg(
        F.count(F.when(F.col("kind") == "view", True)).alias("ui_views_30d"),
        F.max(F.col("kind") == "purchase").alias("ui_purchased_30d"),
        F.sum(decayed).alias("ui_affinity_30d"),
    )
    return pairs.select(
        F.concat_ws(":", F.col("user_id").cast("string"), F.col("item_id")).alias("user_item_id"),
        "ui_views_30d",
        "ui_purchased_30d",
        "ui_affinity_30d",
    )
