"""The batch writer: a Spark DataFrame of one batch view -> Redis, on the executors.

``write_view`` runs a ``mapInArrow`` task per partition (rows never come back to the
driver, only one small stats record per partition).  Each task:

* encodes each Arrow batch into RESP in bulk (featurestore.jobs.write.bulk_encoder: exactly the
  bytes of ``BatchWritePlan.commands``, the reference);
* writes bounded, non-transactional pipelines of ``pipeline_rows`` rows, up to
  ``in_flight`` pipelines at once, through the one Redis wire
  (:mod:`featurestore.readers.wire`): connections from its client factory (redis-py does
  the handshake: AUTH, TLS, SELECT), one :class:`~featurestore.readers.wire.Link` per
  node that counts the reply lines (hiredis parses only when an error reply shows up);
  in a Cluster the rows of a pipeline are grouped by the primary that owns their slot
  (the wire's slot map as a numpy table), every node is written before any is read;
* keeps each pipeline's retry bookkeeping in a :class:`~featurestore.readers.wire.RoundTrip`
  (one unit per row), and retries through the wire's one loop
  (:meth:`~featurestore.readers.wire.Wire.run`, with this writer's pipelining links as
  the attempt): rows that met a connection error, a timeout, ``MOVED``/``ASK``/
  ``TRYAGAIN``/``CLUSTERDOWN`` (and ``LOADING``/``MASTERDOWN``/``READONLY``) are re-sent
  with the wire's backoff and a fresh slot map, for at most ``retry_seconds`` per
  pipeline (the wire's :class:`~featurestore.readers.wire.RetryPolicy`), then the task
  gives up loudly with :class:`WriteError`.  Every command is idempotent, so a retried or
  re-run write leaves the same state;
* counts rows, entities, written and failed rows and retries back to the driver.

Rows whose id or vector cannot be encoded, and rows Redis refuses with a non-transient
error (e.g. ``WRONGTYPE``), are *failed* rows: counted, sampled in ``failures``, not
raised; the caller decides (``featurestore materialize`` fails the run).  See docs/writer.md.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from featurestore.jobs.write.commands import BatchWritePlan
from featurestore.jobs.write.throttle import (
    DEFAULT_ADAPTIVE_TARGET_MS,
    AdaptiveRate,
    Pacer,
    SharedBudget,
    redis_counter,
)
from featurestore.readers.definitions import Catalog, FeatureView
from featurestore.readers.errors import (
    AuthenticationError,
    FeatureStoreError,
    PermissionDeniedError,
    ServerError,
    UnsupportedServerError,
    WriteError,
)
from featurestore.readers.settings import ConnectionSettings, redact_text
from featurestore.readers.wire import (
    NETWORK_ERRORS,
    WRITER_RETRY_SECONDS,
    Batch,
    Deadline,
    Link,
    RefusedReply,
    RetryPolicy,
    RoundTrip,
    SlotMap,
    Wire,
    error_message,
    is_refused,
    refusal,
)

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa
    from pyspark.sql import DataFrame

    from featurestore.jobs.write.bulk_encoder import BatchEncoder, EncodedRows

__all__ = [
    "DEFAULT_IN_FLIGHT",
    "DEFAULT_PIPELINE_ROWS",
    "DEFAULT_RETRY_SECONDS",
    "DEFAULT_TIMEOUT_SECONDS",
    "MAX_FAILURE_SAMPLES",
    "STATS_SCHEMA",
    "BatchWriteStats",
    "PartitionStats",
    "PartitionWriter",
    "WriterOptions",
    "check_columns",
    "preflight",
    "write_view",
]

log = logging.getLogger(__name__)

DEFAULT_PIPELINE_ROWS = 1000
DEFAULT_IN_FLIGHT = 4  # pipelines per task sent before the oldest one's replies are read
DEFAULT_RETRY_SECONDS = WRITER_RETRY_SECONDS  # long enough to ride through a failover
DEFAULT_TIMEOUT_SECONDS = 10.0
MAX_FAILURE_SAMPLES = 10
_HEXPIRE_PROBE_KEY = b"fs:_probe:{hexpire}"  # never exists: the probe is a no-op
# The adaptive mode per task (rows/s): it starts low and adds a step every 0.2 s while the
# probe stays within the target, so a load that hurts serving is never started at full speed.
_ADAPTIVE_START = 2000.0
_ADAPTIVE_FLOOR = 500.0  # a load that never ends is no protection either
_ADAPTIVE_STEP = 1000.0
_ADAPTIVE_PIPELINE_ROWS = 200  # and at least 10 pipelines (probes) a second at lower rates
_CALIBRATION_PROBES = 16  # as many as the controller's window: the same statistic of both


@dataclass(frozen=True)
class BatchWriteStats:
    """What a batch write did, summed over partitions on the driver.

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


