"""The sync wire: raw RESP send/receive on the connections of :mod:`.connection`, driven
by the :class:`~.engine.RoundTrip` engine.  Every synchronous byte to and from Redis —
the reader, the batch writer and the streaming writer — goes through :class:`Wire`, and
every synchronous retry through :meth:`Wire.run`, the sync driver of the engine's loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import hiredis
import redis

from ..errors import FeatureStoreTimeout, ServerError
from ..settings import ConnectionSettings
from .connection import call_deadline, checkout, connection_options, node_pool
from .engine import Batch, RefusedReply, Repair, RepairNodes, RoundTrip
from .failures import refusal, translate_error
from .resp import ASKING, ReplyKind, classify, encode, error_message
from .retry import Clock, Deadline, RetryPolicy
from .topology import Router, SlotMap, key_slot

OnReply = Callable[[int, Any], object]
# (node name, read-only?) -> a pool with get_connection()/release()/disconnect(); tests inject fakes
PoolFactory = Callable[[str, bool], Any]
Sleep = Callable[[float], None]
Attempt = Callable[[list[Batch]], None]  # one attempt's I/O: send the batches, report to the trip
Refresh = Callable[[Deadline], None]
# what a broken connection or an unreachable node raises (hiredis: a reply cut mid-way)
NETWORK_ERRORS: tuple[type[BaseException], ...] = (OSError, redis.RedisError, hiredis.ProtocolError)
_READ_SIZE = 65536
_STANDALONE = "server"  # the one node's name in a standalone "slot map"


# --- raw send / receive on one connection ---------------------------------------------------


def send(conn: Any, payload: bytes, deadline: Deadline) -> None:
    """Write ``payload`` on the connection's socket (connecting first if needed)."""
    if conn.wire_socket is None:
        with call_deadline(deadline):
            conn.connect()  # redis-py: TCP/TLS, AUTH/HELLO, SELECT, READONLY
    sock = conn.wire_socket
    sock.settimeout(max(deadline.remaining(), 0.0001))
    sock.sendall(payload)


def receive(
    conn: Any, count: int, deadline: Deadline, on_reply: Callable[[int, Any], object] | None = None
) -> list[Any]:
    """Read ``count`` replies; error replies come back as ``hiredis.ReplyError`` values.

    ``on_reply(position, reply)`` runs for each array reply as soon as it is parsed, so
    the caller's decoding overlaps with Redis still computing the rest of the pipeline.
    If the connection breaks, the exception carries the replies read so far as
    ``exc.replies`` (their commands need no retry).
    """
    sock = conn.wire_socket
    reader = hiredis.Reader()
    buffer = getattr(conn, "wire_buffer", None)
    if buffer is None:  # one per connection: a connection serves one caller at a time
        buffer = conn.wire_buffer = bytearray(_READ_SIZE)
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
            remaining = deadline.remaining()
            if remaining <= 0:
                raise TimeoutError("deadline reached")
            # one read waits at most the socket timeout: a hung node is retried, not waited for
            sock.settimeout(min(remaining, conn.socket_timeout or remaining))
            received = sock.recv_into(buffer)
            if not received:
                raise ConnectionResetError("Redis closed the connection")
            reader.feed(buffer, 0, received)  # type: ignore[arg-type]  # accepts any buffer
    except BaseException as exc:
        exc.replies = replies  # type: ignore[attr-defined]
        raise
    finally:
        if conn.wire_socket is not None:
            sock.settimeout(conn.socket_timeout)  # as redis-py expects it


def is_error(reply: Any) -> bool:
    return reply.__class__ is hiredis.ReplyError


# --- the wire -------------------------------------------------------------------------------


