"""``featurestore doctor``: every prerequisite of the store checked in one go, each with its fix.

The habit of ``dbt debug``: before the first run, after a deployment, or when something fails at
night, one command says what is wrong and how to fix it, instead of the first failure 34 seconds
into a Spark start-up.  Each check gives one :class:`CheckResult` (``ok``, ``warn`` or ``FAIL``,
what was found, one line saying what to do) and the command exits with the code of the worst
(:func:`exit_code`): 0 when nothing failed (warnings included), else the
:class:`~featurestore.jobs.core.console.ExitCode` of the first failure (5 Redis unreachable,
6 authentication, 7 a permission the role needs, 8 the server too old, 2 a setting or a missing
table, 1 anything else).

Checks, in order: Java, Spark (pyspark importable, its version), the Delta jars, the
repository's definitions, Redis (reachable), the server (version, modules, per-field TTL
commands), the ACL user against the role it will play (:mod:`.acl`), the registry against the
definitions (as the reader checks it), the warehouse's source tables, Kafka (the bootstrap
servers reachable, when set).  Nothing is written: the ACL check sends each command of the role
in a form the server refuses or answers without a change (a wrong argument, a key that does not
exist), so a permission refusal (checked before the command runs) tells the user lacks it.

The judging functions (``*_result``) are pure; the I/O sits in the thin ``probe_*`` and
:func:`run_checks` functions.
"""

from __future__ import annotations

import importlib.util
import socket
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from featurestore.jobs import jvm
from featurestore.jobs.core.console import ExitCode, exit_code_for
from featurestore.jobs.core.control_plane import job_settings, needs_role
from featurestore.jobs.core.settings import Settings
from featurestore.jobs.ops.acl import KEY_PATTERN, ROLES, Role
from featurestore.readers.definitions import Catalog
from featurestore.readers.errors import (
    AuthenticationError,
    ConfigurationError,
    FeatureStoreConnectionError,
    FeatureStoreError,
    PermissionDeniedError,
    RegistryMismatchError,
)
from featurestore.readers.settings import redact_text

OK, WARN, FAIL = "ok", "warn", "FAIL"
_RANK = {OK: 0, WARN: 1, FAIL: 2}
DEFAULT_ROLE = "batch-writer"
JOB_OF_ROLE = {
    "reader": "an inference service (FeatureReader)",
    "batch-writer": "featurestore materialize",
    "streaming-writer": "featurestore stream / consume",
}
TIMEOUT_SECONDS = 5.0
KAFKA_TIMEOUT_SECONDS = 3.0
# a key the role's patterns cover that no part of the store uses: the probes never create it
PROBE_KEY = KEY_PATTERN.removesuffix("*") + "doctor:{probe}"


@dataclass(frozen=True)
class CheckResult:
    """One check: its level (``ok``, ``warn``, ``FAIL``), what was found, what to do about it, and
    the exit code a failure maps to."""

    check: str
    level: str
    detail: str
    fix: str = ""
    code: ExitCode = ExitCode.OK


def ok(check: str, detail: str) -> CheckResult:
    return CheckResult(check, OK, detail)


def warn(check: str, detail: str, fix: str = "") -> CheckResult:
    return CheckResult(check, WARN, detail, fix)


def fail(check: str, detail: str, fix: str, code: ExitCode = ExitCode.FAILED) -> CheckResult:
    return CheckResult(check, FAIL, detail, fix, code if code != ExitCode.OK else ExitCode.FAILED)


def failure(check: str, error: BaseException, fix: str = "") -> CheckResult:
    """A check that ended with ``error``: its message (and its own ``Fix:`` part, if any) and exit code."""
    message = redact_text(str(error)).strip() or type(error).__name__
    detail, _, own_fix = message.partition(" Fix: ")
    if not own_fix:  # the store's messages say what to do after "; "
        detail, _, own_fix = detail.partition("; ")
    return fail(check, detail.rstrip(" ."), own_fix or fix, exit_code_for(error))


# --- the report ------------------------------------------------------------------------------


def format_result(result: CheckResult) -> list[str]:
    """A result as text: one line (level, check, what was found), and its fix on the next one."""
    lines = [f"{result.level:<4}  {result.check:<10} {result.detail}"]
    if result.fix and result.level != OK:
        lines.append(f"{'':<4}  {'':<10} fix: {result.fix}")
    return lines


