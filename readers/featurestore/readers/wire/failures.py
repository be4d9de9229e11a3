"""What a failure means, said once for every client: the wire's drivers (sync and asyncio,
the reader, the batch and the streaming writers) and the jobs' redis-py control-plane
client (:func:`.connection.redis_client`: run records, registry, SCAN).

Each failure becomes its own class of the one error tree, with a message that names
where (the redacted URL), the ACL user (never the password), what was refused and the
fix:

=====================================  ===========================================
permission denied (``NOPERM``, also     :class:`~featurestore.readers.errors.PermissionDeniedError`
inside a function: "ACL failure")
wrong password, unknown/disabled user   :class:`~featurestore.readers.errors.AuthenticationError`
(``WRONGPASS``)
missing password (``NOAUTH``)           :class:`~featurestore.readers.errors.PasswordRequiredError`
cluster down (``CLUSTERDOWN``, no       :class:`~featurestore.readers.errors.ClusterDownError`
slots served) until the deadline
connection refused, unknown host        :class:`~featurestore.readers.errors.ServerUnreachableError`
timeout                                 :class:`~featurestore.readers.errors.FeatureStoreTimeout`
anything else Redis refused             :class:`~featurestore.readers.errors.ServerError`
=====================================  ===========================================

(A server too old for a command is found by probing before anything is written, where
the version needed is known: :class:`~featurestore.readers.errors.UnsupportedServerError`.)
"""

from __future__ import annotations

import re
import socket
from urllib.parse import urlsplit

import redis

from ..errors import (
    AuthenticationError,
    ClusterDownError,
    FeatureStoreConnectionError,
    FeatureStoreTimeout,
    PasswordRequiredError,
    PermissionDeniedError,
    ServerError,
    ServerUnreachableError,
)
from ..settings import ConnectionSettings, redact_text
from .resp import ACL_FAILURE_IN_SCRIPT, error_message

# Redis: "NOPERM User reader_ro has no permissions to run the 'xadd' command"; in a
# function: "ERR ACL failure in script: User sw has no permissions to run the 'hget' command ..."
_REFUSED_COMMAND = re.compile(r"User (?P<user>\S+) has no permissions to run the '(?P<command>[^']+)' command")
_NO_KEY_ACCESS = "No permissions to access a key"
ROLES_HINT = (
    "`featurestore acl --role reader|batch-writer|streaming-writer --user {user}` prints them (docs/security.md)"
)


def acl_user(settings: ConnectionSettings) -> str:
    """The ACL user the URL connects as (``default`` when it names none)."""
    return urlsplit(settings.url).username or "default"


def _where(settings: ConnectionSettings, node: str | None) -> str:
    return settings.redacted_url + (f" ({node})" if node and settings.cluster else "")


def is_permission_reply(message: str) -> bool:
    """An error reply refusing a command or key to the ACL user (also from inside a function)."""
    return message.startswith("NOPERM") or ACL_FAILURE_IN_SCRIPT in message or "has no permissions to" in message


def refusal(
    settings: ConnectionSettings, message: str, *, node: str | None = None, command: str | None = None
) -> ServerError | FeatureStoreConnectionError:
    """An error reply no retry fixes (permission, authentication, memory) as its own class.

    ``message`` is the reply as Redis sent it (its code first, see
    :func:`.resp.error_message`); ``command`` the command that got it, if known.
    """
    text = redact_text(message)
    where = _where(settings, node)
    user = acl_user(settings)
    if is_permission_reply(text):
        found = _REFUSED_COMMAND.search(text)
        refused = found["command"] if found else (command.lower() if command else None)
        if found is None and _NO_KEY_ACCESS.lower() in text.lower():
            what = f"{command or 'a command'} on a key outside its key patterns"
        else:
            what = f"the {refused!r} command" if refused else "a command"
        return PermissionDeniedError(
            f"Redis at {where} refused {what} to ACL user {user!r} ({text}). Fix: give the user the "
            f"commands and keys of its role: " + ROLES_HINT.format(user=user),
            user=user,
            command=refused,
        )
    if text.startswith("NOAUTH") or "Authentication required" in text:
        return PasswordRequiredError(
            f"Redis at {where} requires a password and the URL gives none (NOAUTH). Fix: put the user "
            f"and password in the URL, redis://USER:PASSWORD@host:port (e.g. in $FEATURESTORE_REDIS_URL, "
            f"not on a command line)",
            user=user,
        )
    if text.startswith("WRONGPASS") or "invalid username-password pair" in text:
        return AuthenticationError(
            f"Redis at {where} refused ACL user {user!r}: wrong password, or the user does not exist or "
            f"is disabled (WRONGPASS). Fix: check the password in the URL, and the user with "
            f"`ACL GETUSER {user}` on the server",
            user=user,
        )
    if text.startswith("OOM"):
        return ServerError(
            f"Redis at {where} is out of memory and refuses writes ({text}). Fix: raise maxmemory, "
            "or shorten TTLs / drop views until the data fits"
        )
    if text.startswith("MISCONF"):
        return ServerError(f"Redis at {where} refuses writes until its persistence works again ({text})")
    return ServerError(f"Redis at {where} refused the command: {text}")


