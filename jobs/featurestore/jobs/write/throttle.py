"""How fast the batch writer may go: pure pacing logic, clocks and counters injected.

Three pieces, combined by :class:`~featurestore.jobs.write.partition_writer.PartitionWriter`:

* :class:`Pacer` keeps one task at or below a rate (a schedule: no burst longer than one
  pipeline), and its rate can change while it runs;
* :class:`SharedBudget` shares one job-wide allowance (``max_writes_per_sec``) among
  every task, whatever the number of tasks, empty partitions or skew: each window of
  ``window`` seconds (wall clock, aligned on every executor) holds ``rate * window`` rows,
  claimed with one counter per window (an ``INCRBY`` in Redis, see
  :func:`redis_counter`).  A task that finds the window full waits for the next one.
  Why a counter in Redis rather than ``rate / partitions``: Spark does not know which
  partitions hold rows, or how many, before it computes them; an even split leaves the
  share of an empty (or finished) partition unused;
* :class:`AdaptiveRate` is an AIMD controller: it raises the task's rate by a step per
  interval while a latency probe (the round trip of a ``PING`` sent while the task's own
  pipelines are in flight: what an inference ``HMGET`` waits behind) stays within
  ``target`` seconds of the idle baseline measured before the first write, and cuts it
  by 30 % when the probes go above.  Every task runs its own controller (like TCP flows, they
  converge to a fair share); the shared budget, when set, still caps the sum.

The logic does no I/O: the clocks, ``sleep`` and the counter are arguments, so it is
unit-tested on an injected clock (tests/unit/writer/test_throttle.py).  Only
:func:`redis_counter`, the budget's counter in Redis, talks to a server (through the wire).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from featurestore.readers.wire import Wire

__all__ = [
    "DEFAULT_ADAPTIVE_TARGET_MS",
    "DEFAULT_WINDOW_SECONDS",
    "AdaptiveRate",
    "Pacer",
    "SharedBudget",
    "redis_counter",
]

DEFAULT_WINDOW_SECONDS = 0.1  # the shared budget's window: bursts of at most 0.1 s of the job's rate
DEFAULT_ADAPTIVE_TARGET_MS = 0.25  # how much a load may add to a serving round trip (see docs/writer.md)
_COUNTER_TTL_MS = 60_000  # a window's counter outlives any clock skew between executors, then goes

Clock = Callable[[], float]
Sleep = Callable[[float], None]


class Pacer:
    """Keeps a task at or below ``rate`` rows per second (a schedule, no bursts longer than
    one pipeline).  :meth:`set_rate` restarts the schedule from now at the new rate."""

    def __init__(self, rate: float, clock: Clock = time.monotonic, sleep: Sleep = time.sleep) -> None:
        self.rate = rate
        self.clock = clock
        self.sleep = sleep
        self.start: float | None = None
        self.sent = 0

    def set_rate(self, rate: float) -> None:
        if rate == self.rate:
            return
        if self.start is not None:  # keep what is owed at the old rate, then go on at the new one
            now = self.clock()
            self.start = max(now, self.start + self.sent / self.rate)
            self.sent = 0
        self.rate = rate

    def wait(self, rows: int) -> None:
        """Account ``rows`` just sent; sleep until the schedule allows the next pipeline."""
        now = self.clock()
        if self.start is None:
            self.start = now
        self.sent += rows
        ahead = self.start + self.sent / self.rate - now
        if ahead > 0:
            self.sleep(ahead)


class SharedBudget:
    """A job-wide allowance of ``rate`` rows per second shared by every task.

    ``take(window_index, rows)`` adds ``rows`` to the window's counter and returns its new
    total (atomic across tasks: Redis ``INCRBY``).  A window grants at most
    ``allowance = rate * window`` rows in all; a claim that overflows it keeps the part
    that fitted and claims the rest in the next window.  ``wall`` must be the same clock on
    every executor (wall time: the windows line up across machines up to their skew).
    """

    def __init__(
        self,
        rate: float,
        take: Callable[[int, int], int],
        wall: Clock = time.time,
        sleep: Sleep = time.sleep,
        window: float = DEFAULT_WINDOW_SECONDS,
    ) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be > 0, got {rate!r}")
        self.rate = rate
        self.take = take
        self.wall = wall
        self.sleep = sleep
        # a window holds at least one row: below 1/window rows/s the window grows instead
        self.window = max(window, 1.0 / rate)
        self.allowance = max(1, int(rate * self.window))
        self.claims = 0  # counter round trips, for the stats and the tests

    def wait(self, rows: int) -> None:
        """Block until ``rows`` rows are granted (call before sending them)."""
        need = rows
        while need > 0:
            now = self.wall()
            index = math.floor(now / self.window)
            total = self.take(index, need)
            self.claims += 1
            granted = max(0, min(need, self.allowance - (total - need)))
            need -= granted
            if need > 0:
                self.sleep(max(0.0, (index + 1) * self.window - now))


class AdaptiveRate:
    """AIMD on a latency probe: the rate a task may write at, given what serving sees.

    :meth:`calibrate` takes the idle round trips measured before the first write; the
    baseline is their upper quartile.  :meth:`observe` takes a probe's round trip (seconds)
    while the task writes and keeps the last ``window`` of them; once per ``interval`` the
    upper quartile of that window decides: above ``baseline + target`` the rate is multiplied by
    ``decrease``; otherwise it grows by ``step`` (additive), up to ``ceiling``; it never goes
    below ``floor``.  Why the upper quartile and not the worst probe: on a shared machine a
    single probe is often late for reasons of its own (the task was descheduled); a load
    that hurts serving delays many of them.  The baseline is the same statistic of the idle
    probes, so a machine that is noisy anyway (other processes on its cores) raises both
    alike and only the load's own delay counts.
    """

    def __init__(
        self,
        *,
        start: float,
        floor: float,
        ceiling: float | None,
        step: float,
        target: float,
        clock: Clock = time.monotonic,
        interval: float = 0.2,
        decrease: float = 0.7,
        window: int = 16,
    ) -> None:
        self.rate = start
        self.floor = floor
        self.ceiling = ceiling
        self.step = step
        self.target = target
        self.clock = clock
        self.interval = interval
        self.decrease = decrease
        self.baseline: float | None = None
        self.probes: deque[float] = deque(maxlen=window)
        self.since: float | None = None
        self.decreases = 0
        self.increases = 0

    @property
    def limit(self) -> float:
        """The probe round trip above which the rate goes down."""
        return (self.baseline or 0.0) + self.target

    def calibrate(self, samples: Sequence[float]) -> None:
        self.baseline = _upper_quartile(samples) if samples else 0.0

    def observe(self, seconds: float) -> float:
        """Record one probe; returns the rate to write at from now."""
        now = self.clock()
        if self.since is None:
            self.since = now
        self.probes.append(seconds)
        if now - self.since < self.interval:
            return self.rate
        self.since = now
        if _upper_quartile(self.probes) > self.limit:
            self.rate = max(self.floor, self.rate * self.decrease)
            self.decreases += 1
        else:
            grown = self.rate + self.step
            self.rate = grown if self.ceiling is None else min(self.ceiling, grown)
            self.increases += 1
        return self.rate


def _upper_quartile(samples: Iterable[float]) -> float:
    ordered = sorted(samples)
    return ordered[(3 * len(ordered)) // 4]


def redis_counter(wire: Wire, token: str, seconds: float) -> Callable[[int, int], int]:
    """The shared budget's ``take`` on Redis: ``INCRBY fs:_throttle:{<token>}:<window> n``
    through the wire (one slot for the whole job), with a TTL on each window's key.

    Each claim gets the write's whole retry budget (``seconds``), like the rows it paces:
    a failover of the counter's master must not fail a write that would ride it out."""

    def take(index: int, rows: int) -> int:
        key = f"fs:_throttle:{{{token}}}:{index}".encode()
        total: Any = wire.execute("INCRBY", key, rows, key=key, seconds=seconds)
        if int(total) == rows:  # the first claim of the window made the key: it must go away
            wire.execute("PEXPIRE", key, _COUNTER_TTL_MS, key=key, seconds=seconds)
        return int(total)

    return take