class Wire:
    """Connections to a standalone server or a cluster, and round trips over them.

    No I/O in the constructor: connections open on first use (or :meth:`connect`).
    ``replicas=True`` (cluster only) serves reads from replicas.  ``clock`` and
    ``sleep`` are injectable for tests.
    """

    def __init__(
        self,
        settings: ConnectionSettings,
        *,
        policy: RetryPolicy | None = None,
        timeout: float | None = None,
        replicas: bool | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
        pool_factory: PoolFactory | None = None,
    ) -> None:
        self.settings = settings
        self.pool_factory = pool_factory or self._real_pool
        self.policy = policy or RetryPolicy(seconds=None)
        self.cluster = settings.cluster
        self.replicas = settings.read_from_replicas if replicas is None else replicas
        self.clock = clock
        self.sleep = sleep
        self.options = connection_options(settings, timeout)
        seed = f"{self.options['host']}:{self.options['port']}"
        self.seeds = [seed]
        self.pools: dict[str, redis.ConnectionPool] = {}
        self.slot_map: SlotMap | None = None if self.cluster else SlotMap.single(_STANDALONE)
        self.router: Router | None = None if self.cluster else Router(self.slot_map)  # type: ignore[arg-type]

    # --- connections ------------------------------------------------------------------

    def pool(self, node: str) -> redis.ConnectionPool:
        """The connection pool of ``node`` (``host:port``), created on first use."""
        found = self.pools.get(node)
        if found is None:
            readonly = self.replicas and self.slot_map is not None and node not in self.slot_map.primary_nodes
            found = self.pools[node] = self.pool_factory(node, readonly)
        return found

    def _real_pool(self, node: str, readonly: bool) -> redis.ConnectionPool:
        return node_pool(self.options, None if node == _STANDALONE else node, readonly=readonly)

    def connect(self, deadline: Deadline | None = None) -> None:
        """Load the cluster's slot map (a standalone server needs nothing up front).

        Raises :class:`FeatureStoreConnectionError` (URL redacted) if no node answers.
        """
        if self.cluster and self.slot_map is None:
            try:
                self.refresh(deadline or self.policy.start(self.clock, self.settings.timeout))
            except (OSError, redis.RedisError) as exc:
                raise self.translate(exc, "loading the cluster's slot map") from None

    def wait_for_slot_map(self, deadline: Deadline) -> None:
        """Load a cluster's slot map (a standalone server needs none), retrying with the
        policy's backoff until ``deadline`` (the writers: a cluster mid-failover).  Raises
        the last redis-py/socket error, at once when the server refused the handshake."""
        while self.slot_map is None:
            try:
                self.refresh(deadline)
            except NETWORK_ERRORS as exc:
                wait = None if is_refused(exc) else deadline.next_wait()
                if wait is None:
                    raise
                self.sleep(wait)

    def refresh(self, deadline: Deadline) -> None:
        """Reload the slot map from the first node that answers ``CLUSTER SLOTS``."""
        if not self.cluster:
            return
        known = self.slot_map.nodes if self.slot_map is not None else []
        last: BaseException | None = None
        for node in [*known, *self.seeds]:
            conn = None
            pool = self.pool(node)
            try:
                conn = checkout(pool, deadline)
                send(conn, encode("CLUSTER", "SLOTS"), deadline)
                reply = receive(conn, 1, deadline)[0]
            except (OSError, redis.RedisError) as exc:
                if conn is not None:
                    conn.disconnect()
                last = exc
                continue
            finally:
                if conn is not None:
                    pool.release(conn)
            if is_error(reply) or not reply:
                last = redis.ResponseError(str(reply) if is_error(reply) else "CLUSTER SLOTS returned no slots")
                continue
            self.slot_map = SlotMap.from_cluster_slots(reply)
            self.router = Router(self.slot_map, replicas=self.replicas)
            for name in list(self.pools):  # a node that left the cluster: close its connections
                if name not in self.slot_map.nodes and name not in self.seeds:
                    self.pools.pop(name).disconnect()
            return
        raise last or redis.ConnectionError("no cluster node answered")

    def close(self) -> None:
        for pool in self.pools.values():
            pool.disconnect()
        self.pools.clear()

    # --- round trips ------------------------------------------------------------------

    def slots(self, keys: Sequence[bytes]) -> list[int]:
        return [key_slot(k) for k in keys] if self.cluster else [0] * len(keys)

    def start(self, seconds: float | None = None) -> Deadline:
        return self.policy.start(self.clock, seconds)

    def round_trip(
        self,
        keys: Sequence[bytes],
        payloads: Sequence[bytes],
        deadline: Deadline,
        *,
        counts: Sequence[int] | None = None,
        on_reply: OnReply | None = None,
        with_asking: Callable[[int], bytes] | None = None,
        repair: Repair | None = None,
    ) -> tuple[list[Any], RoundTrip]:
        """Send one unit per key and return each unit's replies, in order.

        ``payloads[i]`` is the RESP of unit ``i`` (one command, or ``counts[i]``
        commands of the same key); its entry in the result is the reply, or the list of
        ``counts[i]`` replies.  ``on_reply(i, reply)`` runs as each one-command unit's
        array reply arrives.  ``with_asking(i)`` is unit ``i`` with ``ASKING`` before each
        of its commands (default: one command).  Retries follow the engine until
        ``deadline``; ``repair`` fixes the replies it matches between attempts.  The
        returned :class:`RoundTrip` tells which units Redis refused (``trip.failed``) and
        how many were retried.
        """
        replies: list[Any] = [None] * len(keys)
        if not keys:
            return replies, RoundTrip.of([], self._group, deadline)
        self.connect(deadline)
        trip = RoundTrip.of(self.slots(keys), self._group, deadline, repair.matches if repair is not None else None)
        # the first attempt here, the loop only if it left units pending (the common case has none)
        if self.cluster or counts is not None or not self._standalone_attempt(trip, payloads, replies, on_reply):
            self._attempt(trip, payloads, counts, with_asking, replies, on_reply, trip.batches())
        if trip.done:
            return replies, trip
        attempt = partial(self._attempt, trip, payloads, counts, with_asking, replies, on_reply)
        self.run(trip, attempt, attempted=True, repair=repair)
        if not trip.done:
            raise self.give_up(trip, len(keys), repair)
        return replies, trip

    def run(
        self,
        trip: RoundTrip,
        attempt: Attempt,
        *,
        attempted: bool = False,
        refresh: Refresh | None = None,
        repair: Repair | None = None,
    ) -> None:
        """Step ``trip`` through the engine's loop (:meth:`RoundTrip.steps`) until every
        unit is done or its deadline has passed (``trip.done`` tells which).

        ``attempt(batches)`` does one attempt's I/O and reports what came back to the
        trip (:meth:`round_trip`'s uses the pooled connections; the batch writer's, its
        pipelining links).  ``refresh(deadline)`` reloads the slot map (default
        :meth:`refresh`); a network error there is kept as the trip's last error and the
        next attempt uses the slot map at hand.  ``repair.run(node)`` runs on each node
        that answered a reply ``repair`` matches.
        """
        reload = refresh or self.refresh
        for step in trip.steps(attempted):
            if isinstance(step, list):
                attempt(step)
            elif isinstance(step, float):
                self.sleep(step)
            elif isinstance(step, RepairNodes):
                if repair is not None:  # only a trip with a repair's matches yields this step
                    for node in step.nodes:
                        repair.run(node)
            else:  # REFRESH
                try:
                    reload(trip.deadline)
                except NETWORK_ERRORS as exc:
                    trip.last_error = exc

    def _attempt(
        self,
        trip: RoundTrip,
        payloads: Sequence[bytes],
        counts: Sequence[int] | None,
        with_asking: Callable[[int], bytes] | None,
        replies: list[Any],
        on_reply: OnReply | None,
        batches: list[Batch],
    ) -> None:
        """One attempt on the pooled connections: every node written before any is read."""
        deadline = trip.deadline
        sent = [(batch, *self._send(batch, payloads, counts, with_asking, deadline, trip)) for batch in batches]
        for batch, conn, pool, expected in sent:
            if conn is not None:
                self._collect(trip, batch, conn, pool, expected, counts, replies, on_reply, deadline)

    def _standalone_attempt(
        self, trip: RoundTrip, payloads: Sequence[bytes], replies: list[Any], on_reply: OnReply | None
    ) -> bool:
        """The first attempt at a standalone server's one-command units: one write, one read,
        replies straight into ``replies`` (positions are units).  Anything short of a clean
        exchange is handed to the engine exactly as :meth:`_collect` would.  False when
        nothing could be sent (the engine's loop then does the first attempt)."""
        deadline = trip.deadline
        pool = self.pool(_STANDALONE)
        conn = None
        try:
            conn = checkout(pool, deadline)
            send(conn, payloads[0] if len(payloads) == 1 else b"".join(payloads), deadline)
        except (OSError, redis.RedisError):
            if conn is not None:
                conn.disconnect()
                pool.release(conn)
            return False
        batch = Batch(_STANDALONE, trip.pending)  # what trip.batches() gives for one node, without routing
        trip.pending = []
        self._collect(trip, batch, conn, pool, len(payloads), None, replies, on_reply, deadline)
        return True

    def _group(self, slots: Sequence[int], units: list[int]) -> dict[str, list[int]]:
        assert self.router is not None
        return self.router.group(slots, units)

    def _send(
        self,
        batch: Batch,
        payloads: Sequence[bytes],
        counts: Sequence[int] | None,
        with_asking: Callable[[int], bytes] | None,
        deadline: Deadline,
        trip: RoundTrip,
    ) -> tuple[Any, Any, int]:
        units = batch.units
        if batch.asking:
            asking = with_asking or (lambda i: ASKING + payloads[i])
            payload = b"".join(asking(i) for i in units)
        else:
            payload = payloads[units[0]] if len(units) == 1 else b"".join(payloads[i] for i in units)
        expected = len(units) if counts is None else sum(counts[i] for i in units)
        if batch.asking:
            expected *= 2  # the +OK of each ASKING
        pool = self.pool(batch.node)
        conn = None
        try:
            conn = checkout(pool, deadline)
            send(conn, payload, deadline)
        except (OSError, redis.RedisError) as exc:
            if conn is not None:
                conn.disconnect()
                pool.release(conn)
            if is_refused(exc):
                raise self.refused(error_message(exc), batch.node) from None
            trip.lost(batch, exc)
            return None, None, 0
        return conn, pool, expected

    def _collect(
        self,
        trip: RoundTrip,
        batch: Batch,
        conn: Any,
        pool: redis.ConnectionPool,
        expected: int,
        counts: Sequence[int] | None,
        replies: list[Any],
        on_reply: OnReply | None,
        deadline: Deadline,
    ) -> None:
        units = batch.units
        simple = counts is None and not batch.asking
        consume = None
        if on_reply is not None and simple:
            # units ascend without gaps from 0 (a standalone batch): positions are units
            consume = on_reply if units[-1] == len(units) - 1 else (lambda pos, reply: on_reply(units[pos], reply))
        try:
            flat = receive(conn, expected, deadline, consume)
        except (OSError, redis.RedisError, hiredis.ProtocolError) as exc:
            conn.disconnect()
            pool.release(conn)
            if isinstance(exc, TimeoutError) and deadline.expired():
                raise self.timeout(deadline) from None
            # a node that hung for one socket timeout is retried (maybe after a failover)
            got = getattr(exc, "replies", [])
            answered, errors = self._distribute(batch, got, counts, replies, on_reply if not simple else None)
            trip.replied(Batch(batch.node, units[:answered], batch.asking), errors)
            trip.lost(batch, exc, answered)
            return
        except BaseException:
            conn.disconnect()
            pool.release(conn)
            raise
        pool.release(conn)
        if simple:
            if len(units) == len(replies):  # every unit, in order (a standalone server): one C-level copy
                replies[:] = flat
            else:
                for position, reply in enumerate(flat):
                    replies[units[position]] = reply
            errors = []
            if hiredis.ReplyError in map(type, flat):  # scanned in C; error replies are rare
                errors = [(p, str(r)) for p, r in enumerate(flat) if r.__class__ is hiredis.ReplyError]
        else:
            _, errors = self._distribute(batch, flat, counts, replies, on_reply)
        if errors:
            try:
                trip.replied(batch, errors)
            except RefusedReply as exc:
                raise self.refused(exc.message, exc.node) from None

    @staticmethod
    def _distribute(
        batch: Batch, flat: list[Any], counts: Sequence[int] | None, replies: list[Any], on_reply: OnReply | None
    ) -> tuple[int, list[tuple[int, str]]]:
        """Split a node's flat replies into units (dropping ASKING's +OK); (units answered, errors)."""
        errors: list[tuple[int, str]] = []
        step = 2 if batch.asking else 1
        at = 0
        answered = 0
        for position, unit in enumerate(batch.units):
            n = (1 if counts is None else counts[unit]) * step
            if at + n > len(flat):
                break
            own = flat[at + step - 1 : at + n : step]
            at += n
            answered += 1
            bad = next((r for r in own if is_error(r)), None)
            if bad is None:  # an EXEC reply holds its commands' errors
                bad = next((x for r in own if r.__class__ is list for x in r if is_error(x)), None)
            if counts is None:
                replies[unit] = own[0]
                if on_reply is not None and own[0].__class__ is list:
                    on_reply(unit, own[0])
            else:
                replies[unit] = own
            if bad is not None:
                errors.append((position, str(bad)))
        return answered, errors

    # --- control plane ----------------------------------------------------------------

    def execute(self, *args: bytes | str | int | float, key: bytes | None = None, seconds: float | None = None) -> Any:
        """One command, routed by ``key`` (default: any primary); its reply, or ServerError."""
        deadline = self.start(seconds if seconds is not None else self.settings.timeout)
        slot_key = key if key is not None else b"{}"
        replies, trip = self.round_trip([slot_key], [encode(*args)], deadline)
        if trip.failed:
            raise ServerError(f"Redis at {self.settings.redacted_url} refused {args[0]!s}: {trip.failed[0]}")
        return replies[0]

    def primaries(self) -> list[str]:
        """The node names of every primary (the one server when standalone)."""
        self.connect()
        assert self.slot_map is not None
        return self.slot_map.primary_nodes

    def execute_on(self, node: str, *args: bytes | str | int | float, seconds: float | None = None) -> Any:
        """One command on one node (e.g. ``FUNCTION LOAD`` on every primary), no redirects."""
        deadline = self.start(seconds if seconds is not None else self.settings.timeout)
        pool = self.pool(node)
        conn = None
        try:
            conn = checkout(pool, deadline)
            send(conn, encode(*args), deadline)
            reply = receive(conn, 1, deadline)[0]
        except TimeoutError:
            if conn is not None:
                conn.disconnect()
            raise self.timeout(deadline) from None
        except (OSError, redis.RedisError) as exc:
            if conn is not None:
                conn.disconnect()
            raise self.translate(exc, f"sending {args[0]!s} to {node}") from None
        finally:
            if conn is not None:
                pool.release(conn)
        if is_error(reply):
            if classify(str(reply))[0] is ReplyKind.FATAL:  # permission, authentication, memory
                raise refusal(self.settings, str(reply), node=node, command=str(args[0]))
            raise ServerError(f"Redis at {self.settings.redacted_url} ({node}) refused {args[0]!s}: {reply}")
        return reply

    # --- errors -----------------------------------------------------------------------

    def timeout(self, deadline: Deadline) -> FeatureStoreTimeout:
        return timeout_error(self.settings, deadline)

    def refused(self, message: str, node: str) -> Exception:
        return refused_error(self.settings, message, node)

    def translate(self, exc: BaseException | str | None, what: str) -> Exception:
        return translate_error(exc, self.settings, what)

    def give_up(self, trip: RoundTrip, count: int, repair: Repair | None = None) -> Exception:
        return give_up_error(self.settings, trip, count, repair)


