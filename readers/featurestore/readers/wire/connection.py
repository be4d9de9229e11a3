"""The client factory: every connection to Redis is built here, from the settings.

redis-py does what it is good at — connect, TLS, ``HELLO``/``AUTH`` (ACL user and
password), ``SELECT``, and ``READONLY`` for replica reads — through a ``Connection``
subclass passed as ``connection_class=`` (its public extension point: ``_connect`` is
the hook redis-py's own TCP, TLS and Unix-socket classes implement).  The subclass
keeps the connected socket for the wire, which then writes prepared RESP and parses
replies with one hiredis reader per call, instead of one Python call per command.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.connection import parse_url
from redis.retry import Retry

from ..settings import ConnectionSettings
from .failures import translate_error
from .retry import Deadline

# The deadline of the call taking a connection from a pool (see :func:`call_deadline`): a
# connection it opens may spend on connecting and on redis-py's handshake only what the
# call has left, not a socket timeout of its own per step (issue 25: 1 s for a 0.5 s call).
_CALL_DEADLINE: ContextVar[Deadline | None] = ContextVar("featurestore_call_deadline", default=None)


@contextmanager
def call_deadline(deadline: Deadline) -> Iterator[None]:
    """Within this block, a connection that connects (``pool.get_connection()`` does)
    bounds its TCP/TLS connect and its ``AUTH``/``HELLO``/``SELECT``/``READONLY`` by
    ``deadline``."""
    token = _CALL_DEADLINE.set(deadline)
    try:
        yield
    finally:
        _CALL_DEADLINE.reset(token)


def checkout(pool: Any, deadline: Deadline) -> Any:
    """A connected connection from ``pool``; a new one connects within ``deadline``
    (:func:`call_deadline` without a generator: this runs on every round trip)."""
    token = _CALL_DEADLINE.set(deadline)
    try:
        return pool.get_connection()
    finally:
        _CALL_DEADLINE.reset(token)


class _WireMixin:
    """Keeps the connected socket as ``wire_socket``; sends ``READONLY`` when asked."""

    wire_socket: socket.socket | None = None
    readonly: bool = False

    socket_timeout: float | None
    socket_connect_timeout: float | None

    def connect(self) -> None:
        """redis-py's connect and handshake, within the current call's deadline if any."""
        deadline = _CALL_DEADLINE.get()
        if deadline is None or self.wire_socket is not None:  # no call's deadline, or connected
            super().connect()  # type: ignore[misc]
            return
        remaining = deadline.remaining()
        if remaining <= 0:
            raise TimeoutError("the call's deadline passed before connecting")
        saved = self.socket_timeout, self.socket_connect_timeout
        self.socket_timeout = min(saved[0] or remaining, remaining)
        self.socket_connect_timeout = min(saved[1] or remaining, remaining)
        try:
            super().connect()  # type: ignore[misc]
        finally:
            self.socket_timeout, self.socket_connect_timeout = saved
            if self.wire_socket is not None:
                self.wire_socket.settimeout(self.socket_timeout)

    def _connect(self) -> socket.socket:
        sock: socket.socket = super()._connect()  # type: ignore[misc]  # TCP, or TLS-wrapped
        self.wire_socket = sock
        return sock

    def _after_handshake(self) -> None:
        if self.readonly:  # a replica serves reads only to connections that ask for it
            self.send_command("READONLY")  # type: ignore[attr-defined]
            if self.read_response() not in (b"OK", "OK"):  # type: ignore[attr-defined]
                raise redis.ConnectionError("the replica refused READONLY")

    if hasattr(redis.Connection, "on_connect_check_health"):  # redis-py >= 6

        def on_connect_check_health(self, check_health: bool = True) -> None:
            super().on_connect_check_health(check_health)  # type: ignore[misc]
            self._after_handshake()

    else:  # redis-py 5.x (scripts/test-lowest runs the reader's tests on it)

        def on_connect(self) -> None:
            super().on_connect()  # type: ignore[misc]
            self._after_handshake()

    def disconnect(self, *args: Any, **kwargs: Any) -> None:
        self.wire_socket = None
        super().disconnect(*args, **kwargs)  # type: ignore[misc]


class WireConnection(_WireMixin, redis.Connection):
    """A plain TCP connection whose socket the wire reads and writes."""

    def __init__(self, *args: Any, readonly: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[no-untyped-call]
        self.readonly = readonly


class WireSSLConnection(_WireMixin, redis.SSLConnection):
    """The same over TLS (``rediss://``)."""

    def __init__(self, *args: Any, readonly: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.readonly = readonly


def connection_options(settings: ConnectionSettings, timeout: float | None = None) -> dict[str, Any]:
    """Keyword arguments of every connection to the server(s) of ``settings``.

    From the URL: host, port, ACL user and password, db, TLS options.  Always: RESP2
    (the wire parses replies itself), the socket timeouts, and no redis-py retries —
    the wire's :class:`~.retry.RetryPolicy` is the one retry loop.
    """
    seconds = settings.timeout if timeout is None else timeout
    options: dict[str, Any] = parse_url(settings.url)
    tls = options.pop("connection_class", None) is redis.SSLConnection or settings.tls
    options.update(
        connection_class=WireSSLConnection if tls else WireConnection,
        protocol=2,
        socket_timeout=seconds,
        socket_connect_timeout=min(seconds, 5.0),
        retry=Retry(NoBackoff(), 0),
    )
    return options


def node_pool(options: dict[str, Any], node: str | None = None, *, readonly: bool = False) -> redis.ConnectionPool:
    """A connection pool for one node (``host:port``; default: the URL's host)."""
    kwargs = dict(options)
    if node:
        host, _, port = node.rpartition(":")
        kwargs.update(host=host, port=int(port))
    if readonly:
        kwargs["readonly"] = True
    return redis.ConnectionPool(**kwargs)


# what redis-py raises (RedisClusterException: its cluster client's start-up, not a RedisError)
_ERRORS = (redis.RedisError, redis.exceptions.RedisClusterException, OSError)


class _Translated:
    """Every command's redis-py or socket error becomes one of ours (:mod:`.failures`): the
    same classes and messages as the wire's, in one place, whatever the caller does.

    ``execute_command`` is the one method every command of redis-py's ``Redis`` and
    ``RedisCluster`` goes through (``ping``, ``hset``, ``xadd``, ``scan_iter`` ...).
    """

    featurestore_settings: ConnectionSettings

    def execute_command(self, *args: Any, **options: Any) -> Any:
        try:
            return super().execute_command(*args, **options)  # type: ignore[misc]
        except _ERRORS as exc:
            raise translate_error(exc, self.featurestore_settings, _describe(args)) from None


def _describe(args: tuple[Any, ...]) -> str:
    """A command for a message: its name, and its key when it is one of ours (never a value)."""
    if not args:
        return "a command"
    name = args[0].decode(errors="replace") if isinstance(args[0], bytes) else str(args[0])
    key = args[1] if len(args) > 1 else None
    if isinstance(key, bytes):
        key = key.decode(errors="replace")
    return f"{name} {key}" if isinstance(key, str) and key.startswith("fs:") else name


class ControlPlaneRedis(_Translated, redis.Redis):
    """``redis.Redis`` whose errors are the store's (see :func:`redis_client`)."""


def redis_client(settings: ConnectionSettings, timeout: float | None = None) -> Any:
    """A redis-py client on the same connections, for the jobs' control-plane commands
    (run records, registry, SCAN) where redis-py's reply parsing is welcome.

    ``Redis`` for a standalone server, ``RedisCluster`` for a cluster, both raising the
    store's errors (:func:`.failures.translate_error`: permission, authentication,
    cluster down, unreachable ...) instead of redis-py's.  No I/O yet.
    """
    if settings.cluster:
        from redis.cluster import RedisCluster

        class ControlPlaneCluster(_Translated, RedisCluster):
            """``RedisCluster`` whose errors are the store's."""

        seconds = settings.timeout if timeout is None else timeout
        # redis-py's cluster client builds its node clients itself (TLS and ACL from the
        # URL) and follows MOVED and failovers with its own retries
        try:
            cluster: Any = ControlPlaneCluster.from_url(
                settings.url,
                require_full_coverage=False,
                protocol=2,
                socket_timeout=seconds,
                socket_connect_timeout=min(seconds, 5.0),
            )
        except _ERRORS as exc:  # it loads the slot map at once
            raise translate_error(exc, settings, "connecting to the cluster") from None
        cluster.featurestore_settings = settings
        return cluster
    client = ControlPlaneRedis(connection_pool=redis.ConnectionPool(**connection_options(settings, timeout)))
    client.featurestore_settings = settings
    return client
