"""Who the console connects as: its read-only ACL role, and the check that refuses a user that can write.

The console reads more than an inference service (the run records, a key sample as ``status``
takes it, field TTLs), so its role is the reader role plus those read commands, still on a
read-only key pattern (``%R~fs:*``): :data:`CONSOLE`.  ``featurestore ui`` refuses to serve
with a user that may write (unless ``--allow-write-user``): :func:`write_permissions` asks the
server with ``ACL DRYRUN`` when the user may run it, and otherwise probes with a write that
changes nothing (``HDEL`` of a field of a key that does not exist).
"""

from __future__ import annotations

import logging
from typing import Any

from featurestore.jobs.ops.acl import KEY_PATTERN, Command, Role
from featurestore.jobs.ops.acl import setuser_line as role_setuser_line
from featurestore.readers.errors import PermissionDeniedError, ServerError

log = logging.getLogger(__name__)

CONSOLE = Role(
    name="console",
    summary="featurestore ui: read-only on fs:*, with the reads of status, runs and inspect",
    default_user="fs_console",
    keys=("%R~" + KEY_PATTERN,),
    commands=(
        Command("ping", "connecting (control_plane.connect)"),
        Command("hmget", "the freshness sample: each key's _ts:<view> (ops/status.py)"),
        Command("hgetall", "an entity's hash (ops/inspect.py), a stream's progress fs:stream:<view>"),
        Command("httl", "each field's own TTL on the entity page (ops/inspect.py)"),
        Command("ttl", "the entity key's TTL (ops/inspect.py)"),
        Command("scan", "the freshness sample: SCAN MATCH fs:<entity>:* (ops/status.py)"),
        Command("memory|usage", "bytes per entity in the freshness sample, the entity page"),
        Command("object|encoding", "the entity page's hash encoding"),
        Command("xrevrange", "the run records fs:runs and audits fs:audits, newest first"),
        Command("xrange", "one run record by its entry id (the run's page)"),
        Command("cluster|slots", "the slot map in a Redis Cluster"),
        Command("readonly", "read_from_replicas=True: READONLY on each replica connection"),
        Command("command", "redis-py's cluster client loads the command table once (COMMAND) for key routing"),
        Command("client|setinfo", "redis-py's handshake: library name and version (CLIENT SETINFO)"),
    ),
)

PROBE_KEY = "fs:__console_write_probe__"  # never created: the probe's HDEL of a missing key changes nothing
# what a writer of the store runs (ops/acl.py's writer roles): the console's user must run none of them
WRITE_COMMANDS = (
    ("hset", "f", "v"),
    ("hdel", "f"),
    ("hsetex", "EX", "1", "FIELDS", "1", "f", "v"),
    ("xadd", "*", "f", "v"),
)


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def write_permissions(client: Any, user: str) -> list[str]:
    """The write commands ``user`` (the client's own ACL user) may run on the store's keys; empty: read-only.

    ``ACL DRYRUN`` answers for each command when the user may run it (an admin may); a user
    that may not is asked with a write that changes nothing (``HDEL`` of a missing key).
    """
    allowed = []
    try:
        for command, *args in WRITE_COMMANDS:
            answer = client.execute_command("ACL", "DRYRUN", user, command, PROBE_KEY, *args)
            if _text(answer) == "OK":
                allowed.append(command)
        return allowed
    except ServerError as exc:
        log.debug("ACL DRYRUN refused (%s): probing with a write that changes nothing", exc)
    try:
        client.execute_command("HDEL", PROBE_KEY, "__none__")
    except PermissionDeniedError:
        return []
    return ["hdel"]


def setuser_line(user: str | None = None) -> str:
    """``ACL SETUSER`` for the console's role, with a password placeholder."""
    return role_setuser_line(CONSOLE, user)
