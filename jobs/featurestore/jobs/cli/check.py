"""``featurestore check``: a view's freshness after a load (:mod:`featurestore.jobs.ops.post_load_check`)."""

from __future__ import annotations

import argparse
import json

from featurestore.jobs.core.console import ExitCode, echo
from featurestore.jobs.core.settings import REDIS_URL_ENV_VAR, Settings
from featurestore.jobs.ops.post_load_check import DEFAULT_SAMPLE, check_view
from featurestore.readers.settings import redact_url


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--view", required=True, help="the batch view to check")
    parser.add_argument("--ds", required=True, help="the date that was loaded (YYYY-MM-DD)")
    parser.add_argument(
        "--redis-url", default=None, help=f"Redis URL (default: ${REDIS_URL_ENV_VAR}; keeps the password off argv)"
    )
    parser.add_argument("--catalog", default=None, help="catalogue module (default: $FEATURESTORE_CATALOG)")
    parser.add_argument(
        "--sample", type=int, default=DEFAULT_SAMPLE, help=f"entities to sample (default {DEFAULT_SAMPLE})"
    )
    parser.add_argument(
        "--max-age-seconds", type=int, default=None,
        help="oldest acceptable _ts of a sampled entity (default: the view's max_age)",
    )  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def run(args: argparse.Namespace, settings: Settings) -> int:
    url = settings.require_redis_url()
    report = check_view(
        url, args.view, args.ds, catalog=settings.catalog, sample_size=args.sample, max_age_seconds=args.max_age_seconds
    )
    echo(json.dumps(report.to_dict(), default=str) if args.json else report.summary())
    if not report.ok:
        echo(f"featurestore check: view {args.view!r} failed its check at {redact_url(url)}", err=True)
    return ExitCode.OK if report.ok else ExitCode.FAILED