def summary(results: Sequence[CheckResult]) -> str:
    counts = {level: sum(r.level == level for r in results) for level in (OK, WARN, FAIL)}
    return f"doctor: {counts[OK]} ok, {counts[WARN]} warn, {counts[FAIL]} FAIL"


def worst(results: Iterable[CheckResult]) -> str:
    return max((r.level for r in results), key=_RANK.__getitem__, default=OK)


def exit_code(results: Sequence[CheckResult]) -> ExitCode:
    """The exit code by the worst result: 0 unless something failed, then the first failure's code
    (the checks run from the ground up: Java before Spark, Redis before its registry)."""
    failed = [r for r in results if r.level == FAIL]
    return failed[0].code if failed else ExitCode.OK


# --- the machine: Java, Spark, the Delta jars -----------------------------------------------


def java_result(problem: str | None, java: str | None) -> CheckResult:
    if problem is None:
        return ok("java", f"Java {jvm.REQUIRED_JAVA}+ at {java}")
    return fail("java", problem.split("; ")[0], jvm.INSTALL_HINT)


def spark_result(importable: bool, version: str | None, needed: str) -> CheckResult:
    """``needed``: the ``major.minor`` of Spark the Delta jars are built for."""
    install = 'pip install "redis-feature-store[jobs]"'
    if not importable:
        return fail("spark", "pyspark is not importable (the batch and streaming jobs need it)", install)
    if version is None or not version.startswith(needed + "."):
        return fail("spark", f"pyspark {version or '?'}, the Delta jars are built for Spark {needed}", install)
    return ok("spark", f"pyspark {version}")


def jars_result(configured: str | None, cached: str | None, missing: Sequence[str] = ()) -> CheckResult:
    """``configured``: ``$FEATURESTORE_SPARK_JARS``; ``cached``: the recorded Delta jars, if any."""
    if configured:
        if missing:
            return fail(
                "jars", f"FEATURESTORE_SPARK_JARS names {len(missing)} missing file(s): {missing[0]}",
                "point FEATURESTORE_SPARK_JARS at existing jar files, or unset it", ExitCode.USAGE,
            )  # fmt: skip
        return ok("jars", f"FEATURESTORE_SPARK_JARS: {len(configured.split(','))} jar(s)")
    if cached:
        return ok("jars", f"Delta jars cached locally ({len(cached.split(','))} files)")
    return warn(
        "jars", "Delta jars not downloaded yet: the first Spark start fetches them from Maven Central",
        "run one Spark command with network access (featurestore generate), or set FEATURESTORE_SPARK_JARS",
    )  # fmt: skip


def probe_machine(settings: Settings) -> list[CheckResult]:
    """Java, pyspark and the Delta jars, as the jobs' Spark start-up will find them (no JVM started)."""
    from featurestore.jobs import spark

    results = [java_result(jvm.java_problem(), jvm.find_java())]
    importable = importlib.util.find_spec("pyspark") is not None
    try:
        version: str | None = metadata.version("pyspark")
    except metadata.PackageNotFoundError:
        version = None
    needed = spark.DELTA_PACKAGE.split("_")[1]  # io.delta:delta-spark_4.1_2.13:... -> 4.1
    results.append(spark_result(importable, version, needed))
    configured = settings.spark_jars
    if configured:
        missing = [f for f in configured.split(",") if f and "://" not in f and not Path(f).is_file()]
        results.append(jars_result(configured, None, missing))
    else:
        results.append(jars_result(None, spark.cached_jars() if importable else None))
    return results


# --- Redis: the server, the ACL role ---------------------------------------------------------


@dataclass(frozen=True)
class ServerFacts:
    """What ``INFO server modules`` and ``COMMAND INFO`` told (None: the user may not ask)."""

    version: str | None
    modules: tuple[str, ...] | None
    hsetex: bool | None
    hexpire: bool | None


def parse_info(text: str) -> tuple[str | None, tuple[str, ...]]:
    """The server's name and version, and its modules, from an ``INFO server modules`` reply."""
    fields = dict(line.partition(":")[::2] for line in text.splitlines() if ":" in line)
    version: str | None
    if fields.get("valkey_version"):
        version = f"Valkey {fields['valkey_version'].strip()}"
    else:
        version = f"Redis {fields['redis_version'].strip()}" if "redis_version" in fields else None
    modules = []
    for key, value in fields.items():
        if key.startswith("module"):  # module:name=search,ver=80201,...
            parts = dict(p.partition("=")[::2] for p in value.split(","))
            modules.append(f"{parts.get('name', '?')} {parts.get('ver', '')}".strip())
    return version, tuple(modules)


