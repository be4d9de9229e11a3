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
_RETRYABLE_REPLY = ("MOVED", "ASK", "TRYAGAIN", "CLUSTERDOWN", "LOADING", "MASTERDOWN")
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


def classify_reply_error(exc: ResponseError) -> tuple[bool, str | None]:
    """For an error reply in a cluster: (worth a retry?, node named by an ASK redirect).

    Redirects and transient cluster states are retried after a topology refresh;
    anything else (a wrong type, an ACL refusal) is the caller's problem.
    """
    if isinstance(exc, MovedError):  # MovedError derives from AskError: test it first
        return True, None
    if isinstance(exc, AskError):
        return True, f"{exc.host}:{exc.port}"
    if isinstance(exc, (TryAgainError, ClusterDownError)):
        return True, None
    return str(exc).startswith(_RETRYABLE_REPLY), None


ASKING = b"*1\r\n$6\r\nASKING\r\n"


class _Transport:
    """Sends prepared commands and returns the raw replies, in order."""

    settings: ConnectionSettings

    def round_trip(self, keys: Sequence[bytes], commands: Sequence[bytes], timeout: float) -> list[Any]:
        raise NotImplementedError

    def hgetall(self, key: bytes) -> dict[bytes, bytes]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class _StandaloneTransport(_Transport):
    def __init__(self, settings: ConnectionSettings) -> None:
        self.settings = settings
        self.client = redis.Redis.from_url(settings.url, **settings.client_options())
        self.pool = self.client.connection_pool

    def round_trip(self, keys: Sequence[bytes], commands: Sequence[bytes], timeout: float) -> list[Any]:
        payload = commands[0] if len(commands) == 1 else b"".join(commands)
        deadline = time.monotonic() + timeout
        for attempt in (1, 2):
            try:  # connects (and handshakes, bounded by the reader's timeout) if needed
                conn = self.pool.get_connection()
            except (RedisConnectionError, RedisTimeoutError) as exc:
                raise translate_error(exc, self.settings, "reading features") from None
            try:
                conn.send_packed_command([payload], check_health=False)
                replies = []
                for _ in range(len(commands)):
                    replies.append(
                        conn.read_response(disable_decoding=True, timeout=max(deadline - time.monotonic(), 0.0001))
                    )
                return replies
            except ResponseError as exc:
                conn.disconnect()  # replies after the error are still unread
                raise ServerError(
                    f"Redis at {self.settings.redacted_url} refused HMGET: {redact_text(str(exc))}"
                ) from None
            except (RedisConnectionError, RedisTimeoutError) as exc:
                conn.disconnect()
                # one quick retry on a fresh connection: a pooled one may predate a restart
                if attempt == 2 or isinstance(exc, RedisTimeoutError) or time.monotonic() >= deadline:
                    raise translate_error(exc, self.settings, "reading features") from None
            except BaseException:
                conn.disconnect()
                raise
            finally:
                self.pool.release(conn)
        raise AssertionError("unreachable")  # pragma: no cover

    def hgetall(self, key: bytes) -> dict[bytes, bytes]:
        try:
            return self.client.hgetall(key)  # type: ignore[return-value]
        except RedisError as exc:
            raise translate_error(exc, self.settings, "reading the registry") from None

    def close(self) -> None:
        self.client.close()


