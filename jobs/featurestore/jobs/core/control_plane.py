"""The control plane's Redis client and key names: what every job uses besides its data.

The run records (``fs:runs``, :mod:`.run_records`), a streaming view's progress report
(``fs:stream:<view>``), the guards' baselines and the writers' preflight all go through one
client built here: the wire's client factory (TLS, ACL user, timeouts, the store's error
classes) with the job side's longer timeout.  The caller resolves the URL (flag, environment,
repository file: :mod:`.settings`); nothing here reads the environment.
"""

from __future__ import annotations

from typing import Any

from featurestore.readers.settings import ConnectionSettings
from featurestore.readers.wire import redis_client

JOB_TIMEOUT_SECONDS = 10.0
PROGRESS_KEY_PREFIX = "fs:stream:"  # + view name: a hash with the stream's last progress report


def job_settings(url: str, *, timeout: float = JOB_TIMEOUT_SECONDS) -> ConnectionSettings:
    """The job side's connection settings for ``url`` (a longer timeout than inference's)."""
    return ConnectionSettings.from_url(url, timeout=timeout)


def connect(target: str | ConnectionSettings, *, timeout: float = JOB_TIMEOUT_SECONDS) -> Any:
    """A redis-py client (``Redis`` or ``RedisCluster``) for the job side, connected (PING) or an error.

    ``target`` is a URL (parsed with ``timeout``) or settings parsed once by the caller
    (their own timeout applies).
    """
    settings = target if isinstance(target, ConnectionSettings) else job_settings(target, timeout=timeout)
    # the wire's client factory: TLS, ACL user, timeouts, and the store's error classes
    # (wrong or missing password, permission, unreachable ...) from every command
    client = redis_client(settings)
    try:
        client.ping()
    except BaseException:
        client.close()
        raise
    return client


def progress_key(view: str) -> str:
    """The Redis hash holding a streaming view's last progress report (``featurestore status`` reads it)."""
    return PROGRESS_KEY_PREFIX + view
