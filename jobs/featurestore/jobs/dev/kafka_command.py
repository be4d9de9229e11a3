"""``featurestore kafka start|stop|status|url|produce`` — a local Kafka broker and sample traffic.

The broker's state lives in a per-user folder (``$FEATURESTORE_HOME/kafka``), so every
action finds it from any working directory; a broker started with another ``--workdir`` (the
demo's) is remembered too (:mod:`.started_servers`): ``status``, ``url`` and ``stop`` name it
with the exact command that reaches it, and ``stop --all`` stops every one.  ``start`` prints the bootstrap address on
stdout (``KAFKA=$(featurestore kafka start)``).  ``produce`` (alias ``produce-demo``) sends
an example's (or the repository's) sample events, JSON, to their topic: the ``events`` hook of
its ``sample_data.py`` (docs/examples.md), with the hook's ``BAD_RECORDS`` mixed in on request.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from featurestore.jobs.core.console import EXIT_CODES_POINTER, ExitCode, Steps, echo, note
from featurestore.jobs.core.settings import Settings
from featurestore.jobs.dev import local_kafka, started_servers
from featurestore.jobs.dev.sample_data import add_example_argument, sample_module
from featurestore.jobs.examples.fraud.sample_data import BAD_RECORDS, TOPIC, EventGenerator, TxnEvent
from featurestore.readers.errors import ConfigurationError

DEFAULT_TOPIC = TOPIC  # produce_demo: the fraud example's topic

EXAMPLES = """\
examples:
  featurestore kafka start
  featurestore kafka produce --example recommendations --seconds 20 --rate 500
  featurestore stream --seconds 30
  featurestore kafka stop