class _ClusterTransport(_Transport):
    """Groups commands by the node that serves their slot; writes to every node, then reads."""

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

    def round_trip(self, keys: Sequence[bytes], commands: Sequence[bytes], timeout: float) -> list[Any]:
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
                groups = self._group(keys, pending, asking)
            except RedisError as exc:  # e.g. a slot not covered while a failover runs
                last_error = exc
                continue
            pending, asking, last_error = self._send_groups(groups, asking, commands, replies, deadline)
            if not pending:
                return replies
        if isinstance(last_error, FeatureStoreError):
            raise last_error
        raise translate_error(
            last_error or RedisConnectionError("no reply"), self.settings, f"reading {len(pending)} entities"
        ) from None

    def _group(self, keys: Sequence[bytes], pending: list[int], asking: dict[int, str]) -> dict[str, list[int]]:
        return group_by_node(keys, pending, asking, self.nodes.get_node_from_slot, self.strategy)

    def _send_groups(
        self,
        groups: dict[str, list[int]],
        asked: dict[int, str],
        commands: Sequence[bytes],
        replies: list[Any],
        deadline: float,
    ) -> tuple[list[int], dict[int, str], Exception | None]:
        retry: list[int] = []
        asking: dict[int, str] = {}
        last_error: Exception | None = None
        sent = []
        for name, indexes in groups.items():
            node = self.nodes.get_node(node_name=name)
            if node is None:
                retry += indexes
                continue
            pool = self.client.get_redis_connection(node).connection_pool
            payload = b"".join((ASKING if i in asked else b"") + commands[i] for i in indexes)
            try:
                conn = pool.get_connection()
            except (RedisConnectionError, RedisTimeoutError) as exc:  # the node is down: retry elsewhere
                retry += indexes
                last_error = exc
                continue
            try:
                conn.send_packed_command([payload], check_health=False)
                sent.append((pool, conn, indexes))
            except (RedisConnectionError, RedisTimeoutError) as exc:
                conn.disconnect()
                pool.release(conn)
                retry += indexes
                last_error = exc
        for pool, conn, indexes in sent:
            done = 0
            try:
                for i in indexes:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise RedisTimeoutError("deadline reached")
                    try:
                        if i in asked:  # the +OK of ASKING comes first
                            conn.read_response(disable_decoding=True, timeout=remaining)
                        replies[i] = conn.read_response(disable_decoding=True, timeout=remaining)
                    except ResponseError as exc:
                        retryable, ask_node = classify_reply_error(exc)
                        if not retryable:
                            raise ServerError(f"Redis Cluster refused HMGET: {redact_text(str(exc))}") from None
                        if ask_node:
                            asking[i] = ask_node
                        retry.append(i)
                        last_error = exc
                    done += 1
            except RedisTimeoutError:
                conn.disconnect()
                self._abandon(sent, pool, conn)
                raise FeatureStoreTimeout(
                    f"reading features timed out against the cluster at {self.settings.redacted_url}"
                ) from None
            except RedisConnectionError as exc:
                conn.disconnect()
                retry += indexes[done:]
                last_error = exc
            except BaseException:
                conn.disconnect()
                self._abandon(sent, pool, conn)
                raise
            pool.release(conn)
        return retry, asking, last_error

    @staticmethod
    def _abandon(sent: list[Any], failed_pool: Any, failed_conn: Any) -> None:
        """Disconnect every connection that still has unread replies."""
        for pool, conn, _ in sent:
            if conn is not failed_conn:
                conn.disconnect()
            pool.release(conn)

    def _refresh_topology(self) -> None:
        try:
            self.nodes.initialize()
        except RedisError:
            pass  # the next attempt will try again (the deadline bounds the loop)

    def hgetall(self, key: bytes) -> dict[bytes, bytes]:
        try:
            return self.client.hgetall(key)  # type: ignore[return-value]
        except RedisError as exc:
            raise translate_error(exc, self.settings, "reading the registry") from None

    def close(self) -> None:
        self.client.close()


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
        now = _now_ms()
        stamps: list[int] = []
        missing, stale = plan.decode_row(row, now, serve_stale, stamps)
        return FeatureVector(entity_id, plan, row, missing, stale, stamps, now)

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
        plan = self._planner.plan(features, entity)
        if isinstance(entity_ids, (str, bytes)):
            raise ConfigurationError("get_many() takes a sequence of ids; use get() for one id")
        if not entity_ids:
            return FeatureBatch([], plan, [], [], [], [], _now_ms())
        keys = plan.keys(entity_ids)
        command = plan.command
        rows = self._transport.round_trip(keys, [command(k) for k in keys], timeout or self.settings.timeout)
        return _decode_batch(plan, entity_ids, rows, serve_stale)

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> FeatureReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"FeatureReader({self.settings!r})"


def _decode_batch(plan: ReadPlan, entity_ids: Sequence[object], rows: list[Any], serve_stale: bool) -> FeatureBatch:
    now = _now_ms()
    decode: Callable[[list[Any], int, bool, list[int]], tuple[int, int]] = plan.decode_row
    missing: list[int] = []
    stale: list[int] = []
    stamps: list[int] = []  # flat: len(plan.views) per row, so no list per entity
    for row in rows:
        m, s = decode(row, now, serve_stale, stamps)
        missing.append(m)
        stale.append(s)
    return FeatureBatch(entity_ids, plan, rows, missing, stale, stamps, now)
