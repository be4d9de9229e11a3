"""A local Apache Kafka broker (KRaft, no ZooKeeper) for the demo, the tests and laptops.

``featurestore kafka start`` and the pytest fixture both call :func:`start`, as
``featurestore redis start`` does for Redis (:mod:`.local_redis`).  The broker is the
official ``org.apache.kafka:kafka_2.13`` 4.1.1 from Maven Central (resolved once by
:mod:`featurestore.jobs.maven`, ``scripts/bootstrap`` does it ahead of time), run with the
Java that Spark uses, in combined mode (one process is broker and controller), on
loopback only.  Its work dir holds ``server.properties``, the log segments (``data/``),
the broker's log (``server.log``) and ``state.json`` (ports, pid), so the CLI can start it
in one process and stop it from another.  The default work dir is per user:
``$FEATURESTORE_HOME/kafka``; a broker started in another one is noted in
``$FEATURESTORE_HOME/started/kafka`` (:mod:`.started_servers`), so ``status`` and ``stop``
name it and the exact command that reaches it.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from featurestore.jobs import jvm, maven
from featurestore.jobs.core.settings import featurestore_home
from featurestore.jobs.dev import started_servers
from featurestore.readers.errors import ConfigurationError, FeatureStoreError

log = logging.getLogger(__name__)
_STATE_FILE = "state.json"
DEFAULT_PARTITIONS = 2


class LocalKafkaError(FeatureStoreError):
    """The local broker could not be started or stopped."""


def default_workdir() -> Path:
    """``$FEATURESTORE_HOME/kafka``: the same folder whatever the working directory."""
    return featurestore_home() / "kafka"


def _root(workdir: str | os.PathLike[str] | None) -> Path:
    return Path(workdir).absolute() if workdir is not None else default_workdir()


@dataclass
class LocalKafka:
    """A running local broker."""

    workdir: str
    host: str
    port: int
    controller_port: int
    pid: int

    @property
    def bootstrap(self) -> str:
        """``host:port``: the ``bootstrap.servers`` of its clients."""
        return f"{self.host}:{self.port}"

    def alive(self) -> bool:
        """Whether the broker process still runs (and is ours: its command line names its work dir)."""
        try:
            os.kill(self.pid, 0)
            with open(f"/proc/{self.pid}/cmdline", "rb") as cmdline:
                return self.workdir.encode() in cmdline.read()
        except ProcessLookupError:
            return False
        except OSError:  # no /proc: trust the pid
            return True

    def stop(self) -> None:
        stop(self.workdir)


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def server_properties(root: Path, host: str, port: int, controller_port: int, partitions: int) -> str:
    """The broker's configuration: one node, broker and controller, loopback, replication 1."""
    return "\n".join(
        [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@{host}:{controller_port}",
            f"listeners=PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller_port}",
            f"advertised.listeners=PLAINTEXT://{host}:{port}",
            "controller.listener.names=CONTROLLER",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name=PLAINTEXT",
            f"log.dirs={root / 'data'}",
            f"num.partitions={partitions}",
            "auto.create.topics.enable=true",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=4",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
            "log.retention.hours=168",
            "",
        ]
    )


_LOG4J = """rootLogger.level=INFO
rootLogger.appenderRef.file.ref=FILE
appender.file.type=File
appender.file.name=FILE
appender.file.fileName={log}
appender.file.layout.type=PatternLayout
appender.file.layout.pattern=[%d] %p %m (%c)%n
logger.kafka.name=kafka
logger.kafka.level=WARN
logger.apache.name=org.apache.kafka
logger.apache.level=WARN
"""