def timeout_error(settings: ConnectionSettings, deadline: Deadline) -> FeatureStoreTimeout:
    return FeatureStoreTimeout(f"timed out after {deadline.seconds:g}s: no reply from Redis at {settings.redacted_url}")


def refused_error(settings: ConnectionSettings, message: str, node: str) -> Exception:
    """An error reply (or a refused handshake) no retry fixes, as its own class (:func:`.failures.refusal`)."""
    return refusal(settings, message, node=node)


def give_up_error(settings: ConnectionSettings, trip: RoundTrip, count: int, repair: Repair | None = None) -> Exception:
    """The error of a round trip whose deadline passed with units still pending."""
    error = trip.last_error
    if repair is not None and isinstance(error, str) and repair.matches(error):  # the repair did not help
        nodes = ", ".join(sorted(trip.repair_on))
        return ServerError(
            f"Redis at {settings.redacted_url} ({nodes}) still answers {error!r} after {repair.what} "
            f"({len(trip.pending)} of {count} commands not done within {trip.deadline.seconds:g}s)"
        )
    if isinstance(error, (TimeoutError, redis.TimeoutError)):
        return timeout_error(settings, trip.deadline)
    what = f"{len(trip.pending)} of {count} commands not done within {trip.deadline.seconds:g}s"
    return translate_error(error, settings, what)


def is_refused(exc: BaseException) -> bool:
    """redis-py's handshake raised an error no retry fixes (wrong password, ACL)."""
    return isinstance(exc, (redis.AuthenticationError, redis.exceptions.NoPermissionError))
