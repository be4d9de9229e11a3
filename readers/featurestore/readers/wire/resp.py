"""RESP bytes and error replies: commands as data, no I/O.

Every command the store sends is built here (or by code that produces the same bytes,
pinned by golden tests), and every error reply is classified here, once, for every
client: the sync and async readers, the batch writer and the streaming writer.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum

ASKING = b"*1\r\n$6\r\nASKING\r\n"

# Error replies after which a topology refresh and a retry can succeed.  READONLY: a
# write reached a master that was just demoted to replica; LOADING: a restarted node.
RETRYABLE_PREFIXES = ("MOVED", "ASK", "TRYAGAIN", "CLUSTERDOWN", "LOADING", "MASTERDOWN", "READONLY")
# Error replies that refuse every command alike: no retry helps, stop at once.
FATAL_PREFIXES = ("NOPERM", "NOAUTH", "WRONGPASS", "OOM", "MISCONF")
# A command a function runs is refused to the ACL user ("ERR ACL failure in script: User
# ... has no permissions to run the 'hget' command"): a NOPERM in all but its prefix.
ACL_FAILURE_IN_SCRIPT = "ACL failure in script"


def encode(*args: bytes | str | int | float) -> bytes:
    """One command as RESP (an array of bulk strings)."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, bytes):
            data = arg
        elif isinstance(arg, str):
            data = arg.encode()
        else:
            data = repr(arg).encode() if isinstance(arg, float) else str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def encode_all(commands: Iterable[tuple[bytes | str | int | float, ...]]) -> bytes:
    return b"".join(encode(*command) for command in commands)


class ReplyKind(Enum):
    """What an error reply means for the command that got it."""

    MOVED = "moved"  # the slot lives elsewhere now: refresh the topology, retry
    ASK = "ask"  # the slot is migrating: retry on the named node, after ASKING
    RETRY = "retry"  # a transient cluster/server state: back off, refresh, retry
    FATAL = "fatal"  # permission, authentication, memory: every command would fail
    FAILED = "failed"  # this command is refused (e.g. WRONGTYPE): report it, go on


def classify(message: str) -> tuple[ReplyKind, str | None]:
    """An error reply's kind, and for ``ASK``/``MOVED`` the ``host:port`` it names."""
    if message.startswith("ASK "):
        return ReplyKind.ASK, message.split()[2]
    if message.startswith("MOVED "):
        return ReplyKind.MOVED, message.split()[2]
    if message.startswith(RETRYABLE_PREFIXES):
        return ReplyKind.RETRY, None
    if message.startswith(FATAL_PREFIXES) or ACL_FAILURE_IN_SCRIPT in message:
        return ReplyKind.FATAL, None
    return ReplyKind.FAILED, None


def error_message(exc: BaseException) -> str:
    """The reply text of an error redis-py parsed into an exception.

    redis-py strips the error code (``MOVED``, ``TRYAGAIN``, ``NOPERM`` ...) and keeps
    slot and node of a redirect as attributes; put them back so :func:`classify` sees
    the reply as the server sent it.
    """
    from redis import exceptions as e

    if isinstance(exc, e.AskError):  # MovedError derives from AskError
        word = "MOVED" if isinstance(exc, e.MovedError) else "ASK"
        return f"{word} {exc.slot_id} {exc.host}:{exc.port}"
    codes: tuple[tuple[type[BaseException], str], ...] = (
        (e.TryAgainError, "TRYAGAIN"),
        (e.ClusterDownError, "CLUSTERDOWN"),
        (e.BusyLoadingError, "LOADING"),
        (e.ReadOnlyError, "READONLY"),
        (e.MasterDownError, "MASTERDOWN"),
        (e.NoPermissionError, "NOPERM"),
        (e.AuthenticationError, "WRONGPASS"),
        (e.OutOfMemoryError, "OOM"),
        (e.ExecAbortError, "EXECABORT"),
    )
    text = str(exc)
    if isinstance(exc, e.AuthenticationError) and "Authentication required" in text:
        return f"NOAUTH {text}"  # redis-py raises one class for both: a missing and a wrong password
    for cls, code in codes:
        if isinstance(exc, cls) and not text.startswith(code):
            return f"{code} {text}"
    return text
