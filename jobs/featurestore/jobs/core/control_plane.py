"""The control plane's Redis client and key names: what every job uses besides its data.

The run records (``fs:runs``, :mod:`.run_records`), a streaming view's progress report
(``fs:stream:<view>``), the guards' baselines and the writers' preflight all go through one
client built here: the wire's client factory (TLS, ACL user, timeouts, the store's error
classes) with the job side's longer timeout.  The caller resolves the URL (flag, environment,
repository file: :mod:`.settings`); nothing here reads the environment.
"""

from __future__ import annotations

from typing import Any

from featurestore.readers.errors import PermissionDeniedError
from featurestore.readers.settings import ConnectionSettings
from featurestore.readers.wire import redis_client

JOB_TIMEOUT_SECONDS = 10.0
PROGRESS_KEY_PREFIX = "fs:stream:"  # + view name: a hash with the stream's last progress report


def job_settings(url: str, *, timeout: float = JOB_TIMEOUT_SECONDS) -> ConnectionSettings:
    """The job side's connection settings for ``url`` (a longer timeout than inference's)."""
    return ConnectionSettings.from_url(url, timeout=timeout)


def connect(
    target: str | ConnectionSettings,
    *,
    timeout: float = JOB_TIMEOUT_SECONDS,
    role: str | None = None,
    job: str | None = None,
) -> Any:
    """A redis-py client (``Redis`` or ``RedisCluster``) for the job side, connected (PING) or an error.

    ``target`` is a URL (parsed with ``timeout``) or settings parsed once by the caller
    (their own timeout applies).  ``role`` and ``job`` (e.g. ``"batch-writer"``,
    ``"featurestore materialize"``): a refused PING says which role the job needs
    (:func:`needs_role`), not merely that ``ping`` was refused.
    """
    settings = target if isinstance(target, ConnectionSettings) else job_settings(target, timeout=timeout)
    # the wire's client factory: TLS, ACL user, timeouts, and the store's error classes
    # (wrong or missing password, permission, unreachable ...) from every command
    client = redis_client(settings)
    try:
        client.ping()
    except PermissionDeniedError as exc:
        client.close()
        if role is None:
            raise
        raise needs_role(exc, role, job or "this job") from None
    except BaseException:
        client.close()
        raise
    return client


def needs_role(error: PermissionDeniedError, role: str, job: str) -> PermissionDeniedError:
    """``error`` (a command refused to the ACL user) restated for the job that got it: the job needs
    ``role``, and the command that gives the user exactly that role (docs/security.md)."""
    message = str(error)
    if message.startswith(f"{job} needs the ACL role"):
        return error  # said already
    refused = message.split(". Fix: ", 1)[0]
    user = error.user or "USER"
    restated = PermissionDeniedError(
        f"{job} needs the ACL role {role!r}: {refused}. Fix: connect as a {role} user, or give ACL user "
        f"{user!r} that role: `featurestore acl --role {role} --user {user}` prints its ACL SETUSER line "
        f"(`--apply` creates it; docs/security.md)",
        user=error.user,
        command=error.command,
    )
    restated.__notes__ = list(getattr(error, "__notes__", ()))
    return restated


def progress_key(view: str) -> str:
    """The Redis hash holding a streaming view's last progress report (``featurestore status`` reads it)."""
    return PROGRESS_KEY_PREFIX + view
