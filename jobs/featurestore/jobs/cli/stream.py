"""``featurestore stream`` (and ``stream_job.py``): the streaming job's arguments
(:mod:`featurestore.jobs.streaming.kafka_job`): ``--view V`` (repeatable; default every view
declared with ``stream=``)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from featurestore.jobs.core.console import ExitCode, Steps, echo, note
from featurestore.jobs.core.feature_log import LogSettings
from featurestore.jobs.core.job_metrics import MetricsTarget
from featurestore.jobs.core.settings import KAFKA_BOOTSTRAP_ENV_VAR, REDIS_URL_ENV_VAR, Settings
from featurestore.jobs.spark import build_session
from featurestore.jobs.streaming.events import progress_line
from featurestore.jobs.streaming.kafka_job import (
    DEFAULT_CHECKPOINT,
    SESSION_CONF,
    KafkaStreamConfig,
    kafka_jars,
    run_job,
    streamed_views,
)
from featurestore.readers.errors import ConfigurationError
from featurestore.readers.repository import load_catalog

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--redis-url", default=None, help="where to write (default: $FEATURESTORE_REDIS_URL)")
    parser.add_argument(
        "--bootstrap-servers", default=None, help="Kafka's bootstrap servers (default: $FEATURESTORE_KAFKA_BOOTSTRAP)"
    )
    parser.add_argument(
        "--view", action="append", default=[], metavar="VIEW",
        help="a streaming view declared with stream= (repeatable; default: every such view)",
    )  # fmt: skip
    parser.add_argument("--catalog", default=None, help="catalogue module (default: $FEATURESTORE_CATALOG)")
    parser.add_argument("--topic", default=None, help="read this topic instead of the views' (views of one topic)")
    parser.add_argument(
        "--dead-letter-topic", default=None, help="default: the view's (<topic>.dead-letters unless declared)"
    )
    parser.add_argument(
        "--checkpoint", default=None,
        help="the checkpoints' root: <checkpoint>/<view>/<fingerprint8>/... (a restart resumes from it; default: "
        f"$FEATURESTORE_CHECKPOINTS, the repository's checkpoints, else {DEFAULT_CHECKPOINT})",
    )  # fmt: skip
    parser.add_argument("--starting-offsets", default="earliest", help="earliest or latest (a new checkpoint only)")
    parser.add_argument("--max-offsets-per-trigger", type=int, default=None, help="cap on records per micro-batch")
    parser.add_argument("--trigger-seconds", type=float, default=1.0, help="micro-batch interval")
    parser.add_argument("--seconds", type=float, default=None, help="stop after this long (default: run until killed)")
    parser.add_argument(
        "--available-now", action="store_true", help="process what the topic holds now, then stop (a catch-up run)"
    )
    parser.add_argument("--report-seconds", type=float, default=5.0, help="interval of the progress lines")
    parser.add_argument(
        "--feature-log", default=None, metavar="DIR",
        help="also append every write to the view's feature log under DIR (docs/training-data.md; default: "
        "$FEATURESTORE_FEATURE_LOG or the repository's feature_log, else off)",
    )  # fmt: skip
    parser.add_argument("--master", default=None, help="Spark master (default: $SPARK_MASTER or local[2])")
    parser.add_argument(
        "--partitions", type=int, default=2,
        help="state partitions of a new checkpoint (spark.sql.shuffle.partitions; a checkpoint keeps its own)",
    )  # fmt: skip


def config_from_args(args: argparse.Namespace, bootstrap: str, settings: Settings | None = None) -> KafkaStreamConfig:
    checkpoints = args.checkpoint or (settings.checkpoints if settings else None) or DEFAULT_CHECKPOINT
    return KafkaStreamConfig(
        bootstrap=bootstrap,
        topic=args.topic,
        checkpoint=checkpoints,
        dead_letter_topic=args.dead_letter_topic,
        starting_offsets=args.starting_offsets,
        max_offsets_per_trigger=args.max_offsets_per_trigger,
        trigger_seconds=args.trigger_seconds,
        available_now=args.available_now,
    )


def _feature_log(args: argparse.Namespace, settings: Settings) -> LogSettings | None:
    """``--feature-log``, else the settings' ``feature_log`` (the variable, the repository's file), else off:
    unlike a batch run, a stream logs only when asked (a Delta commit per micro-batch has a cost)."""
    chosen = args.feature_log or settings.feature_log
    if chosen is None:
        return None
    log = LogSettings.resolve(chosen, chosen, settings.feature_log_retention_days)
    return log if log.enabled else None


def _required(value: str | None, what: str, flag: str, variable: str, hint: str) -> str:
    if not value:
        raise ConfigurationError(f"no {what}: pass {flag} or set {variable} ({hint})")
    return value


def run(args: argparse.Namespace, settings: Settings, spark: SparkSession | None = None) -> int:
    """``featurestore stream``: run the job; progress lines on stderr, the last report on stdout."""
    bootstrap = _required(
        settings.kafka_bootstrap, "Kafka", "--bootstrap-servers", KAFKA_BOOTSTRAP_ENV_VAR,
        "a local broker: export FEATURESTORE_KAFKA_BOOTSTRAP=$(featurestore kafka start)",
    )  # fmt: skip
    url = _required(
        settings.redis_url, "Redis", "--redis-url", REDIS_URL_ENV_VAR,
        "a local Redis 8: export FEATURESTORE_REDIS_URL=$(featurestore redis start)",
    )  # fmt: skip
    config = config_from_args(args, bootstrap, settings)
    catalog = load_catalog(settings.catalog)
    views = streamed_views(catalog, args.view)  # refused before Spark starts
    own = spark is None
    if spark is None:  # minutes on a first run (Ivy): a bar on a terminal, a heartbeat line elsewhere
        with Steps(1, "stream") as steps, steps.step("start Spark"):
            spark = build_session(
                "featurestore-stream", master=args.master, shuffle_partitions=args.partitions,
                extra_jars=kafka_jars(), conf=SESSION_CONF, settings=settings,
            )  # fmt: skip
    try:
        reports = run_job(
            spark, url, config, views, catalog=catalog, seconds=args.seconds, report_seconds=args.report_seconds,
            on_report=lambda r: note(f"featurestore stream: {r['view']}: {progress_line(r)}"),
            feature_log=_feature_log(args, settings),
            metrics=MetricsTarget.of(settings),
        )  # fmt: skip
    finally:
        if own:
            spark.stop()
    for report in reports:  # one JSON line per view
        echo(json.dumps(report, default=str))
    return ExitCode.OK


def entry_main(argv: Sequence[str] | None = None) -> int:
    """The spark-submit entry (``featurestore/jobs/stream_job.py``): same arguments as ``featurestore stream``."""
    from featurestore.jobs.cli import add_repo_option, settings_from_args
    from featurestore.jobs.core import console
    from featurestore.readers.errors import FeatureStoreError
    from featurestore.readers.settings import redact_text

    parser = argparse.ArgumentParser(
        prog="stream_job.py", description="Kafka -> declared streaming features -> Redis",
        epilog=console.EXIT_CODES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    add_arguments(parser)
    add_repo_option(parser)
    args = parser.parse_args(argv)
    console.configure_logging(verbose=1)
    try:
        return run(args, settings_from_args(args))
    except FeatureStoreError as exc:
        console.echo(f"stream_job: error: {redact_text(str(exc))}", err=True)
        return console.exit_code_for(exc)
