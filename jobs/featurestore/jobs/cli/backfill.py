"""``featurestore backfill``: past days into the feature log (:mod:`featurestore.jobs.training.backfill`)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from featurestore.jobs.batch import validation
from featurestore.jobs.batch.sources import DEFAULT_WAREHOUSE, check_view_sources, parse_date
from featurestore.jobs.core.console import ExitCode, Steps, echo
from featurestore.jobs.core.feature_log import LogSettings
from featurestore.jobs.core.settings import Settings
from featurestore.jobs.spark import session
from featurestore.jobs.training.backfill import DEFAULT_LOAD_DELAY_HOURS, backfill, days_between

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--view", required=True, help="the batch view to backfill")
    parser.add_argument("--from", dest="first", required=True, help="the first day YYYY-MM-DD")
    parser.add_argument("--to", dest="last", required=True, help="the last day YYYY-MM-DD (inclusive)")
    parser.add_argument(
        "--load-delay-hours", type=float, default=DEFAULT_LOAD_DELAY_HOURS,
        help="when the nightly run of D would have loaded, after the end of D (default 2: 02:00 UTC)",
    )  # fmt: skip
    parser.add_argument("--overwrite", action="store_true", help="recompute days the log already has")
    parser.add_argument("--warehouse", default=None, help="the warehouse (default: $FEATURESTORE_WAREHOUSE)")
    parser.add_argument("--feature-log", default=None, help="the feature log (default: <warehouse>/_feature_log)")
    parser.add_argument("--catalog", default=None, help="module defining `catalog` (default: $FEATURESTORE_CATALOG)")
    parser.add_argument("--expectations", default=None, metavar="DIR", help=validation.EXPECTATIONS_HELP)


def run(args: argparse.Namespace, settings: Settings, spark: SparkSession | None = None) -> int:
    """Backfill and print the summary; exit 3 if any day failed validation (the others are logged)."""
    warehouse = settings.warehouse or DEFAULT_WAREHOUSE
    first, last = parse_date(args.first, "--from"), parse_date(args.last, "--to")
    days_between(first, last)  # a bad range fails before Spark starts
    if spark is None:  # so does a mistyped warehouse (exit 2)
        check_view_sources(settings.catalog, args.view, warehouse)
    with Steps(2, f"backfill {args.view}") as steps:
        with steps.step("start Spark"):
            spark, own = session(spark, f"featurestore-backfill-{args.view}", settings)
        try:
            with steps.step("compute"):
                summary = backfill(
                    spark, args.view, first, last, catalog=settings.catalog, warehouse=warehouse,
                    feature_log=LogSettings.from_settings(warehouse, settings, args.feature_log),
                    expectations_dir=settings.expectations_dir,
                    load_delay_hours=args.load_delay_hours, overwrite=args.overwrite, steps=steps,
                )  # fmt: skip
        finally:
            if own:
                spark.stop()
    echo("\n".join(summary.lines()), err=bool(summary.failed))
    return ExitCode.VALIDATION if summary.failed else ExitCode.OK