def _java() -> str:
    problem = jvm.java_problem()
    if problem:
        raise ConfigurationError(problem.replace("Spark needs", "Kafka needs"))
    found = jvm.find_java()
    assert found is not None
    return found


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _cluster_id() -> str:
    """A random Kafka cluster id (16 bytes, URL-safe base64).  Like Kafka's own
    ``Uuid.randomUuid``, never one that starts with ``-``: ``kafka-storage format -t <id>``
    would read that as an option and refuse it (about one id in 64)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def start(
    workdir: str | os.PathLike[str] | None = None,
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    partitions: int = DEFAULT_PARTITIONS,
    heap: str = "512m",
    timeout: float = 90.0,
) -> LocalKafka:
    """Start a KRaft broker as a daemon in ``workdir``; return once it accepts clients.

    ``port`` defaults to a free one; ``partitions`` is the partition count of topics that
    are created on first use.  Stop it with :func:`stop`.
    """
    root = _root(workdir)
    existing = load_state(root)
    if existing is not None and existing.alive():
        raise LocalKafkaError(
            f"{root} already has a running broker ({existing.bootstrap}); "
            f"run `{started_servers.stop_command('kafka', root)}` first"
        )
    if existing is not None:
        (root / _STATE_FILE).unlink()
    java = _java()
    classpath = os.pathsep.join(map(str, maven.resolve(maven.KAFKA_BROKER)))
    port = port or _free_port(host)
    if _answers(host, port):
        raise LocalKafkaError(f"port {port} on {host} is in use; choose another with --port or leave it out")
    controller_port = _free_port(host)
    root.mkdir(parents=True, exist_ok=True)
    properties = root / "server.properties"
    properties.write_text(server_properties(root, host, port, controller_port, partitions))
    (root / "log4j2.properties").write_text(_LOG4J.format(log=root / "server.log"))
    cluster_id = _cluster_id()
    if not (root / "data" / "meta.properties").exists():
        formatted = subprocess.run(
            [java, "-cp", classpath, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(properties)],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        if formatted.returncode != 0:
            raise LocalKafkaError(f"formatting the broker's storage failed: {formatted.stderr or formatted.stdout}")
    command = [
        java, f"-Xmx{heap}", "-Xms64m", "-XX:+UseSerialGC", "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={root / 'log4j2.properties'}", f"-Dfeaturestore.kafka.workdir={root}",
        "-cp", classpath, "kafka.Kafka", str(properties),
    ]  # fmt: skip
    with open(root / "stdout.log", "ab") as output:
        process = subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
    broker = LocalKafka(workdir=str(root), host=host, port=port, controller_port=controller_port, pid=process.pid)
    broker_state = root / _STATE_FILE
    broker_state.write_text(json.dumps(asdict(broker), indent=2))
    started_servers.remember("kafka", root)
    deadline = time.monotonic() + timeout
    while not _answers(host, port):
        if process.poll() is not None:
            (root / _STATE_FILE).unlink(missing_ok=True)
            started_servers.forget("kafka", root)
            tail = (root / "stdout.log").read_text(errors="replace")[-2000:]
            raise LocalKafkaError(f"the Kafka broker exited with {process.returncode}: {tail}")
        if time.monotonic() > deadline:
            stop(root)
            raise LocalKafkaError(f"the Kafka broker did not open {host}:{port} within {timeout:.0f}s (see {root})")
        time.sleep(0.1)
    log.info("started Kafka 4.1.1 (KRaft) at %s (work dir %s)", broker.bootstrap, root)
    return broker


def load_state(workdir: str | os.PathLike[str] | None = None) -> LocalKafka | None:
    """The broker recorded in ``workdir`` (default :func:`default_workdir`), running or not."""
    path = _root(workdir) / _STATE_FILE
    if not path.exists():
        return None
    return LocalKafka(**json.loads(path.read_text()))


def running(workdir: str | os.PathLike[str] | None = None) -> LocalKafka | None:
    """The broker recorded in ``workdir`` if it still runs, else None."""
    state = load_state(workdir)
    return state if state is not None and state.alive() else None


def stop(workdir: str | os.PathLike[str] | None = None, *, remove_data: bool = False) -> bool:
    """Stop the broker of ``workdir`` (SIGTERM, then SIGKILL after 20 s); False if none ran."""
    root = _root(workdir)
    state = load_state(root)
    started_servers.forget("kafka", root)
    if state is None:
        return False
    was_alive = state.alive()
    if was_alive:
        try:
            os.kill(state.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and state.alive() and not _zombie(state.pid):
            time.sleep(0.05)
        if state.alive() and not _zombie(state.pid):
            os.kill(state.pid, signal.SIGKILL)
    try:
        os.waitpid(state.pid, os.WNOHANG)  # our own child: reap it
    except ChildProcessError:
        pass
    (root / _STATE_FILE).unlink(missing_ok=True)
    if remove_data:
        import shutil

        shutil.rmtree(root / "data", ignore_errors=True)
    log.info("stopped the Kafka broker at %s (work dir %s)", state.bootstrap, root)
    return was_alive


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] == "Z"
    except OSError:
        return False
