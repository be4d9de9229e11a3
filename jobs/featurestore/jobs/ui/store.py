"""The console's reads of one store (the I/O side of the pages; :mod:`.pages` turns them into views).

One lazily connected client (the job side's, :func:`~featurestore.jobs.core.control_plane.connect`)
shared by every request; a connection failure drops it so the next request reconnects (a
restarted server, a Cluster after its failover).  Runs and audits are read a page at a time
with ``XREVRANGE ... COUNT``, so a page costs the same with ten runs or ten thousand.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from featurestore.jobs.core.control_plane import connect
from featurestore.jobs.core.feature_log import LogSettings
from featurestore.jobs.core.run_records import RUNS_KEY, RunRecord
from featurestore.jobs.ops import inspect as inspect_ops
from featurestore.jobs.ops import status as status_ops
from featurestore.jobs.ui.access import write_permissions
from featurestore.jobs.ui.log_history import FeatureLogReader, History
from featurestore.readers import codec
from featurestore.readers.definitions import Catalog
from featurestore.readers.errors import FeatureStoreConnectionError, PermissionDeniedError
from featurestore.readers.settings import ConnectionSettings

AUDITS_KEY = "fs:audits"  # featurestore.jobs.training.audit.AUDITS_KEY (not imported: it loads pyspark)
FILTER_SCAN_LIMIT = 5_000  # a filtered runs listing reads at most this many entries per page
RUNS_SCANNED = 500  # the newest runs looked at for a view's last success and failure (as `status`)
_T = TypeVar("_T")


class WriteUserRefused(PermissionDeniedError):
    """The console's Redis user may write to the store, and ``--allow-write-user`` was not given."""


@dataclass(frozen=True)
class ConsoleConfig:
    """What the console serves: one store (its connection) and its catalogue."""

    connection: ConnectionSettings
    catalog: Catalog
    allow_write_user: bool = False
    sample: int = 50  # keys sampled per entity for the freshness verdicts (status's --sample)
    feature_log: LogSettings | None = None  # the feature log shown on the entity page; None or off: none


