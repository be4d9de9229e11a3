"""Kafka -> Redis: sustained events/s and event -> Redis latency of the Spark job and the plain consumer,
beside the raw pipelined HSETEX ceiling, same broker, same server, same run.

    python benchmarks/kafka_to_redis.py                     # starts its own Redis 8 and Kafka broker
    python benchmarks/kafka_to_redis.py --events 200000 --repeat 5

Measured, in this order:

* ``raw HSETEX pipeline (ceiling)``: the same ``user_realtime`` writes as redis-py pipelines of
  pre-built HSETEX commands (no Kafka, no parsing): what Redis takes from one client;
* ``plain consumer, backlog``: ``FeatureConsumer`` (confluent-kafka, parse, guarded
  ``StreamingWriter.write_many``, commit after the write) draining ``--events`` from the topic;
* ``Spark job, backlog``: ``featurestore stream --available-now`` in-process (the session is
  built once, outside the clock): Kafka source, parse on the executors, per-user state, sink;
* ``... at RATE/s``: a producer thread sends ``--rate`` events/s for ``--seconds`` while the
  consumer (or the job) runs; event -> Redis latency is from each record's Kafka timestamp to
  the end of the write that made it visible (p50/p99 over the whole run).

Each measurement is repeated (``--repeat``; the Spark ones ``--spark-repeat``): the median is
printed with the spread (min-max) and the ratio to the ceiling's median.  The load average
before and after is printed: other processes compete for the same 2 CPUs, compare ratios.
Not a test: run it by hand.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import redis

from featurestore.jobs.dev import local_kafka, local_redis
from featurestore.jobs.dev.kafka_command import produce_demo
from featurestore.jobs.examples.fraud.definitions import catalog, user_realtime
from featurestore.jobs.examples.fraud.sample_data import EventGenerator
from featurestore.jobs.streaming import StreamingWritePlan, StreamingWriter
from featurestore.jobs.streaming.kafka_consumer import FeatureConsumer
from featurestore.jobs.streaming.kafka_job import SESSION_CONF, KafkaStreamConfig, kafka_jars, run_job

VIEW = user_realtime
LAST_VALUES = ("last_amount", "last_country")  # the plain consumer writes the last values only


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):12,.0f} ({min(values):,.0f}-{max(values):,.0f})"


def ms(values: list[float | None]) -> str:
    known = [v * 1000 for v in values if v is not None]
    return "-" if not known else f"{statistics.median(known):,.0f} ({min(known):,.0f}-{max(known):,.0f})"


def raw_ceiling(url: str, n: int, pipeline: int = 1000) -> float:
    client = redis.Redis.from_url(url)
    plan = StreamingWritePlan.build(user_realtime, catalog)
    t0 = int(time.time() * 1000)
    commands = [
        plan.commands(
            1 + i % 1000, {"last_amount": 12.5 + i % 100, "last_country": "FR", "txn_count_5m": i % 7}, t0 + i
        )
        for i in range(n)
    ]
    client.flushall()
    started = time.perf_counter()
    for start in range(0, n, pipeline):
        pipe = client.pipeline(transaction=False)
        for per_event in commands[start : start + pipeline]:
            for command in per_event:
                pipe.execute_command(*command)
        pipe.execute()
    return n / (time.perf_counter() - started)


def topic_with(bootstrap: str, n: int) -> str:
    topic = f"bench-{uuid.uuid4().hex[:8]}"
    produce_demo(bootstrap, topic, users=1000, events=n, seed=3)
    return topic


def consumer_backlog(url: str, bootstrap: str, topic: str) -> tuple[float, int]:
    redis.Redis.from_url(url).flushall()
    with StreamingWriter.connect(url, user_realtime, catalog=catalog) as writer:
        consumer = FeatureConsumer.connect(
            bootstrap, topic, writer, group=f"bench-{uuid.uuid4().hex[:8]}", features=LAST_VALUES
        )
        started = time.perf_counter()
        consumer.run(until_caught_up=True, report_seconds=3600)
        seconds = time.perf_counter() - started
    return consumer.stats.events / seconds, consumer.stats.events


def with_traffic(bootstrap: str, rate: int, seconds: float, run: Callable[[str], dict[str, Any]]) -> dict[str, Any]:
    """Run ``run(topic)`` while a producer sends ``rate`` events/s to a new topic for ``seconds``."""
    topic = f"bench-live-{uuid.uuid4().hex[:8]}"
    produce_demo(bootstrap, topic, users=1000, events=1, seed=1)  # create it; the runner starts at its end
    thread = threading.Thread(
        target=produce_demo, args=(bootstrap, topic),
        kwargs={"users": 1000, "seconds": seconds, "rate": rate, "generator": EventGenerator(1000, late_share=0.0)},
    )  # fmt: skip
    thread.start()
    try:
        return run(topic)
    finally:
        thread.join()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python benchmarks/kafka_to_redis.py", description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=50_000, help="backlog size")
    parser.add_argument("--rate", type=int, default=2_000, help="events/s of the live runs")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the live runs")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--spark-repeat", type=int, default=2)
    parser.add_argument("--no-spark", action="store_true")
    args = parser.parse_args(argv)
    home = tempfile.mkdtemp(prefix="fs-bench-kafka-")
    server = local_redis.start(os.path.join(home, "redis"))
    broker = local_kafka.start(os.path.join(home, "kafka"))
    try:
        return _run(args, server.url, broker.bootstrap, home)
    finally:
        local_kafka.stop(os.path.join(home, "kafka"))
        local_redis.stop(os.path.join(home, "redis"))


def _run(args: argparse.Namespace, url: str, bootstrap: str, home: str) -> int:
    load_before = os.getloadavg()
    rows: list[tuple[str, list[float], list[float | None], list[float | None]]] = []
    ceiling = [raw_ceiling(url, args.events) for _ in range(args.repeat)]
    rows.append(("raw HSETEX pipeline (ceiling)", ceiling, [], []))
    topic = topic_with(bootstrap, args.events)
    rows.append(("plain consumer, backlog", [consumer_backlog(url, bootstrap, topic)[0] for _ in range(args.repeat)],
                 [], []))  # fmt: skip

    def consumer_live(live_topic: str) -> dict[str, Any]:
        with StreamingWriter.connect(url, user_realtime, catalog=catalog) as writer:
            consumer = FeatureConsumer.connect(
                bootstrap, live_topic, writer, group=f"live-{uuid.uuid4().hex[:8]}", features=LAST_VALUES
            )
            return consumer.run(seconds=args.seconds, report_seconds=args.seconds * 2)

    live = [with_traffic(bootstrap, args.rate, args.seconds, consumer_live) for _ in range(args.repeat)]
    rows.append((f"plain consumer at {args.rate}/s", [r["events"] / args.seconds for r in live],
                 [r["latency_p50_seconds"] for r in live], [r["latency_p99_seconds"] for r in live]))  # fmt: skip
    if not args.no_spark:
        from featurestore.jobs.spark import build_session

        spark = build_session("bench-kafka", shuffle_partitions=2, extra_jars=kafka_jars(), conf=SESSION_CONF)
        try:
            backlog, runs = [], []
            for i in range(args.spark_repeat):
                redis.Redis.from_url(url).flushall()
                config = KafkaStreamConfig(bootstrap, os.path.join(home, f"cp-{i}"), topic=topic, available_now=True)
                started = time.perf_counter()
                (report,) = run_job(spark, url, config, [VIEW], report_seconds=3600)
                backlog.append(report["events"] / (time.perf_counter() - started))

                def spark_live(live_topic: str, i: int = i) -> dict[str, Any]:
                    live_config = KafkaStreamConfig(bootstrap, os.path.join(home, f"cp-live-{i}"), topic=live_topic,
                                                    starting_offsets="latest", trigger_seconds=0.5)  # fmt: skip
                    (live_report,) = run_job(
                        spark, url, live_config, [VIEW], seconds=args.seconds, report_seconds=args.seconds * 2
                    )
                    return live_report

                runs.append(with_traffic(bootstrap, args.rate, args.seconds, spark_live))
            rows.append(("Spark job, backlog (--available-now)", backlog, [], []))
            p50s, p99s = [r["latency_p50_seconds"] for r in runs], [r["latency_p99_seconds"] for r in runs]
            rows.append((f"Spark job at {args.rate}/s", [r["events"] / args.seconds for r in runs], p50s, p99s))
        finally:
            spark.stop()
    base = statistics.median(ceiling)
    print(f"{args.events:,} events backlog, live runs {args.rate}/s for {args.seconds:g} s; "
          f"median (min-max) of {args.repeat} runs, Spark {args.spark_repeat}")  # fmt: skip
    print(f"{'':40}{'events/s':>12} {'(spread)':<22}{'vs ceiling':>10}  {'p50 ms':>18}  {'p99 ms':>18}")
    for name, rates, p50, p99 in rows:
        print(f"{name:40}{spread(rates):<35}{statistics.median(rates) / base:9.3f}x  {ms(p50):>18}  {ms(p99):>18}")
    load_after = os.getloadavg()
    print(f"load average before/after: {load_before[0]:.2f}/{load_after[0]:.2f} on {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
