"""``featurestore kafka start|stop|status|url|produce-demo`` — a local Kafka broker and demo traffic.

The broker's state lives in a per-user folder (``$FEATURESTORE_HOME/kafka``), so every
action finds it from any working directory.  ``start`` prints the bootstrap address on
stdout (``KAFKA=$(featurestore kafka start)``).  ``produce-demo`` sends sample card
transactions (JSON, keyed by user id, the schema of ``featurestore stream``) to a topic.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from featurestore.jobs.core.console import ExitCode, echo, note
from featurestore.jobs.core.settings import Settings
from featurestore.jobs.dev import local_kafka
from featurestore.jobs.dev.sample_events import EventGenerator, TxnEvent
from featurestore.readers.errors import ConfigurationError

DEFAULT_TOPIC = "transactions"

DESCRIPTION = """\
actions:
  start         start a broker (KRaft, loopback) in the background; prints its bootstrap address
  stop          stop it (from any folder); does nothing if none runs
  status        show whether it runs, its address and process (exit 1: not running)
  url           print its bootstrap address (exit 1: not running)
  produce-demo  send sample transactions to --topic (default: the local broker)

examples:
  featurestore kafka start
  featurestore kafka produce-demo --seconds 20 --rate 500
  featurestore stream --topic transactions --seconds 30
  featurestore kafka stop"""

# what bad records produce-demo mixes in with --bad-share: each one a dead letter for its reason
BAD_RECORDS: tuple[bytes, ...] = (
    b"{not json",
    b'["a", "list"]',
    b'{"amount": 1.5, "country": "FR", "event_time": "2026-01-01T00:00:00Z"}',
    b'{"user_id": "seven", "amount": 1.5, "country": "FR", "event_time": "2026-01-01T00:00:00Z"}',
    b'{"user_id": 7, "amount": 1.5, "country": "FR"}',
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = f"{parser.description}\n\n{DESCRIPTION}"
    parser.add_argument("action", choices=["start", "stop", "status", "url", "produce-demo"])
    parser.add_argument(
        "--workdir", default=None,
        help="where state, data and logs go (default: $FEATURESTORE_HOME/kafka, the same from every folder)",
    )  # fmt: skip
    parser.add_argument("--port", type=int, default=None, help="the broker's port (default: a free one)")
    parser.add_argument(
        "--partitions", type=int, default=local_kafka.DEFAULT_PARTITIONS,
        help="partitions of topics created on first use",
    )  # fmt: skip
    parser.add_argument("--bootstrap-servers", default=None, help="produce-demo: where (default: the local broker)")
    parser.add_argument("--topic", default=DEFAULT_TOPIC, help="produce-demo: the topic (default: transactions)")
    parser.add_argument("--users", type=int, default=1000, help="produce-demo: user ids 1..USERS")
    parser.add_argument("--seconds", type=float, default=10.0, help="produce-demo: how long to produce")
    parser.add_argument("--rate", type=int, default=200, help="produce-demo: events per second")
    parser.add_argument("--events", type=int, default=None, help="produce-demo: this many events, as fast as possible")
    parser.add_argument("--bad-share", type=float, default=0.0, help="produce-demo: share of malformed records")
    parser.add_argument("--seed", type=int, default=7)


@dataclass
class Produced:
    """What :func:`produce_demo` sent: the good events (for a reference computation) and the bad count."""

    events: list[TxnEvent] = field(default_factory=list)
    bad: int = 0
    seconds: float = 0.0


def produce_demo(
    bootstrap: str,
    topic: str = DEFAULT_TOPIC,
    *,
    users: int = 1000,
    events: int | None = None,
    seconds: float = 10.0,
    rate: int = 200,
    bad_share: float = 0.0,
    seed: int = 7,
    generator: EventGenerator | None = None,
    on_tick: Callable[[Produced], None] | None = None,
) -> Produced:
    """Send sample transactions (keyed by user id) to ``topic``; return what was sent.

    With ``events`` they go as fast as the producer can; otherwise ``rate`` per second for
    ``seconds``, each stamped with the time it is produced (a few late ones are in the
    past, see :class:`EventGenerator`).  ``bad_share`` of the records are malformed.
    """
    from featurestore.jobs.streaming import kafka_client

    kafka_client.ensure_topic(bootstrap, topic)
    producer = kafka_client.producer(bootstrap)
    generator = generator or EventGenerator(users, seed=seed)
    rnd = random.Random(seed + 1)
    out = Produced()
    started = time.monotonic()
    tick = 0.1
    total = events if events is not None else max(1, round(rate * seconds))
    per_tick = total if events is not None else max(1, round(rate * tick))
    while len(out.events) < total:
        batch = generator.events(min(per_tick, total - len(out.events)), int(time.time() * 1000))
        for event in batch:
            producer.produce(topic, event.to_json().encode(), key=str(event.user_id).encode())
            if bad_share and rnd.random() < bad_share:
                producer.produce(topic, BAD_RECORDS[out.bad % len(BAD_RECORDS)], key=b"bad")
                out.bad += 1
            producer.poll(0)
        out.events += batch
        if on_tick is not None:
            on_tick(out)
        if events is None:
            wait = started + (len(out.events) / rate) - time.monotonic()
            if wait > 0:
                time.sleep(wait)
    left = producer.flush(60)
    if left:
        raise kafka_client.KafkaError(f"{left} records were not delivered to {bootstrap} within 60 s")
    out.seconds = time.monotonic() - started
    return out


def _bootstrap(args: argparse.Namespace) -> str:
    if args.bootstrap_servers:
        return str(args.bootstrap_servers)
    state = local_kafka.running(args.workdir)
    if state is None:
        raise ConfigurationError("no Kafka: pass --bootstrap-servers or run `featurestore kafka start` first")
    return state.bootstrap


def run(args: argparse.Namespace, settings: Settings) -> int:
    workdir = args.workdir
    if args.action == "start":
        broker = local_kafka.start(workdir, port=args.port, partitions=args.partitions)
        note(f"Kafka 4.1.1 (KRaft) running, work dir {broker.workdir}; stop it with: featurestore kafka stop")
        echo(broker.bootstrap)
        return ExitCode.OK
    if args.action == "stop":
        if not local_kafka.stop(workdir):
            note("no local Kafka broker was running")
        return ExitCode.OK
    if args.action == "produce-demo":
        bootstrap = _bootstrap(args)
        sent = produce_demo(
            bootstrap, args.topic, users=args.users, events=args.events, seconds=args.seconds, rate=args.rate,
            bad_share=args.bad_share, seed=args.seed,
        )  # fmt: skip
        summary = {"topic": args.topic, "bootstrap": bootstrap, "events": len(sent.events), "bad_records": sent.bad}
        echo(json.dumps({**summary, "seconds": round(sent.seconds, 2)}))
        return ExitCode.OK
    state = local_kafka.running(workdir)
    if state is None:
        if args.action == "status":
            echo("not running")
        return ExitCode.FAILED
    if args.action == "url":
        echo(state.bootstrap)
        return ExitCode.OK
    echo(f"running: {state.bootstrap}")
    echo(f"  pid      {state.pid}")
    echo(f"  workdir  {state.workdir} (broker log: server.log)")
    return ExitCode.OK
