"""Connection settings: one URL says where Redis is and how to reach it.

* ``redis://[user:password@]host:port[/db]`` — standalone, plain TCP
* ``rediss://...`` — TLS (``?ssl_ca_certs=/path/ca.pem``, ``ssl_cert_reqs=none`` ...)
* ``?cluster=true`` or ``cluster=True`` — Redis Cluster; the URL names any seed node
* ``?read_from_replicas=true`` — in a cluster, serve reads from replicas

Passwords never appear in a message: :func:`redact_url` masks them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import SplitResult, parse_qsl, urlencode, urlsplit, urlunsplit

from .errors import ConfigurationError

DEFAULT_TIMEOUT_SECONDS = 1.0
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_OUR_QUERY_KEYS = {"cluster", "read_from_replicas"}
_PASSWORD_IN_URL = re.compile(r"(?P<scheme>[a-z+]+://)(?P<user>[^:@/]*):(?P<password>[^@/]*)@")


def redact_url(url: str) -> str:
    """The URL with any password replaced by ``***`` (safe for logs and errors)."""
    return _PASSWORD_IN_URL.sub(lambda m: f"{m['scheme']}{m['user']}:***@", url)


def redact_text(text: str) -> str:
    """Mask passwords of every Redis URL inside a free text (an exception message)."""
    return redact_url(text)


def _flag(value: str, name: str, url: str) -> bool:
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigurationError(f"{name}={value!r} in {redact_url(url)} is not a boolean")


def _check_port(parts: SplitResult, url: str) -> None:
    """A port, if given, is a number from 1 to 65535 (urllib raises a bare ValueError otherwise)."""
    try:
        port = parts.port
    except ValueError:
        given = parts.netloc.rpartition("@")[2].rpartition(":")[2]
        raise ConfigurationError(
            f"invalid port {given!r} in Redis URL {redact_url(url)}: use a number from 1 to 65535, "
            "e.g. redis://localhost:6379"
        ) from None
    if port == 0:
        raise ConfigurationError(f"invalid port 0 in Redis URL {redact_url(url)}: use a number from 1 to 65535")


def _check_db(path: str, url: str) -> None:
    """The path, if any, is a database number (``/0``), as redis-py expects."""
    db = path.strip("/")
    if db and not db.isdigit():
        raise ConfigurationError(
            f"invalid database {db!r} in Redis URL {redact_url(url)}: the path is a database number, e.g. /0"
        )


@dataclass(frozen=True)
class ConnectionSettings:
    """Where and how to connect; built with :meth:`from_url`."""

    url: str  # as given to redis-py: our own query options removed
    cluster: bool = False
    read_from_replicas: bool = False
    timeout: float = DEFAULT_TIMEOUT_SECONDS

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        cluster: bool | None = None,
        read_from_replicas: bool | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> ConnectionSettings:
        if not isinstance(url, str) or not url:
            raise ConfigurationError("a Redis URL is required, e.g. redis://localhost:6379")
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss"):
            raise ConfigurationError(
                f"unsupported URL scheme {parts.scheme!r} in {redact_url(url)}: use redis:// or rediss://"
            )
        if not parts.hostname:
            raise ConfigurationError(f"no host in Redis URL {redact_url(url)}")
        _check_port(parts, url)
        _check_db(parts.path, url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        ours = {k: v for k, v in query if k in _OUR_QUERY_KEYS}
        rest = [(k, v) for k, v in query if k not in _OUR_QUERY_KEYS]
        if cluster is None:
            cluster = _flag(ours.get("cluster", "false"), "cluster", url)
        if read_from_replicas is None:
            read_from_replicas = _flag(ours.get("read_from_replicas", "false"), "read_from_replicas", url)
        if read_from_replicas and not cluster:
            raise ConfigurationError("read_from_replicas needs cluster mode (cluster=true)")
        if not timeout or timeout <= 0:
            raise ConfigurationError(f"timeout must be a positive number of seconds, got {timeout!r}")
        clean = urlunsplit(parts._replace(query=urlencode(rest)))
        return cls(url=clean, cluster=cluster, read_from_replicas=read_from_replicas, timeout=float(timeout))

    @property
    def redacted_url(self) -> str:
        return redact_url(self.url)

    @property
    def tls(self) -> bool:
        return self.url.startswith("rediss://")

    def __repr__(self) -> str:  # never show the password
        return (
            f"ConnectionSettings(url={self.redacted_url!r}, cluster={self.cluster}, "
            f"read_from_replicas={self.read_from_replicas}, timeout={self.timeout})"
        )
