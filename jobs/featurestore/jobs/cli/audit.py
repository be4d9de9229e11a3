"""``featurestore audit`` (and ``audit_job.py``): compare what Redis serves with the feature log
(:mod:`featurestore.jobs.training.audit`)."""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING

from featurestore.jobs.batch.sources import DEFAULT_WAREHOUSE, check_view_sources, parse_date
from featurestore.jobs.core import control_plane
from featurestore.jobs.core.console import ExitCode, Steps, echo
from featurestore.jobs.core.feature_log import LogSettings
from featurestore.jobs.core.settings import Settings
from featurestore.jobs.spark import session
from featurestore.jobs.training.audit import DEFAULT_MAX_MISMATCH_RATE, DEFAULT_SAMPLE, audit, record_audit
from featurestore.readers.errors import ConfigurationError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--view", required=True, help="the batch view to audit")
    parser.add_argument("--ds", required=True, help="the run date YYYY-MM-DD whose logged rows are sampled")
    parser.add_argument("--sample", type=int, default=DEFAULT_SAMPLE, help=f"entities (default {DEFAULT_SAMPLE})")
    parser.add_argument(
        "--recompute", action="store_true", help="also recompute the run at its recorded source versions"
    )
    parser.add_argument(
        "--max-mismatch-rate", type=float, default=DEFAULT_MAX_MISMATCH_RATE,
        help=f"exit 1 when a feature's mismatch rate is above this (default {DEFAULT_MAX_MISMATCH_RATE})",
    )  # fmt: skip
    parser.add_argument("--redis-url", default=None, help="Redis (default: $FEATURESTORE_REDIS_URL)")
    parser.add_argument("--warehouse", default=None, help="the warehouse (default: $FEATURESTORE_WAREHOUSE)")
    parser.add_argument("--feature-log", default=None, help="the feature log (default: <warehouse>/_feature_log)")
    parser.add_argument("--catalog", default=None, help="module defining `catalog` (default: $FEATURESTORE_CATALOG)")
    parser.add_argument("--json", action="store_true", help="also print the audit as one JSON line")


def run(args: argparse.Namespace, settings: Settings, spark: SparkSession | None = None) -> int:
    """Audit, print the summary, record it in ``fs:audits``; exit 1 above the mismatch limit."""
    url = settings.require_redis_url()
    warehouse = settings.warehouse or DEFAULT_WAREHOUSE
    ds = parse_date(args.ds)
    if not 0 <= args.max_mismatch_rate <= 1:
        raise ConfigurationError(f"--max-mismatch-rate must be between 0 and 1, got {args.max_mismatch_rate}")
    if spark is None and args.recompute:  # a mistyped warehouse fails before Spark starts (exit 2)
        check_view_sources(settings.catalog, args.view, warehouse)
    client = control_plane.connect(url)  # fail fast: Redis first
    try:
        with Steps(2, f"audit {args.view}") as steps:
            with steps.step("start Spark"):
                spark, own = session(spark, f"featurestore-audit-{args.view}", settings)
            try:
                with steps.step("compare"):
                    started = time.monotonic()
                    report = audit(
                        spark, args.view, ds, url, catalog=settings.catalog, warehouse=warehouse,
                        feature_log=LogSettings.from_settings(warehouse, settings, args.feature_log),
                        sample=args.sample, with_recompute=args.recompute, max_mismatch_rate=args.max_mismatch_rate,
                        client=client,
                    )  # fmt: skip
            finally:
                if own:
                    spark.stop()
        if report.sample:
            record_audit(client, report)
    finally:
        client.close()
    echo(report.summary() + f"\n  seconds  {time.monotonic() - started:.1f}", err=not report.ok)
    if args.json:
        echo(report.to_json())
    return ExitCode.OK if report.ok else ExitCode.FAILED
