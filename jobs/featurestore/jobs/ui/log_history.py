"""One entity's rows of the feature log, read without Spark: a small Delta reader on pyarrow.

The feature log (:mod:`featurestore.jobs.core.feature_log`, docs/training-data.md) is a Delta
table per view, written by the batch runs and the streaming sink through Spark.  The console
must serve a page without starting a JVM, so it reads the table itself with pyarrow (already in
``[jobs]``): the newest complete checkpoint (parquet) and the JSON commits after it give the live
data files, each with its ``ds`` partition and its column statistics.  The files that may hold
the entity (an integer id within a file's min/max; a string id: every file) are read newest
``ds`` first, a day at a time, filtered on the join key, until a page of rows is found or
:data:`FILE_BUDGET` files were read (the page then says the search stopped; the newest day is
always read whole).  The live files are cached per table: a later page applies only the commits
that arrived since, and the first read starts from ``_last_checkpoint`` without listing the log.

Only what the log's writer produces is read: Delta reader version 1, or 3 with the features of
:data:`READER_FEATURES` (no column mapping, no deletion vectors, no v2 checkpoints).  A table
needing more is refused with :class:`LogUnreadable`, naming ``featurestore training-set``, which
reads it with Spark.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import groupby
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from featurestore.jobs.core import feature_log as fl
from featurestore.readers.definitions import FeatureView

log = logging.getLogger(__name__)

FILE_BUDGET = 200  # data files read per page at most: an entity absent from a long log costs a bounded time
READER_FEATURES = frozenset({"timestampNtz", "vacuumProtocolCheck"})  # reader features that change nothing here
_COMMIT = re.compile(r"(\d{20})\.json")
_CHECKPOINT = re.compile(r"(\d{20})\.checkpoint(?:\.(\d{10})\.(\d{10}))?\.parquet")


class LogUnreadable(Exception):
    """The table is not one this reader can read (its protocol, a missing commit, a remote file)."""


@dataclass(frozen=True)
class DataFile:
    """A live data file of the table: its local path, ``ds`` partition and the join key's range."""

    path: str
    ds: str
    min_id: Any = None  # None: the statistics do not say (the file may hold any id)
    max_id: Any = None

    def may_hold(self, entity_id: Any) -> bool:
        if not isinstance(entity_id, int) or isinstance(self.min_id, bool) or isinstance(self.max_id, bool):
            return True  # string ids: Delta truncates string statistics; no pruning
        if isinstance(self.min_id, int) and entity_id < self.min_id:
            return False
        return not (isinstance(self.max_id, int) and entity_id > self.max_id)


@dataclass(frozen=True)
class LogRow:
    """One logged write of the entity: the meta columns and the view's feature values (None: null)."""

    ds: str
    kind: str
    run_id: str
    ts_ms: int | None
    written_at_ms: int | None
    fields: tuple[str, ...] | None  # the features a streaming event wrote; None: all (a batch row)
    values: dict[str, Any]


@dataclass(frozen=True)
class History:
    """A page of one entity's logged rows of one view, newest first (``ds``, then write time)."""

    view: str
    table: str  # the view's log table (a folder)
    exists: bool  # False: no Delta table there (nothing logged yet, or the log is elsewhere)
    rows: list[LogRow] = field(default_factory=list)
    offset: int = 0
    more: bool = False  # older rows exist beyond this page
    complete: bool = True  # False: the search stopped after FILE_BUDGET files (older partitions unread)
    files_read: int = 0
    problem: str = ""  # why the table could not be read (LogUnreadable, an I/O error): the page says so


