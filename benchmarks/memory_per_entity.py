"""Memory per entity of the storage format, beside Feast's Redis layout, in one run.

    python benchmarks/memory_per_entity.py [--entities 100000]

Loads N entities of a 20-feature view (16 floats, 2 ints, 2 short strings) into an
embedded Redis 8, once per layout, and prints used_memory per entity and the hash
encoding.  Layouts:

* feast          Feast's RedisOnlineStore layout, rebuilt byte for byte in size: key =
                 serialized entity key + project, field = 4-byte mmh3 of "view:feature",
                 value = serialized feast.types.Value proto, plus `_ts:<view>` as a
                 Timestamp proto; no TTL (Feast sets none by default).  Not a test.
* text-float64   ours, with the 16 floats declared float64 (full-precision decimal text)
* text-float32   ours, floats declared float32: shortest round-trip text (the default)
* packed         ours, `packed=True`: the 16 float32 features in one `_f32:<view>` field
All of ours carry the key TTL and `_ts:<view>`.
"""

from __future__ import annotations

import argparse
import random
import struct
import sys
import tempfile
import time
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import bench_row, bench_view, user

from featurestore.jobs.dev import local_redis
from featurestore.jobs.write.commands import BatchWritePlan
from featurestore.readers import Catalog, Feature, FeatureView


def _varint(value: int) -> bytes:
    out = bytearray()
    value &= (1 << 64) - 1
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def feast_commands(view: FeatureView, entity_id: int, row: dict[str, object], now_s: int) -> list[tuple[bytes, ...]]:
    """What Feast's RedisOnlineStore writes for one entity (sizes exact, hash values stand-ins)."""
    join_key = b"user_id"
    key = (
        struct.pack("<II", 2, len(join_key)) + join_key  # serialize_entity_key v3: key names
        + struct.pack("<II", 4, 8) + struct.pack("<q", entity_id)  # then typed values
        + b"feature_repo"  # + project
    )  # fmt: skip
    args: list[bytes] = []
    for feature in view.features:
        field = struct.pack("<I", zlib.crc32(f"{view.name}:{feature.name}".encode()))  # mmh3 stand-in: 4 bytes
        value = row[feature.name]
        if feature.dtype in ("float32",):
            proto = b"\x35" + struct.pack("<f", float(value))  # type: ignore[arg-type]
        elif feature.dtype == "float64":
            proto = b"\x29" + struct.pack("<d", float(value))  # type: ignore[arg-type]
        elif feature.dtype == "int64":
            proto = b"\x20" + _varint(int(value))  # type: ignore[call-overload]
        else:
            text = str(value).encode()
            proto = b"\x12" + _varint(len(text)) + text
        args += [field, proto]
    timestamp = b"\x08" + _varint(now_s) + b"\x10" + _varint(123456789)
    args += [f"_ts:{view.name}".encode(), timestamp]
    return [(b"HSET", key, *args)]


def measure(client, commands_for, entities: int) -> tuple[float, str, bytes]:  # type: ignore[no-untyped-def]
    client.flushall()
    time.sleep(0.2)
    before = client.info("memory")["used_memory"]
    rng = random.Random(3)
    pipe = client.pipeline(transaction=False)
    sample_key = b""
    for entity_id in range(entities):
        for command in commands_for(entity_id, bench_row(rng)):
            pipe.execute_command(command[0].decode(), *command[1:])
            sample_key = command[1]
        if entity_id % 2000 == 1999:
            pipe.execute()
    pipe.execute()
    time.sleep(0.2)
    after = client.info("memory")["used_memory"]
    return (after - before) / entities, client.object("encoding", sample_key).decode(), sample_key


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entities", type=int, default=100_000)
    args = parser.parse_args(argv)

    text32 = bench_view()
    text64 = FeatureView(
        text32.name, user,
        tuple(Feature(f.name, "float64") if f.dtype == "float32" else f for f in text32.features),
        ttl=text32.ttl,
    )  # fmt: skip
    packed = bench_view(packed=True)
    now_ms = int(time.time() * 1000)

    def ours(view: FeatureView):  # type: ignore[no-untyped-def]
        plan = BatchWritePlan.build(Catalog(views=(view,)), view)
        return lambda entity_id, row: plan.commands(entity_id, row, now_ms)

    layouts = {
        "feast": lambda entity_id, row: feast_commands(text32, entity_id, row, now_ms // 1000),
        "text-float64": ours(text64),
        "text-float32": ours(text32),
        "packed": ours(packed),
    }
    workdir = tempfile.mkdtemp(prefix="fs-mem-")
    server = local_redis.start(workdir)
    try:
        client = server.client()
        results = {name: measure(client, commands_for, args.entities) for name, commands_for in layouts.items()}
        version = client.info("server")["redis_version"]
    finally:
        local_redis.stop(workdir)

    print(f"memory per entity, {args.entities} entities x 20 features (16 floats, 2 ints, 2 strings), Redis {version}")
    print(f"{'layout':<14}{'bytes/entity':>14}{'vs feast':>10}  encoding   TTL   sample key")
    feast_bytes = results["feast"][0]
    for name, (per_entity, encoding, key) in results.items():
        ttl = "no" if name == "feast" else "yes"
        shown = key if name != "feast" else key[:12] + b"..."
        print(f"{name:<14}{per_entity:>14.0f}{per_entity / feast_bytes:>9.2f}x  {encoding:<10} {ttl:<5} {shown!r}")
    print("target: <= 0.8x feast")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
