"""The streaming hook: real-time features with their own per-field TTL (docs/streaming.md).

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
* out-of-order events: with ``guard=True`` (the default) each event is written by a
  Redis function (``FCALL``, ``KEYS[1]`` = the entity key, so it runs on the key's shard)
  that compares the event time with the stored ``_ts:<view>`` and skips an older event,
  atomically with the write.

Pure logic (:class:`StreamingWritePlan`: which bytes to send) is apart from I/O (the
``_Link`` classes: one pipelined round trip per node).  :class:`ForeachBatchSink` adapts
the writer to Spark Structured Streaming's ``foreachBatch``: the writes run on the
executors (``mapInArrow``) and only per-partition counts come back to the driver.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

import redis
from redis.cluster import RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError

from featurestore.readers import codec
from featurestore.readers.definitions import Catalog, DType, Feature, FeatureView, load_catalog
from featurestore.readers.errors import (
    ConfigurationError,
    EncodingError,
    FeatureNotFoundError,
    ServerError,
    UnsupportedServerError,
    WriteError,
)
from featurestore.readers.reader import classify_reply_error, group_by_node, translate_error
from featurestore.readers.settings import ConnectionSettings, redact_text

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

Command = tuple[bytes, ...]
EventTime = datetime | int | None

HSETEX = "hsetex"  # Redis >= 8.0, Valkey >= 9.0: value and TTL in one command
HSET_HEXPIRE = "hset_hexpire"  # Redis 7.4: HSET then HEXPIRE, made atomic by MULTI or the function
METHODS = (HSETEX, HSET_HEXPIRE)

DEFAULT_TIMEOUT_SECONDS = 5.0
DEFAULT_MAX_PIPELINE = 1000
_ATTEMPTS = 5
# Event times before this are almost certainly epoch *seconds* passed as milliseconds.
_MIN_EVENT_MS = 946_684_800_000  # 2000-01-01T00:00:00Z
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1

# --- the out-of-order guard: a Redis function ------------------------------------------

GUARD_LIBRARY = "featurestore_streaming_v1"
GUARD_FUNCTION = "fs_stream_write_v1"
# The argument layout is part of the function's name (v1): change one, bump both, so
# writers of two releases can run side by side during a rolling deploy.
GUARD_LUA = f"""#!lua name={GUARD_LIBRARY}
-- redis-feature-store: write one streaming event unless a newer one is stored.
-- KEYS[1]  the entity hash fs:<entity>:{{<id>}} (one key: works in a Redis Cluster)
-- ARGV     ts_field, event_ms, method ('{HSETEX}' | '{HSET_HEXPIRE}'), ngroups,
--          per group: ttl, nfields, field1, value1, ...   then: ndel, field1, ...
-- Returns 1 when written, 0 when the stored _ts:<view> is newer (the event is skipped).
local function stream_write(keys, args)
  local key = keys[1]
  local stored = redis.call('HGET', key, args[1])
  if stored and tonumber(stored) > tonumber(args[2]) then
    return 0
  end
  local hsetex = args[3] == '{HSETEX}'
  local i = 5
  for _ = 1, tonumber(args[4]) do
    local ttl, n = args[i], tonumber(args[i + 1])
    if hsetex then
      redis.call('HSETEX', key, 'EX', ttl, 'FIELDS', n, unpack(args, i + 2, i + 1 + 2 * n))
    else
      redis.call('HSET', key, unpack(args, i + 2, i + 1 + 2 * n))
      local names = {{}}
      for j = 1, n do
        names[j] = args[i + 2 * j]
      end
      redis.call('HEXPIRE', key, ttl, 'FIELDS', n, unpack(names))
    end
    i = i + 2 + 2 * n
  end
  local ndel = tonumber(args[i])
  if ndel > 0 then
    redis.call('HDEL', key, unpack(args, i + 1, i + ndel))
  end
  return 1
