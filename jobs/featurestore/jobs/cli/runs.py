"""``featurestore runs``: the recent materialization runs (:mod:`featurestore.jobs.core.run_records`)."""

from __future__ import annotations

import argparse

from featurestore.jobs.core.console import echo
from featurestore.jobs.core.control_plane import connect
from featurestore.jobs.core.run_records import RUNS_KEY, RunRecord, aligned, list_runs
from featurestore.jobs.core.settings import REDIS_URL_ENV_VAR, Settings
from featurestore.readers.errors import FeatureStoreConnectionError, FeatureStoreError
from featurestore.readers.settings import redact_text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--redis-url", default=None, help=f"where the runs are (default: ${REDIS_URL_ENV_VAR})")
    parser.add_argument("--view", default=None, help="only runs of this view")
    parser.add_argument("--limit", type=int, default=20, help="how many runs, newest first (default 20)")
    parser.add_argument("--json", action="store_true", help="one JSON record per line instead of a table")


def format_table(records: list[RunRecord]) -> str:
    """The runs as an aligned text table."""
    header = ("finished_at", "view", "ds", "status", "rows_read", "written", "failed", "source", "seconds", "run_id")
    rows = [header]
    for r in records:
        total = sum(r.durations.values())
        source = f"{r.source_table}@v{r.source_version}" if r.source_version is not None else r.source_table
        rows.append((r.finished_at[:19], r.view, r.ds, r.status, str(r.rows_read), str(r.rows_written),
                     str(r.rows_failed), source, f"{total:.1f}", r.run_id))  # fmt: skip
    lines = aligned(rows)
    for r in records:
        if r.error:
            error = r.error if len(r.error) <= 300 else r.error[:297] + "..."
            lines.append(f"  {r.run_id}: {error}")
    return "\n".join(lines)


def run(args: argparse.Namespace, settings: Settings) -> int:
    client = connect(settings.require_redis_url())
    try:
        records = list_runs(client, view=args.view, limit=args.limit)
    except FeatureStoreError:
        raise
    except Exception as exc:  # redis-py errors: say where, without the password
        raise FeatureStoreConnectionError(f"reading {RUNS_KEY}: {redact_text(str(exc))}") from None
    finally:
        client.close()
    if args.json:
        for record in records:
            echo(record.to_json())
    elif not records:
        echo("no runs recorded" + (f" for view {args.view!r}" if args.view else ""))
    else:
        echo(format_table(records))
    return 0