def server_result(facts: ServerFacts, role: Role) -> CheckResult:
    modules = "no modules" if not facts.modules else "modules " + ", ".join(facts.modules)
    if facts.modules is None:
        modules = "modules not listed"
    if facts.hexpire is False:
        return fail(
            "server", f"{facts.version or 'the server'} has no HEXPIRE: per-field TTLs need Redis >= 7.4",
            "upgrade to Redis 8 (or Valkey 9): `featurestore redis start` runs one locally",
            ExitCode.SERVER_TOO_OLD,
        )  # fmt: skip
    if facts.version is None and facts.hexpire is None:
        return warn(
            "server", f"version not readable by this ACL user (INFO and COMMAND are not in the {role.name} role)",
            "run `featurestore doctor --role streaming-writer` with that role's user, or check with an admin",
        )  # fmt: skip
    commands = "HSETEX" if facts.hsetex else "HEXPIRE (no HSETEX: streaming writes use MULTI HSET+HEXPIRE)"
    return ok("server", f"{facts.version or 'version not readable'}, {modules}; per-field TTL: {commands}")


@dataclass(frozen=True)
class Probe:
    """One command of a role, in a form that changes nothing (``args`` with ``{key}``)."""

    command: str  # the ACL rule, e.g. "hset", "cluster|slots"
    args: tuple[str, ...]


# each a no-op: a missing key, a bad argument the command refuses after the ACL check, or a read
PROBES: dict[str, tuple[str, ...]] = {
    "hmget": ("HMGET", "{key}", "f"),
    "hgetall": ("HGETALL", "{key}"),
    "hget": ("HGET", "{key}", "f"),
    "cluster|slots": ("CLUSTER", "SLOTS"),
    "readonly": ("READONLY",),
    "client|setinfo": ("CLIENT", "SETINFO", "LIB-NAME", "redis-py"),
    "hset": ("HSET", "{key}", "f", "v", "f"),  # an odd field list: refused by HSET itself
    "hdel": ("HDEL", "{key}", "f"),
    "expire": ("EXPIRE", "{key}", "1"),
    "pexpire": ("PEXPIRE", "{key}", "1"),
    "hexpire": ("HEXPIRE", "{key}", "-1", "FIELDS", "1", "f"),  # a negative TTL: refused
    "hsetex": ("HSETEX", "{key}", "EX", "-1", "FIELDS", "1", "f", "v"),
    "ping": ("PING",),
    "incrby": ("INCRBY", "{key}", "not-a-number"),
    "xadd": ("XADD", "{key}", "NOMKSTREAM", "*", "f", "v"),  # no stream, none made
    "xrevrange": ("XREVRANGE", "{key}", "+", "-", "COUNT", "1"),
    "scan": ("SCAN", "0", "MATCH", "{key}", "COUNT", "1"),
    "command": ("COMMAND", "INFO", "PING"),
    "command|info": ("COMMAND", "INFO", "PING"),
    "info": ("INFO", "server"),
    "function|load": ("FUNCTION", "LOAD", "not a library"),
    "fcall": ("FCALL", "featurestore_doctor_probe", "0"),  # no such function
    "exec": ("EXEC",),  # without MULTI: refused by EXEC itself
    "multi": ("MULTI",),  # last: it leaves the probe connection in a transaction (closed after)
}


def role_probes(role: Role) -> list[Probe]:
    """The probes of every command of ``role`` (MULTI last)."""
    names = sorted(role.command_names, key=lambda name: name == "multi")
    return [Probe(name, tuple(a.replace("{key}", PROBE_KEY) for a in PROBES[name])) for name in names]


def acl_result(role: Role, user: str | None, refused: Mapping[str, str], unknown: Sequence[str] = ()) -> CheckResult:
    """``refused``: each command of the role the server refused to the user, with its message;
    ``unknown``: commands the server does not have (the server check judges those)."""
    who = f"ACL user {user!r}" if user else "the default user"
    if refused:
        first = next(iter(refused.values()))
        error = needs_role(PermissionDeniedError(first, user=user), role.name, JOB_OF_ROLE[role.name])
        fix = str(error).partition(" Fix: ")[2]
        commands = ", ".join(sorted(refused))
        return fail("acl", f"{who} may not run {commands}: the {role.name} role needs them", fix, ExitCode.PERMISSION)
    detail = f"{who} may run every command of the {role.name} role ({len(role.commands) - len(unknown)} probed)"
    if not user:
        return warn(
            "acl", detail + "; no ACL user in the URL",
            f"in production, one ACL user per role: `featurestore acl --role {role.name} --user USER`",
        )  # fmt: skip
    return ok("acl", detail)