def _entry_id(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def _field(values: dict[Any, Any], name: str) -> Any:
    return values.get(name.encode(), values.get(name))


class Store:
    """The store as the console reads it.  The constructor does no I/O."""

    def __init__(self, config: ConsoleConfig) -> None:
        self.config = config
        self._client: Any = None
        self._lock = threading.Lock()
        log = config.feature_log
        self._log = FeatureLogReader(log) if log is not None and log.enabled else None

    @property
    def user(self) -> str:
        from urllib.parse import urlsplit

        return urlsplit(self.config.connection.url).username or "default"

    def client(self) -> Any:
        """The connected client (connecting, and checking its user, on first use)."""
        with self._lock:
            if self._client is None:
                client = connect(self.config.connection)
                try:
                    self.check_user(client)
                except BaseException:
                    client.close()
                    raise
                self._client = client
            return self._client

    def check_user(self, client: Any) -> None:
        """Refuse a user that can write (unless allowed): :class:`WriteUserRefused`."""
        if self.config.allow_write_user:
            return
        allowed = write_permissions(client, self.user)
        if allowed:
            raise WriteUserRefused(
                f"the Redis user {self.user!r} may write to the store ({', '.join(allowed)}): the console reads "
                "with a read-only user (its ACL role: docs/ui.md), "
                "or start it with --allow-write-user",
                user=self.user,
                command=allowed[0],
            )

    def read(self, how: Callable[[Any], _T]) -> _T:
        """``how(client)``; a connection failure drops the client so the next request reconnects."""
        client = self.client()
        try:
            return how(client)
        except FeatureStoreConnectionError:
            self.close()
            raise

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    # ------------------------------------------------------------ the reads

    def statuses(self, now_ms: int) -> list[status_ops.ViewStatus]:
        """Every view's freshness, as ``featurestore status`` judges it (a smaller key sample)."""
        return self.read(lambda c: status_ops.collect(c, self.config.catalog, self.config.sample, now_ms))

    def view_status(self, view_name: str, now_ms: int) -> status_ops.ViewStatus:
        view = self.config.catalog.view(view_name)

        def read(client: Any) -> status_ops.ViewStatus:
            runs = [r for _, r in self._scan_runs(client, view_name, None, RUNS_SCANNED)[0]]
            sample = status_ops.sample_entity(client, view.entity, (view,), self.config.sample)
            return status_ops.view_status(view, runs, sample, now_ms)

        return self.read(read)

    def progress(self, view: str) -> dict[str, str] | None:
        return self.read(lambda c: status_ops.stream_progress(c, view))

    def runs(self, view: str | None, before: str | None, size: int) -> tuple[list[tuple[str, RunRecord]], bool]:
        """Up to ``size + 1`` runs (of ``view``), newest first, older than the entry ``before``;
        and whether the scan saw every older entry (a filtered page reads at most
        :data:`FILTER_SCAN_LIMIT` entries)."""
        return self.read(lambda c: self._scan_runs(c, view, before, size + 1))

    @staticmethod
    def _scan_runs(
        client: Any, view: str | None, before: str | None, wanted: int
    ) -> tuple[list[tuple[str, RunRecord]], bool]:
        upper = "+" if before is None else "(" + before
        found: list[tuple[str, RunRecord]] = []
        scanned = 0
        batch = wanted if view is None else 200
        while len(found) < wanted:
            if scanned >= FILTER_SCAN_LIMIT:
                return found, False
            page = client.xrevrange(RUNS_KEY, max=upper, min="-", count=batch)
            scanned += len(page)
            for raw_id, values in page:
                raw = _field(values, "record")
                if raw is None:
                    continue
                record = RunRecord.from_json(raw)
                if view is None or record.view == view:
                    found.append((_entry_id(raw_id), record))
                    if len(found) >= wanted:
                        break
            if len(page) < batch:
                break
            upper = "(" + _entry_id(page[-1][0])
        return found, True

    def run(self, entry_id: str) -> RunRecord | None:
        def read(client: Any) -> RunRecord | None:
            page = client.xrange(RUNS_KEY, min=entry_id, max=entry_id, count=1)
            raw = _field(page[0][1], "record") if page else None
            return None if raw is None else RunRecord.from_json(raw)

        return self.read(read)

    def audits(self, view: str, limit: int = 10) -> list[dict[str, Any]]:
        """The newest audits of ``view`` (among the newest 500 of every view)."""

        def read(client: Any) -> list[dict[str, Any]]:
            out = []
            for _, values in client.xrevrange(AUDITS_KEY, max="+", min="-", count=500):
                raw = _field(values, "audit")
                data = json.loads(raw) if raw is not None else {}
                if data.get("view") == view:
                    out.append(data)
                    if len(out) >= limit:
                        break
            return out

        return self.read(read)

    def entity(self, entity_name: str, id_text: str, now_ms: int) -> inspect_ops.EntityReport:
        """One entity decoded by the reader's plans (``featurestore inspect``'s report)."""
        entity = self.config.catalog.entity(entity_name)
        entity_id = inspect_ops.entity_id_of(entity, id_text)
        key = codec.entity_key(entity, entity_id)
        return self.read(lambda c: inspect_ops.inspect_key(c, self.config.catalog, entity, key, now_ms))

    def history(self, view_name: str, id_text: str, offset: int, limit: int) -> History | None:
        """A page of the entity's rows in the view's feature log, newest first (None: no log configured).
        Read from the Delta table's files, without Spark and without Redis (:mod:`.log_history`)."""
        view = self.config.catalog.view(view_name)
        if self._log is None:
            return None
        entity_id = inspect_ops.entity_id_of(view.entity, id_text)
        return self._log.history(view, entity_id, max(offset, 0), limit)