# The former name, still imported by featurestore.jobs.batch.materialize; the streaming


@dataclass(frozen=True)
class WriterOptions:
    """Settings shipped to the executors with the write plan."""

    redis_url: str
    computed_at_ms: int
    rows_per_second_per_task: float | None = None  # a local cap per task (tests, single writers)
    max_writes_per_sec: float | None = None  # the job-wide cap, shared through Redis (throttle_token)
    throttle_token: str | None = None  # names the job's shared budget counters (one per write_view)
    adaptive: bool = False  # AIMD on a PING probe: slow down when serving round trips grow
    adaptive_target_ms: float = DEFAULT_ADAPTIVE_TARGET_MS
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


# --- connections: the one wire ------------------------------------------------------


def _writer_wire(settings: ConnectionSettings, retry_seconds: float, timeout: float) -> Wire:
    """The wire of a write: primaries only, ``timeout`` per socket operation, and a
    retry budget of ``retry_seconds`` (no I/O yet)."""
    return Wire(settings, policy=RetryPolicy(seconds=retry_seconds), timeout=timeout, replicas=False)


def _supports_hexpire(wire: Wire, seconds: float) -> bool:
    """Probe with a no-op (the key does not exist); servers before 7.4 do not know HEXPIRE."""
    try:
        wire.execute("HEXPIRE", _HEXPIRE_PROBE_KEY, 1, "FIELDS", 1, "_", key=_HEXPIRE_PROBE_KEY, seconds=seconds)
    except ServerError as exc:
        if "unknown command" in str(exc).lower():
            return False
        raise
    return True


class _SlotTable:
    """The wire's slot map as a numpy table: ``owners[slot]`` indexes ``names``, -1 where
    no primary serves the slot (a failover or a resharding is under way)."""

    def __init__(self, slot_map: SlotMap) -> None:
        import numpy as np

        self.source = slot_map
        self.names = slot_map.primary_nodes
        index = {name: i for i, name in enumerate(self.names)}
        self.owners = np.array([index.get(name, -1) for name in slot_map.primaries], dtype=np.int64)
        # one node serves every slot (a standalone server): no per-row lookup
        self.single = self.names[0] if len(self.names) == 1 and slot_map.covered else None


# --- the partition writer -----------------------------------------------------------


@dataclass
class _Sent:
    """One node's part of a pipeline, written and not read yet."""

    link: Link
    generation: int  # the link's generation when written: another one means the replies are lost
    batch: Batch  # the engine's batch: its units are the pipeline's rows
    counts: np.ndarray  # replies per row (doubled after ASKING)
    lines: int  # reply lines in all when no reply is an error


@dataclass
class _Flight:
    """One pipeline: rows ``start`` .. ``start + size`` of ``encoded`` (unit ``u`` is row
    ``start + u``), its round trip across attempts, and its parts on their way."""

    batch: pa.RecordBatch
    encoded: EncodedRows
    start: int
    size: int
    trip: RoundTrip
    sent: list[_Sent] = field(default_factory=list)
    reported: int = 0  # entries of trip.failed already counted in the stats


