"""The batch writer: a Spark DataFrame of one batch view -> Redis, on the executors.

``write_view`` runs a ``mapInArrow`` task per partition (rows never come back to the
driver, only one small stats record per partition).  Each task:

* encodes each Arrow batch into RESP in bulk (featurestore.jobs.resp_bulk: exactly the
  bytes of ``BatchWritePlan.commands``, the reference);
* opens one connection per Redis node (redis-py does the handshake: AUTH, TLS, SELECT),
  then writes bounded, non-transactional pipelines of ``pipeline_rows`` rows on the raw
  socket, up to ``in_flight`` pipelines at once, and counts the reply lines (hiredis
  parses only when an error reply shows up); in a Cluster the rows of a pipeline are grouped by the
  master that owns their slot, every node is written before any is read;
* retries rows that met a connection error, a timeout, ``MOVED``/``ASK``/``TRYAGAIN``/
  ``CLUSTERDOWN`` (and ``LOADING``/``MASTERDOWN``/``READONLY``), with exponential backoff
  and a fresh slot map, for at most ``retry_seconds`` per pipeline, then gives up loudly
  with :class:`WriteError`.  Every command is idempotent, so a retried or re-run write
  leaves the same state;
* counts rows, entities, written and failed rows and retries back to the driver.

Rows whose id or vector cannot be encoded, and rows Redis refuses with a non-transient
error (e.g. ``WRONGTYPE``), are *failed* rows: counted, sampled in ``failures``, not
raised; the caller decides (``featurestore materialize`` fails the run).  See docs/writer.md.
"""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from featurestore.jobs.commands import BatchWritePlan
from featurestore.readers.definitions import Catalog, DType, FeatureView
from featurestore.readers.errors import FeatureStoreError, UnsupportedServerError, WriteError
from featurestore.readers.reader import classify_error_reply
from featurestore.readers.settings import ConnectionSettings, redact_text

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa
    from pyspark.sql import DataFrame

    from featurestore.jobs.resp_bulk import BatchEncoder, EncodedRows

DEFAULT_PIPELINE_ROWS = 1000
DEFAULT_IN_FLIGHT = 4  # pipelines per task sent before the oldest one's replies are read
DEFAULT_RETRY_SECONDS = 30.0
DEFAULT_TIMEOUT_SECONDS = 10.0
MAX_FAILURE_SAMPLES = 10
# Replies that would refuse every row alike: stop at once instead of failing row by row.
_FATAL_REPLIES = ("NOPERM", "NOAUTH", "WRONGPASS", "OOM", "MISCONF")
_SPARK_TYPES = {
    DType.INT64: "bigint",
    DType.FLOAT64: "double",
    DType.FLOAT32: "float",
    DType.STRING: "string",
    DType.BOOL: "boolean",
    DType.VECTOR: "array<float>",
}
_ID_SPARK_TYPES = {"int64": "bigint", "string": "string"}


@dataclass(frozen=True)
class WriteStats:
    """What a write did, summed over partitions on the driver.

    * ``rows``: input rows; ``written`` + ``failed`` == ``rows``.
    * ``entities``: distinct entity ids among the written rows (counted per partition,
      so exact when duplicates of an id share a partition, as after a ``groupBy``).
    * ``written``: rows whose commands all succeeded.
    * ``failed``: rows not written (unencodable id or value, or a non-transient error
      reply); ``failures`` holds a few sample messages, redacted.
    * ``retries``: pipelines re-sent after a transient error.
    * ``seconds``: wall-clock time of the write on the driver.
    """

    rows: int
    entities: int
    written: int
    failed: int
    retries: int
    seconds: float
    failures: tuple[str, ...] = ()

    @property
    def rows_per_second(self) -> float:
        return self.written / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class WriterOptions:
    """Settings shipped to the executors with the write plan."""

    redis_url: str
    computed_at_ms: int
    rows_per_second_per_task: float | None = None
    pipeline_rows: int = DEFAULT_PIPELINE_ROWS
    retry_seconds: float = DEFAULT_RETRY_SECONDS
    timeout: float = DEFAULT_TIMEOUT_SECONDS
    in_flight: int = DEFAULT_IN_FLIGHT

    def __repr__(self) -> str:  # never show the password
        return f"WriterOptions(redis_url={redact_text(self.redis_url)!r}, pipeline_rows={self.pipeline_rows})"