def probe_redis(url: str, role: Role) -> list[CheckResult]:
    """Redis reachable (the connection and its AUTH), the server, the ACL user against ``role``."""
    from featurestore.readers.wire.sync import Wire

    settings = job_settings(url, timeout=TIMEOUT_SECONDS)
    wire = Wire(settings)
    try:
        node = wire.primaries()[0]

        def ask(*args: str) -> Any:
            return wire.execute_on(node, *args)

        try:
            ask("PING")
        except PermissionDeniedError:
            pass  # connected and authenticated: the role (judged below) may not need PING
        except FeatureStoreConnectionError as exc:
            fix = "start Redis (`featurestore redis start`), or fix --redis-url / $FEATURESTORE_REDIS_URL"
            return [failure("redis", exc, "" if isinstance(exc, AuthenticationError) else fix)]
        where = "cluster" if settings.cluster else "standalone"
        results = [ok("redis", f"{settings.redacted_url} reachable ({where})")]
        results.append(server_result(_server_facts(ask), role))
        refused, unknown = {}, []
        for probe in role_probes(role):
            try:
                ask(*probe.args)
            except PermissionDeniedError as exc:
                refused[probe.command] = str(exc)
            except FeatureStoreError as exc:  # refused by the command itself: the ACL let it through
                if "unknown command" in str(exc).lower():
                    unknown.append(probe.command)
        user = _url_user(url)
        results.append(acl_result(role, user, refused, unknown))
        return results
    except FeatureStoreError as exc:
        return [failure("redis", exc)]
    finally:
        wire.close()


def _server_facts(ask: Callable[..., Any]) -> ServerFacts:
    version: str | None = None
    modules: tuple[str, ...] | None = None
    try:
        raw = ask("INFO", "server", "modules")
        version, modules = parse_info(raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw))
    except PermissionDeniedError:
        pass
    hsetex = hexpire = None
    try:
        found = ask("COMMAND", "INFO", "HSETEX", "HEXPIRE")
        hsetex, hexpire = found[0] is not None, found[1] is not None
    except PermissionDeniedError:
        pass
    return ServerFacts(version, modules, hsetex, hexpire)


def _url_user(url: str) -> str | None:
    from urllib.parse import urlsplit

    user = urlsplit(url).username
    return user if user and user != "default" else None


# --- the repository: definitions, registry, warehouse, Kafka ---------------------------------


def probe_registry(catalog: Catalog, url: str) -> dict[str, str]:
    """Each view's state in the registry, checked as the reader checks it at start-up (as
    ``featurestore plan --connect`` does): a decoding change raises RegistryMismatchError."""
    from featurestore.readers import FeatureReader

    with FeatureReader.connect(url, catalog=catalog) as reader:
        return dict(reader.registry_status)


def registry_result(status: Mapping[str, str]) -> CheckResult:
    states = ", ".join(f"{view} {state}" for view, state in sorted(status.items()))
    return ok("registry", f"matches the definitions: {states or '(no views)'}")


def registry_failure(error: BaseException) -> CheckResult:
    if isinstance(error, RegistryMismatchError):
        return failure(
            "registry", error,
            "a feature would decode differently from how it was stored: revert the change, or rename the "
            "feature (a new name), then materialize the view",
        )  # fmt: skip
    if isinstance(error, PermissionDeniedError):
        return warn(
            "registry", "not checked: this ACL user may not read the registry (HGETALL)",
            "run doctor as the reader or batch-writer user to check the registry",
        )  # fmt: skip
    return failure("registry", error)


def warehouse_result(warehouse: str, tables: Sequence[str]) -> CheckResult:
    return ok("warehouse", f"{warehouse}: Delta tables {', '.join(tables) or '(none needed)'} found")


