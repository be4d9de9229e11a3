"""The asyncio wire: the same engine, slot map, retry policy and errors as :mod:`.sync`,
on ``redis.asyncio`` connections (public ``send_packed_command``/``read_response``).

The round-trip loop is the engine's (:meth:`~.engine.RoundTrip.steps`); this driver only
awaits what each step asks for: an attempt, a backoff, a slot map refresh.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import redis
import redis.asyncio
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff

from ..settings import ConnectionSettings
from .connection import WireSSLConnection, connection_options
from .engine import REFRESH, Batch, RefusedReply, RoundTrip
from .failures import translate_error
from .resp import ASKING, encode, error_message
from .retry import Clock, Deadline, RetryPolicy
from .sync import _STANDALONE, give_up_error, is_refused, refused_error, timeout_error
from .topology import Router, SlotMap, key_slot

OnReply = Callable[[int, Any], object]
# (node name, read-only?) -> a pool with async get_connection()/release()/disconnect(); tests inject fakes
AsyncPoolFactory = Callable[[str, bool], Any]
AsyncSleep = Callable[[float], Awaitable[None]]


class _AsyncWireMixin:
    """Sends ``READONLY`` after redis-py's handshake when the connection is for a replica."""

    readonly: bool = False

    if hasattr(redis.asyncio.Connection, "on_connect_check_health"):  # redis-py >= 6

        async def on_connect_check_health(self, check_health: bool = True) -> None:
            await super().on_connect_check_health(check_health)  # type: ignore[misc]
            await _after_handshake(self)

    else:  # redis-py 5.x (scripts/test-lowest runs the reader's tests on it)

        async def on_connect(self) -> None:
            await super().on_connect()  # type: ignore[misc]
            await _after_handshake(self)