@dataclass
class PartitionStats:
    """Counts of one partition (one task)."""

    rows: int = 0
    entities: int = 0
    written: int = 0
    failed: int = 0
    retries: int = 0
    failures: list[str] = field(default_factory=list)
    fatal: str | None = None

    def fail(self, message: str, count: int = 1) -> None:
        self.failed += count
        if len(self.failures) < MAX_FAILURE_SAMPLES:
            self.failures.append(redact_text(message))


# --- connections --------------------------------------------------------------------


class _Link:
    """One connection to one node: redis-py connects and authenticates, then the writer
    uses the raw socket (redis-py's per-command path is the ~0.1-0.2x writer this one
    replaces)."""

    def __init__(self, client: Any, name: str) -> None:
        self.client = client
        self.name = name
        self.connection: Any = None
        self.sock: Any = None
        self.reader: Any = None
        self.received = 0
        self.pending = b""  # reply bytes read past the previous pipeline's replies
        self.generation = 0  # bumped on close: replies of what was sent before are lost

    def open(self) -> None:
        if self.sock is not None:
            return
        import hiredis

        connection = self.client.connection_pool.get_connection()
        sock = getattr(connection, "_sock", None)
        if sock is None:  # pragma: no cover - would mean redis-py changed its internals
            connection.disconnect()
            raise WriteError(f"redis-py connection to {self.name} exposes no socket; pin redis>=5.2,<9")
        self.connection, self.sock, self.reader = connection, sock, hiredis.Reader()

    def send(self, data: Any) -> None:
        self.sock.sendall(data)

    def read(self, count: int, lines: int, errors: list[tuple[int, Any]]) -> None:
        """Read ``count`` replies (``lines`` RESP lines if none is an error); error replies
        are appended to ``errors`` with their index.

        Fast path: our commands answer integers and arrays of integers, one line each, so
        the bytes are only counted (newlines) and scanned for an error line (``-`` at a
        line start), not parsed reply by reply -- that Python loop costs about as much as
        all the rest of the task's I/O.  An error line hands the bytes to hiredis, which
        counts replies exactly.  Bytes past this pipeline's replies (the next pipeline's,
        already arrived) are kept for the next read.  ``self.received`` tells, also after
        an exception, how many replies arrived.
        """
        self.received = 0
        if self.reader.has_data():  # an earlier slow read left the next replies in hiredis
            self._parse(b"", count, errors, more=True)
            return
        recv = self.sock.recv
        seen = 0
        line_start = True  # the next byte begins a line
        chunks: list[bytes] = []
        data, self.pending = self.pending, b""
        try:
            while True:
                if not data:
                    data = recv(1 << 18)
                    if not data:
                        raise ConnectionError(f"{self.name} closed the connection")
                chunks.append(data)
                if (line_start and data[0] == 45) or b"\n-" in data:  # 45 == ord("-"): an error reply
                    break
                found = data.count(b"\n")
                if seen + found >= lines:
                    if seen + found > lines or data[-1] != 10:  # the next pipeline's replies follow
                        import numpy as np

                        newlines = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10)
                        self.pending = data[int(newlines[lines - seen - 1]) + 1 :]
                    self.received = count
                    return
                seen += found
                line_start = data[-1] == 10
                data = b""
        except BaseException:
            self.pending = b""
            self._parse(b"".join(chunks), count, errors, more=False)
            raise
        self._parse(b"".join(chunks), count, errors, more=True)

    def _parse(self, data: bytes, count: int, errors: list[tuple[int, Any]], *, more: bool) -> None:
        """Count replies with hiredis (after ``data``, reading on while ``more``)."""
        from hiredis import ReplyError

        reader = self.reader
        if data:
            reader.feed(data)
        got = 0
        try:
            while got < count:
                reply = reader.gets()
                if reply is False:
                    if not more:
                        return
                    chunk = self.sock.recv(1 << 18)
                    if not chunk:
                        raise ConnectionError(f"{self.name} closed the connection")
                    reader.feed(chunk)
                    continue
                if reply.__class__ is ReplyError:
                    errors.append((got, reply))
                got += 1
        finally:
            self.received = got

    def close(self) -> None:
        if self.sock is not None:
            self.generation += 1
        connection, self.connection, self.sock, self.reader = self.connection, None, None, None
        self.pending = b""
        if connection is not None:
            connection.disconnect()
            self.client.connection_pool.release(connection)