Without --workdir every action uses $FEATURESTORE_HOME/kafka (the same from every folder);
status and stop also name the brokers started with another --workdir (the demo's)."""

ACTIONS = {
    "start": "start a broker (KRaft, loopback) in the background; prints its bootstrap address",
    "stop": "stop it (from any folder); says so if none runs (exit 0)",
    "status": "show whether it runs, its address and process (exit 1: not running)",
    "url": "print its bootstrap address (exit 1: not running)",
    "produce": "send an example's sample events to their topic (alias: produce-demo)",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = f"{parser.description}\n\n{EXAMPLES}"
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    made = {
        name: actions.add_parser(
            name,
            help=text,
            description=text,
            epilog=EXIT_CODES_POINTER,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            aliases=["produce-demo"] if name == "produce" else [],
        )
        for name, text in ACTIONS.items()
    }
    for name, action in made.items():
        used_for = "; produce: the broker to send to without --bootstrap-servers" if name == "produce" else ""
        action.add_argument(
            "--workdir", default=None,
            help=f"the local broker's state, data and logs (default: $FEATURESTORE_HOME/kafka, the same from "
            f"every folder){used_for}",
        )  # fmt: skip
    start = made["start"]
    start.add_argument("--port", type=int, default=None, help="the broker's port (default: a free one)")
    start.add_argument(
        "--partitions", type=int, default=local_kafka.DEFAULT_PARTITIONS,
        help="partitions of topics created on first use",
    )  # fmt: skip
    made["stop"].add_argument(
        "--all", action="store_true", help="stop every broker started with featurestore (any --workdir)"
    )
    produce = made["produce"]
    add_example_argument(produce)
    produce.add_argument("--bootstrap-servers", default=None, help="where (default: the local broker)")
    produce.add_argument("--topic", default=None, help="the topic (default: the events' own)")
    produce.add_argument("--seconds", type=float, default=10.0, help="how long to produce")
    produce.add_argument("--rate", type=int, default=200, help="events per second")
    produce.add_argument("--events", type=int, default=None, help="this many events, as fast as possible")
    produce.add_argument("--bad-share", type=float, default=0.0, help="share of malformed records")
    produce.add_argument("--late-share", type=float, default=0.05, help="share of late events")
    produce.add_argument("--seed", type=int, default=7)


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
    """Send the fraud example's transactions (keyed by user id) to ``topic``; return what was sent.

    The typed fraud traffic of the tests and benchmarks (they compute references from
    ``events``); ``featurestore kafka produce`` sends any example's events (:func:`produce`).

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


@dataclass
class ProducedEvents:
    """What :func:`produce` sent: the events (topic, key, event) and the malformed record count."""

    events: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    bad: int = 0
    seconds: float = 0.0

    @property
    def topics(self) -> list[str]:
        return sorted({topic for topic, _, _ in self.events})


def produce(
    bootstrap: str,
    module: ModuleType,
    *,
    topic: str | None = None,
    events: int | None = None,
    seconds: float = 10.0,
    rate: int = 200,
    bad_share: float = 0.0,
    late_share: float = 0.05,
    seed: int = 7,
) -> ProducedEvents:
    """Send the ``events`` hook's events of a sample-data ``module`` to their topics (or ``topic``).

    With ``events`` they go as fast as the producer can; otherwise ``rate`` per second for
    ``seconds``, stamped with the time they are made.  ``bad_share`` of the records are the
    module's ``BAD_RECORDS`` (none if it has none).
    """
    from featurestore.jobs.streaming import kafka_client

    bad_records: tuple[bytes, ...] = tuple(getattr(module, "BAD_RECORDS", ()))
    producer = kafka_client.producer(bootstrap)
    rnd = random.Random(seed + 1)
    out = ProducedEvents()
    created: set[str] = set()
    started = time.monotonic()
    tick = 0.1
    total = events if events is not None else max(1, round(rate * seconds))
    per_tick = total if events is not None else max(1, round(rate * tick))
    batch_no = 0
    while len(out.events) < total:
        count = min(per_tick, total - len(out.events))
        # a seed per batch: the hook is stateless, and two batches must not repeat each other
        batch = module.events(count, int(time.time() * 1000), seed=seed * 1_000_003 + batch_no, late_share=late_share)
        batch_no += 1
        for event_topic, key, event in batch:
            target = topic or event_topic
            if target not in created:
                kafka_client.ensure_topic(bootstrap, target)
                created.add(target)
            producer.produce(target, json.dumps(event, separators=(",", ":")).encode(), key=key.encode())
            if bad_records and bad_share and rnd.random() < bad_share:
                producer.produce(target, bad_records[out.bad % len(bad_records)], key=b"bad")
                out.bad += 1
            producer.poll(0)
        out.events += batch
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


def _workdir(args: argparse.Namespace) -> Path:
    return Path(args.workdir).absolute() if args.workdir else local_kafka.default_workdir()


def running_elsewhere(workdir: Path) -> list[local_kafka.LocalKafka]:
    """The brokers started in another work dir than ``workdir`` that still run."""
    return started_servers.running_elsewhere("kafka", workdir, local_kafka.running)


def _name_the_others(workdir: Path, action: str) -> None:
    """Say on stderr which brokers run from other work dirs, each with the command that reaches it."""
    for state in running_elsewhere(workdir):
        note(
            f"a broker started with another work dir runs at {state.bootstrap}: "
            f"featurestore kafka {action}{started_servers.workdir_option(state.workdir, 'kafka')}"
        )


def run(args: argparse.Namespace, settings: Settings) -> int:
    workdir = _workdir(args)
    if args.action == "start":
        broker = local_kafka.start(workdir, port=args.port, partitions=args.partitions)
        note(
            f"Kafka 4.1.1 (KRaft) running from {broker.workdir}; "
            f"stop it with: {started_servers.stop_command('kafka', workdir)}"
        )
        echo(broker.bootstrap)
        return ExitCode.OK
    if args.action == "stop":
        if args.all:
            return _stop_all(workdir)
        if local_kafka.stop(workdir):
            echo("stopped")
        else:
            echo(started_servers.nothing_running(workdir))
            _name_the_others(workdir, "stop")
        return ExitCode.OK
    if args.action in ("produce", "produce-demo"):
        module = sample_module(args.example, settings.repo)
        bootstrap = _bootstrap(args)
        with Steps(1, "kafka produce") as steps, steps.step(f"produce to {bootstrap}"):  # a heartbeat off a terminal
            sent = produce(
                bootstrap, module, topic=args.topic, events=args.events, seconds=args.seconds, rate=args.rate,
                bad_share=args.bad_share, late_share=args.late_share, seed=args.seed,
            )  # fmt: skip
        summary = {"topics": sent.topics, "bootstrap": bootstrap, "events": len(sent.events), "bad_records": sent.bad}
        echo(json.dumps({**summary, "seconds": round(sent.seconds, 2)}))
        return ExitCode.OK
    state = local_kafka.running(workdir)
    if state is None:
        echo(started_servers.nothing_running(workdir), err=args.action == "url")  # stdout of url: addresses only
        _name_the_others(workdir, args.action)
        return ExitCode.FAILED
    if args.action == "url":
        echo(state.bootstrap)
        return ExitCode.OK
    echo(f"running: {state.bootstrap}")
    echo(f"  pid      {state.pid}")
    echo(f"  workdir  {state.workdir} (broker log: server.log)")
    return ExitCode.OK


def _stop_all(workdir: Path) -> int:
    """``stop --all``: the broker of ``workdir`` and every one started elsewhere."""
    states = [s for s in [local_kafka.running(workdir), *running_elsewhere(workdir)] if s is not None]
    if not states:
        echo(started_servers.nothing_running(workdir))
    for state in states:
        local_kafka.stop(state.workdir)
        echo(f"stopped {state.bootstrap} (work dir {state.workdir})")
    return ExitCode.OK
