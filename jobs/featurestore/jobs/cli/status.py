"""``featurestore status``: every view's freshness and last runs (:mod:`featurestore.jobs.ops.status`)."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

from featurestore.jobs.core.console import echo
from featurestore.jobs.core.control_plane import connect
from featurestore.jobs.core.job_metrics import MetricsTarget, publish_quietly
from featurestore.jobs.core.settings import REDIS_URL_ENV_VAR, Settings
from featurestore.jobs.ops.status import DEFAULT_SAMPLE, UNHEALTHY, collect, format_table, status_samples
from featurestore.readers.errors import FeatureStoreConnectionError, FeatureStoreError
from featurestore.readers.repository import load_catalog
from featurestore.readers.settings import redact_text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--redis-url", default=None, help=f"the store (default: ${REDIS_URL_ENV_VAR})")
    parser.add_argument("--catalog", default=None, help="catalogue module (default: $FEATURESTORE_CATALOG)")
    parser.add_argument("--sample", type=int, default=DEFAULT_SAMPLE, help="keys sampled per entity (default 200)")
    parser.add_argument("--json", action="store_true", help="one JSON object per view instead of the table")
    parser.add_argument(
        "--metrics-textfile", default=None, metavar="DIR",
        help="also write the verdicts as Prometheus metrics to DIR/featurestore_status.prom "
        "(default: $FEATURESTORE_METRICS_TEXTFILE_DIR; $FEATURESTORE_PUSHGATEWAY_URL pushes them)",
    )  # fmt: skip


def run(args: argparse.Namespace, settings: Settings, clock: Callable[[], float] = time.time) -> int:
    catalog = load_catalog(settings.catalog)
    client = connect(settings.require_redis_url())
    try:
        now_ms = int(clock() * 1000)
        statuses = collect(client, catalog, max(args.sample, 0), now_ms)
    except FeatureStoreError:
        raise
    except Exception as exc:  # redis-py errors: say where, without the password
        raise FeatureStoreConnectionError(f"reading the store's status: {redact_text(str(exc))}") from None
    finally:
        client.close()
    if args.json:
        for status in statuses:
            echo(json.dumps(status.to_dict(), sort_keys=True))
    else:
        echo(format_table(statuses, now_ms))
    target = MetricsTarget(args.metrics_textfile or settings.metrics_textfile_dir, settings.pushgateway_url)
    publish_quietly(status_samples(statuses), target, "status", {"source": "status"})
    return 1 if any(s.verdict in UNHEALTHY for s in statuses) else 0