class PartitionWriter:
    """Writes the rows of one partition (runs on an executor; usable on its own too).

    Up to ``options.in_flight`` pipelines are in flight per task: the next one is
    encoded and sent while Redis still works on the previous one (replies on a
    connection come back in order).  A pipeline that needs a retry first drains the
    others, then is retried synchronously, so a retry never reads another pipeline's
    replies.  ``wire`` is injectable (tests pass one on fake connections); its clock
    and sleep drive the retries and the throttle.
    """

    def __init__(
        self,
        plan: BatchWritePlan,
        options: WriterOptions,
        *,
        wire: Wire | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        from featurestore.jobs.write.bulk_encoder import BatchEncoder

        self.plan = plan
        self.options = options
        self.settings = ConnectionSettings.from_url(options.redis_url)
        self.wire = wire or _writer_wire(self.settings, options.retry_seconds, options.timeout)
        self.encoder: BatchEncoder = BatchEncoder(plan)
        self.stats = PartitionStats()
        self.links: dict[str, Link] = {}
        self.table: _SlotTable | None = None
        rate = options.rows_per_second_per_task
        self.pipeline_rows = max(1, options.pipeline_rows)
        self.pacer: Pacer | None = None
        self.adaptive: AdaptiveRate | None = None
        if options.adaptive:
            self.adaptive = AdaptiveRate(
                start=min(rate or _ADAPTIVE_START, _ADAPTIVE_START), floor=_ADAPTIVE_FLOOR, ceiling=rate,
                step=_ADAPTIVE_STEP, target=options.adaptive_target_ms / 1000.0, clock=self.wire.clock,
            )  # fmt: skip
            self.pacer = Pacer(self.adaptive.rate, self.wire.clock, self.wire.sleep)
            # small pipelines: the rate follows the probe closely, and bursts stay short
            self.pipeline_rows = min(self.pipeline_rows, _ADAPTIVE_PIPELINE_ROWS)
        elif rate:
            self.pacer = Pacer(rate, self.wire.clock, self.wire.sleep)
            self.pipeline_rows = max(1, min(self.pipeline_rows, int(rate / 10)))  # bursts of ~0.1 s of the rate
        self.budget: SharedBudget | None = None
        if options.max_writes_per_sec and options.throttle_token:
            take = redis_counter(self.wire, options.throttle_token, options.retry_seconds)
            self.budget = SharedBudget(options.max_writes_per_sec, take, wall, self.wire.sleep)
            # a window's allowance holds pipelines of at least two tasks
            self.pipeline_rows = max(1, min(self.pipeline_rows, self.budget.allowance // 2))
        self.probes = 0
        self.inflight: deque[_Flight] = deque()
        self._ids: list[pa.Array] = []
        self._id_rows = 0

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
        if self.adaptive is not None:
            log.info(
                "adaptive throttle of view %r: probe baseline %.0f us, limit %.0f us, %d probes, %d slow-downs, "
                "%d speed-ups, last rate %.0f rows/s", self.plan.view.name, (self.adaptive.baseline or 0) * 1e6,
                self.adaptive.limit * 1e6, self.probes, self.adaptive.decreases, self.adaptive.increases,
                self.adaptive.rate,
            )  # fmt: skip
        return self.stats

    def write_batch(self, batch: pa.RecordBatch) -> None:
        """Encode one Arrow batch and send it in pipelines of ``pipeline_rows`` rows."""
        from featurestore.jobs.write.bulk_encoder import key_slots

        if batch.num_rows == 0:
            return
        self.stats.rows += batch.num_rows
        encoded = self.encoder.encode(batch, self.options.computed_at_ms)
        for _, message in encoded.failures:
            self.stats.fail(message)
        if len(encoded) == 0:
            return
        self._connect()
        slots = key_slots(encoded.ids) if self.settings.cluster else None
        start = 0
        while start < len(encoded):
            size = min(self._pipeline_size(), len(encoded) - start)
            unit_slots = range(size) if slots is None else cast("Sequence[int]", slots[start : start + size])
            if self.budget is not None:  # claimed before sending: the job's rate holds across tasks
                self.budget.wait(size)
            trip = RoundTrip.of(unit_slots, self._group, self.wire.start())
            flight = _Flight(batch, encoded, start, size, trip)
            self._send(flight, trip.batches())
            self.inflight.append(flight)
            if self.adaptive is not None and self.pacer is not None:
                # probed while this pipeline is in flight: the wait an inference call sees now
                self.pacer.set_rate(self.adaptive.observe(self._probe()))
            if len(self.inflight) >= self.options.in_flight:
                self._finish_oldest()
            if self.pacer is not None:
                self.pacer.wait(size)
            start += size

    def _pipeline_size(self) -> int:
        """``pipeline_rows``; with the adaptive mode at most a tenth of a second of its rate,
        so a slow rate still probes often."""
        if self.adaptive is None:
            return self.pipeline_rows
        return max(1, min(self.pipeline_rows, int(self.adaptive.rate / 10)))

    def flush(self) -> None:
        """Wait for every pipeline in flight."""
        while self.inflight:
            self._finish_oldest()

    # --- topology -------------------------------------------------------------------

    def _connect(self) -> None:
        """The slot table, loaded on first use (retrying until the retry budget is spent)."""
        if self.table is not None:
            return
        deadline = self.wire.start()
        try:
            self.wire.wait_for_slot_map(deadline)
        except NETWORK_ERRORS as exc:
            if is_refused(exc):
                raise WriteError(f"{self.where}: Redis refused the connection: {_refused(exc)}") from None
            raise WriteError(
                f"{self.where}: cannot reach Redis (tried {deadline.attempt} times in "
                f"{self.options.retry_seconds:g}s): {_describe(exc)}. "
                "Writes are idempotent: re-run the job once Redis is reachable."
            ) from None
        assert self.wire.slot_map is not None
        self.table = _SlotTable(self.wire.slot_map)
        if self.adaptive is not None:  # the idle baseline, before this task writes anything
            self.adaptive.calibrate([self._probe() for _ in range(_CALIBRATION_PROBES)])

    def _probe(self) -> float:
        """The round trip of one PING (seconds) on its own connection: the adaptive signal."""
        clock = self.wire.clock
        started = clock()
        self.wire.execute("PING")
        self.probes += 1
        return clock() - started

    def _refresh(self, deadline: Deadline) -> None:
        """Reconnect, and reload the slot map (a standalone server: reconnect only); the
        wire's loop keeps a network error as the trip's last error and goes on."""
        for link in self.links.values():
            link.close()
        self.links.clear()  # new links take their connections from the wire's current pools
        try:
            self.wire.refresh(deadline)
        except NETWORK_ERRORS as exc:
            if is_refused(exc):
                raise WriteError(f"{self.where}: Redis refused the connection: {_refused(exc)}") from None
            raise
        finally:
            slot_map = self.wire.slot_map
            if slot_map is not None and (self.table is None or self.table.source is not slot_map):
                self.table = _SlotTable(slot_map)

    def _group(self, slots: Sequence[int], units: list[int]) -> dict[str, list[int]]:
        """The engine's ``group``: ``units`` (rows of a pipeline) by the primary of their
        slot, vectorised; ``""`` for rows of a slot no primary serves right now."""
        table = self.table
        assert table is not None
        if table.single is not None:
            return {table.single: units}
        import numpy as np

        slot_array = cast("np.ndarray", slots)
        picked: np.ndarray | None = None
        if len(units) == len(slot_array) and units[0] == 0 and units[-1] == len(units) - 1:
            owners = table.owners[slot_array]  # a first attempt: every row, in order
        else:
            picked = np.array(units, dtype=np.int64)
            owners = table.owners[slot_array[picked]]
        groups: dict[str, list[int]] = {}
        for owner in np.unique(owners).tolist():
            chosen = np.flatnonzero(owners == owner)
            groups[table.names[owner] if owner >= 0 else ""] = (chosen if picked is None else picked[chosen]).tolist()
        return groups

    def _link(self, node: str) -> Link:
        found = self.links.get(node)
        if found is None:
            name = node if self.settings.cluster else self.settings.redacted_url
            found = self.links[node] = Link(self.wire.pool(node), name)
        return found

    # --- one attempt: send, then collect --------------------------------------------

    def _send(self, flight: _Flight, batches: list[Batch]) -> None:
        """Write each node's part of the pipeline (``batches``: the engine's routing), no reads."""
        import numpy as np

        from featurestore.jobs.write.bulk_encoder import payload_bytes, with_asking

        encoded = flight.encoded
        for batch in batches:
            units = batch.units
            first = flight.start + units[0]
            contiguous = units[-1] - units[0] + 1 == len(units)
            rows: Any = slice(first, first + len(units)) if contiguous else np.array(units, np.int64) + flight.start
            counts = encoded.replies[rows]
            lines = int(encoded.lines[rows].sum())
            if batch.asking:  # rare: each command after an ASKING, built by the reference
                ts = self.options.computed_at_ms
                chosen = range(first, first + len(units)) if contiguous else rows.tolist()
                payload: Any = b"".join(
                    with_asking(self.encoder.reference_commands(flight.batch, int(encoded.rows[r]), ts)) for r in chosen
                )
                lines += int(counts.sum())  # the +OK of each ASKING
                counts = counts * 2
            elif contiguous:  # no copy
                payload = payload_bytes(encoded.payload.slice(first, len(units)))
            else:
                payload = payload_bytes(encoded.payload, rows)
            link = self._link(batch.node)
            try:
                link.open()
                link.send(payload)
            except NETWORK_ERRORS as exc:
                if is_refused(exc):
                    raise WriteError(f"{self.where}: Redis refused the connection: {_refused(exc)}") from None
                link.close()
                flight.trip.lost(batch, exc)
                continue
            flight.sent.append(_Sent(link, link.generation, batch, counts, lines))

    def _collect(self, flight: _Flight) -> None:
        """Read the replies of the pipeline's parts; the round trip learns which rows are
        done, to be retried (and where) or refused."""
        import numpy as np

        trip = flight.trip
        sent, flight.sent = flight.sent, []
        for part in sent:
            link, batch = part.link, part.batch
            if link.generation != part.generation:  # the connection broke after this was sent
                trip.lost(batch, f"the connection to {link.name} broke before the replies arrived")
                continue
            ends = np.cumsum(part.counts)
            errors: list[tuple[int, Any]] = []
            lost: BaseException | None = None
            answered = len(batch.units)
            try:
                link.read(int(ends[-1]), part.lines, errors)
            except NETWORK_ERRORS as exc:
                link.close()
                lost = exc
                answered = int(np.searchsorted(ends, link.received, side="right"))
            if errors:  # reply index -> the row (position in the batch) it answers
                positions = np.searchsorted(ends, [index for index, _ in errors], side="right").tolist()
                found = [(p, str(error)) for p, (_, error) in zip(positions, errors) if p < answered]
                done = batch if lost is None else Batch(batch.node, batch.units[:answered], batch.asking)
                try:
                    trip.replied(done, found)
                except RefusedReply as refused:  # NOPERM, OOM...: every row would be refused alike
                    raise WriteError(f"{self.where}: Redis refused the write: {redact_text(refused.message)}") from None
            if lost is not None:
                trip.lost(batch, lost, answered)
        self._report(flight)

    def _report(self, flight: _Flight) -> None:
        """Count the rows Redis refused for good (e.g. ``WRONGTYPE``) since the last report."""
        failed = flight.trip.failed
        if len(failed) == flight.reported:
            return
        for unit, message in list(failed.items())[flight.reported :]:
            entity_id = flight.encoded.ids[flight.start + unit].as_py().decode(errors="replace")
            self.stats.fail(f"{self.where}: the key of id {entity_id!r} was refused: {message}")
        flight.reported = len(failed)

    # --- pipelines done, and retried ------------------------------------------------

    def _finish_oldest(self) -> None:
        flight = self.inflight.popleft()
        self._collect(flight)
        if flight.trip.done:
            self._settle(flight)
            return
        # drain the other pipelines before retrying on the same connections
        others = list(self.inflight)
        self.inflight.clear()
        for other in others:
            self._collect(other)
        for each in (flight, *others):
            if not each.trip.done:
                self._retry(each)
            self._settle(each)

    def _retry(self, flight: _Flight) -> None:
        """Re-send the pipeline's pending rows through the wire's loop (its backoff, a fresh
        topology) until they are done or ``retry_seconds`` have passed (then WriteError)."""
        trip = flight.trip
        # The budget runs from the first retry: a pipeline drained behind another one's
        # retries keeps all of it.
        trip.deadline = self.wire.start()

        def attempt(batches: list[Batch]) -> None:
            self.stats.retries += 1
            self._send(flight, batches)
            self._collect(flight)

        self.wire.run(trip, attempt, attempted=True, refresh=self._refresh)
        if not trip.done:
            pending, attempts, last = len(trip.pending), trip.deadline.attempt, _describe(trip.last_error)
            self.stats.fail(f"{self.where}: gave up on {pending} rows after {attempts} attempts: {last}", count=pending)
            raise WriteError(
                f"{self.where}: could not write {pending} rows within {self.options.retry_seconds:g}s "
                f"({attempts} attempts); last error: {last}. "
                "Writes are idempotent: re-run the job once Redis is reachable."
            )

    def _settle(self, flight: _Flight) -> None:
        failed = flight.trip.failed
        self.stats.written += flight.size - len(failed)
        ids = flight.encoded.ids
        if not failed:
            self._remember_ids(ids.slice(flight.start, flight.size))
        else:
            done = [flight.start + unit for unit in range(flight.size) if unit not in failed]
            self._remember_ids(ids.take(done))

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
        links, self.links = list(self.links.values()), {}
        try:
            for link in links:
                link.close()
            self.wire.close()
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
    from featurestore.jobs.spark_types import view_schema

    expected = {field.name: field.dataType.simpleString() for field in view_schema(view).fields}
    missing = [name for name in expected if name not in types]
    if missing:
        raise WriteError(
            f"view {view.name!r}: the DataFrame lacks column(s) {missing} (it has {sorted(types)}); "
            "the writer needs the join key and one column per feature"
        )
    wrong = [f"{name} is {types[name]}, expected {spark}" for name, spark in expected.items() if types[name] != spark]
    if wrong:
        raise WriteError(f"view {view.name!r}: cast the DataFrame to the view's schema first: {'; '.join(wrong)}")


def preflight(
    plan: BatchWritePlan,
    settings: ConnectionSettings,
    retry_seconds: float,
    timeout: float,
    *,
    wire: Wire | None = None,
) -> None:
    """Reach Redis from the driver through the wire (with the write's retry budget) and
    check HEXPIRE support when the view needs it, so a wrong URL, a wrong password or an
    old server fails before Spark starts."""
    wire = wire or _writer_wire(settings, retry_seconds, timeout)
    view = f"view {plan.view.name!r}"
    deadline = wire.start()
    try:
        wire.wait_for_slot_map(deadline)
        wire.execute("PING", seconds=max(deadline.remaining(), 0.001))
        supported = plan.field_ttl is None or _supports_hexpire(wire, max(deadline.remaining(), 0.001))
    except (AuthenticationError, PermissionDeniedError) as exc:  # its own class: the fix is not a re-run
        raise exc.with_context(view) from None
    except FeatureStoreError as exc:  # the wire's own errors: unreachable, refused (URL redacted)
        raise WriteError(f"{view}: {exc}") from None
    except NETWORK_ERRORS as exc:  # loading a cluster's slot map
        if is_refused(exc):
            raise refusal(settings, error_message(exc)).with_context(view) from None
        raise WriteError(
            f"{view}: cannot reach Redis at {settings.redacted_url} "
            f"(tried {deadline.attempt} times in {retry_seconds:g}s): {_describe(exc)}"
        ) from None
    finally:
        wire.close()
    if not supported:
        raise UnsupportedServerError(
            f"{view}: its TTL ({plan.field_ttl}s) is shorter than the key TTL ({plan.key_ttl}s) "
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
    adaptive: bool = False,
    adaptive_target_ms: float = DEFAULT_ADAPTIVE_TARGET_MS,
) -> BatchWriteStats:
    """Write a batch view's rows from ``df`` into Redis, on the executors.

    ``df`` holds the entity's join key and one column per feature, already cast to the
    view's schema (int64 -> bigint, float64 -> double, float32 -> float, string, bool ->
    boolean, vector -> array<float>); nulls (and NaN) are written as absent fields.
    ``computed_at_ms`` goes into ``_ts:<view>``.  ``max_writes_per_sec`` caps the whole
    job's rate in rows (entities) per second: every task claims its rows from one budget
    per 0.1 s window, a counter in Redis (``fs:_throttle:{<job>}:<window>``, ``INCRBY``), so
    empty partitions and skew leave no share unused.  ``adaptive=True`` makes each task
    slow down (AIMD) when the round trip of a ``PING`` sent while it writes exceeds the
    idle round trip by more than ``adaptive_target_ms``: the load protects serving
    latency, at the highest rate that allows it (see docs/writer.md).
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
    _check_arguments(chosen, max_writes_per_sec, adaptive, adaptive_target_ms)
    settings = ConnectionSettings.from_url(redis_url)
    plan = BatchWritePlan.build(catalog, chosen)
    check_columns(df, chosen)
    started = time.monotonic()
    preflight(plan, settings, retry_seconds, timeout)
    selected = df.select(chosen.entity.join_key, *chosen.feature_names)
    options = WriterOptions(
        redis_url=redis_url,
        computed_at_ms=int(computed_at_ms),
        max_writes_per_sec=max_writes_per_sec,
        throttle_token=uuid.uuid4().hex if max_writes_per_sec is not None else None,
        adaptive=adaptive,
        adaptive_target_ms=adaptive_target_ms,
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
    stats = _summed_stats(records, time.monotonic() - started)
    log.info(
        "wrote %d of %d rows (%d entities, %d failed, %d retries) to %s in %.1fs", stats.written, stats.rows,
        stats.entities, stats.failed, stats.retries, settings.redacted_url, stats.seconds, extra={"view": chosen.name},
    )  # fmt: skip
    _raise_if_a_task_gave_up(records, stats, settings, chosen.name)
    return stats


def _check_arguments(
    view: FeatureView, max_writes_per_sec: float | None, adaptive: bool, adaptive_target_ms: float
) -> None:
    if not view.is_batch:
        raise WriteError(f"view {view.name!r} is a streaming view: write it with the streaming hook")
    if max_writes_per_sec is not None and max_writes_per_sec <= 0:
        raise WriteError(f"view {view.name!r}: max_writes_per_sec must be > 0, got {max_writes_per_sec!r}")
    if adaptive and adaptive_target_ms <= 0:
        raise WriteError(f"view {view.name!r}: adaptive_target_ms must be > 0, got {adaptive_target_ms!r}")


def _summed_stats(records: Sequence[Any], seconds: float) -> BatchWriteStats:
    """The tasks' stats records summed on the driver (a few failure samples kept)."""
    failures: list[str] = []
    for record in records:
        failures += [m for m in (record["failures"] or []) if len(failures) < MAX_FAILURE_SAMPLES]
    return BatchWriteStats(
        rows=sum(r["rows"] for r in records),
        entities=sum(r["entities"] for r in records),
        written=sum(r["written"] for r in records),
        failed=sum(r["failed"] for r in records),
        retries=sum(r["retries"] for r in records),
        seconds=seconds,
        failures=tuple(failures),
    )


def _raise_if_a_task_gave_up(
    records: Sequence[Any], stats: BatchWriteStats, settings: ConnectionSettings, view: str
) -> None:
    fatal = [r["fatal"] for r in records if r["fatal"]]
    if fatal:
        counts = f"{len(fatal)} of {len(records)} tasks gave up; {stats.written} of {stats.rows} rows written"
        reply = _refusal_reply(fatal[0])
        if reply is not None:  # permission or authentication: its own class, naming the user and the fix
            raise refusal(settings, reply).with_context(f"view {view!r} ({counts})")
        raise WriteError(f"{fatal[0]} ({counts})")


def _refused(exc: BaseException) -> str:
    """A refused handshake's reply with its code (``WRONGPASS ...``), for :func:`_refusal_reply`."""
    return redact_text(error_message(exc))


_REFUSAL_CODES = ("NOPERM", "WRONGPASS", "NOAUTH", "ERR ACL failure in script")


def _refusal_reply(fatal: str) -> str | None:
    """The permission or authentication reply inside a task's give-up message, if that is what it was."""
    found = [fatal.find(code) for code in _REFUSAL_CODES if code in fatal]
    return fatal[min(found) :] if found else None


def _last_line(message: str) -> str:
    """The most telling line of a Spark error (its Python traceback ends with the cause)."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    for line in reversed(lines):
        if "Error" in line or "Exception" in line:
            return line[:500]
    return (lines[-1] if lines else message)[:500]