end
redis.register_function('{GUARD_FUNCTION}', stream_write)
"""


# --- pure logic: what to send ------------------------------------------------------------


def event_time_ms(event_time: EventTime, now_ms: int | None = None) -> int:
    """An event time as epoch milliseconds.

    ``datetime`` (a naive one is taken as UTC) or ``int`` epoch milliseconds (a Kafka
    record timestamp); ``None`` means now.  Times before 2000 are refused: they are
    almost always epoch seconds passed where milliseconds are expected.
    """
    if event_time is None:
        return now_ms if now_ms is not None else int(time.time() * 1000)
    if isinstance(event_time, datetime):
        aware = event_time if event_time.tzinfo is not None else event_time.replace(tzinfo=UTC)
        ms = (aware - _EPOCH) // timedelta(milliseconds=1)
    elif isinstance(event_time, bool) or not hasattr(event_time, "__index__"):
        raise EncodingError(
            f"event_time must be a datetime or epoch milliseconds (int), got {event_time!r} "
            f"({type(event_time).__name__})"
        )
    else:
        ms = event_time.__index__()
    if ms < _MIN_EVENT_MS:
        raise EncodingError(
            f"event_time {event_time!r} is before 2000-01-01 as epoch milliseconds; "
            "pass milliseconds (seconds * 1000) or a datetime"
        )
    return ms


def resp(command: Sequence[bytes]) -> bytes:
    """The RESP encoding of one command (same bytes as ``featurestore.jobs.commands.resp``)."""
    return b"*%d\r\n" % len(command) + b"".join([b"$%d\r\n%s\r\n" % (len(a), a) for a in command])


Encoder = Callable[[Any], "bytes | None"]


def value_encoder(feature: Feature) -> Encoder:
    """``codec.encode_value`` for one feature, with a shortcut for the plain Python types.

    The shortcut produces the codec's bytes through the codec's own formatters (pinned
    by tests/streaming/test_streaming_plan.py); anything else — numpy scalars, NaN,
    out-of-range numbers, wrong types — takes ``codec.encode_value`` itself, errors
    included.  It saves the per-value dtype dispatch on the request-rate path.
    """
    slow = partial(codec.encode_value, feature)
    dtype = DType(feature.dtype)
    if dtype is DType.INT64:

        def encode_int(value: Any) -> bytes | None:
            if type(value) is int and _INT64_MIN <= value <= _INT64_MAX:
                return b"%d" % value
            return slow(value)

        return encode_int
    if dtype is DType.FLOAT32 or dtype is DType.FLOAT64:
        text = codec.format_float32 if dtype is DType.FLOAT32 else codec.format_float64

        def encode_float(value: Any) -> bytes | None:
            if type(value) is float and value == value:  # not NaN (NaN is null)
                try:
                    return text(value).encode()
                except (OverflowError, ValueError):
                    pass  # let the codec raise its own error
            return slow(value)

        return encode_float
    if dtype is DType.STRING:

        def encode_str(value: Any) -> bytes | None:
            if type(value) is str:
                try:
                    return value.encode()
                except UnicodeEncodeError:
                    pass
            return slow(value)

        return encode_str
    if dtype is DType.BOOL:

        def encode_bool(value: Any) -> bytes | None:
            if value is True:
                return b"1"
            if value is False:
                return b"0"
            return slow(value)

        return encode_bool
    return slow


@dataclass(frozen=True)
class StreamingWritePlan:
    """Everything about a streaming view's writes that does not depend on the event.

    ``groups`` holds the view's features by TTL, shortest first; ``_ts:<view>`` is
    written with the last (longest) group, so it expires with the longest-lived feature.
    """

    view: FeatureView
    groups: tuple[tuple[int, tuple[Feature, ...]], ...]
    ts_field: bytes
    ts_ttl: int
    names: frozenset[str]
    others: Mapping[str, str]  # feature -> "batch view 'x'", for the entity's other views (messages)
    # per group: (ttl, ((feature name, field bytes, encoder), ...)), built from `groups`
    encoders: tuple[tuple[int, tuple[tuple[str, bytes, Encoder], ...]], ...] = field(
        default=(), compare=False, repr=False
    )

    def __post_init__(self) -> None:
        if not self.encoders:
            built = tuple(
                (ttl, tuple((f.name, f.name.encode(), value_encoder(f)) for f in features))
                for ttl, features in self.groups
            )
            object.__setattr__(self, "encoders", built)

    @classmethod
    def build(cls, view: FeatureView, catalog: Catalog | None = None) -> StreamingWritePlan:
        """The plan of ``view``; refuses a batch view (the batch job owns those).

        ``catalog`` only sharpens error messages: a name of another view of the entity
        is refused either way, with the catalogue the message names its view.
        """
        if view.is_batch:
            raise ConfigurationError(
                f"view {view.name!r} is a batch view: the batch job writes it (featurestore materialize); "
                "a StreamingWriter only writes streaming views"
            )
        by_ttl: dict[int, list[Feature]] = {}
        for feature in view.features:
            by_ttl.setdefault(view.feature_ttl(feature), []).append(feature)
        groups = tuple((ttl, tuple(by_ttl[ttl])) for ttl in sorted(by_ttl))
        others: dict[str, str] = {}
        if catalog is not None:
            for other in catalog.views_of(view.entity.name):
                if other.name != view.name:
                    described = f"{'batch' if other.is_batch else 'streaming'} view {other.name!r}"
                    others.update(dict.fromkeys(other.feature_names, described))
        return cls(
            view=view,
            groups=groups,
            ts_field=codec.ts_field(view),
            ts_ttl=view.longest_ttl,
            names=frozenset(view.feature_names),
            others=others,
        )

    def check_names(self, names: Iterable[str]) -> None:
        """Refuse any name that is not a feature of this view (batch-owned ones by name)."""
        for name in names:
            if name in self.names:
                continue
            owner = self.others.get(name)
            if owner is not None:
                why = (
                    "batch-owned features are written by the batch job only"
                    if owner.startswith("batch")
                    else "write it with that view's StreamingWriter"
                )
                raise ConfigurationError(
                    f"streaming view {self.view.name!r} cannot write feature {name!r}: it belongs to {owner}; {why}"
                )
            raise FeatureNotFoundError(
                f"streaming view {self.view.name!r} has no feature {name!r} "
                f"(it has: {', '.join(self.view.feature_names)})"
            )

    def encode(self, values: Mapping[str, Any]) -> tuple[list[tuple[int, list[bytes]]], list[bytes]]:
        """``([(ttl, [field, value, ...]), ...], [null fields])`` for one event.

        Features absent from ``values`` are left as they are (a partial update); a
        ``None`` (or NaN) value deletes its field.  Empty groups are dropped except the
        last (longest TTL) one, which the callers complete with ``_ts:<view>``.
        """
        if not values.keys() <= self.names:
            self.check_names(values)
        groups: list[tuple[int, list[bytes]]] = []
        deletes: list[bytes] = []
        for ttl, features in self.encoders:
            pairs: list[bytes] = []
            for name, name_bytes, encode in features:
                if name not in values:
                    continue
                encoded = encode(values[name])
                if encoded is None:
                    deletes.append(name_bytes)
                else:
                    pairs += [name_bytes, encoded]
            if pairs or ttl == self.ts_ttl:
                groups.append((ttl, pairs))
        return groups, deletes

    def commands(
        self, entity_id: object, values: Mapping[str, Any], event_ms: int, method: str = HSETEX
    ) -> list[Command]:
        """The unguarded commands for one event (``guard=False``): last write wins."""
        key = codec.entity_key(self.view.entity, entity_id)
        return self._commands(key, values, event_ms, method)

    def _commands(self, key: bytes, values: Mapping[str, Any], event_ms: int, method: str) -> list[Command]:
        groups, deletes = self.encode(values)
        groups[-1][1].extend((self.ts_field, codec.encode_ts(event_ms)))
        out: list[Command] = []
        if method == HSETEX:
            for ttl, pairs in groups:
                out.append((b"HSETEX", key, b"EX", b"%d" % ttl, b"FIELDS", b"%d" % (len(pairs) // 2), *pairs))
            if deletes:
                out.append((b"HDEL", key, *deletes))
            return out
        # Redis 7.4: HSET clears a field's TTL, so HSET and HEXPIRE must never be seen apart.
        out.append((b"MULTI",))
        out.append((b"HSET", key, *[p for _, pairs in groups for p in pairs]))
        for ttl, pairs in groups:
            names = pairs[0::2]
            out.append((b"HEXPIRE", key, b"%d" % ttl, b"FIELDS", b"%d" % len(names), *names))
        if deletes:
            out.append((b"HDEL", key, *deletes))
        out.append((b"EXEC",))
        return out

    def guarded_command(
        self, entity_id: object, values: Mapping[str, Any], event_ms: int, method: str = HSETEX
    ) -> Command:
        """The one ``FCALL`` that writes the event unless a newer one is stored."""
        key = codec.entity_key(self.view.entity, entity_id)
        return self._guarded(key, values, event_ms, method)

    def _guarded(self, key: bytes, values: Mapping[str, Any], event_ms: int, method: str) -> Command:
        groups, deletes = self.encode(values)
        ts = codec.encode_ts(event_ms)
        groups[-1][1].extend((self.ts_field, ts))
        args: list[bytes] = [b"FCALL", GUARD_FUNCTION.encode(), b"1", key, self.ts_field, ts, method.encode()]
        args.append(b"%d" % len(groups))
        for ttl, pairs in groups:
            args += [b"%d" % ttl, b"%d" % (len(pairs) // 2), *pairs]
        args.append(b"%d" % len(deletes))
        args += deletes
        return tuple(args)

    def unit(
        self, entity_id: object, values: Mapping[str, Any], event_ms: int, method: str, guard: bool
    ) -> tuple[bytes, list[bytes]]:
        """``(key, [RESP of each command])`` for one event: what one pipeline slot carries."""
        key = codec.entity_key(self.view.entity, entity_id)
        if guard:
            return key, [resp(self._guarded(key, values, event_ms, method))]
        return key, [resp(c) for c in self._commands(key, values, event_ms, method)]


@dataclass
class WriteStats:
    """What a call wrote: events written, and events skipped as older than the stored one."""

    written: int = 0
    skipped: int = 0

    def __add__(self, other: WriteStats) -> WriteStats:
        return WriteStats(self.written + other.written, self.skipped + other.skipped)

    @property
    def events(self) -> int:
        return self.written + self.skipped


# --- I/O: one pipelined round trip per node ----------------------------------------------


@dataclass(frozen=True)
class ServerCapabilities:
    """What the server (every primary, in a cluster) supports, and its version for messages."""

    version: str  # e.g. "Redis 8.2.3", "Valkey 9.1.2"
    hsetex: bool
    hexpire: bool


def server_capabilities(client: redis.Redis) -> ServerCapabilities:
    """Probe one node: ``INFO server`` for the version, ``COMMAND INFO`` for the commands.

    Valkey reports ``redis_version:7.2.4`` for compatibility, so the commands are probed
    rather than guessed from a version number.
    """
    info = client.info("server")
    if info.get("valkey_version"):
        version = f"Valkey {info['valkey_version']}"
    else:
        version = f"Redis {info.get('redis_version', '?')}"
    conn = client.connection_pool.get_connection()
    try:
        # raw: redis-py's reply parser for COMMAND INFO fails on unknown commands (nil)
        conn.send_command("COMMAND", "INFO", "HSETEX", "HEXPIRE")
        reply = conn.read_response()
    except BaseException:
        conn.disconnect()
        raise
    finally:
        client.connection_pool.release(conn)
    return ServerCapabilities(version=version, hsetex=reply[0] is not None, hexpire=reply[1] is not None)


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


_ASKING = b"*1\r\n$6\r\nASKING\r\n"
_NOT_LOADED = "Function not found"


class _Link:
    """Sends units of commands (all for one key) and returns each unit's replies."""

    settings: ConnectionSettings

    def primaries(self) -> list[tuple[str, redis.Redis]]:
        raise NotImplementedError

    def route(self, keys: Sequence[bytes], pending: list[int], asking: dict[int, str]) -> dict[str, list[int]]:
        raise NotImplementedError

    def pool(self, node: str) -> Any:
        raise NotImplementedError

    def node_client(self, node: str) -> redis.Redis:
        raise NotImplementedError

    def refresh(self) -> None:
        """Reload the topology (cluster) after a redirect or a lost node."""

    def client(self) -> redis.Redis | RedisCluster:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class _StandaloneLink(_Link):
    def __init__(self, settings: ConnectionSettings) -> None:
        self.settings = settings
        self._client = redis.Redis.from_url(settings.url, **settings.client_options())

    def primaries(self) -> list[tuple[str, redis.Redis]]:
        return [("", self._client)]

    def route(self, keys: Sequence[bytes], pending: list[int], asking: dict[int, str]) -> dict[str, list[int]]:
        return {"": pending}

    def pool(self, node: str) -> Any:
        return self._client.connection_pool

    def node_client(self, node: str) -> redis.Redis:
        return self._client

    def client(self) -> redis.Redis:
        return self._client

    def close(self) -> None:
        self._client.close()