class FeatureLogReader:
    """Reads entities' rows from the feature log at ``settings`` (thread-safe; the constructor does no I/O)."""

    def __init__(self, settings: fl.LogSettings, file_budget: int = FILE_BUDGET) -> None:
        self.settings = settings
        self.file_budget = file_budget
        self._snapshots: dict[str, _Snapshot] = {}
        self._lock = threading.Lock()

    def history(self, view: FeatureView, entity_id: Any, offset: int = 0, limit: int = 25) -> History:
        """The entity's rows in the view's log: ``limit`` rows after the newest ``offset``."""
        table = self.settings.path(view)
        try:
            files = self._files(table, view.entity.join_key)
        except (LogUnreadable, OSError, ValueError) as exc:
            log.warning("feature log %s unreadable: %s", table, exc, extra={"view": view.name})
            return History(view.name, str(table), exists=True, problem=str(exc))
        if files is None:
            return History(view.name, str(table), exists=False)
        try:
            rows, complete, read = self._rows(view, files, entity_id, offset + limit + 1)
        except (OSError, ValueError) as exc:  # a file vacuumed under us, a corrupt file
            log.warning("feature log %s: reading failed: %s", table, exc, extra={"view": view.name})
            return History(view.name, str(table), exists=True, problem=f"{type(exc).__name__}: {exc}")
        return History(
            view=view.name,
            table=str(table),
            exists=True,
            rows=rows[offset : offset + limit],
            offset=offset,
            more=len(rows) > offset + limit,
            complete=complete,
            files_read=read,
        )

    # ------------------------------------------------------------ reading the rows

    def _rows(
        self, view: FeatureView, files: list[DataFile], entity_id: Any, wanted: int
    ) -> tuple[list[LogRow], bool, int]:
        import pyarrow.dataset as pads

        key = view.entity.join_key
        candidates = sorted((f for f in files if f.may_hold(entity_id)), key=lambda f: f.ds, reverse=True)
        found: list[LogRow] = []
        read = 0
        for _, partition in groupby(candidates, key=lambda f: f.ds):
            if len(found) >= wanted:
                return found, True, read
            group = list(partition)
            if read and read + len(group) > self.file_budget:  # the newest partition is read whatever its size
                return found, False, read
            # one dataset per day (its files read in parallel); a day's files share the run's schema
            paths = [f.path for f in group]
            table = pads.dataset(paths, format="parquet").to_table(filter=pads.field(key) == entity_id)
            read += len(group)
            rows = [_log_row(view, group[0].ds, values) for values in table.to_pylist()]
            # within a day, the newest write first
            rows.sort(key=lambda r: (r.written_at_ms or 0, r.ts_ms or 0), reverse=True)
            found += rows
        return found, True, read

    # ------------------------------------------------------------ the Delta log

    def _files(self, table: Path, join_key: str) -> list[DataFile] | None:
        """The table's live data files (None: no Delta table at ``table``).

        The first read starts from the newest checkpoint; later reads apply only the commits that
        arrived since (a streaming view's log gains one per micro-batch)."""
        log_dir = table / "_delta_log"
        if not log_dir.is_dir():
            return None
        with self._lock:
            cached = self._snapshots.get(str(table))
        if cached is not None and cached.version >= 0 and not _commit_path(log_dir, cached.version).is_file():
            cached = None  # the table was deleted and written anew since: its versions started again
        snapshot = cached if cached is not None else _load(log_dir)
        advanced = _advance(log_dir, snapshot)
        if advanced.version < 0:
            return None  # a folder without any commit yet
        if advanced is not cached:
            _check_protocol(table, advanced.protocol)
            advanced.files = [_data_file(table, add, join_key) for add in advanced.live.values()]
            with self._lock:
                self._snapshots[str(table)] = advanced
        return advanced.files


@dataclass
class _Snapshot:
    """The table at ``version``: its live ``add`` actions by path, its protocol, the files they describe."""

    version: int  # -1: nothing committed yet
    live: dict[str, dict[str, Any]] = field(default_factory=dict)
    protocol: dict[str, Any] = field(default_factory=dict)
    files: list[DataFile] = field(default_factory=list)


def _commit_path(log_dir: Path, version: int) -> Path:
    return log_dir / f"{version:020d}.json"


def _checkpoint_parts(log_dir: Path, version: int, parts: int | None) -> list[Path]:
    if not parts:
        return [log_dir / f"{version:020d}.checkpoint.parquet"]
    return [log_dir / f"{version:020d}.checkpoint.{i:010d}.{parts:010d}.parquet" for i in range(1, parts + 1)]


def _newest_checkpoint(log_dir: Path) -> tuple[int, list[Path]] | None:
    """The checkpoint to start from: ``_last_checkpoint``'s when its files are there (no listing of a
    long log); else the newest complete one in a listing of the folder, which also finds a missing commit."""
    hint = log_dir / "_last_checkpoint"
    if hint.is_file():
        try:
            data = json.loads(hint.read_text(encoding="utf-8"))
            paths = _checkpoint_parts(log_dir, int(data["version"]), data.get("parts"))
            if all(p.is_file() for p in paths):
                return int(data["version"]), paths
        except (ValueError, KeyError, TypeError):
            log.debug("%s: unreadable, listing the log instead", hint)
    commits: set[int] = set()
    parts: dict[int, set[int]] = {}
    totals: dict[int, int] = {}
    for entry in os.scandir(log_dir):
        if match := _COMMIT.fullmatch(entry.name):
            commits.add(int(match[1]))
        elif match := _CHECKPOINT.fullmatch(entry.name):
            version = int(match[1])
            parts.setdefault(version, set()).add(int(match[2] or 1))
            totals[version] = int(match[3] or 0)
    complete = [v for v, got in parts.items() if len(got) == max(totals[v], 1)]
    start = max(complete, default=-1)
    after = sorted(v for v in commits if v > start)
    if after and after != list(range(start + 1, after[-1] + 1)):
        missing = min(set(range(start + 1, after[-1] + 1)) - set(after))
        raise LogUnreadable(f"{log_dir}: commit {missing} is missing (the log was cleaned up without a checkpoint?)")
    return (start, _checkpoint_parts(log_dir, start, totals[start])) if start >= 0 else None


