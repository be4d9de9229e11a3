"""``featurestore materialize`` (and ``materialize_job.py``): the arguments of one batch run.

Parses the flags and builds the typed :class:`~featurestore.jobs.batch.materialize.MaterializeRequest`
from them and the run's :class:`~featurestore.jobs.core.settings.Settings`; the job itself is
:func:`featurestore.jobs.batch.materialize.run_request`.
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from featurestore.jobs.batch import validation
from featurestore.jobs.batch.materialize import MaterializeRequest, raise_for_outcome, run_request, summary
from featurestore.jobs.batch.sources import DEFAULT_WAREHOUSE, parse_date
from featurestore.jobs.core.console import echo
from featurestore.jobs.core.feature_log import LogSettings
from featurestore.jobs.core.job_metrics import MetricsTarget
from featurestore.jobs.core.settings import REDIS_URL_ENV_VAR, WAREHOUSE_ENV_VAR, Settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--view", required=True, help="the batch view to materialize")
    parser.add_argument("--ds", required=True, help="the run date YYYY-MM-DD: features as of the end of that UTC day")
    parser.add_argument("--redis-url", default=None, help=f"target Redis (default: ${REDIS_URL_ENV_VAR})")
    parser.add_argument(
        "--warehouse",
        default=None,
        help=f"folder of the Delta tables (default: ${WAREHOUSE_ENV_VAR} or {DEFAULT_WAREHOUSE})",
    )
    parser.add_argument("--catalog", default=None, help="module defining `catalog` (default: $FEATURESTORE_CATALOG)")
    parser.add_argument("--expectations", default=None, metavar="DIR", help=validation.EXPECTATIONS_HELP)
    parser.add_argument(
        "--version", type=int, default=None, help="Delta version of the view's source (default: latest)"
    )
    parser.add_argument(
        "--max-writes-per-sec", type=float, default=None, help="cap the load rate (entities/s, all writers)"
    )
    parser.add_argument(
        "--adaptive-throttle", action="store_true",
        help="slow the load down (AIMD) whenever it adds more than --adaptive-target-ms to a Redis round trip",
    )  # fmt: skip
    parser.add_argument(
        "--adaptive-target-ms", type=float, default=None, metavar="MS",
        help="with --adaptive-throttle: the round-trip time the load may add (default 0.25)",
    )  # fmt: skip
    parser.add_argument(
        "--min-row-ratio", type=float, default=validation.DEFAULT_MIN_ROW_RATIO,
        help="fail if rows fall below this share of the last successful run (default 0.5; 0 disables)",
    )  # fmt: skip
    parser.add_argument(
        "--accept-drift", action="append", default=[], metavar="FEATURE",
        help="write although FEATURE drifted beyond the view's limits (repeatable; needs --reason; recorded)",
    )  # fmt: skip
    parser.add_argument(
        "--accept-input", action="append", default=[], metavar="TABLE",
        help="write although source TABLE's new partitions fell below the baseline or did not change "
        "(repeatable; needs --reason; recorded)",
    )  # fmt: skip
    parser.add_argument("--reason", default=None, help="why the refusals are accepted (recorded in the run record)")
    parser.add_argument("--by", default=None, help="who accepts them (recorded; default: $USER)")
    parser.add_argument("--run-id", default=None, help="an id for the run (default: generated)")
    parser.add_argument("--json", action="store_true", help="also print the run record as one JSON line")


def request_from_args(args: argparse.Namespace, settings: Settings) -> MaterializeRequest:
    """The run's request: the flags, then the settings (environment, repository file), then the defaults."""
    warehouse = settings.warehouse or DEFAULT_WAREHOUSE
    return MaterializeRequest(
        view=args.view,
        ds=parse_date(args.ds),
        redis_url=settings.require_redis_url(),
        warehouse=warehouse,
        catalog=settings.catalog,
        expectations_dir=settings.expectations_dir,
        version=args.version,
        max_writes_per_sec=args.max_writes_per_sec,
        adaptive_throttle=args.adaptive_throttle,
        adaptive_target_ms=args.adaptive_target_ms,
        min_row_ratio=args.min_row_ratio,
        run_id=args.run_id,
        accept_drift=tuple(args.accept_drift),
        accept_input=tuple(args.accept_input),
        override_reason=args.reason,
        override_by=args.by or settings.user,
        feature_log=LogSettings.from_settings(warehouse, settings),
        metrics=MetricsTarget.of(settings),
    )


def run(args: argparse.Namespace, settings: Settings, spark: SparkSession | None = None) -> int:
    """Run from parsed arguments; prints the summary and returns 0, or raises the run's failure
    (:class:`ValidationFailed`: exit 3, :class:`GuardRefused`: exit 4, :class:`JobError`: exit 1;
    see :func:`raise_for_outcome`)."""
    outcome = run_request(request_from_args(args, settings), spark, settings)
    echo(summary(outcome), err=outcome.exit_code != 0)
    if args.json:
        echo(json.dumps(json.loads(outcome.record.to_json()), sort_keys=True))
    # a failed run raises, so the command ends with its own error line (and exit code), as
    # every command's failure does: the first failure, then a record that could not be stored
    raise_for_outcome(outcome)
    return outcome.exit_code
