"""Helpers of the post-load-check tests: a fixed "now" and a good run record to vary."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from featurestore.jobs.core.run_records import RunRecord

NOW_MS = 1_750_000_000_000


def ok_run(**changes: object) -> RunRecord:
    started = datetime.fromtimestamp((NOW_MS - 600_000) / 1000, UTC).isoformat()
    run = RunRecord(
        run_id="r1", view="user_profile", ds="2025-06-14", source_table="users", source_version=3,
        status="succeeded", rows_read=700, rows_out=500, rows_written=500, rows_failed=0, entities_written=500,
        started_at=started,
    )  # fmt: skip
    return replace(run, **changes)  # type: ignore[arg-type]