def _load(log_dir: Path) -> _Snapshot:
    """The table at its newest checkpoint (version -1 and nothing live when it has none)."""
    checkpoint = _newest_checkpoint(log_dir)
    if checkpoint is None:
        return _Snapshot(-1)
    version, paths = checkpoint
    snapshot = _Snapshot(version)
    for action in _checkpoint_actions([str(p) for p in paths]):
        snapshot.protocol = _apply(action, snapshot.live) or snapshot.protocol
    return snapshot


def _advance(log_dir: Path, snapshot: _Snapshot) -> _Snapshot:
    """``snapshot`` with the commits after its version applied (itself when none arrived)."""
    version = snapshot.version + 1
    if not _commit_path(log_dir, version).is_file():
        return snapshot
    advanced = _Snapshot(snapshot.version, dict(snapshot.live), dict(snapshot.protocol))
    while (path := _commit_path(log_dir, version)).is_file():
        with open(path, encoding="utf-8") as commit:
            for line in commit:
                if line.strip():
                    advanced.protocol = _apply(json.loads(line), advanced.live) or advanced.protocol
        advanced.version = version
        version += 1
    return advanced


def _apply(action: dict[str, Any], live: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """Apply one action to the live files; returns a protocol action's content (None otherwise)."""
    if action.get("add"):
        add = action["add"]
        live[add["path"]] = add
    elif action.get("remove"):
        live.pop(action["remove"]["path"], None)
    elif action.get("protocol"):
        return dict(action["protocol"])
    return None


def _checkpoint_actions(paths: list[str]) -> Iterator[dict[str, Any]]:
    """A classic checkpoint's ``add`` and ``protocol`` actions (its ``remove`` rows are tombstones)."""
    import pyarrow.parquet as pq

    for path in paths:
        names = set(pq.read_schema(path).names)
        columns = [c for c in ("add", "protocol") if c in names]
        for row in pq.read_table(path, columns=columns).to_pylist():
            for name in columns:
                if row.get(name):
                    value = dict(row[name])
                    if name == "add" and isinstance(value.get("partitionValues"), list):
                        value["partitionValues"] = dict(value["partitionValues"])  # a map read as pairs
                    yield {name: value}


def _check_protocol(table: Path, protocol: dict[str, Any]) -> None:
    version = int(protocol.get("minReaderVersion") or 1)
    needs = set(protocol.get("readerFeatures") or ()) - READER_FEATURES
    if version == 1 or (version == 3 and not needs):
        return
    what = f"reader features {sorted(needs)}" if version == 3 else f"Delta reader version {version}"
    raise LogUnreadable(
        f"the feature log {table} needs {what}, which the console does not read: "
        "see this entity's history with `featurestore training-set` (Spark)"
    )


def _data_file(table: Path, add: dict[str, Any], join_key: str) -> DataFile:
    raw = add["path"]
    parts = urlsplit(raw)
    if parts.scheme and parts.scheme != "file":
        raise LogUnreadable(f"the feature log {table} has a file on {parts.scheme}: (the console reads local files)")
    path = unquote(parts.path) if parts.scheme else str(table / unquote(raw))
    ds = str((add.get("partitionValues") or {}).get(fl.PARTITION) or "")
    low = high = None
    if add.get("stats"):
        stats = json.loads(add["stats"])
        low = (stats.get("minValues") or {}).get(join_key)
        high = (stats.get("maxValues") or {}).get(join_key)
    return DataFile(path, ds, low, high)


def _log_row(view: FeatureView, ds: str, values: dict[str, Any]) -> LogRow:
    written = values.get(fl.FIELDS)
    return LogRow(
        ds=ds,
        kind=str(values.get(fl.KIND) or ""),
        run_id=str(values.get(fl.RUN_ID) or ""),
        ts_ms=values.get(fl.TS_MS),
        written_at_ms=values.get(fl.WRITTEN_AT_MS),
        fields=None if written is None else tuple(written),
        values={f.name: values.get(f.name) for f in view.features},
    )