class AsyncWireConnection(_AsyncWireMixin, redis.asyncio.Connection):
    """An asyncio connection of the wire (TCP)."""

    def __init__(self, *args: Any, readonly: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.readonly = readonly


class AsyncWireSSLConnection(_AsyncWireMixin, redis.asyncio.SSLConnection):
    """The same over TLS."""

    def __init__(self, *args: Any, readonly: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.readonly = readonly


async def _after_handshake(conn: Any) -> None:
    if conn.readonly:
        await conn.send_command("READONLY")
        if await conn.read_response() not in (b"OK", "OK"):
            raise redis.ConnectionError("the replica refused READONLY")


def async_options(settings: ConnectionSettings) -> dict[str, Any]:
    options = connection_options(settings)
    tls = options["connection_class"] is WireSSLConnection
    options.update(
        connection_class=AsyncWireSSLConnection if tls else AsyncWireConnection,
        retry=AsyncRetry(NoBackoff(), 0),
        # No per-operation socket timeout: every round trip runs inside one
        # ``asyncio.timeout`` of its deadline, which bounds the reads and writes already.
        # redis-py would wrap each send in ``asyncio.wait_for`` (a Task per call) and each
        # read in a timeout of its own: most of the async reader's overhead over a raw
        # redis.asyncio client (issue 14).  The connect timeout stays.
        socket_timeout=None,
    )
    return options


class AsyncWire:
    """asyncio twin of :class:`~.sync.Wire`: same routing, retries and errors.

    ``clock``, ``sleep`` and ``pool_factory`` are injectable for tests (the deadline's
    ``asyncio.timeout`` still runs on the event loop's time).
    """

    def __init__(
        self,
        settings: ConnectionSettings,
        *,
        policy: RetryPolicy | None = None,
        clock: Clock = time.monotonic,
        sleep: AsyncSleep = asyncio.sleep,
        pool_factory: AsyncPoolFactory | None = None,
    ) -> None:
        self.settings = settings
        self.sleep = sleep
        self.pool_factory = pool_factory or self._real_pool
        self.policy = policy or RetryPolicy(seconds=None)
        self.cluster = settings.cluster
        self.replicas = settings.read_from_replicas
        self.clock = clock
        self.options = async_options(settings)
        self.seeds = [f"{self.options['host']}:{self.options['port']}"]
        self.pools: dict[str, redis.asyncio.ConnectionPool] = {}
        self.slot_map: SlotMap | None = None if self.cluster else SlotMap.single(_STANDALONE)
        self.router: Router | None = None if self.cluster else Router(self.slot_map)  # type: ignore[arg-type]

    def start(self, seconds: float | None = None) -> Deadline:
        return self.policy.start(self.clock, seconds)

    def pool(self, node: str) -> redis.asyncio.ConnectionPool:
        """The connection pool of ``node`` (``host:port``), created on first use."""
        found = self.pools.get(node)
        if found is None:
            readonly = self.replicas and self.slot_map is not None and node not in self.slot_map.primary_nodes
            found = self.pools[node] = self.pool_factory(node, readonly)
        return found

    def _real_pool(self, node: str, readonly: bool) -> redis.asyncio.ConnectionPool:
        kwargs = dict(self.options)
        if node != _STANDALONE:
            host, _, port = node.rpartition(":")
            kwargs.update(host=host, port=int(port))
            if readonly:
                kwargs["readonly"] = True
        return redis.asyncio.ConnectionPool(**kwargs)

    async def connect(self, deadline: Deadline | None = None) -> None:
        if self.cluster and self.slot_map is None:
            try:
                await self.refresh(deadline or self.start(self.settings.timeout))
            except (OSError, redis.RedisError) as exc:  # as the sync wire: one of ours, URL redacted
                raise translate_error(exc, self.settings, "loading the cluster's slot map") from None

    async def refresh(self, deadline: Deadline) -> None:
        if not self.cluster:
            return
        known = self.slot_map.nodes if self.slot_map is not None else []
        last: BaseException | None = None
        for node in [*known, *self.seeds]:
            try:
                async with asyncio.timeout(max(deadline.remaining(), 0.001)):
                    reply = await self._one(node, encode("CLUSTER", "SLOTS"))
            except (OSError, TimeoutError, redis.RedisError) as exc:
                last = exc
                continue
            if not reply:
                continue
            self.slot_map = SlotMap.from_cluster_slots(reply)
            self.router = Router(self.slot_map, replicas=self.replicas)
            return
        raise last or redis.ConnectionError("no cluster node answered")

    async def _one(self, node: str, payload: bytes) -> Any:
        pool = self.pool(node)
        conn = await pool.get_connection()
        try:
            await conn.send_packed_command(payload, check_health=False)
            return await conn.read_response(disable_decoding=True)
        except BaseException:
            await conn.disconnect()
            raise
        finally:
            await pool.release(conn)

    async def close(self) -> None:
        for pool in self.pools.values():
            await pool.disconnect()
        self.pools.clear()

    def _group(self, slots: Sequence[int], units: list[int]) -> dict[str, list[int]]:
        assert self.router is not None
        return self.router.group(slots, units)

    async def round_trip(
        self, keys: Sequence[bytes], payloads: Sequence[bytes], deadline: Deadline
    ) -> tuple[list[Any], RoundTrip]:
        """One command per key (the reader's HMGETs); each node's share in parallel."""
        replies: list[Any] = [None] * len(keys)
        if not keys:
            return replies, RoundTrip.of([], self._group, deadline)
        try:
            async with asyncio.timeout(max(deadline.remaining(), 0.0001)):
                if self.slot_map is None:
                    await self.connect(deadline)
                slots = [key_slot(k) for k in keys] if self.cluster else [0] * len(keys)
                trip = RoundTrip.of(slots, self._group, deadline)
                await self._attempt(trip, trip.batches(), payloads, replies)
                if trip.done:  # the common case: no loop to enter
                    return replies, trip
                for step in trip.steps(attempted=True):
                    if isinstance(step, list):
                        await self._attempt(trip, step, payloads, replies)
                    elif isinstance(step, float):
                        await self.sleep(step)
                    elif step is REFRESH:
                        try:
                            await self.refresh(deadline)
                        except (OSError, TimeoutError, redis.RedisError) as exc:
                            trip.last_error = exc
                if not trip.done:
                    raise give_up_error(self.settings, trip, len(keys))
                return replies, trip
        except TimeoutError:
            raise timeout_error(self.settings, deadline) from None
        except RefusedReply as exc:
            raise refused_error(self.settings, exc.message, exc.node) from None

    async def _attempt(
        self, trip: RoundTrip, batches: list[Batch], payloads: Sequence[bytes], replies: list[Any]
    ) -> None:
        """One attempt: each node's share in parallel."""
        if len(batches) == 1:  # one node (always, standalone): no Task to create
            await self._exchange(trip, batches[0], payloads, replies)
        else:
            await asyncio.gather(*(self._exchange(trip, b, payloads, replies) for b in batches))

    async def _exchange(self, trip: RoundTrip, batch: Batch, payloads: Sequence[bytes], replies: list[Any]) -> None:
        pool = self.pool(batch.node)
        try:
            conn = await pool.get_connection()
        except (OSError, redis.RedisError) as exc:
            if is_refused(exc):
                raise refused_error(self.settings, error_message(exc), batch.node) from None
            trip.lost(batch, exc)
            return
        units = batch.units
        prefix = ASKING if batch.asking else b""
        errors: list[tuple[int, str]] = []
        done = 0
        try:
            await conn.send_packed_command(b"".join(prefix + payloads[i] for i in units), check_health=False)
            for position, unit in enumerate(units):
                try:
                    if batch.asking:
                        await conn.read_response(disable_decoding=True)
                    replies[unit] = await conn.read_response(disable_decoding=True)
                except redis.ResponseError as exc:
                    errors.append((position, error_message(exc)))
                done += 1
        except (OSError, redis.ConnectionError, redis.TimeoutError) as exc:
            await conn.disconnect()
            trip.replied(Batch(batch.node, units[:done], batch.asking), errors)
            trip.lost(batch, exc, done)
            return
        except BaseException:  # cancelled by the deadline: unread replies remain
            await conn.disconnect()
            raise
        finally:
            await pool.release(conn)
        if errors:
            trip.replied(batch, errors)
