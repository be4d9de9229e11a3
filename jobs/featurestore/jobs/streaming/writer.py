"""The streaming writer: real-time features with their own per-field TTL (docs/streaming.md).

A :class:`StreamingWriter` writes the features of one *streaming* view into the same
entity hashes the batch job fills (``fs:<entity>:{<id>}``, docs/storage-format.md):

* every field is written with its TTL in the same command — ``HSETEX key EX <ttl>
  FIELDS n f v ...`` on Redis >= 8.0 / Valkey >= 9.0, one command per distinct TTL of the
  view; on Redis 7.4 ``HSET`` + ``HEXPIRE`` (in ``MULTI``, or inside the guard function);
  below that :class:`UnsupportedServerError` is raised before anything is written;
* ``_ts:<view>`` (epoch ms of the event time) is written with the view's longest TTL, so
  it never outlives the features it dates;
* a null value deletes its field (``HDEL``): the reader then reports it *missing*, which
  is what a null means everywhere in the store;
* the key's own TTL is never touched (that is the batch job's), and a feature that is
  not of this view — in particular a batch-owned one — is refused;
* out-of-order events: with ``guard=True`` (the default) each event is written by the
  Redis function of :mod:`.guard`, which skips an event older than the stored one.

The bytes come from :mod:`.plan` (pure); every byte goes through the one wire
(:mod:`featurestore.readers.wire`): each event is one unit of a cluster round trip,
retried — redirects, lost connections, a failover — until ``retry_seconds`` have passed.
This module adds what is particular to streaming: the server probe, the choice of
method, loading the guard function (and the wire's :class:`~featurestore.readers.wire.Repair`
that reloads it, within the same round trip, on a node that lost it) and the registry.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from featurestore.jobs.core.feature_log import LogSettings
from featurestore.jobs.core.job_metrics import MetricsTarget
from featurestore.readers import codec
from featurestore.readers.definitions import Catalog, FeatureView
from featurestore.readers.errors import (
    ConfigurationError,
    FeatureStoreConnectionError,
    FeatureStoreError,
    PermissionDeniedError,
    ServerError,
    UnsupportedServerError,
    WriteError,
)
from featurestore.readers.repository import load_catalog
from featurestore.readers.settings import ConnectionSettings, redact_text
from featurestore.readers.wire import ASKING, WRITER_RETRY_SECONDS, Repair, RetryPolicy, Wire

from .guard import GUARD_LIBRARY, GUARD_LUA, NOT_LOADED
from .plan import HSET_HEXPIRE, HSETEX, METHODS, EventTime, StreamingWritePlan, WriteStats, event_time_ms
from .spark_sink import ForeachBatchSink

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_MAX_PIPELINE",
    "DEFAULT_TIMEOUT_SECONDS",
    "ServerCapabilities",
    "StreamingWriter",
    "choose_method",
    "server_capabilities",
    "writer_for_sink",
]

DEFAULT_TIMEOUT_SECONDS = 5.0
DEFAULT_MAX_PIPELINE = 1000

Unit = tuple[bytes, list[bytes]]  # an event: its key, and the RESP of each of its commands


# --- what the server supports ------------------------------------------------------------


@dataclass(frozen=True)
class ServerCapabilities:
    """What the server (every primary, in a cluster) supports, and its version for messages."""

    version: str  # e.g. "Redis 8.2.3", "Valkey 9.1.2"
    hsetex: bool
    hexpire: bool

    @classmethod
    def parse(cls, info: bytes | str, command_info: Sequence[Any]) -> ServerCapabilities:
        """From the replies to ``INFO server`` and ``COMMAND INFO HSETEX HEXPIRE``.

        Valkey reports ``redis_version:7.2.4`` for compatibility, so the commands are
        probed (a nil entry: unknown command) rather than guessed from a version number.
        """
        text = info.decode(errors="replace") if isinstance(info, bytes) else info
        fields = dict(line.partition(":")[::2] for line in text.splitlines() if ":" in line)
        if fields.get("valkey_version"):
            version = f"Valkey {fields['valkey_version'].strip()}"
        else:
            version = f"Redis {fields.get('redis_version', '?').strip()}"
        return cls(version=version, hsetex=command_info[0] is not None, hexpire=command_info[1] is not None)


def server_capabilities(wire: Wire, node: str) -> ServerCapabilities:
    """Probe one node (a name of ``wire.primaries()``): its version and the commands it has."""
    info = wire.execute_on(node, "INFO", "server")
    commands = wire.execute_on(node, "COMMAND", "INFO", "HSETEX", "HEXPIRE")
    return ServerCapabilities.parse(info, commands)


def choose_method(view: FeatureView, where: str, caps: Sequence[ServerCapabilities], wanted: str = "auto") -> str:
    """HSETEX where every node has it, else HSET+HEXPIRE; raise if a node has neither."""
    if wanted not in ("auto", *METHODS):
        raise ConfigurationError(f"method must be 'auto', {' or '.join(map(repr, METHODS))}; got {wanted!r}")
    for cap in caps:
        if not cap.hexpire or (wanted == HSETEX and not cap.hsetex):
            needed = (
                "HSETEX (Redis >= 8.0 or Valkey >= 9.0)"
                if wanted == HSETEX
                else "per-field TTL: HSETEX (Redis >= 8.0, Valkey >= 9.0) or HEXPIRE (Redis >= 7.4)"
            )
            raise UnsupportedServerError(
                f"streaming view {view.name!r} needs {needed}; the server at {where} is {cap.version}. "
                "Upgrade the server (nothing was written)"
            )
    if wanted != "auto":
        return wanted
    return HSETEX if all(c.hsetex for c in caps) else HSET_HEXPIRE


# --- the writer --------------------------------------------------------------------------


class StreamingWriter:
    """Writes the features of one streaming view, each field with its own TTL.

    >>> with StreamingWriter.connect("redis://localhost:6379", "session_live") as w:  # doctest: +SKIP
    ...     w.write(42, {"last_page": "/cart", "pages_5m": 3}, event_time=kafka_ts_ms)

    ``view`` is a streaming :class:`FeatureView` or its name in ``catalog`` (a
    :class:`Catalog` or its module; default ``$FEATURESTORE_CATALOG``, then the example
    catalogue).  ``guard=True`` skips events older than the stored ``_ts:<view>``
    atomically on the server (a Redis function); ``guard=False`` is last-write-wins and
    a little cheaper.  ``method`` forces ``"hsetex"`` or ``"hset_hexpire"`` (Redis 7.4
    style) instead of the best one the server supports.  ``timeout`` bounds each
    control command (probe, function load, registry); ``retry_seconds`` bounds each
    batch of writes, retried through redirects, lost connections and failovers.

    The constructor does no I/O.  :meth:`connect` (or the first write) checks the server
    version (raises :class:`UnsupportedServerError` before any write), loads the guard
    function on every primary and, with ``publish=True``, publishes the view's
    definition in the registry (``fs:registry``) so readers can check their decoders.
    """

    def __init__(
        self,
        url: str,
        view: str | FeatureView,
        *,
        catalog: Catalog | str | None = None,
        cluster: bool | None = None,
        guard: bool = True,
        method: str = "auto",
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        retry_seconds: float = WRITER_RETRY_SECONDS,
        max_pipeline: int = DEFAULT_MAX_PIPELINE,
        publish: bool = True,
    ) -> None:
        self.settings = ConnectionSettings.from_url(url, cluster=cluster, timeout=timeout)
        self._url = url if not self.settings.cluster or "cluster=" in url else _with_query(url, "cluster=true")
        if isinstance(catalog, Catalog):
            loaded: Catalog | None = catalog
        elif catalog is not None or isinstance(view, str):
            loaded = load_catalog(catalog)
        else:
            loaded = None
        if isinstance(view, str):
            assert loaded is not None
            view = loaded.view(view)
        if not isinstance(view, FeatureView):
            raise ConfigurationError(f"view must be a FeatureView or a view name, got {view!r}")
        if isinstance(max_pipeline, bool) or not isinstance(max_pipeline, int) or max_pipeline < 1:
            raise ConfigurationError(f"max_pipeline must be a positive integer, got {max_pipeline!r}")
        if method not in ("auto", *METHODS):
            raise ConfigurationError(f"method must be 'auto', {' or '.join(map(repr, METHODS))}; got {method!r}")
        self.view = view
        self.plan = StreamingWritePlan.build(view, loaded)
        self.guard = guard
        self.requested_method = method
        self.max_pipeline = max_pipeline
        self.retry_seconds = retry_seconds
        self.publish = publish
        # writes go to each slot's primary, whatever the URL says about replicas
        self._wire = Wire(self.settings, policy=RetryPolicy(seconds=retry_seconds), replicas=False)
        self.method: str | None = None  # chosen when connecting
        self.server_version: str | None = None

    @classmethod
    def connect(cls, url: str, view: str | FeatureView, **options: Any) -> StreamingWriter:
        """A writer, connected: the server checked, the guard loaded, the view published."""
        writer = cls(url, view, **options)
        try:
            writer._connect()
        except BaseException:
            writer.close()
            raise
        return writer

    @property
    def connected(self) -> bool:
        return self.method is not None

    # --- set-up ------------------------------------------------------------------------

    def _connect(self) -> None:
        """Probe every primary, choose the method, load the guard, publish the view.

        Nothing is written before the server passed the probe; the writer counts as
        connected only once everything succeeded (a failed set-up is redone next time).
        """
        wire = self._wire
        nodes = wire.primaries()
        caps = [server_capabilities(wire, node) for node in nodes]
        method = choose_method(self.view, self.settings.redacted_url, caps, self.requested_method)
        if self.guard:
            for node in nodes:
                self._load_function(node)
        if self.publish:
            self._publish()
        self.server_version = ", ".join(sorted({c.version for c in caps}))
        self.method = method
        log.info(
            "streaming writer ready on %s (%s): %s, guard %s", self.settings.redacted_url, self.server_version,
            method, "on" if self.guard else "off", extra={"view": self.view.name},
        )  # fmt: skip

    def _load_function(self, node: str) -> None:
        """``FUNCTION LOAD REPLACE`` the guard on one primary (idempotent)."""
        try:
            self._wire.execute_on(node, "FUNCTION", "LOAD", "REPLACE", GUARD_LUA)
        except PermissionDeniedError as exc:  # its own class: names the user and the fix
            raise exc.with_context(
                f"streaming view {self.view.name!r}: loading the out-of-order guard function {GUARD_LIBRARY!r} "
                "(or use guard=False)"
            ) from None
        except ServerError as exc:
            where = node if self.settings.cluster else self.settings.redacted_url
            raise ServerError(
                f"streaming view {self.view.name!r}: cannot load the out-of-order guard function "
                f"{GUARD_LIBRARY!r} on {where} ({redact_text(str(exc))}); "
                "the user needs FUNCTION LOAD rights (@scripting), or use guard=False"
            ) from None

    def _reload_function(self, node: str) -> None:
        """:meth:`_load_function` inside a round trip: its error goes out as it is."""
        try:
            self._load_function(node)
        except FeatureStoreError as exc:
            raise _ReloadFailed(exc) from None

    def _publish(self) -> None:
        entry = codec.registry_entry(self.view, int(time.time() * 1000), run_id=f"stream:{self.view.name}")
        try:
            self._wire.execute("HSET", codec.REGISTRY_KEY, self.view.name, entry, key=codec.REGISTRY_KEY)
        except (FeatureStoreConnectionError, ServerError) as exc:
            raise _in_context(exc, f"publishing view {self.view.name!r}") from None

    # --- writes ------------------------------------------------------------------------

    def write(self, entity_id: object, values: Mapping[str, Any], event_time: EventTime = None) -> bool:
        """Write one entity's features as of ``event_time``; False if a newer event is stored.

        ``values`` maps feature names of this view to values; features left out keep
        their stored value, ``None`` deletes one.  One round trip.
        """
        return self.write_many([(entity_id, values, event_time)]).written == 1

    def write_many(self, events: Iterable[tuple[object, Mapping[str, Any], EventTime]]) -> WriteStats:
        """Write many events, ``(entity_id, values, event_time)`` each, pipelined.

        One round trip per ``max_pipeline`` events (per node in a cluster).  Events of
        the same entity are applied in the given order; with the guard, an older one
        after a newer one is skipped.  Everything is encoded before anything is sent, so
        a bad value fails the chunk without writing part of it.
        """
        if self.method is None:
            self._connect()
        assert self.method is not None
        stats = WriteStats()
        now_ms = int(time.time() * 1000)  # the event time of events without one, per chunk
        chunk: list[Unit] = []
        unit, method, guard = self.plan.unit, self.method, self.guard
        for entity_id, values, event_time in events:
            chunk.append(unit(entity_id, values, event_time_ms(event_time, now_ms), method, guard))
            if len(chunk) >= self.max_pipeline:
                stats += self._send(chunk)
                chunk = []
                now_ms = int(time.time() * 1000)
        if chunk:
            stats += self._send(chunk)
        return stats

    def _send(self, units: list[Unit]) -> WriteStats:
        replies = self._round_trip(units)
        if not self.guard:
            return WriteStats(written=len(units))
        written = sum(1 for r in replies if r == 1)
        return WriteStats(written=written, skipped=len(units) - written)

    def _round_trip(self, units: list[Unit]) -> list[Any]:
        """Send every unit through the wire, which reloads the guard where a node lacks it.

        Safe to retry: a guarded event whose time equals the stored one is written
        again with the same values, and an unguarded write is idempotent.
        """
        keys = [key for key, _ in units]
        if self.guard:  # one FCALL per event
            payloads = [commands[0] for _, commands in units]
            counts = None
        else:
            payloads = [b"".join(commands) for _, commands in units]
            counts = [len(commands) for _, commands in units]
        wire = self._wire
        try:
            replies, trip = wire.round_trip(
                keys, payloads, wire.start(), counts=counts, with_asking=_asking(units), repair=self._guard_repair
            )
        except _ReloadFailed as failed:  # already says what was being done
            raise failed.error from None
        except (FeatureStoreConnectionError, ServerError) as exc:
            raise _in_context(exc, f"writing {len(keys)} events of streaming view {self.view.name!r}") from None
        if trip.failed:
            unit = min(trip.failed)
            raise WriteError(
                f"streaming view {self.view.name!r}: Redis refused the write of {keys[unit].decode(errors='replace')} "
                f"at {self.settings.redacted_url}: {redact_text(trip.failed[unit])}"
            )
        return replies

    @property
    def _guard_repair(self) -> Repair | None:
        """A node that lost the guard function (restarted without persistence, flushed, or
        joined since we connected) answers ``Function not found``: the wire loads it there
        and re-sends the events it refused, within the same retry budget."""
        if not self.guard:
            return None
        return Repair(
            matches=lambda reply: NOT_LOADED in reply,
            run=self._reload_function,
            what=f"reloading the out-of-order guard function {GUARD_LIBRARY!r}",
        )

    def record_progress(self, report: Mapping[str, Any], source: str) -> None:
        """Store a stream's progress report (:class:`.events.StreamStats`) in ``fs:stream:<view>``,
        where ``featurestore status`` finds it: events/s, latency p50/p99, lag, dead letters."""
        from .events import progress_fields, progress_key

        key = progress_key(self.view.name)
        fields = progress_fields(report, source, int(time.time() * 1000))
        flat = [item for pair in fields.items() for item in pair]
        try:
            self._wire.execute("HSET", key, *flat, key=key.encode())
        except (FeatureStoreConnectionError, ServerError) as exc:
            raise _in_context(exc, f"recording the progress of streaming view {self.view.name!r}") from None

    # --- Spark ---------------------------------------------------------------------------

    def foreach_batch(
        self,
        *,
        id_col: str | None = None,
        event_time_col: str | None = "event_time",
        metrics: MetricsTarget | None = None,
        feature_log: LogSettings | None = None,
        fields_col: str | None = None,
    ) -> ForeachBatchSink:
        """A ``foreachBatch`` function that writes each micro-batch from the executors.

        >>> query = events.writeStream.foreachBatch(writer.foreach_batch()).start()  # doctest: +SKIP

        The DataFrame holds the entity id (``id_col``, default the entity's join key),
        the event time (``event_time_col``: a timestamp, or epoch milliseconds as a long;
        ``None`` means the time of the write) and any of the view's features as columns.
        The server is checked here, on the driver (connecting if needed), so a too-old
        server fails before the query starts.  ``metrics`` (default: from
        ``$FEATURESTORE_METRICS_TEXTFILE_DIR`` / ``$FEATURESTORE_PUSHGATEWAY_URL``) receives the
        query's counters after each micro-batch.  ``feature_log`` (off by default) appends
        each written micro-batch to the view's feature log (docs/training-data.md).
        ``fields_col`` (an ``array<string>`` column) names the features each row writes:
        the others are left as they are (the generic job's rows, docs/streaming.md).
        """
        if self.method is None:
            self._connect()
        assert self.method is not None
        return ForeachBatchSink(
            url=self._url,
            plan=self.plan,
            id_col=id_col or self.view.entity.join_key,
            event_time_col=event_time_col,
            guard=self.guard,
            method=self.method,
            timeout=self.settings.timeout,
            retry_seconds=self.retry_seconds,
            max_pipeline=self.max_pipeline,
            open_writer=writer_for_sink,
            metrics=metrics if metrics is not None else MetricsTarget.from_env(),
            feature_log=feature_log,
            fields_col=fields_col,
        )

    # --- lifecycle -----------------------------------------------------------------------

    def close(self) -> None:
        self._wire.close()

    def __enter__(self) -> StreamingWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"StreamingWriter(view={self.view.name!r}, url={self.settings.redacted_url!r}, "
            f"method={self.method or self.requested_method!r}, guard={self.guard})"
        )


def writer_for_sink(sink: ForeachBatchSink) -> StreamingWriter:
    """An executor's writer for ``sink``, connected (the driver published the view already).

    A module-level function, so that a pickled sink refers to it by name.
    """
    return StreamingWriter.connect(
        sink.url, sink.plan.view, guard=sink.guard, method=sink.method, timeout=sink.timeout,
        retry_seconds=sink.retry_seconds, max_pipeline=sink.max_pipeline, publish=False,
    )  # fmt: skip


def _asking(units: list[Unit]) -> Callable[[int], bytes]:
    """Unit ``i`` of a round trip with ``ASKING`` before each of its commands (an ASK redirect
    holds for the next command only)."""

    def with_asking(position: int) -> bytes:
        return b"".join([ASKING + command for command in units[position][1]])

    return with_asking


class _ReloadFailed(Exception):
    """Carries the error of a guard reload out of the wire's round trip, unchanged."""

    def __init__(self, error: FeatureStoreError) -> None:
        super().__init__(str(error))
        self.error = error


def _in_context(exc: FeatureStoreConnectionError | ServerError, what: str) -> Exception:
    """The same error (class and attributes), its message prefixed with what was being done."""
    return exc.with_context(what)


def _with_query(url: str, option: str) -> str:
    return url + ("&" if "?" in url else "?") + option
