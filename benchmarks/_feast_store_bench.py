"""Run by benchmarks/feast_online_store.py inside the Feast side venv (tests/helpers/feast.py).

    <feast venv>/bin/python benchmarks/_feast_store_bench.py --store ours|redis --redis-url URL \
        --entities 5000 --calls 2000 --workdir DIR [--layout text|compact]

One Feast ``FeatureStore`` whose online store is Feast's own Redis store (``redis``) or ours
(``ours``: ``featurestore.feast.FeatureStoreOnlineStore``, from this checkout on PYTHONPATH), one
20-feature view (16 float32, 2 int64, 2 strings, as the other benchmarks).  Times, through Feast:
``write_to_online_store`` (rows/s: the ``online_write_batch`` path ``feast materialize`` and
``push`` use), the memory of an entity's key (``MEMORY USAGE``, mean of 300 keys), and ``get_online_features``
for 1 and for 100 entities (p50/p99 in microseconds).  Prints one JSON line.  The caller
flushes Redis between stores.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path
from typing import Any


def _store(kind: str, url: str, workdir: Path, layout: str = "text") -> Any:
    from _feast_repo import bench_store
    from feast import Field
    from feast.types import Float32, Int64, String

    hostport = url.split("://", 1)[1].split("?", 1)[0]
    online: Any = None  # Feast's Redis store at hostport
    if kind != "redis":
        from featurestore.feast import FeatureStoreOnlineStoreConfig

        online = FeatureStoreOnlineStoreConfig(connection_string=url, layout=layout)
    schema = [Field(name=f"amount_stat_{i:02d}", dtype=Float32) for i in range(16)]
    schema += [Field(name="txn_count", dtype=Int64), Field(name="age_days", dtype=Int64)]
    schema += [Field(name="country", dtype=String), Field(name="device", dtype=String)]
    return bench_store(
        workdir, hostport, schema, online_store=online, project="feast_bench", registry=f"registry-{kind}.db"
    )


def _rows(entities: int) -> Any:
    import pandas as pd

    rng = random.Random(7)
    columns: dict[str, Any] = {"user_id": list(range(entities))}
    for i in range(16):
        columns[f"amount_stat_{i:02d}"] = [rng.lognormvariate(3, 1.2) for _ in range(entities)]
    columns["txn_count"] = [rng.randint(0, 500) for _ in range(entities)]
    columns["age_days"] = [rng.randint(0, 4000) for _ in range(entities)]
    columns["country"] = [rng.choice(["FR", "DE", "US", "GB", "BR", "IN"]) for _ in range(entities)]
    columns["device"] = [rng.choice(["ios", "android", "web"]) for _ in range(entities)]
    frame = pd.DataFrame(columns)
    for i in range(16):
        frame[f"amount_stat_{i:02d}"] = frame[f"amount_stat_{i:02d}"].astype("float32")
    frame["event_timestamp"] = pd.Timestamp.now(tz="UTC")
    return frame


def _percentiles(samples_ns: list[int]) -> dict[str, float]:
    ordered = sorted(samples_ns)
    return {q: ordered[min(len(ordered) - 1, int(f * len(ordered)))] / 1000.0 for q, f in (("p50", 0.5), ("p99", 0.99))}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--store", choices=("ours", "redis"), required=True)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--entities", type=int, default=5000)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--layout", choices=("text", "compact"), default="text", help="our store's layout")
    args = parser.parse_args(argv)

    import feast
    import redis

    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    client = redis.Redis.from_url(args.redis_url.split("?", 1)[0])
    frame = _rows(args.entities)
    frame.to_parquet(workdir / "source.parquet")
    store = _store(args.store, args.redis_url, workdir, args.layout)
    started = time.perf_counter()
    for start in range(0, len(frame), 5000):
        store.write_to_online_store("bench_view", frame.iloc[start : start + 5000])
    write_seconds = time.perf_counter() - started
    # MEMORY USAGE of sampled entity keys (both stores keep one key per entity): used_memory's
    # delta would also count the registry, the guard function and connection buffers
    sampled = []
    for key in client.scan_iter(count=1000):
        if client.type(key) == b"hash" and key != b"fs:registry":
            sampled.append(int(client.memory_usage(key, samples=0)))
        if len(sampled) >= 300:
            break
    features = [f"bench_view:{c}" for c in frame.columns if c not in ("user_id", "event_timestamp")]
    rng = random.Random(11)
    out: dict[str, Any] = {
        "store": args.store,
        "feast_version": feast.__version__,
        "entities": args.entities,
        "write_rows_per_s": round(args.entities / write_seconds),
        "bytes_per_entity": round(sum(sampled) / len(sampled)),
    }
    for many, calls in ((1, args.calls), (100, max(50, args.calls // 10))):
        for _ in range(min(50, calls)):  # warm-up: connections, caches
            store.get_online_features(features=features, entity_rows=[{"user_id": 0}]).to_dict()
        samples = []
        for _ in range(calls):
            rows = [{"user_id": rng.randrange(args.entities)} for _ in range(many)]
            t0 = time.perf_counter_ns()
            store.get_online_features(features=features, entity_rows=rows).to_dict()
            samples.append(time.perf_counter_ns() - t0)
        out[f"get_{many}"] = _percentiles(samples)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
