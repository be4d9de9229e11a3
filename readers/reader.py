"""The reader: typed feature vectors for inference, one round trip per call.

``get`` is one HMGET.  ``get_many`` is one pipelined round trip: the RESP for every HMGET
is built in one go from the prepared plan, sent with a single write (per shard in a
Cluster, all shards written before any is read), and the replies are parsed by hiredis
and decoded in place.  All socket I/O of the sync reader goes through
:meth:`_Transport.round_trip`.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from typing import Any

import hiredis
import redis
from redis.cluster import LoadBalancingStrategy, RedisCluster
from redis.crc import key_slot
from redis.exceptions import AskError, ClusterDownError, MovedError, RedisError, ResponseError, TryAgainError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from . import codec
from .definitions import Catalog, FeatureView, load_catalog
from .errors import (
    ConfigurationError,
    FeatureStoreConnectionError,
    FeatureStoreError,
    FeatureStoreTimeout,
    RegistryMismatchError,
    ServerError,
)
from .plan import Planner, ReadPlan
from .results import FeatureBatch, FeatureVector
from .settings import DEFAULT_TIMEOUT_SECONDS, ConnectionSettings, redact_text

Features = str | FeatureView | Sequence[str]
# Error replies after which a topology refresh and a retry can succeed (READONLY: a
# write reached a master that was just demoted to replica).
RETRYABLE_REPLIES = ("MOVED", "ASK", "TRYAGAIN", "CLUSTERDOWN", "LOADING", "MASTERDOWN", "READONLY")
_BACKOFF_SECONDS = 0.025


def _now_ms() -> int:
    return int(time.time() * 1000)


def translate_error(exc: Exception, settings: ConnectionSettings, what: str) -> FeatureStoreError:
    """A redis-py error as one of ours, with the URL redacted."""
    where = settings.redacted_url
    message = redact_text(str(exc))
    if isinstance(exc, (RedisTimeoutError, TimeoutError)):
        return FeatureStoreTimeout(f"{what} timed out against {where}: {message}")
    if isinstance(exc, (RedisConnectionError, OSError)):
        return FeatureStoreConnectionError(f"{what}: cannot reach Redis at {where}: {message}")
    return ServerError(f"{what}: Redis at {where} answered an error: {message}")


def check_registry(catalog: Catalog, entries: dict[bytes, bytes]) -> dict[str, str]:
    """Compare the catalogue with the published registry; raise on any decoding skew.

    Returns ``{view: "ok" | "not materialized"}``.  A view or feature that is defined but
    not yet materialized is fine (it reads as missing); a feature whose dtype, dimension
    or storage differs from what was materialized raises :class:`RegistryMismatchError`.
    """
    report: dict[str, str] = {}
    for view in catalog.views:
        raw = entries.get(view.name.encode())
        if raw is None:
            report[view.name] = "not materialized"
            continue
        stored = codec.parse_registry_entry(raw)
        ours = codec.view_spec(view)
        problems = []
        for setting in ("entity", "id_dtype", "packed"):
            if stored.get(setting) != ours[setting]:
                problems.append(f"{setting} is {ours[setting]!r} here but {stored.get(setting)!r} in Redis")
        stored_features = {f["name"]: f for f in stored["features"]}
        for feature in ours["features"]:
            other = stored_features.get(feature["name"])
            if other is not None and (other.get("dtype"), other.get("dim")) != (feature["dtype"], feature.get("dim")):
                name, ours_, theirs = feature["name"], _describe(feature), _describe(other)
                problems.append(f"feature {name!r} is {ours_} here but was materialized as {theirs}")
        if problems:
            raise RegistryMismatchError(
                f"view {view.name!r} would be decoded differently from how it was materialized "
                f"(run {stored.get('run_id') or '?'}): "
                + "; ".join(problems)
                + ". Deploy the matching definitions, or re-materialize the view."
            )
        report[view.name] = "ok"
    return report


def _describe(feature: dict[str, Any]) -> str:
    return str(feature["dtype"]) + (f"[{feature['dim']}]" if feature.get("dim") else "")


def group_by_node(
    keys: Sequence[bytes], pending: list[int], asking: dict[int, str], get_node: Any, strategy: Any
) -> dict[str, list[int]]:
    """Command indexes grouped by the name of the node that serves their slot.

    ``asking`` overrides the node for commands that got an ASK redirect.
    """
    groups: dict[str, list[int]] = {}
    for i in pending:
        name = asking.get(i)
        if name is None:
            name = get_node(key_slot(keys[i]), load_balancing_strategy=strategy).name
        groups.setdefault(name, []).append(i)
    return groups


def classify_error_reply(message: str) -> tuple[bool, str | None]:
    """For an error reply in a cluster: (worth a retry?, node named by an ASK redirect).

    Redirects and transient cluster states are retried after a topology refresh;
    anything else (a wrong type, an ACL refusal) is the caller's problem.
    """
    if message.startswith("ASK "):
        return True, message.split()[2]
    return message.startswith(RETRYABLE_REPLIES), None


def classify_reply_error(exc: ResponseError) -> tuple[bool, str | None]:
    """The same for an error redis-py already parsed (it strips the MOVED/ASK prefix)."""
    if isinstance(exc, MovedError):  # MovedError derives from AskError: test it first
        return True, None
    if isinstance(exc, AskError):
        return True, f"{exc.host}:{exc.port}"
    if isinstance(exc, (TryAgainError, ClusterDownError)):
        return True, None
    return classify_error_reply(str(exc))


ASKING = b"*1\r\n$6\r\nASKING\r\n"
_READ_SIZE = 65536


# --- the I/O chokepoint --------------------------------------------------------------
# redis-py connects, authenticates, negotiates TLS and sends READONLY to replicas; then
# the reader writes its prepared RESP on the connection's socket and parses the replies
# with its own hiredis.Reader, all at once: no per-command objects, no per-reply calls.
# The connection's parser is left untouched (it holds no data: the pool checks that).


def _send(conn: Any, payload: bytes, deadline: float) -> None:
    if conn._sock is None:  # redis-py keeps the connected (TLS-wrapped) socket here
        conn.connect()
    sock = conn._sock
    sock.settimeout(max(deadline - time.monotonic(), 0.0001))
    sock.sendall(payload)


OnReply = Callable[[int, list[Any]], object]


def _receive(conn: Any, count: int, deadline: float, on_reply: OnReply | None = None) -> list[Any]:
    """Read ``count`` replies; error replies come back as ``hiredis.ReplyError`` values.

    ``on_reply(position, reply)`` runs for each HMGET reply as soon as it is parsed, so
    decoding overlaps with Redis still computing the rest of the pipeline.
    """
    sock = conn._sock
    reader = hiredis.Reader()
    buffer = bytearray(_READ_SIZE)
    replies: list[Any] = []
    append = replies.append
    try:
        while True:
            reply = reader.gets()
            while reply is not False:
                if on_reply is not None and reply.__class__ is list:
                    on_reply(len(replies), reply)
                append(reply)
                if len(replies) == count:
                    return replies
                reply = reader.gets()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("deadline reached")
            sock.settimeout(remaining)
            received = sock.recv_into(buffer)
            if not received:
                raise ConnectionResetError("Redis closed the connection")
            reader.feed(buffer, 0, received)  # type: ignore[arg-type]  # accepts any buffer
    finally:
        sock.settimeout(conn.socket_timeout)  # as redis-py expects it


def _error_replies(replies: list[Any]) -> list[tuple[int, str]]:
    return [(i, str(r)) for i, r in enumerate(replies) if r.__class__ is not list]


class _Transport:
    """Sends prepared commands and returns the raw replies, in order."""

    settings: ConnectionSettings
    client: redis.Redis | RedisCluster

    def round_trip(
        self, keys: Sequence[bytes], commands: Sequence[bytes], timeout: float, on_reply: OnReply | None = None
    ) -> list[Any]:
        """The replies in command order; ``on_reply(index, reply)`` runs once per HMGET reply."""
        raise NotImplementedError

    def hgetall(self, key: bytes) -> dict[bytes, bytes]:
        try:
            return self.client.hgetall(key)  # type: ignore[return-value]
        except RedisError as exc:
            raise translate_error(exc, self.settings, "reading the registry") from None

    def close(self) -> None:
        self.client.close()


class _StandaloneTransport(_Transport):
    def __init__(self, settings: ConnectionSettings) -> None:
        self.settings = settings
        self.client = redis.Redis.from_url(settings.url, **settings.client_options())
        self.pool = self.client.connection_pool

    def round_trip(
        self, keys: Sequence[bytes], commands: Sequence[bytes], timeout: float, on_reply: OnReply | None = None
    ) -> list[Any]:
        payload = commands[0] if len(commands) == 1 else b"".join(commands)
        deadline = time.monotonic() + timeout
        for attempt in (1, 2):
            try:  # connects (and handshakes, bounded by the reader's timeout) if needed
                conn = self.pool.get_connection()
            except (RedisConnectionError, RedisTimeoutError) as exc:
                raise translate_error(exc, self.settings, "reading features") from None
            try:
                _send(conn, payload, deadline)
                replies = _receive(conn, len(commands), deadline, on_reply)
            except (OSError, RedisConnectionError) as exc:
                conn.disconnect()  # unread replies may remain: never reuse it
                # one quick retry on a fresh connection: a pooled one may predate a restart
                if attempt == 2 or isinstance(exc, TimeoutError) or time.monotonic() >= deadline:
                    raise translate_error(exc, self.settings, "reading features") from None
                continue
            except BaseException:
                conn.disconnect()
                raise
            finally:
                self.pool.release(conn)
            errors = _error_replies(replies)
            if errors:
                raise ServerError(f"Redis at {self.settings.redacted_url} refused HMGET: {redact_text(errors[0][1])}")
            return replies
        raise AssertionError("unreachable")  # pragma: no cover


class _ClusterTransport(_Transport):
    """Groups commands by the node that serves their slot; writes to every node, then reads."""

    client: RedisCluster

    def __init__(self, settings: ConnectionSettings) -> None:
        self.settings = settings
        options: dict[str, Any] = settings.client_options()
        if settings.read_from_replicas:
            options["load_balancing_strategy"] = LoadBalancingStrategy.ROUND_ROBIN_REPLICAS
        try:
            self.client = RedisCluster.from_url(settings.url, **options)
        except RedisError as exc:
            raise translate_error(exc, settings, "connecting to the cluster") from None
        self.nodes = self.client.nodes_manager
        self.strategy = options.get("load_balancing_strategy")

    def round_trip(
        self, keys: Sequence[bytes], commands: Sequence[bytes], timeout: float, on_reply: OnReply | None = None
    ) -> list[Any]:
        deadline = time.monotonic() + timeout
        replies: list[Any] = [None] * len(commands)
        pending = list(range(len(commands)))
        asking: dict[int, str] = {}  # command index -> node named by an ASK redirect
        last_error: Exception | None = None
        for attempt in itertools.count():
            if attempt:
                # a redirect or a dead node: refresh the slot map and retry until the deadline
                # (a failover takes a few seconds; the caller's timeout decides how long to wait)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                time.sleep(min(_BACKOFF_SECONDS * 2 ** min(attempt - 1, 3), remaining))
                self._refresh_topology()
            try:
                groups = group_by_node(keys, pending, asking, self.nodes.get_node_from_slot, self.strategy)
            except RedisError as exc:  # e.g. a slot not covered while a failover runs
                last_error = exc
                continue
            pending, asking, last_error = self._exchange(groups, asking, commands, replies, deadline, on_reply)
            if not pending:
                return replies
        raise translate_error(
            last_error or RedisConnectionError("no reply"), self.settings, f"reading {len(pending)} entities"
        ) from None

    def _exchange(
        self,
        groups: dict[str, list[int]],
        asked: dict[int, str],
        commands: Sequence[bytes],
        replies: list[Any],
        deadline: float,
        on_reply: OnReply | None,
    ) -> tuple[list[int], dict[int, str], Exception | None]:
        """Send every node its commands, then read every node's replies."""
        retry: list[int] = []
        asking: dict[int, str] = {}
        last_error: Exception | None = None
        sent: list[tuple[Any, Any, list[int]]] = []
        try:
            for name, indexes in groups.items():
                node = self.nodes.get_node(node_name=name)
                if node is None:
                    retry += indexes
                    continue
                pool = self.client.get_redis_connection(node).connection_pool
                try:
                    conn = pool.get_connection()
                except (RedisConnectionError, RedisTimeoutError) as exc:  # the node is down: retry
                    retry += indexes
                    last_error = exc
                    continue
                payload = b"".join((ASKING + commands[i]) if i in asked else commands[i] for i in indexes)
                try:
                    _send(conn, payload, deadline)
                except OSError as exc:
                    conn.disconnect()
                    pool.release(conn)
                    retry += indexes
                    last_error = exc
                    continue
                sent.append((pool, conn, indexes))
            while sent:
                pool, conn, indexes = sent[0]
                # reply position -> command index (-1: the +OK of an ASKING)
                order = [j for i in indexes for j in ((-1, i) if i in asked else (i,))]
                consume = None if on_reply is None else (lambda pos, reply, order=order: on_reply(order[pos], reply))
                try:
                    node_replies = _receive(conn, len(order), deadline, consume)
                except TimeoutError:
                    raise FeatureStoreTimeout(
                        f"reading features timed out against the cluster at {self.settings.redacted_url}"
                    ) from None
                except OSError as exc:
                    conn.disconnect()
                    retry += indexes
                    last_error = exc
                else:
                    values = iter(node_replies)
                    for i in indexes:
                        if i in asked:
                            next(values)
                        reply = next(values)
                        if reply.__class__ is list:
                            replies[i] = reply
                            continue
                        retryable, ask_node = classify_error_reply(str(reply))
                        if not retryable:
                            raise ServerError(f"Redis Cluster refused HMGET: {redact_text(str(reply))}")
                        if ask_node:
                            asking[i] = ask_node
                        retry.append(i)
                        last_error = RedisConnectionError(str(reply))
                sent.pop(0)
                pool.release(conn)
        finally:
            for pool, conn, _ in sent:  # left unread after an error: never reuse them
                conn.disconnect()
                pool.release(conn)
        return retry, asking, last_error

    def _refresh_topology(self) -> None:
        try:
            self.nodes.initialize()
        except RedisError:
            pass  # the next attempt will try again (the deadline bounds the loop)


