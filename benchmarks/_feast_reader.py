"""Run by benchmarks/reader_latency.py inside the side venv that has Feast installed.

    /tmp/feast-venv/bin/python benchmarks/_feast_reader.py --redis 127.0.0.1:6379 \
        --entities 20000 --calls 10000 --workdir DIR

Writes N entities of the 20-feature benchmark shape (16 float32, 2 int64, 2 strings) with
Feast's own ``write_to_online_store`` into the same Redis, then times Feast's
``get_online_features`` for one entity (``.to_dict()``), the call an inference service
makes.  Imports nothing from redis-feature-store (Feast lives in its own venv); prints
one JSON line of percentiles in microseconds.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

from _feast_repo import bench_store


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis", required=True, help="host:port")
    parser.add_argument("--entities", type=int, default=20_000)
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--skip-write", action="store_true", help="the rows are already in Redis")
    args = parser.parse_args(argv)

    import feast
    import pandas as pd
    from feast import Field
    from feast.types import Float32, Int64, String

    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(7)
    floats = [f"amount_stat_{i:02d}" for i in range(16)]
    rows = pd.DataFrame(
        {
            "user_id": list(range(args.entities)),
            **{name: [rng.lognormvariate(3, 1.2) for _ in range(args.entities)] for name in floats},
            "txn_count": [rng.randint(0, 500) for _ in range(args.entities)],
            "age_days": [rng.randint(0, 4000) for _ in range(args.entities)],
            "country": [rng.choice(["FR", "DE", "US", "GB", "BR", "IN"]) for _ in range(args.entities)],
            "device": [rng.choice(["ios", "android", "web"]) for _ in range(args.entities)],
        }
    )
    rows["event_timestamp"] = pd.Timestamp.now(tz="UTC")
    rows.to_parquet(workdir / "source.parquet")
    schema = [Field(name=n, dtype=Float32) for n in floats]
    schema += [Field(name="txn_count", dtype=Int64), Field(name="age_days", dtype=Int64)]
    schema += [Field(name="country", dtype=String), Field(name="device", dtype=String)]
    store = bench_store(workdir, args.redis, schema)
    if not args.skip_write:
        for start in range(0, len(rows), 20_000):
            store.write_to_online_store("bench_view", rows.iloc[start : start + 20_000])
    features = [f"bench_view:{f.name}" for f in schema]
    ids = [rng.randrange(args.entities) for _ in range(args.calls)]
    for entity_id in ids[:200]:  # warm up
        store.get_online_features(features=features, entity_rows=[{"user_id": entity_id}]).to_dict()
    samples = []
    clock = time.perf_counter_ns
    for entity_id in ids:
        started = clock()
        store.get_online_features(features=features, entity_rows=[{"user_id": entity_id}]).to_dict()
        samples.append(clock() - started)
    samples.sort()

    def at(q: float) -> float:
        return samples[min(len(samples) - 1, int(q * len(samples)))] / 1000.0

    print(json.dumps({"feast_version": feast.__version__, "p50": at(0.5), "p99": at(0.99), "p99.9": at(0.999)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