class _ClusterLink(_Link):
    def __init__(self, settings: ConnectionSettings) -> None:
        self.settings = settings
        try:
            self._client = RedisCluster.from_url(settings.url, **settings.client_options())
        except RedisError as exc:
            raise translate_error(exc, settings, "connecting to the cluster") from None
        self.nodes = self._client.nodes_manager

    def primaries(self) -> list[tuple[str, redis.Redis]]:
        return [(n.name, self._client.get_redis_connection(n)) for n in self._client.get_primaries()]

    def route(self, keys: Sequence[bytes], pending: list[int], asking: dict[int, str]) -> dict[str, list[int]]:
        # writes go to the slot's primary (no load balancing), or where an ASK redirect pointed
        return group_by_node(keys, pending, asking, self.nodes.get_node_from_slot, None)

    def _node(self, name: str) -> Any:
        node = self.nodes.get_node(node_name=name)
        if node is None:
            host, _, port = name.rpartition(":")
            node = self.nodes.get_node(host=host, port=int(port))
        if node is None:
            raise RedisConnectionError(f"node {name} is not part of the cluster topology")
        return node

    def pool(self, node: str) -> Any:
        return self._client.get_redis_connection(self._node(node)).connection_pool

    def node_client(self, node: str) -> redis.Redis:
        return self._client.get_redis_connection(self._node(node))

    def refresh(self) -> None:
        try:
            self.nodes.initialize()
        except RedisError:
            pass  # the next attempt tries again; the attempts are bounded

    def client(self) -> RedisCluster:
        return self._client

    def close(self) -> None:
        self._client.close()