def _unreachable(exc: BaseException) -> str | None:
    """Why nothing answered: ``connection refused`` (nothing listens at the address), ``unknown
    host`` (the name does not resolve), or None (another network failure)."""
    text = str(exc)
    if isinstance(exc, ConnectionRefusedError) or "Connection refused" in text or "Error 111 " in text:
        return "connection refused"
    if isinstance(exc, socket.gaierror) or "Name or service not known" in text or "Error -2 " in text:
        return "unknown host"
    return None


# redis-py's cluster client raises these once its own retries are spent (SlotNotCoveredError: redis-py >= 6)
_CLUSTER_DOWN_TYPES = tuple(
    getattr(redis.exceptions, name)
    for name in ("ClusterDownError", "SlotNotCoveredError")
    if hasattr(redis.exceptions, name)
)


def is_cluster_down(error: BaseException | str | None) -> bool:
    """``CLUSTERDOWN`` (redis-py's ClusterDownError, or the reply text), or a slot map with no node."""
    if isinstance(error, _CLUSTER_DOWN_TYPES):
        return True
    text = str(error) if error is not None else ""
    return text.startswith("CLUSTERDOWN") or "no node serves the slots" in text or "returned no slots" in text


def translate_error(exc: BaseException | str | None, settings: ConnectionSettings, what: str) -> Exception:
    """A transport failure (a redis-py or socket exception, or the last error reply of a
    retried command) as one of ours, with the URL redacted; ``what`` says what was being done."""
    where = settings.redacted_url
    if isinstance(exc, redis.exceptions.RedisClusterException) and isinstance(exc.__cause__, Exception):
        exc = exc.__cause__  # redis-py's cluster client wraps what its last start-up node raised
    if isinstance(exc, redis.RedisError) and not isinstance(exc, (redis.ConnectionError, redis.TimeoutError)):
        reply = error_message(exc)  # the reply with its code put back (NOPERM ..., CLUSTERDOWN ...)
        if isinstance(exc, redis.exceptions.NoPermissionError) or reply.startswith(("NOAUTH", "WRONGPASS", "OOM")):
            return refusal(settings, reply, command=what.split()[0] if what else None).with_context(what)
    elif isinstance(exc, redis.AuthenticationError):  # a ConnectionError to redis-py: not to us
        return refusal(settings, error_message(exc)).with_context(what)
    message = redact_text(str(exc) if exc is not None else "no reply")
    if isinstance(exc, (redis.TimeoutError, TimeoutError)):
        return FeatureStoreTimeout(f"{what}: timed out against {where}: {message}")
    if is_cluster_down(exc):
        return ClusterDownError(
            f"{what}: the Redis Cluster at {where} is down ({message}). Fix: check `CLUSTER INFO` "
            "(cluster_state) on its nodes and bring the failed primaries (or their replicas) back"
        )
    reason = _unreachable(exc) if isinstance(exc, BaseException) else None
    if reason is not None:
        return ServerUnreachableError(
            f"{what}: cannot reach Redis at {where}: {reason} ({message.rstrip('.')}). Fix: start the server, "
            "or correct the host and port in the URL"
        )
    if isinstance(exc, (redis.ConnectionError, OSError)) or exc is None:
        return FeatureStoreConnectionError(f"{what}: cannot reach Redis at {where}: {message}")
    if isinstance(exc, str):  # the last error reply of a retried command
        return FeatureStoreConnectionError(f"{what}: Redis at {where} kept answering: {message}")
    return ServerError(f"{what}: Redis at {where} answered an error: {message}")
