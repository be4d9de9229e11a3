"""Run records: one entry per materialization run in the Redis Stream ``fs:runs`` (listed by ``featurestore runs``).

Each stream entry has one field, ``record``: the run as JSON —
``{run_id, view, ds, source_table, source_version, status, rows_read, rows_written,
rows_failed, entities_written, retries, started_at, finished_at, computed_at,
durations{read,transform,validate,write}, error}`` plus a few details (``rows_out``,
``source_versions``, ``nan_as_null``, ``failures``) and what the guards measured and
decided (``input_rows``, ``feature_stats``, ``notes``, ``overrides``: docs/batch.md, "Guards").
``status`` is one of :data:`STATUSES`:

* ``succeeded``: written;
* ``failed_validation``: the row checks or the suite refused the data (nothing written, exit 3);
* ``refused_by_guard``: the data passed, only a guard (input, drift) refused it (nothing written, exit 4);
* ``failed``: any other failure (exit 1 or the failure class's own code);
* ``interrupted``: stopped by Ctrl-C / SIGINT (exit 130): not a failure of the view.

``computed_at`` is the time written as ``_ts:<view>`` (empty until the write starts): the clock
``featurestore status`` and the reader's stale rule share.  The stream is capped (``MAXLEN ~ 10000``).

One stream key, so the same calls work on a standalone server and on a Cluster client.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from itertools import islice
from typing import Any

from featurestore.readers.errors import ConfigurationError

RUNS_KEY = "fs:runs"
MAX_RUNS = 10_000
STATUSES = ("succeeded", "failed_validation", "refused_by_guard", "failed", "interrupted")
REFUSED = frozenset({"failed_validation", "refused_by_guard"})  # nothing written, yesterday's values serve
INTERRUPTED = "interrupted"
_PAGE = 200


@dataclass
class RunRecord:
    """One materialization run (times are ISO 8601 UTC, durations seconds)."""

    run_id: str
    view: str
    ds: str
    source_table: str
    source_version: int | None
    status: str
    rows_read: int = 0
    rows_written: int = 0
    rows_failed: int = 0
    entities_written: int = 0
    retries: int = 0
    started_at: str = ""
    finished_at: str = ""
    computed_at: str = ""  # the `_ts:<view>` written (ISO 8601 UTC); "" when nothing was written
    durations: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    # details beyond the required fields
    rows_out: int = 0  # rows handed to the writer (what the collapse guard compares)
    source_versions: dict[str, int] = field(default_factory=dict)
    nan_as_null: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    # the guards (featurestore.jobs.batch.guards): what they measured, noted and were told to accept
    input_rows: dict[str, dict[str, int]] = field(default_factory=dict)  # table -> {ds or "all": rows}
    feature_stats: dict[str, dict[str, float | None]] = field(default_factory=dict)  # feature -> statistics
    notes: list[str] = field(default_factory=list)
    overrides: list[dict[str, str]] = field(default_factory=list)  # {guard, target, by, reason, failure}

    def to_json(self) -> str:
        if self.status not in STATUSES:
            raise ConfigurationError(f"run {self.run_id}: status {self.status!r} is not one of {STATUSES}")
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes) -> RunRecord:
        data = json.loads(raw)
        known = {f.name for f in fields(cls)}
        # records written by a newer version may carry more keys: keep what we know
        return cls(**{k: v for k, v in data.items() if k in known})


def record_run(client: Any, record: RunRecord) -> str:
    """Append the run to ``fs:runs``; returns the stream entry id."""
    entry = client.xadd(RUNS_KEY, {"record": record.to_json()}, maxlen=MAX_RUNS, approximate=True)
    return entry.decode() if isinstance(entry, bytes) else str(entry)


def _newest_first(client: Any) -> Iterator[RunRecord]:
    upper: bytes | str = "+"
    while True:
        page = client.xrevrange(RUNS_KEY, max=upper, min="-", count=_PAGE)
        for _entry_id, values in page:
            raw = values.get(b"record", values.get("record"))
            if raw is not None:
                yield RunRecord.from_json(raw)
        if len(page) < _PAGE:
            return
        last = page[-1][0]
        upper = "(" + (last.decode() if isinstance(last, bytes) else last)  # exclusive: the next older entry


def _runs(
    client: Any, view: str | None = None, ds: str | None = None, status: str | None = None
) -> Iterator[RunRecord]:
    """The runs (of ``view``, for ``ds``, with ``status``: each if given), newest first, read lazily."""
    if status is not None and status not in STATUSES:
        raise ConfigurationError(f"status must be one of {STATUSES}, got {status!r}")
    return (
        record
        for record in _newest_first(client)
        if (view is None or record.view == view)
        and (ds is None or record.ds == ds)
        and (status is None or record.status == status)
    )


def list_runs(client: Any, view: str | None = None, limit: int = 20) -> list[RunRecord]:
    """The most recent runs, newest first (of one view if given)."""
    return list(islice(_runs(client, view), max(limit, 0)))


def recent_runs(client: Any, view: str, status: str | None = None, limit: int = 7) -> list[RunRecord]:
    """The newest ``limit`` runs of ``view`` (with ``status`` if given), newest first: the guards' baseline."""
    return list(islice(_runs(client, view, status=status), max(limit, 0)))


def latest_run(client: Any, view: str, ds: str | None = None, status: str | None = None) -> RunRecord | None:
    """The newest run of ``view`` (for ``ds`` and with ``status`` if given), or None."""
    return next(_runs(client, view, ds, status), None)


def epoch_seconds(iso: str) -> float | None:
    """A record's ISO 8601 time (``started_at``, ``finished_at``) as epoch seconds; None if unset or unreadable."""
    try:
        return datetime.fromisoformat(iso).timestamp()
    except ValueError:
        return None


def aligned(rows: Sequence[Sequence[str]]) -> list[str]:
    """Rows of cells as lines of left-aligned columns (the CLI's tables)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
