"""The asyncio reader: the same plans, commands and decoding as :class:`FeatureReader`.

Only the I/O differs: ``redis.asyncio`` connections, and ``asyncio.timeout`` for the
per-call deadline.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis as AsyncRedis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.cluster import LoadBalancingStrategy
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError

from . import codec
from .definitions import Catalog, load_catalog
from .errors import FeatureStoreTimeout, ServerError
from .plan import Planner, ReadPlan
from .reader import (
    ASKING,
    BatchDecoder,
    Features,
    check_registry,
    classify_reply_error,
    decode_one,
    group_by_node,
    plan_many,
    translate_error,
)
from .results import FeatureBatch, FeatureVector
from .settings import DEFAULT_TIMEOUT_SECONDS, ConnectionSettings, redact_text

_BACKOFF_SECONDS = 0.025


class AsyncFeatureReader:
    """asyncio twin of :class:`FeatureReader`; build it with ``await AsyncFeatureReader.connect(url)``."""

    def __init__(
        self,
        url: str,
        *,
        catalog: Catalog | str | None = None,
        cluster: bool | None = None,
        read_from_replicas: bool | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        self.settings = ConnectionSettings.from_url(
            url, cluster=cluster, read_from_replicas=read_from_replicas, timeout=timeout
        )
        self.catalog = catalog if isinstance(catalog, Catalog) else load_catalog(catalog)
        self._planner = Planner(self.catalog)
        options: dict[str, Any] = self.settings.client_options()
        self._strategy = None
        if self.settings.cluster:
            if self.settings.read_from_replicas:
                self._strategy = options["load_balancing_strategy"] = LoadBalancingStrategy.ROUND_ROBIN_REPLICAS
            self._cluster: AsyncRedisCluster | None = AsyncRedisCluster.from_url(self.settings.url, **options)
            self._client: Any = self._cluster
        else:
            self._cluster = None
            self._client = AsyncRedis.from_url(self.settings.url, **options)
        self.registry_status: dict[str, str] = {}

    @classmethod
    async def connect(cls, url: str, *, check_registry: bool = True, **options: Any) -> AsyncFeatureReader:
        """Create a reader, connect, and (by default) check the registry."""
        reader = cls(url, **options)
        try:
            if reader._cluster is not None:
                await reader._cluster.initialize()
            if check_registry:
                await reader.check_registry()
        except RedisError as exc:
            await reader.close()
            raise translate_error(exc, reader.settings, "connecting") from None
        except BaseException:
            await reader.close()
            raise
        return reader

    async def check_registry(self) -> dict[str, str]:
        try:
            entries = await self._client.hgetall(codec.REGISTRY_KEY)
        except RedisError as exc:
            raise translate_error(exc, self.settings, "reading the registry") from None
        self.registry_status = check_registry(self.catalog, entries)
        return self.registry_status

    def plan(self, features: Features, entity: str | None = None) -> ReadPlan:
        return self._planner.plan(features, entity)

    async def get(
        self,
        entity_id: object,
        features: Features,
        *,
        entity: str | None = None,
        timeout: float | None = None,
        serve_stale: bool = False,
    ) -> FeatureVector:
        """One entity's features with one HMGET (see :meth:`FeatureReader.get`)."""
        plan = self._planner.plan(features, entity)
        key = plan.key(entity_id)
        row = (await self._round_trip([key], [plan.command(key)], timeout))[0]
        return decode_one(plan, entity_id, row, serve_stale)

    async def get_many(
        self,
        entity_ids: Sequence[object],
        features: Features,
        *,
        entity: str | None = None,
        timeout: float | None = None,
        serve_stale: bool = False,
    ) -> FeatureBatch:
        """Many entities' features in one pipelined round trip (see :meth:`FeatureReader.get_many`)."""
        plan, keys, commands = plan_many(self._planner, entity_ids, features, entity)
        decoder = BatchDecoder(plan, len(keys), serve_stale)
        rows = await self._round_trip(keys, commands, timeout) if keys else []
        for index, row in enumerate(rows):
            decoder(index, row)
        return decoder.result(entity_ids, rows)

    async def _round_trip(self, keys: Sequence[bytes], commands: Sequence[bytes], timeout: float | None) -> list[Any]:
        seconds = timeout or self.settings.timeout
        try:
            async with asyncio.timeout(seconds):
                if self._cluster is None:
                    return await self._standalone(commands)
                return await self._clustered(keys, commands, time.monotonic() + seconds)
        except TimeoutError:
            raise FeatureStoreTimeout(
                f"reading features timed out after {seconds}s against {self.settings.redacted_url}"
            ) from None
        except RedisError as exc:
            raise translate_error(exc, self.settings, "reading features") from None

    async def _standalone(self, commands: Sequence[bytes]) -> list[Any]:
        pool = self._client.connection_pool
        conn = await pool.get_connection()
        try:
            await conn.send_packed_command([b"".join(commands)], check_health=False)
            return [await conn.read_response(disable_decoding=True) for _ in commands]
        except ResponseError as exc:
            await conn.disconnect()
            raise ServerError(f"Redis at {self.settings.redacted_url} refused HMGET: {redact_text(str(exc))}") from None
        except BaseException:  # includes cancellation by the timeout: unread replies remain
            await conn.disconnect()
            raise
        finally:
            await pool.release(conn)

    async def _clustered(self, keys: Sequence[bytes], commands: Sequence[bytes], deadline: float) -> list[Any]:
        assert self._cluster is not None
        nodes = self._cluster.nodes_manager
        replies: list[Any] = [None] * len(commands)
        pending = list(range(len(commands)))
        asked: dict[int, str] = {}
        last_error: Exception | None = None
        for attempt in itertools.count():
            if attempt:  # retried until the deadline, as in the sync reader
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                await asyncio.sleep(min(_BACKOFF_SECONDS * 2 ** min(attempt - 1, 3), remaining))
                try:
                    await nodes.initialize()
                except RedisError as exc:
                    last_error = exc
                    continue
            try:
                groups = group_by_node(keys, pending, asked, nodes.get_node_from_slot, self._strategy)
            except RedisError as exc:
                last_error = exc
                continue
            results = await asyncio.gather(
                *(self._node_round_trip(name, idx, asked, commands, replies) for name, idx in groups.items())
            )
            pending, asked = [], {}
            for retry, asking, error in results:
                pending += retry
                asked.update(asking)
                last_error = error or last_error
            if not pending:
                return replies
        raise translate_error(last_error or RedisConnectionError("no reply"), self.settings, "reading features")

    async def _node_round_trip(
        self, name: str, indexes: list[int], asked: dict[int, str], commands: Sequence[bytes], replies: list[Any]
    ) -> tuple[list[int], dict[int, str], Exception | None]:
        assert self._cluster is not None
        node = self._cluster.nodes_manager.nodes_cache.get(name)
        if node is None:
            return indexes, {}, None
        conn = node.acquire_connection()
        retry: list[int] = []
        asking: dict[int, str] = {}
        error: Exception | None = None
        done = 0
        try:
            await conn.send_packed_command(
                [b"".join((ASKING if i in asked else b"") + commands[i] for i in indexes)], check_health=False
            )
            for i in indexes:
                try:
                    if i in asked:
                        await conn.read_response(disable_decoding=True)
                    replies[i] = await conn.read_response(disable_decoding=True)
                except ResponseError as exc:
                    retryable, ask_node = classify_reply_error(exc)
                    if not retryable:
                        raise ServerError(f"Redis Cluster refused HMGET: {redact_text(str(exc))}") from None
                    if ask_node:
                        asking[i] = ask_node
                    retry.append(i)
                    error = exc
                done += 1
        except (RedisConnectionError, OSError) as exc:
            await conn.disconnect()
            retry += indexes[done:]
            error = exc
        except BaseException:
            await conn.disconnect()
            raise
        finally:
            node.release(conn)
        return retry, asking, error

    async def close(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> AsyncFeatureReader:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"AsyncFeatureReader({self.settings!r})"
