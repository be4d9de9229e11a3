"""Point-in-time training sets: ours (one sort per entity: union + window last-value, with the serving
rules) against a plain Spark as-of join written the obvious way (join on the entity, keep the rows
written before the label, window + filter the newest), in one run, on the same data.

    python benchmarks/training_set.py [--labels 1000000] [--entities 100000] [--days 30] [--repeats 3]

The data: a feature log of the 20-feature benchmark view (benchmarks/_common.py) with one row per
entity per day for ``--days`` days (a Delta table in a temporary folder, read back as the jobs read
it), and ``--labels`` label rows (a random entity, a random moment in the logged days, a label).
Both builds write their result to Spark's ``noop`` sink, so the whole plan runs and nothing is kept.
The baseline applies no TTL, staleness, key-death or default rules: it is the lower bound of the
obvious approach, not a correct training set.  Prints rows/s of each (median of the repeats and
their spread), the ratio, and the load average before and after.  Not a test: never run by pytest.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import bench_catalog, bench_view

from featurestore.jobs.core import feature_log as fl
from featurestore.jobs.training.point_in_time import point_in_time

DAY_MS = 86_400_000


def _load() -> str:
    with open("/proc/loadavg") as f:
        return f.read().strip()


START_MS = 1_717_200_000_000  # 2024-06-01


def build_log(spark: Any, entities: int, days: int, path: str) -> Any:
    """One row per entity per day: the nightly run of each day, written at 02:00 the next morning."""
    from pyspark.sql import functions as F

    view = bench_view()
    schema = {f.name: f.dataType for f in fl.log_schema(view).fields}
    rows = spark.range(0, entities * days).select(
        (F.col("id") % entities + 1).alias("user_id"), (F.col("id") / entities).cast("long").alias("_day")
    )
    columns = [F.col("user_id")]
    for i, feature in enumerate(view.features):
        if feature.name.startswith("amount_stat"):
            value = (F.rand(i) * 100).cast(schema[feature.name])
        elif feature.dtype == "int64":
            value = (F.rand(i) * 1000).cast("long")
        else:
            value = F.element_at(F.array(F.lit("FR"), F.lit("DE"), F.lit("US")), (F.rand(i) * 3).cast("int") + 1)
        columns.append(value.alias(feature.name))
    at = F.lit(START_MS) + F.col("_day") * DAY_MS + 2 * 3_600_000
    frame = rows.select(
        *columns,
        F.lit(view.name).alias(fl.VIEW), F.lit("batch").alias(fl.KIND), F.lit("bench").alias(fl.RUN_ID),
        at.alias(fl.TS_MS), at.alias(fl.WRITTEN_AT_MS), F.lit(None).cast("array<string>").alias(fl.FIELDS),
        F.date_format(F.timestamp_millis(at - DAY_MS), "yyyy-MM-dd").alias(fl.PARTITION),
    )  # fmt: skip
    frame.write.format("delta").mode("overwrite").partitionBy(fl.PARTITION).save(path)
    return spark.read.format("delta").load(path)


def build_labels(spark: Any, labels: int, entities: int, days: int, path: str) -> Any:
    from pyspark.sql import functions as F

    frame = spark.range(0, labels).select(
        (F.floor(F.rand(101) * entities) + 1).cast("long").alias("user_id"),
        (F.lit(START_MS) + (F.rand(102) * days * DAY_MS).cast("long")).alias("ts"),
        (F.rand(103) < 0.02).alias("is_fraud"),
    )
    frame.write.mode("overwrite").parquet(path)
    return spark.read.parquet(path)


def obvious_as_of(labels: Any, log: Any) -> Any:
    """The as-of join most people write first: join, filter to the past, newest row per label."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    view = bench_view()
    keyed = labels.withColumn("_label", F.monotonically_increasing_id())
    joined = keyed.join(log.select("user_id", fl.WRITTEN_AT_MS, *view.feature_names), "user_id", "left").where(
        F.col(fl.WRITTEN_AT_MS).isNull() | (F.col(fl.WRITTEN_AT_MS) <= F.col("ts"))
    )
    newest = Window.partitionBy("_label").orderBy(F.col(fl.WRITTEN_AT_MS).desc_nulls_last())
    return (
        joined.withColumn("_rank", F.row_number().over(newest))
        .where("_rank = 1")
        .select(*labels.columns, *view.feature_names)
    )


def timed(frame: Any) -> float:
    started = time.perf_counter()
    frame.write.format("noop").mode("overwrite").save()
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=int, default=1_000_000)
    parser.add_argument("--entities", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--shuffle-partitions", type=int, default=8)
    parser.add_argument("--master", default="local[2]")
    args = parser.parse_args(argv)

    from featurestore.jobs.spark import build_session

    print(f"load before: {_load()}")
    spark = build_session("bench-training-set", master=args.master, shuffle_partitions=args.shuffle_partitions)
    spark.sparkContext.setLogLevel("ERROR")
    workdir = tempfile.mkdtemp(prefix="bench-training-set-")
    try:
        started = time.perf_counter()
        log = build_log(spark, args.entities, args.days, os.path.join(workdir, "log"))
        labels = build_labels(spark, args.labels, args.entities, args.days, os.path.join(workdir, "labels"))
        print(
            f"data: {args.entities:,} entities x {args.days} days = {args.entities * args.days:,} log rows x "
            f"20 features, {args.labels:,} labels ({time.perf_counter() - started:.0f}s to generate)"
        )
        catalog = bench_catalog()
        ours = point_in_time(labels, {"bench_view": log}, catalog, ["bench_view"], statuses=True)
        baseline = obvious_as_of(labels, log)
        results: dict[str, list[float]] = {"ours (serving rules + statuses)": [], "obvious as-of join": []}
        for repeat in range(args.repeats):  # interleaved, so load changes hit both alike
            for name, frame in zip(results, (ours, baseline)):
                seconds = timed(frame)
                results[name].append(seconds)
                print(f"  repeat {repeat + 1}: {name:<34} {seconds:7.1f}s", flush=True)
        medians = {}
        for name, times in results.items():
            median = statistics.median(times)
            medians[name] = median
            spread = (max(times) - min(times)) / median if median else 0.0
            print(
                f"{name:<34} {args.labels / median:>12,.0f} label rows/s  (median {median:.1f}s of "
                f"{len(times)}, spread {spread:.0%}: {min(times):.1f}..{max(times):.1f}s)"
            )
        ours_s, base_s = medians.values()
        print(f"ratio: ours is {base_s / ours_s:.2f}x the obvious join's throughput")
    finally:
        spark.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"load after: {_load()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