class FeatureReader:
    """Serves typed feature vectors from Redis (standalone or Cluster).

    >>> reader = FeatureReader("redis://localhost:6379")        # doctest: +SKIP
    >>> v = reader.get(42, ["txn_count_7d", "amount_mean_30d"])  # doctest: +SKIP
    >>> v["txn_count_7d"], v.status("amount_mean_30d"), v.age("user_transactions")  # doctest: +SKIP

    ``catalog`` is a :class:`Catalog` or the name of the module defining it (default:
    ``$FEATURESTORE_CATALOG``, then the example catalogue).  At start-up the reader
    compares its definitions with the registry published by the batch job and raises
    :class:`RegistryMismatchError` on any skew (``check_registry=False`` skips this).
    """

    def __init__(
        self,
        url: str,
        *,
        catalog: Catalog | str | None = None,
        cluster: bool | None = None,
        read_from_replicas: bool | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        check_registry: bool = True,
    ) -> None:
        self.settings = ConnectionSettings.from_url(
            url, cluster=cluster, read_from_replicas=read_from_replicas, timeout=timeout
        )
        self.catalog = catalog if isinstance(catalog, Catalog) else load_catalog(catalog)
        self._planner = Planner(self.catalog)
        self._transport: _Transport = (
            _ClusterTransport(self.settings) if self.settings.cluster else _StandaloneTransport(self.settings)
        )
        self.registry_status: dict[str, str] = {}
        if check_registry:
            self.check_registry()

    @classmethod
    def from_url(cls, url: str, **options: Any) -> FeatureReader:
        return cls(url, **options)

    def check_registry(self) -> dict[str, str]:
        """Compare definitions with what was materialized; see :func:`check_registry`."""
        self.registry_status = check_registry(self.catalog, self._transport.hgetall(codec.REGISTRY_KEY))
        return self.registry_status

    def plan(self, features: Features, entity: str | None = None) -> ReadPlan:
        """The prepared request for ``features`` (cached; exposed for inspection)."""
        return self._planner.plan(features, entity)

    def get(
        self,
        entity_id: object,
        features: Features,
        *,
        entity: str | None = None,
        timeout: float | None = None,
        serve_stale: bool = False,
    ) -> FeatureVector:
        """One entity's features with one HMGET.

        ``features`` is a view name, a :class:`FeatureView` or a list of feature names
        (``entity=`` disambiguates a name defined for several entities).  Missing and
        stale features hold their default; ``serve_stale=True`` returns the old value of
        a stale feature instead (its status stays *stale*).
        """
        plan = self._planner.plan(features, entity)
        key = plan.key(entity_id)
        row = self._transport.round_trip((key,), (plan.command(key),), timeout or self.settings.timeout)[0]
        return decode_one(plan, entity_id, row, serve_stale)

    def get_many(
        self,
        entity_ids: Sequence[object],
        features: Features,
        *,
        entity: str | None = None,
        timeout: float | None = None,
        serve_stale: bool = False,
    ) -> FeatureBatch:
        """Many entities' features in one pipelined round trip, in the caller's order."""
        plan, keys, commands = plan_many(self._planner, entity_ids, features, entity)
        decoder = BatchDecoder(plan, len(keys), serve_stale)
        if not keys:
            return decoder.result(entity_ids, [])
        rows = self._transport.round_trip(keys, commands, timeout or self.settings.timeout, decoder)
        return decoder.result(entity_ids, rows)

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> FeatureReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"FeatureReader({self.settings!r})"