def kafka_result(
    bootstrap: str | None, reachable: Mapping[str, str | None], streams: int, streaming_role: bool = True
) -> CheckResult:
    """``reachable``: each bootstrap server and the error connecting to it (None: connected);
    ``streams``: the streaming views that read a topic; ``streaming_role``: the role reads Kafka."""
    if not bootstrap:
        if streams and streaming_role:
            return warn(
                "kafka", f"not configured, and {streams} streaming view(s) read a topic",
                "set kafka_bootstrap in featurestore.toml, $FEATURESTORE_KAFKA_BOOTSTRAP or --bootstrap-servers",
            )  # fmt: skip
        why = "no streaming view reads a topic" if not streams else "only the streaming jobs read Kafka"
        return ok("kafka", f"not configured ({why})")
    up = [server for server, error in reachable.items() if error is None]
    if up:
        return ok("kafka", f"bootstrap {', '.join(up)} reachable")
    first = next(iter(reachable.items()), ("?", "no server"))
    return fail(
        "kafka", f"no bootstrap server reachable ({first[0]}: {first[1]})",
        "start the broker (`featurestore kafka start` locally) or fix kafka_bootstrap / --bootstrap-servers",
    )  # fmt: skip


def probe_kafka(bootstrap: str, timeout: float = KAFKA_TIMEOUT_SECONDS) -> dict[str, str | None]:
    """Each bootstrap server (``host:port``, comma-separated) and the error of a TCP connection to it."""
    reachable: dict[str, str | None] = {}
    for server in filter(None, (s.strip() for s in bootstrap.split(","))):
        host, _, port = server.rpartition(":")
        try:
            with socket.create_connection((host.strip("[]") or "localhost", int(port)), timeout=timeout):
                reachable[server] = None
        except (OSError, ValueError) as exc:
            reachable[server] = str(exc) or type(exc).__name__
    return reachable


def run_checks(settings: Settings, role_name: str = DEFAULT_ROLE, *, machine: bool | None = None) -> list[CheckResult]:
    """Every check, in order.  Java, Spark and the jars (``machine``) are checked for the writer
    roles, whose jobs run Spark, not for the reader's (an inference service installs no Spark)."""
    from featurestore.jobs.batch.sources import DEFAULT_WAREHOUSE, source_tables
    from featurestore.jobs.core.repository import repository_catalog
    from featurestore.readers.repository import load_catalog

    role = ROLES[role_name]
    if machine is None:
        machine = role.name != "reader"
    results = probe_machine(settings) if machine else []
    catalog: Catalog | None = None
    try:
        if settings.repo is None and settings.catalog:  # definitions named outside a repository
            where, catalog = str(settings.catalog), load_catalog(settings.catalog)
        else:
            folder, catalog = repository_catalog(settings)
            where = str(folder)
        results.append(ok("definitions", f"{where}: {len(catalog.entities)} entities, {len(catalog.views)} views"))
    except FeatureStoreError as exc:
        fix = "name the repository (--repo DIR, $FEATURESTORE_REPO) or create one (featurestore init DIR)"
        results.append(failure("definitions", exc, "" if " Fix: " in str(exc) else fix))
    try:
        url: str | None = settings.require_redis_url()
    except ConfigurationError as exc:
        url = None
        results.append(failure("redis", exc, "pass --redis-url, or set $FEATURESTORE_REDIS_URL or redis_url"))
    redis_ok = False
    if url is not None:
        redis_results = probe_redis(url, role)
        results += redis_results
        redis_ok = redis_results[0].check == "redis" and redis_results[0].level == OK
    if catalog is None:
        results.append(warn("registry", "not checked: the definitions did not load"))
    elif not redis_ok:
        results.append(warn("registry", "not checked: Redis is not reachable"))
    else:
        try:
            results.append(registry_result(probe_registry(catalog, url or "")))
        except FeatureStoreError as exc:
            results.append(registry_failure(exc))
    warehouse = settings.warehouse or str(DEFAULT_WAREHOUSE)
    if catalog is None:
        results.append(warn("warehouse", "not checked: the definitions did not load"))
    else:
        try:
            results.append(warehouse_result(warehouse, source_tables(catalog, warehouse)))
        except FeatureStoreError as exc:
            fix = "fix --warehouse / $FEATURESTORE_WAREHOUSE, or create the tables (sample ones: featurestore generate)"
            results.append(failure("warehouse", exc, fix))
    streams = sum(view.stream is not None for view in catalog.streaming_views) if catalog is not None else 0
    bootstrap = settings.kafka_bootstrap
    reachable = probe_kafka(bootstrap) if bootstrap else {}
    results.append(kafka_result(bootstrap, reachable, streams, role.name == "streaming-writer"))
    return results