def _network_errors() -> tuple[type[BaseException], ...]:
    """Errors that mean "the node or the network": worth a retry."""
    import hiredis
    from redis.exceptions import RedisClusterException, RedisError

    return (OSError, RedisError, RedisClusterException, hiredis.ProtocolError)


def _fatal_errors() -> tuple[type[BaseException], ...]:
    """Errors no retry can fix (wrong password, missing ACL permission)."""
    from redis.exceptions import AuthenticationError, AuthorizationError, NoPermissionError

    return (AuthenticationError, AuthorizationError, NoPermissionError)


def _client_options(settings: ConnectionSettings, timeout: float) -> dict[str, Any]:
    return {"socket_timeout": timeout, "socket_connect_timeout": min(timeout, 5.0), "protocol": 2}


class _Target:
    """Where rows go: routes row indexes to links; refreshed after transient errors."""

    client: Any

    def route(
        self, encoded: EncodedRows, slots: np.ndarray | None, rows: np.ndarray, asking: dict[int, str]
    ) -> list[tuple[_Link | None, np.ndarray, bool]]:
        raise NotImplementedError

    def refresh(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def ping(self) -> None:
        self.client.ping()

    def supports_hexpire(self) -> bool:
        raise NotImplementedError


class _Standalone(_Target):
    def __init__(self, settings: ConnectionSettings, timeout: float) -> None:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self.settings = settings
        options = _client_options(settings, timeout)
        self.client = redis.Redis.from_url(settings.url, retry=Retry(NoBackoff(), 0), **options)
        self.link = _Link(self.client, settings.redacted_url)

    def route(
        self, encoded: EncodedRows, slots: np.ndarray | None, rows: np.ndarray, asking: dict[int, str]
    ) -> list[tuple[_Link | None, np.ndarray, bool]]:
        return [(self.link, rows, False)]

    def refresh(self) -> None:
        self.link.close()  # reconnect on the next send

    def supports_hexpire(self) -> bool:
        return _supports_hexpire(self.client)

    def close(self) -> None:
        self.link.close()
        self.client.close()


class _Cluster(_Target):
    """A Cluster: redis-py keeps the slot map; the writer keeps one link per master."""

    def __init__(self, settings: ConnectionSettings, timeout: float) -> None:
        import numpy as np
        from redis.cluster import RedisCluster

        self.settings = settings
        self.client = RedisCluster.from_url(
            settings.url, require_full_coverage=False, **_client_options(settings, timeout)
        )
        self.links: dict[str, _Link] = {}
        self.names: list[str] = []
        self.table = np.full(16384, -1, dtype=np.int64)
        self._load_slots()

    def _load_slots(self) -> None:
        import numpy as np

        names: dict[str, int] = {}
        table = np.full(16384, -1, dtype=np.int64)
        for slot, nodes in self.client.nodes_manager.slots_cache.items():
            if nodes:
                table[slot] = names.setdefault(nodes[0].name, len(names))
        self.names = list(names)
        self.table = table

    def link(self, name: str) -> _Link | None:
        found = self.links.get(name)
        if found is None:
            node = self.client.nodes_manager.get_node(node_name=name)
            if node is None:
                return None
            found = self.links[name] = _Link(self.client.get_redis_connection(node), name)
        return found

    def route(
        self, encoded: EncodedRows, slots: np.ndarray | None, rows: np.ndarray, asking: dict[int, str]
    ) -> list[tuple[_Link | None, np.ndarray, bool]]:
        import numpy as np

        assert slots is not None
        groups: list[tuple[_Link | None, np.ndarray, bool]] = []
        if asking:
            asked = np.fromiter((r in asking for r in rows.tolist()), dtype=bool, count=len(rows))
            by_target: dict[str, list[int]] = {}
            for row in rows[asked].tolist():
                by_target.setdefault(asking[row], []).append(row)
            for name, chosen in by_target.items():
                groups.append((self.link(name), np.array(chosen, dtype=np.int64), True))
            rows = rows[~asked]
        owners = self.table[slots[rows]]
        for owner in np.unique(owners).tolist():
            chosen = rows[owners == owner]
            groups.append((self.link(self.names[owner]) if owner >= 0 else None, chosen, False))
        return groups

    def refresh(self) -> None:
        for link in self.links.values():
            link.close()
        try:
            self.client.nodes_manager.initialize()
        except Exception:  # the next attempt tries again; the retry deadline bounds the loop
            return
        self._load_slots()

    def supports_hexpire(self) -> bool:
        return _supports_hexpire(self.client)

    def close(self) -> None:
        for link in self.links.values():
            link.close()
        self.client.close()


def _supports_hexpire(client: Any) -> bool:
    """Probe with a no-op (the key does not exist); servers before 7.4 do not know HEXPIRE."""
    from redis.exceptions import ResponseError

    try:
        client.execute_command("HEXPIRE", "fs:_probe:{hexpire}", 1, "FIELDS", 1, "_")
    except ResponseError as exc:
        if "unknown command" in str(exc).lower():
            return False
        raise
    return True


def _open_target(settings: ConnectionSettings, timeout: float) -> _Target:
    return _Cluster(settings, timeout) if settings.cluster else _Standalone(settings, timeout)


# --- the partition writer -----------------------------------------------------------


class _Throttle:
    """Keeps a task at or below ``rate`` rows per second (a simple schedule, no bursts
    longer than one pipeline)."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.start: float | None = None
        self.sent = 0

    def wait(self, rows: int) -> None:
        now = time.monotonic()
        if self.start is None:
            self.start = now
        self.sent += rows
        ahead = self.start + self.sent / self.rate - now
        if ahead > 0:
            time.sleep(ahead)


@dataclass
class _Flight:
    """One pipeline on its way: the rows sent to each link, and those not sent."""

    batch: pa.RecordBatch
    encoded: EncodedRows
    slots: np.ndarray | None
    rows: np.ndarray
    # (link, its generation when sent, rows, replies per row, reply lines in all)
    sent: list[tuple[_Link, int, np.ndarray, np.ndarray, int]] = field(default_factory=list)
    unsent: list[np.ndarray] = field(default_factory=list)
    error: BaseException | str | None = None


@dataclass
class _Outcome:
    ok: np.ndarray
    retry: np.ndarray
    asking: dict[int, str]
    error: BaseException | str | None


class PartitionWriter:
    """Writes the rows of one partition (runs on an executor; usable on its own too).

    Up to ``options.in_flight`` pipelines are in flight per task: the next one is
    encoded and sent while Redis still works on the previous one (replies on a
    connection come back in order).  A pipeline that needs a retry first drains the
    others, then is retried synchronously, so a retry never reads another pipeline's
    replies.
    """

    def __init__(self, plan: BatchWritePlan, options: WriterOptions) -> None:
        from featurestore.jobs.resp_bulk import BatchEncoder

        self.plan = plan
        self.options = options
        self.settings = ConnectionSettings.from_url(options.redis_url)
        self.encoder: BatchEncoder = BatchEncoder(plan)
        self.stats = PartitionStats()
        self.target: _Target | None = None
        self.throttle = _Throttle(options.rows_per_second_per_task) if options.rows_per_second_per_task else None
        self.pipeline_rows = max(1, options.pipeline_rows)
        if options.rows_per_second_per_task:  # bursts of at most ~0.1 s of the allowed rate
            self.pipeline_rows = max(1, min(self.pipeline_rows, int(options.rows_per_second_per_task / 10)))
        self.inflight: deque[_Flight] = deque()
        self._ids: list[pa.Array] = []
        self._id_rows = 0
        self._network = _network_errors()
        self._fatal = _fatal_errors()

    @property
    def where(self) -> str:
        return f"view {self.plan.view.name!r} at {self.settings.redacted_url}"

    def write(self, batches: Iterable[pa.RecordBatch]) -> PartitionStats:
        """Write every row of ``batches``; returns the counts (``fatal`` set on give-up)."""
        try:
            for batch in batches:
                self.write_batch(batch)
            self.flush()
        except FeatureStoreError as exc:
            self.stats.fatal = redact_text(str(exc))
        finally:
            self.close()
        self.stats.entities = self._count_entities()
        return self.stats

    def write_batch(self, batch: pa.RecordBatch) -> None:
        """Encode one Arrow batch and send it in pipelines of ``pipeline_rows`` rows."""
        import numpy as np

        from featurestore.jobs.resp_bulk import key_slots

        if batch.num_rows == 0:
            return
        self.stats.rows += batch.num_rows
        encoded = self.encoder.encode(batch, self.options.computed_at_ms)
        for _, message in encoded.failures:
            self.stats.fail(message)
        slots = key_slots(encoded.ids) if self.settings.cluster else None
        for start in range(0, len(encoded), self.pipeline_rows):
            rows = np.arange(start, min(start + self.pipeline_rows, len(encoded)), dtype=np.int64)
            self.inflight.append(self._send(_Flight(batch, encoded, slots, rows), rows, {}))
            if len(self.inflight) >= self.options.in_flight:
                self._finish_oldest()
            if self.throttle is not None:
                self.throttle.wait(len(rows))

    def flush(self) -> None:
        """Wait for every pipeline in flight."""
        while self.inflight:
            self._finish_oldest()

    def _finish_oldest(self) -> None:
        flight = self.inflight.popleft()
        outcome = self._collect(flight)
        if len(outcome.retry) == 0:
            self._settle(flight, outcome)
            return
        # drain the other pipelines before retrying on the same connections
        others = [(other, self._collect(other)) for other in self.inflight]
        self.inflight.clear()
        for each, result in [(flight, outcome), *others]:
            self._settle(each, result)

    def _settle(self, flight: _Flight, outcome: _Outcome) -> None:
        import numpy as np

        done = outcome.ok
        if len(outcome.retry):
            done = np.concatenate([done, self._retry(flight, outcome)])
        self.stats.written += len(done)
        if len(done) == len(flight.rows):
            self._remember_ids(flight.encoded.ids.slice(int(flight.rows[0]), len(flight.rows)))
        else:
            self._remember_ids(flight.encoded.ids.take(done))

    def _retry(self, flight: _Flight, outcome: _Outcome) -> np.ndarray:
        """Re-send the rows of ``outcome.retry`` with backoff and a fresh topology until
        they are done or ``retry_seconds`` have passed (then WriteError)."""
        import numpy as np

        done: list[np.ndarray] = []
        deadline = time.monotonic() + self.options.retry_seconds
        attempt = 1
        while len(outcome.retry):
            now = time.monotonic()
            if now >= deadline:
                pending = len(outcome.retry)
                self.stats.fail(
                    f"{self.where}: gave up on {pending} rows after {attempt} attempts: {_describe(outcome.error)}",
                    count=pending,
                )
                raise WriteError(
                    f"{self.where}: could not write {pending} rows within {self.options.retry_seconds:g}s "
                    f"({attempt} attempts); last error: {_describe(outcome.error)}. "
                    "Writes are idempotent: re-run the job once Redis is reachable."
                )
            self.stats.retries += 1
            time.sleep(min(0.05 * 2 ** (attempt - 1), 2.0, deadline - now) * random.uniform(0.5, 1.0))
            if self.target is not None:
                try:
                    self.target.refresh()
                except self._network:
                    pass
            attempt += 1
            outcome = self._collect(self._send(flight, np.sort(outcome.retry), outcome.asking))
            done.append(outcome.ok)
        return np.concatenate(done) if done else np.zeros(0, dtype=np.int64)

    def _connect(self) -> _Target:
        if self.target is None:
            self.target = _open_target(self.settings, self.options.timeout)
        return self.target

    def _send(self, flight: _Flight, rows: np.ndarray, asking: dict[int, str]) -> _Flight:
        """Route ``rows`` and write each node's pipeline (no reads); returns the flight."""
        from featurestore.jobs.resp_bulk import payload_bytes, with_asking

        flight = _Flight(flight.batch, flight.encoded, flight.slots, rows)
        encoded = flight.encoded
        try:
            groups = self._connect().route(encoded, flight.slots, rows, asking)
        except self._fatal as exc:
            raise WriteError(f"{self.where}: Redis refused the connection: {_describe(exc)}") from None
        except self._network as exc:
            flight.unsent.append(rows)
            flight.error = exc
            return flight
        for link, chosen, ask in groups:
            if link is None:
                flight.unsent.append(chosen)
                flight.error = "no master serves the slots of some rows (cluster reconfiguring)"
                continue
            counts = encoded.replies[chosen]
            lines = int(encoded.lines[chosen].sum())
            if ask:
                ts = self.options.computed_at_ms
                payload: Any = b"".join(
                    with_asking(self.encoder.reference_commands(flight.batch, int(encoded.rows[r]), ts))
                    for r in chosen.tolist()
                )
                lines += int(counts.sum())  # the +OK of each ASKING
                counts = counts * 2
            elif int(chosen[-1]) - int(chosen[0]) + 1 == len(chosen):  # contiguous: no copy
                payload = payload_bytes(encoded.payload.slice(int(chosen[0]), len(chosen)))
            else:
                payload = payload_bytes(encoded.payload, chosen)
            try:
                link.open()
                link.send(payload)
            except self._fatal as exc:
                raise WriteError(f"{self.where}: Redis refused the connection: {_describe(exc)}") from None
            except self._network as exc:
                link.close()
                flight.unsent.append(chosen)
                flight.error = exc
                continue
            flight.sent.append((link, link.generation, chosen, counts, lines))
        return flight

    def _collect(self, flight: _Flight) -> _Outcome:
        """Read the replies of a flight: which rows are done, to retry, or failed."""
        import numpy as np

        retry: list[np.ndarray] = list(flight.unsent)
        ok: list[np.ndarray] = []
        asking: dict[int, str] = {}
        last_error = flight.error
        for link, generation, rows, counts, lines in flight.sent:
            if link.generation != generation:  # the connection broke after this was sent
                retry.append(rows)
                continue
            errors: list[tuple[int, Any]] = []
            ends = np.cumsum(counts)
            try:
                link.read(int(ends[-1]), lines, errors)
                complete = len(rows)
            except self._network as exc:
                link.close()
                last_error = exc
                complete = int(np.searchsorted(ends, link.received, side="right"))
                retry.append(rows[complete:])
            bad = np.zeros(len(rows), dtype=bool)
            for index, error in errors:
                position = int(np.searchsorted(ends, index, side="right"))
                if position >= complete or bad[position]:
                    continue
                bad[position] = True
                row = int(rows[position])
                message = str(error)
                if message.startswith(_FATAL_REPLIES):
                    raise WriteError(f"{self.where}: Redis refused the write: {redact_text(message)}")
                retryable, ask_node = classify_error_reply(message)
                if retryable:
                    retry.append(np.array([row], dtype=np.int64))
                    last_error = message
                    if ask_node:
                        asking[row] = ask_node
                else:
                    entity_id = flight.encoded.ids[row].as_py().decode(errors="replace")
                    self.stats.fail(f"{self.where}: the key of id {entity_id!r} was refused: {message}")
            ok.append(rows[:complete][~bad[:complete]])
        empty = np.zeros(0, dtype=np.int64)
        return _Outcome(
            ok=np.concatenate(ok) if ok else empty,
            retry=np.concatenate(retry) if retry else empty,
            asking=asking,
            error=last_error,
        )

    def _remember_ids(self, ids: pa.Array) -> None:
        """Keep the written ids to count distinct entities (compacted as it grows)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        self._ids.append(ids)
        self._id_rows += len(ids)
        if self._id_rows > 1_000_000:
            unique = pc.unique(pa.chunked_array(self._ids, type=ids.type))
            self._ids, self._id_rows = [unique], len(unique)

    def _count_entities(self) -> int:
        import pyarrow as pa
        import pyarrow.compute as pc

        if not self._ids:
            return 0
        return len(pc.unique(pa.chunked_array(self._ids, type=self._ids[0].type)))

    def close(self) -> None:
        if self.target is not None:
            target, self.target = self.target, None
            try:
                target.close()
            except Exception:  # closing a broken connection must not hide the real outcome
                pass


def _describe(error: BaseException | str | None) -> str:
    if error is None:
        return "unknown"
    if isinstance(error, str):
        return redact_text(error)
    return redact_text(f"{type(error).__name__}: {error}")


# --- the driver side ----------------------------------------------------------------

STATS_SCHEMA = "rows long, entities long, written long, failed long, retries long, failures array<string>, fatal string"


def check_columns(df: DataFrame, view: FeatureView) -> None:
    """The DataFrame has the join key and every feature with the view's Spark types."""
    types = dict(df.dtypes)
    expected = {view.entity.join_key: _ID_SPARK_TYPES[view.entity.id_dtype]}
    expected.update({f.name: _SPARK_TYPES[DType(f.dtype)] for f in view.features})
    missing = [name for name in expected if name not in types]
    if missing:
        raise WriteError(
            f"view {view.name!r}: the DataFrame lacks column(s) {missing} (it has {sorted(types)}); "
            "the writer needs the join key and one column per feature"
        )
    wrong = [f"{name} is {types[name]}, expected {spark}" for name, spark in expected.items() if types[name] != spark]
    if wrong:
        raise WriteError(f"view {view.name!r}: cast the DataFrame to the view's schema first: {'; '.join(wrong)}")


def preflight(plan: BatchWritePlan, settings: ConnectionSettings, retry_seconds: float, timeout: float) -> None:
    """Reach Redis from the driver (with the same retry budget) and check HEXPIRE support
    when the view needs it, so a wrong URL or an old server fails before Spark starts."""
    deadline = time.monotonic() + retry_seconds
    network, fatal = _network_errors(), _fatal_errors()
    attempt = 0
    while True:
        try:
            target = _open_target(settings, timeout)
            try:
                target.ping()
                supported = plan.field_ttl is None or target.supports_hexpire()
            finally:
                target.close()
            break
        except fatal as exc:
            raise WriteError(
                f"view {plan.view.name!r}: Redis at {settings.redacted_url} refused the connection: {_describe(exc)}"
            ) from None
        except network as exc:
            attempt += 1
            if time.monotonic() >= deadline:
                raise WriteError(
                    f"view {plan.view.name!r}: cannot reach Redis at {settings.redacted_url} "
                    f"(tried {attempt} times in {retry_seconds:g}s): {_describe(exc)}"
                ) from None
            time.sleep(min(0.05 * 2**attempt, 1.0))
    if not supported:
        raise UnsupportedServerError(
            f"view {plan.view.name!r}: its TTL ({plan.field_ttl}s) is shorter than the key TTL ({plan.key_ttl}s) "
            f"of entity {plan.view.entity.name!r}, which needs HEXPIRE (Redis >= 7.4 or Valkey >= 9); "
            f"the server at {settings.redacted_url} does not know it"
        )


def _partition_function(
    plan: BatchWritePlan, options: WriterOptions
) -> Callable[[Iterable[pa.RecordBatch]], Iterable[pa.RecordBatch]]:
    def write_partition(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa

        stats = PartitionWriter(plan, options).write(batches)
        yield pa.RecordBatch.from_pydict(
            {
                "rows": [stats.rows],
                "entities": [stats.entities],
                "written": [stats.written],
                "failed": [stats.failed],
                "retries": [stats.retries],
                "failures": [stats.failures],
                "fatal": [stats.fatal],
            },
            schema=pa.schema(
                [
                    ("rows", pa.int64()),
                    ("entities", pa.int64()),
                    ("written", pa.int64()),
                    ("failed", pa.int64()),
                    ("retries", pa.int64()),
                    ("failures", pa.list_(pa.string())),
                    ("fatal", pa.string()),
                ]
            ),
        )

    return write_partition


def write_view(
    df: DataFrame,
    catalog: Catalog,
    view: FeatureView | str,
    redis_url: str,
    *,
    computed_at_ms: int,
    max_writes_per_sec: float | None = None,
    pipeline_rows: int = DEFAULT_PIPELINE_ROWS,
    retry_seconds: float = DEFAULT_RETRY_SECONDS,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    in_flight: int = DEFAULT_IN_FLIGHT,
) -> WriteStats:
    """Write a batch view's rows from ``df`` into Redis, on the executors.

    ``df`` holds the entity's join key and one column per feature, already cast to the
    view's schema (int64 -> bigint, float64 -> double, float32 -> float, string, bool ->
    boolean, vector -> array<float>); nulls (and NaN) are written as absent fields.
    ``computed_at_ms`` goes into ``_ts:<view>``.  ``max_writes_per_sec`` caps the whole
    job's rate in rows (entities) per second, shared among the concurrently running tasks.
    ``pipeline_rows`` rows go in one pipeline, ``in_flight`` pipelines per task at once;
    ``timeout`` is the socket timeout in seconds.

    Raises :class:`WriteError` (naming the view and the redacted URL) when the
    DataFrame does not fit the view, Redis cannot be reached or refuses every write
    (authentication, permissions, out of memory), or a pipeline could not be written
    within ``retry_seconds``; :class:`UnsupportedServerError` when the view needs HEXPIRE
    and the server lacks it.  Rows that cannot be encoded, or that Redis refuses one by
    one (e.g. ``WRONGTYPE``), are counted in ``failed`` instead.
    """
    chosen = catalog.view(view) if isinstance(view, str) else view
    if not chosen.is_batch:
        raise WriteError(f"view {chosen.name!r} is a streaming view: write it with the streaming hook")
    if max_writes_per_sec is not None and max_writes_per_sec <= 0:
        raise WriteError(f"view {chosen.name!r}: max_writes_per_sec must be > 0, got {max_writes_per_sec!r}")
    settings = ConnectionSettings.from_url(redis_url)
    plan = BatchWritePlan.build(catalog, chosen)
    check_columns(df, chosen)
    started = time.monotonic()
    preflight(plan, settings, retry_seconds, timeout)
    selected = df.select(chosen.entity.join_key, *chosen.feature_names)
    per_task = None
    if max_writes_per_sec is not None:
        tasks = max(1, min(selected.rdd.getNumPartitions(), selected.sparkSession.sparkContext.defaultParallelism))
        per_task = max_writes_per_sec / tasks
    options = WriterOptions(
        redis_url=redis_url,
        computed_at_ms=int(computed_at_ms),
        rows_per_second_per_task=per_task,
        pipeline_rows=pipeline_rows,
        retry_seconds=retry_seconds,
        timeout=timeout,
        in_flight=max(1, in_flight),
    )
    try:
        records = selected.mapInArrow(_partition_function(plan, options), STATS_SCHEMA).collect()
    except FeatureStoreError:
        raise
    except Exception as exc:  # a Spark task failed outside the writer's own handling
        raise WriteError(
            f"view {chosen.name!r}: the write to {settings.redacted_url} failed in Spark: "
            f"{redact_text(_last_line(str(exc)))}"
        ) from None
    seconds = time.monotonic() - started
    failures: list[str] = []
    for record in records:
        failures += [m for m in (record["failures"] or []) if len(failures) < MAX_FAILURE_SAMPLES]
    stats = WriteStats(
        rows=sum(r["rows"] for r in records),
        entities=sum(r["entities"] for r in records),
        written=sum(r["written"] for r in records),
        failed=sum(r["failed"] for r in records),
        retries=sum(r["retries"] for r in records),
        seconds=seconds,
        failures=tuple(failures),
    )
    fatal = [r["fatal"] for r in records if r["fatal"]]
    if fatal:
        raise WriteError(
            f"{fatal[0]} ({len(fatal)} of {len(records)} tasks gave up; {stats.written} of {stats.rows} rows written)"
        )
    return stats


def _last_line(message: str) -> str:
    """The most telling line of a Spark error (its Python traceback ends with the cause)."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    for line in reversed(lines):
        if "Error" in line or "Exception" in line:
            return line[:500]
    return (lines[-1] if lines else message)[:500]
