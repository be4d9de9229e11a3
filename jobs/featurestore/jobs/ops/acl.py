"""Least-privilege ACL roles: exactly the commands each part of the store sends, as data.

Three roles, one Redis ACL user each:

* ``reader`` — an inference service (:class:`~featurestore.readers.FeatureReader`):
  read-only on ``fs:*``;
* ``batch-writer`` — the nightly job (``featurestore materialize``, ``write_view``), its
  registry entry and run records, and the post-load check the nightly DAG runs with the
  same credentials;
* ``streaming-writer`` — :class:`~featurestore.jobs.streaming.StreamingWriter`, its
  out-of-order guard function and its registry entry.

Each command is listed with the code that sends it (why it is needed); tests prove each
role does its job and is refused outside it (tests/integration/ops/test_acl_roles.py).
The rules are Redis ACL syntax (Redis >= 7: ``%R~`` is a read-only key pattern; a
subcommand is ``command|sub``).  Pure data and text: nothing here talks to Redis
(``featurestore acl --apply`` does, in :mod:`featurestore.jobs.ops.acl_command`).

A password never appears in what this module renders: :func:`setuser_line` writes a
placeholder, and :func:`setuser_rules` takes the SHA-256 of the password (``#<hex>``
rules), so the password itself is never sent to Redis either.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

__all__ = [
    "KEY_PATTERN",
    "PASSWORD_PLACEHOLDER",
    "ROLES",
    "Command",
    "Role",
    "role",
    "setuser_line",
    "setuser_rules",
]

KEY_PATTERN = "fs:*"  # every key of the store: entity hashes, fs:registry, fs:runs
PASSWORD_PLACEHOLDER = "<password>"


@dataclass(frozen=True)
class Command:
    """One ACL command rule (``hmget``, ``cluster|slots``) and why the role needs it."""

    name: str
    why: str


@dataclass(frozen=True)
class Role:
    """An ACL role: its key patterns and the exact commands it may run."""

    name: str
    summary: str
    default_user: str
    keys: tuple[str, ...]  # ACL key rules, e.g. "%R~fs:*" (read-only) or "~fs:*"
    commands: tuple[Command, ...]

    @property
    def command_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.commands)

    def rules(self) -> list[str]:
        """The ACL rules after the password: keys, no channels, nothing but the listed commands."""
        return [*self.keys, "resetchannels", "-@all", *(f"+{c.name}" for c in self.commands)]


# Every connection: redis-py sends CLIENT SETINFO after the handshake.  It ignores a
# refusal, but each one lands in the server's ACL LOG as a denied command: allowed here
# so the log shows only real refusals.  (AUTH is allowed to every user by Redis itself.)
_HANDSHAKE = (Command("client|setinfo", "redis-py's handshake: library name and version (CLIENT SETINFO)"),)
_CLUSTER = (Command("cluster|slots", "the wire's slot map in a Redis Cluster (wire/sync.py Wire.refresh)"),)

READER = Role(
    name="reader",
    summary="an inference service: read-only on fs:*",
    default_user="fs_reader",
    keys=("%R~" + KEY_PATTERN,),
    commands=(
        Command("hmget", "get / get_many: one HMGET per entity (readers/reader.py, aio.py)"),
        Command("hgetall", "the registry check at start-up: HGETALL fs:registry (reader.py check_registry)"),
        *_CLUSTER,
        Command("readonly", "read_from_replicas=True: READONLY on each replica connection (wire/connection.py)"),
        *_HANDSHAKE,
    ),
)

BATCH_WRITER = Role(
    name="batch-writer",
    summary="the nightly materialization: features, registry, run records, post-load check",
    default_user="fs_batch_writer",
    keys=("~" + KEY_PATTERN,),
    commands=(
        Command("hset", "feature values (write/commands.py), the registry entry HSET fs:registry (materialize.py)"),
        Command("hdel", "features that became null are removed (write/commands.py)"),
        Command("expire", "the entity key's TTL (write/commands.py)"),
        Command("hexpire", "a view with a shorter TTL than its entity key, and its probe (write/)"),
        Command(
            "ping",
            "reaching Redis before Spark starts (control_plane.connect, write preflight); the adaptive "
            "throttle's latency probe (write/partition_writer.py)",
        ),
        Command("incrby", "max_writes_per_sec: the job-wide budget, one counter per 0.1 s window (write/throttle.py)"),
        Command("pexpire", "the TTL of each budget window's counter key (write/throttle.py)"),
        Command("xadd", "the run record, XADD fs:runs (core/run_records.py record_run)"),
        Command("xrevrange", "the last good run (collapse guard), `featurestore runs`, the post-load check"),
        Command("scan", "the post-load check samples entity keys, SCAN MATCH fs:<entity>:* (ops/post_load_check.py)"),
        Command("hgetall", "the post-load check reads the registry (ops/post_load_check.py)"),
        Command("hmget", "the post-load check reads sampled entities as inference does"),
        *_CLUSTER,
        Command("command", "redis-py's cluster client loads the command table once (COMMAND) for key routing"),
        *_HANDSHAKE,
    ),
)

STREAMING_WRITER = Role(
    name="streaming-writer",
    summary="the streaming hook: per-field-TTL writes through the out-of-order guard",
    default_user="fs_streaming_writer",
    keys=("~" + KEY_PATTERN,),
    commands=(
        Command("info", "the server's version, probed before any write (streaming/writer.py, INFO server)"),
        Command("command|info", "which of HSETEX / HEXPIRE the server has (COMMAND INFO)"),
        Command("function|load", "loads the guard library on every primary (FUNCTION LOAD REPLACE)"),
        Command("fcall", "one guarded write per event (streaming/guard.py)"),
        Command("hget", "run by the guard: the stored _ts:<view> (functions run with the caller's ACL)"),
        Command("hsetex", "value and TTL in one command, Redis >= 8 (directly, or by the guard)"),
        Command("hset", "HSET fs:registry, the progress HSET fs:stream:<view>; with HEXPIRE on Redis 7.4"),
        Command("hexpire", "Redis 7.4: the field TTL after HSET"),
        Command("hdel", "a null feature is removed"),
        Command("multi", "Redis 7.4 without the guard: HSET + HEXPIRE in one transaction"),
        Command("exec", "the end of that transaction"),
        *_CLUSTER,
        *_HANDSHAKE,
    ),
)

ROLES: dict[str, Role] = {r.name: r for r in (READER, BATCH_WRITER, STREAMING_WRITER)}


def role(name: str) -> Role:
    """The role called ``name``; a ValueError lists the roles."""
    try:
        return ROLES[name]
    except KeyError:
        raise ValueError(f"unknown role {name!r}: choose one of {', '.join(ROLES)}") from None


def setuser_rules(chosen: Role, password: str) -> list[str]:
    """The arguments of ``ACL SETUSER <user> ...`` for ``chosen`` with ``password``.

    ``reset`` first, so applying a role again removes whatever the user had before; the
    password goes as its SHA-256 (``#<hex>``), never in clear.
    """
    digest = hashlib.sha256(password.encode()).hexdigest()
    return ["reset", "on", f"#{digest}", *chosen.rules()]


def setuser_line(chosen: Role, user: str | None = None) -> str:
    """``ACL SETUSER`` for ``chosen`` as text (``redis-cli`` / ``redis.conf`` / aclfile), with
    :data:`PASSWORD_PLACEHOLDER` where the password goes."""
    return " ".join(
        ["ACL", "SETUSER", user or chosen.default_user, "reset", "on", f">{PASSWORD_PLACEHOLDER}", *chosen.rules()]
    )


def describe(chosen: Role, user: str | None = None) -> str:
    """The role as commented ``ACL SETUSER`` text (no password: a placeholder)."""
    lines = [f"# {chosen.name}: {chosen.summary}"]
    lines += [f"#   +{c.name:<15} {c.why}" for c in chosen.commands]
    lines.append(setuser_line(chosen, user))
    return "\n".join(lines)


def apply(client: Any, chosen: Role, user: str, password: str, *, cluster: bool) -> None:
    """``ACL SETUSER`` on the server (every node of a cluster): ``user`` gets exactly ``chosen``."""
    options: dict[str, Any] = {"target_nodes": "all"} if cluster else {}  # RedisCluster.ALL_NODES
    client.execute_command("ACL", "SETUSER", user, *setuser_rules(chosen, password), **options)