def _first_error(replies: list[Any]) -> ResponseError | None:
    """The error that decides a unit's fate (not EXECABORT, which only echoes another)."""
    found: ResponseError | None = None
    for reply in replies:
        candidates = reply if isinstance(reply, list) else [reply]
        for item in candidates:
            if isinstance(item, ResponseError):
                if not str(item).startswith("EXECABORT"):
                    return item
                found = found or item
    return found


class StreamingWriter:
    """Writes the features of one streaming view, each field with its own TTL.

    >>> with StreamingWriter("redis://localhost:6379", "user_realtime") as w:   # doctest: +SKIP
    ...     w.write(42, {"last_amount": 12.5, "last_country": "FR"}, event_time=kafka_ts_ms)

    ``view`` is a streaming :class:`FeatureView` or its name in ``catalog`` (a
    :class:`Catalog` or its module; default ``$FEATURESTORE_CATALOG``, then the example
    catalogue).  ``guard=True`` skips events older than the stored ``_ts:<view>``
    atomically on the server (a Redis function); ``guard=False`` is last-write-wins and
    a little cheaper.  ``method`` forces ``"hsetex"`` or ``"hset_hexpire"`` (Redis 7.4
    style) instead of the best one the server supports.  Connecting checks the server
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
        self.view = view
        self.plan = StreamingWritePlan.build(view, loaded)
        self.guard = guard
        self.max_pipeline = max_pipeline
        self._link: _Link = _ClusterLink(self.settings) if self.settings.cluster else _StandaloneLink(self.settings)
        try:
            caps = [self._probe(name, client) for name, client in self._link.primaries()]
            self.method = choose_method(view, self.settings.redacted_url, caps, method)
            self.server_version = ", ".join(sorted({c.version for c in caps}))
            if guard:
                for name, client in self._link.primaries():
                    self._load_function(name, client)
            if publish:
                self._publish()
        except BaseException:
            self._link.close()
            raise

    # --- set-up ------------------------------------------------------------------------

    def _probe(self, name: str, client: redis.Redis) -> ServerCapabilities:
        try:
            return server_capabilities(client)
        except RedisError as exc:
            raise translate_error(exc, self.settings, f"checking the server {name or ''}".strip()) from None

    def _load_function(self, name: str, client: redis.Redis) -> None:
        try:
            client.function_load(GUARD_LUA, replace=True)
        except RedisError as exc:
            raise ServerError(
                f"streaming view {self.view.name!r}: cannot load the out-of-order guard function "
                f"{GUARD_LIBRARY!r} on {name or self.settings.redacted_url} ({redact_text(str(exc))}); "
                "the user needs FUNCTION LOAD rights (@scripting), or use guard=False"
            ) from None

    def _publish(self) -> None:
        entry = codec.registry_entry(self.view, int(time.time() * 1000), run_id=f"stream:{self.view.name}")
        try:
            self._link.client().hset(codec.REGISTRY_KEY, self.view.name, entry)
        except RedisError as exc:
            raise translate_error(exc, self.settings, f"publishing view {self.view.name!r}") from None

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
        stats = WriteStats()
        now_ms = int(time.time() * 1000)  # the event time of events without one, per chunk
        chunk: list[tuple[bytes, list[bytes]]] = []
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

    def _send(self, units: list[tuple[bytes, list[bytes]]]) -> WriteStats:
        replies = self._round_trip(units)
        if not self.guard:
            return WriteStats(written=len(units))
        written = sum(1 for r in replies if r[0] == 1)
        return WriteStats(written=written, skipped=len(units) - written)

    def _round_trip(self, units: list[tuple[bytes, list[bytes]]]) -> list[list[Any]]:
        """Send every unit, retrying redirects, lost connections and unloaded functions.

        Safe to retry: a guarded event whose time equals the stored one is written
        again with the same values, and an unguarded write is idempotent.
        """
        keys = [k for k, _ in units]
        results: list[list[Any]] = [[] for _ in units]
        pending = list(range(len(units)))
        asking: dict[int, str] = {}
        last_error: Exception | None = None
        deadline = time.monotonic() + self.settings.timeout * _ATTEMPTS
        for attempt in range(_ATTEMPTS):
            if attempt:
                time.sleep(min(0.05 * 2 ** (attempt - 1), max(deadline - time.monotonic(), 0.0)))
                self._link.refresh()
            try:
                groups = self._link.route(keys, pending, asking)
            except RedisError as exc:  # a slot without a primary while a failover runs
                last_error = exc
                continue
            retry: list[int] = []
            next_asking: dict[int, str] = {}
            reloaded: set[str] = set()
            for node, indexes, node_replies in self._exchange(groups, units, asking):
                if isinstance(node_replies, Exception):  # the connection broke: resend them all
                    retry += indexes
                    last_error = node_replies
                    continue
                for i, replies in zip(indexes, node_replies):
                    error = _first_error(replies)
                    if error is None:
                        results[i] = replies
                        continue
                    message = str(error)
                    retryable, ask_node = classify_reply_error(error)
                    if message.startswith(_NOT_LOADED):
                        # a node that joined, or lost its functions, after we connected
                        if node not in reloaded:
                            self._load_function(node, self._link.node_client(node))
                            reloaded.add(node)
                    elif not retryable:
                        key = keys[i].decode(errors="replace")
                        raise WriteError(
                            f"streaming view {self.view.name!r}: Redis refused the write of {key} "
                            f"at {self.settings.redacted_url}: {redact_text(message)}"
                        )
                    elif ask_node is not None:
                        next_asking[i] = ask_node
                    retry.append(i)
                    last_error = error
            pending, asking = retry, next_asking
            if not pending:
                return results
        what = f"writing {len(pending)} events of streaming view {self.view.name!r} after {_ATTEMPTS} attempts"
        if isinstance(last_error, ResponseError):
            raise WriteError(f"{what}: {redact_text(str(last_error))}")
        raise translate_error(last_error or RedisConnectionError("no reply"), self.settings, what) from None

    def _exchange(
        self, groups: dict[str, list[int]], units: list[tuple[bytes, list[bytes]]], asking: dict[int, str]
    ) -> list[tuple[str, list[int], list[list[Any]] | Exception]]:
        """One pipelined round trip per node, all nodes written before any is read.

        Returns each node's units with their replies (error replies as values, not
        raised), or the connection error that broke that node's exchange.
        """
        sent: list[tuple[str, list[int], Any, Any, list[int]]] = []
        out: list[tuple[str, list[int], list[list[Any]] | Exception]] = []
        for node, indexes in groups.items():
            parts: list[bytes] = []
            counts: list[int] = []
            for i in indexes:
                commands = units[i][1]
                if i in asking:  # ASKING holds for the next command only, so before each one
                    parts += [_ASKING + c for c in commands]
                    counts.append(2 * len(commands))
                else:
                    parts += commands
                    counts.append(len(commands))
            try:
                pool = self._link.pool(node)
                conn = pool.get_connection()
            except (RedisConnectionError, OSError) as exc:
                out.append((node, indexes, exc))
                continue
            try:
                conn.send_packed_command([b"".join(parts)], check_health=False)
            except (RedisConnectionError, OSError) as exc:
                conn.disconnect()
                pool.release(conn)
                out.append((node, indexes, exc))
                continue
            sent.append((node, indexes, pool, conn, counts))
        for k, (node, indexes, pool, conn, counts) in enumerate(sent):
            try:
                node_replies: list[list[Any]] = []
                for i, count in zip(indexes, counts):
                    asked = i in asking
                    replies = []
                    for n in range(count):
                        try:
                            reply = conn.read_response(disable_decoding=True)
                        except ResponseError as exc:  # the rest of the pipeline is still readable
                            reply = exc
                        if not (asked and n % 2 == 0):  # drop the +OK of each ASKING
                            replies.append(reply)
                    node_replies.append(replies)
                out.append((node, indexes, node_replies))
            except (RedisConnectionError, OSError) as exc:
                conn.disconnect()
                out.append((node, indexes, exc))
            except BaseException:
                conn.disconnect()
                for _, _, other_pool, other_conn, _ in sent[k + 1 :]:  # their replies stay unread
                    other_conn.disconnect()
                    other_pool.release(other_conn)
                raise
            finally:
                pool.release(conn)
        return out

    # --- Spark ---------------------------------------------------------------------------

    def foreach_batch(
        self, *, id_col: str | None = None, event_time_col: str | None = "event_time"
    ) -> ForeachBatchSink:
        """A ``foreachBatch`` function that writes each micro-batch from the executors.

        >>> query = events.writeStream.foreachBatch(writer.foreach_batch()).start()  # doctest: +SKIP

        The DataFrame holds the entity id (``id_col``, default the entity's join key),
        the event time (``event_time_col``: a timestamp, or epoch milliseconds as a long;
        ``None`` means the time of the write) and any of the view's features as columns.
        The server was checked when this writer connected, so a too-old server fails
        here, on the driver, before the query starts.
        """
        return ForeachBatchSink(
            url=self._url,
            plan=self.plan,
            id_col=id_col or self.view.entity.join_key,
            event_time_col=event_time_col,
            guard=self.guard,
            method=self.method,
            timeout=self.settings.timeout,
            max_pipeline=self.max_pipeline,
        )

    # --- lifecycle -----------------------------------------------------------------------

    def close(self) -> None:
        self._link.close()

    def __enter__(self) -> StreamingWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"StreamingWriter(view={self.view.name!r}, url={self.settings.redacted_url!r}, "
            f"method={self.method!r}, guard={self.guard})"
        )


def _with_query(url: str, option: str) -> str:
    return url + ("&" if "?" in url else "?") + option


# --- Spark Structured Streaming: foreachBatch ----------------------------------------------


@dataclass
class ForeachBatchSink:
    """``foreachBatch(sink)``: writes each micro-batch with a :class:`StreamingWriter`.

    Picklable (no connection inside); each executor's Python worker keeps one writer per
    sink and reuses it across micro-batches.  The rows never come to the driver:
    ``mapInArrow`` writes them where they are and returns one ``(written, skipped)`` row
    per partition.  Totals since the query started: ``batches``, ``written``, ``skipped``.
    """

    url: str
    plan: StreamingWritePlan
    id_col: str
    event_time_col: str | None
    guard: bool
    method: str
    timeout: float
    max_pipeline: int
    batches: int = 0
    written: int = 0
    skipped: int = 0

    def feature_columns(self, columns: Sequence[str]) -> list[str]:
        """The feature columns of a DataFrame; raises on a missing id or a foreign column."""
        required = [self.id_col] + ([self.event_time_col] if self.event_time_col else [])
        missing = [c for c in required if c not in columns]
        if missing:
            raise ConfigurationError(
                f"streaming view {self.plan.view.name!r}: the DataFrame has no column {missing[0]!r} "
                f"(columns: {', '.join(columns)})"
            )
        rest = [c for c in columns if c not in required]
        self.plan.check_names(rest)
        return rest

    def __call__(self, df: DataFrame, epoch_id: int) -> None:
        stats = self.write_dataframe(df)
        self.batches += 1
        self.written += stats.written
        self.skipped += stats.skipped

    def write_dataframe(self, df: DataFrame) -> WriteStats:
        """Write a micro-batch (or any DataFrame) from the executors; return the counts."""
        from pyspark.sql import functions as F
        from pyspark.sql.types import DateType, TimestampNTZType, TimestampType

        features = self.feature_columns(df.columns)
        selected = [F.col(self.id_col)] + [F.col(c) for c in features]
        if self.event_time_col:
            event = F.col(self.event_time_col)
            if isinstance(df.schema[self.event_time_col].dataType, (TimestampType, TimestampNTZType, DateType)):
                event = F.unix_millis(event.cast("timestamp"))  # epoch ms, whatever the session time zone
            selected.append(event.cast("long"))
        job = _ArrowJob(self, tuple(features))
        rows = df.select(*selected).mapInArrow(job, "written long, skipped long").collect()  # type: ignore[arg-type]
        return WriteStats(sum(r.written for r in rows), sum(r.skipped for r in rows))


_EXECUTOR_WRITERS: dict[tuple[Any, ...], StreamingWriter] = {}
_EXECUTOR_LOCK = threading.Lock()


def _executor_writer(sink: ForeachBatchSink) -> StreamingWriter:
    """One writer per sink per Python worker, kept across micro-batches (worker reuse)."""
    key = (sink.url, sink.plan.view, sink.guard, sink.method, sink.timeout, sink.max_pipeline)
    with _EXECUTOR_LOCK:
        writer = _EXECUTOR_WRITERS.get(key)
        if writer is None:
            # publish=False: the driver published the view already; the function is
            # loaded again (REPLACE, idempotent) in case a node restarted since.
            writer = StreamingWriter(
                sink.url, sink.plan.view, guard=sink.guard, method=sink.method,
                timeout=sink.timeout, max_pipeline=sink.max_pipeline, publish=False,
            )  # fmt: skip
            _EXECUTOR_WRITERS[key] = writer
        return writer


@dataclass(frozen=True)
class _ArrowJob:
    """The ``mapInArrow`` function: runs on an executor and writes its partition's rows.

    Columns: the id, the feature columns in ``features`` order, then the event time.
    """

    sink: ForeachBatchSink
    features: tuple[str, ...]

    def __call__(self, batches: Iterator[Any]) -> Iterator[Any]:
        import pyarrow as pa

        writer = _executor_writer(self.sink)
        total = WriteStats()
        names = self.features
        for batch in batches:
            ids = batch.column(0).to_pylist()
            columns = [batch.column(i + 1).to_pylist() for i in range(len(names))]
            if self.sink.event_time_col:
                times: list[Any] = batch.column(len(names) + 1).to_pylist()
            else:
                times = [None] * len(ids)
            rows = zip(*columns) if columns else ((),) * len(ids)
            total += writer.write_many(
                (entity_id, dict(zip(names, row)), event) for entity_id, row, event in zip(ids, rows, times)
            )
        yield pa.RecordBatch.from_pydict(
            {"written": [total.written], "skipped": [total.skipped]},
            schema=pa.schema([("written", pa.int64()), ("skipped", pa.int64())]),
        )


__all__ = [
    "GUARD_FUNCTION",
    "GUARD_LIBRARY",
    "GUARD_LUA",
    "HSETEX",
    "HSET_HEXPIRE",
    "ForeachBatchSink",
    "ServerCapabilities",
    "StreamingWritePlan",
    "StreamingWriter",
    "WriteStats",
    "choose_method",
    "event_time_ms",
    "resp",
    "server_capabilities",
]