def plan_many(
    planner: Planner, entity_ids: Sequence[object], features: Features, entity: str | None
) -> tuple[ReadPlan, list[bytes], list[bytes]]:
    """The plan, keys and HMGET commands of a ``get_many`` (ids checked before any I/O)."""
    plan = planner.plan(features, entity)
    if isinstance(entity_ids, (str, bytes)):
        raise ConfigurationError("get_many() takes a sequence of ids; use get() for one id")
    keys = plan.keys(entity_ids)
    command = plan.command
    return plan, keys, [command(k) for k in keys]


def decode_one(plan: ReadPlan, entity_id: object, row: list[Any], serve_stale: bool) -> FeatureVector:
    """A ``get`` reply as a :class:`FeatureVector` (decoded in place)."""
    now = _now_ms()
    stamps = [0] * len(plan.views)
    missing, stale = plan.decode_row(row, now, serve_stale, stamps)
    return FeatureVector(entity_id, plan, row, missing, stale, stamps, now)


class BatchDecoder:
    """Decodes the replies of a ``get_many`` in place, one by one as they arrive."""

    __slots__ = ("missing", "now", "plan", "serve_stale", "stale", "stamps", "width")

    def __init__(self, plan: ReadPlan, count: int, serve_stale: bool) -> None:
        self.plan = plan
        self.now = _now_ms()
        self.serve_stale = serve_stale
        self.width = len(plan.views)
        self.missing = [0] * count
        self.stale = [0] * count
        self.stamps = [0] * (count * self.width)  # flat: no list per entity

    def __call__(self, index: int, row: list[Any]) -> None:
        self.missing[index], self.stale[index] = self.plan.decode_row(
            row, self.now, self.serve_stale, self.stamps, index * self.width
        )

    def result(self, entity_ids: Sequence[object], rows: list[Any]) -> FeatureBatch:
        return FeatureBatch(entity_ids, self.plan, rows, self.missing, self.stale, self.stamps, self.now)
