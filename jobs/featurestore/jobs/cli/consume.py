"""``featurestore consume --view V``: the plain Kafka consumer (:mod:`featurestore.jobs.streaming.kafka_consumer`).

It computes a declared view's last values only (no state): a view with windowed features is
refused, naming ``featurestore stream``, unless ``--features`` picks only last values."""

from __future__ import annotations

import argparse
import json

from featurestore.jobs.core.console import ExitCode, echo, note
from featurestore.jobs.core.job_metrics import MetricsTarget
from featurestore.jobs.core.settings import KAFKA_BOOTSTRAP_ENV_VAR, Settings
from featurestore.jobs.streaming.events import progress_line
from featurestore.jobs.streaming.kafka_consumer import DEFAULT_GROUP, FeatureConsumer, LastValues
from featurestore.jobs.streaming.writer import StreamingWriter
from featurestore.readers.errors import ConfigurationError
from featurestore.readers.repository import load_catalog


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--redis-url", default=None, help="where to write (default: $FEATURESTORE_REDIS_URL)")
    parser.add_argument(
        "--bootstrap-servers", default=None, help="Kafka's bootstrap servers (default: $FEATURESTORE_KAFKA_BOOTSTRAP)"
    )
    parser.add_argument("--view", required=True, help="the streaming view (declared with stream=) to write")
    parser.add_argument(
        "--features", default=None, metavar="A,B",
        help="write only these last values of the view (a view with windowed features needs it)",
    )  # fmt: skip
    parser.add_argument("--catalog", default=None, help="catalogue module (default: $FEATURESTORE_CATALOG)")
    parser.add_argument("--topic", default=None, help="read this topic instead of the view's")
    parser.add_argument("--group", default=DEFAULT_GROUP, help="the consumer group (its commits are the progress)")
    parser.add_argument("--dead-letter-topic", default=None, help="default: the view's (<topic>.dead-letters)")
    parser.add_argument("--batch-size", type=int, default=1000, help="records per poll (and per pipelined write)")
    parser.add_argument("--seconds", type=float, default=None, help="stop after this long (default: run until killed)")
    parser.add_argument("--until-caught-up", action="store_true", help="stop once the lag is 0")
    parser.add_argument("--report-seconds", type=float, default=5.0)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """``featurestore consume``: the plain consumer; progress on stderr, the last report on stdout."""
    bootstrap = settings.kafka_bootstrap
    if not bootstrap:
        raise ConfigurationError(f"no Kafka: pass --bootstrap-servers or set {KAFKA_BOOTSTRAP_ENV_VAR}")
    catalog = load_catalog(settings.catalog)
    view = catalog.view(args.view)
    features = [name.strip() for name in args.features.split(",") if name.strip()] if args.features else None
    to_features = LastValues.of(view, features)  # refused here, before connecting, with one line
    assert view.stream is not None  # LastValues.of refuses a view without stream=
    with StreamingWriter.connect(settings.require_redis_url(), view, catalog=catalog) as writer:
        consumer = FeatureConsumer.connect(
            bootstrap, args.topic or view.stream.topic, writer, group=args.group, to_features=to_features,
            dead_letter_topic=args.dead_letter_topic, batch_size=args.batch_size,
        )  # fmt: skip
        report = consumer.run(
            seconds=args.seconds, until_caught_up=args.until_caught_up, report_seconds=args.report_seconds,
            on_report=lambda r: note(f"featurestore consume: {progress_line(r)}"), metrics=MetricsTarget.of(settings),
        )  # fmt: skip
    echo(json.dumps(report))
    return ExitCode.OK
