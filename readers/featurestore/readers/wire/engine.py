"""The cluster round-trip engine: routing, redirects, retries and the deadline, with no I/O.

Callers send *units*: the commands of one key (one ``HMGET`` for the reader, a row's
``HSET``/``HDEL``/``EXPIRE`` for the batch writer, an event's ``HSETEX``/``FCALL`` for
the streaming writer).  A :class:`RoundTrip` says which units go to which node in each
attempt, takes what came back, and decides what happens next.  It owns the one
round-trip loop, :meth:`RoundTrip.steps`: a generator of what to do next, which every
driver steps through doing only the I/O::

    for step in trip.steps():
        if isinstance(step, list):         # an attempt: a Batch per node
            ...send each batch.units to batch.node (ASKING before each command if batch.asking),
            ...read the replies; trip.replied(batch, errors) or trip.lost(batch, exc, answered)
        elif isinstance(step, float):      # the backoff before the next attempt
            ...sleep(step)
        elif step is REFRESH:              # reload the slot map (on error: trip.last_error = exc)
            ...
        else:                              # RepairNodes: the caller's repair on those nodes
            ...
    if not trip.done:
        ...give up: the deadline has passed

The drivers: :meth:`.sync.Wire.run` (the sync reader, the streaming writer, the batch
writer's retries) and :meth:`.aio.AsyncWire.round_trip` (the asyncio reader).  The loop is
unit-tested here with byte-level fake replies and an injected clock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from .resp import ReplyKind, classify
from .retry import Deadline

Group = Callable[[Sequence[int], list[int]], dict[str, list[int]]]


class _Refresh:
    def __repr__(self) -> str:
        return "REFRESH"


REFRESH = _Refresh()  # the step "reload the slot map" (then the engine routes with it)


class RefusedReply(Exception):
    """An error reply no retry can fix (permission, authentication, out of memory)."""

    def __init__(self, message: str, node: str) -> None:
        super().__init__(message)
        self.message = message
        self.node = node


@dataclass(frozen=True)
class Batch:
    """The units one attempt sends to one node; ``asking``: each command follows an ``ASKING``."""

    node: str
    units: list[int]
    asking: bool = False


@dataclass(frozen=True)
class Repair:
    """Error replies the caller can fix between attempts, and how (e.g. the streaming
    writer's guard function, lost by a node that restarted without persistence).

    ``matches(reply)``: this failed reply is one the repair fixes; ``run(node)`` fixes it
    on ``node`` (before the next attempt, within the same deadline); ``what`` names the
    repair in the error raised when the deadline passes with the reply still coming back.
    """

    matches: Callable[[str], bool]
    run: Callable[[str], None]
    what: str


@dataclass(frozen=True)
class RepairNodes:
    """The step "run the caller's :class:`Repair` on these nodes"."""

    nodes: list[str]


Step = list[Batch] | float | _Refresh | RepairNodes


@dataclass
class RoundTrip:
    """The state of one operation over many units, across attempts until its deadline."""

    slots: Sequence[int]
    group: Group
    deadline: Deadline
    pending: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)  # unit -> error reply (e.g. WRONGTYPE)
    last_error: BaseException | str | None = None
    refresh_needed: bool = False
    retries: int = 0  # units re-sent after a transient error
    repairable: Callable[[str], bool] | None = None  # failed replies the caller repairs (Repair.matches)
    repair_on: set[str] = field(default_factory=set)  # nodes that answered a repairable reply last
    _asking: dict[int, str] = field(default_factory=dict)  # unit -> node named by ASK

    def __post_init__(self) -> None:
        if not self.pending:
            self.pending = list(range(len(self.slots)))

    @classmethod
    def of(
        cls, slots: Sequence[int], group: Group, deadline: Deadline, repairable: Callable[[str], bool] | None = None
    ) -> RoundTrip:
        return cls(slots=slots, group=group, deadline=deadline, repairable=repairable)

    @property
    def done(self) -> bool:
        return not self.pending

    def reroute(self, group: Group) -> None:
        """Route with a fresh slot map from the next attempt on."""
        self.group = group
        self.refresh_needed = False

    def batches(self) -> list[Batch]:
        """This attempt's batches: pending units grouped by node (redirected ones apart).

        Units whose slot no node serves right now stay pending (the failover is not
        over): they are retried after a topology refresh.
        """
        asked = self._asking
        plain = [u for u in self.pending if u not in asked] if asked else self.pending
        out: list[Batch] = []
        unserved: list[int] = []
        for node, units in self.group(self.slots, plain).items():
            if node:
                out.append(Batch(node, units))
            else:
                unserved += units
        if asked:
            by_node: dict[str, list[int]] = {}
            for unit in self.pending:
                if unit in asked:
                    by_node.setdefault(asked[unit], []).append(unit)
            out += [Batch(node, units, asking=True) for node, units in by_node.items()]
        self.pending, self._asking = unserved, {}
        if unserved:
            self.refresh_needed = True
            self.last_error = f"no node serves the slots of {len(unserved)} keys (the cluster is reconfiguring)"
        return out

    def replied(self, batch: Batch, errors: Sequence[tuple[int, str]] = ()) -> None:
        """Every unit of ``batch`` got its replies; ``errors`` holds (position, error reply) pairs.

        A unit with several commands is judged by its first error reply that is not
        ``EXECABORT`` (which only echoes the error that aborted a transaction).
        """
        seen: set[int] = set()
        for position, message in sorted(errors, key=lambda e: (e[0], e[1].startswith("EXECABORT"))):
            if position in seen:
                continue
            seen.add(position)
            unit = batch.units[position]
            kind, node = classify(message)
            if kind is ReplyKind.FATAL:
                raise RefusedReply(message, batch.node)
            if kind is ReplyKind.FAILED:
                if self.repairable is not None and self.repairable(message):
                    self.repair_on.add(batch.node)
                    self._retry(unit, message)
                    continue
                self.failed[unit] = message
                continue
            self._retry(unit, message)
            if kind is ReplyKind.ASK and node:
                self._asking[unit] = node
            else:
                self.refresh_needed = True

    def lost(self, batch: Batch, error: BaseException | str, answered: int = 0) -> None:
        """The connection to ``batch.node`` broke; units from ``answered`` on have no reply."""
        for unit in batch.units[answered:]:
            self._retry(unit, error)
        self.refresh_needed = True

    def _retry(self, unit: int, error: BaseException | str) -> None:
        self.pending.append(unit)
        self.retries += 1
        self.last_error = error

    def next_wait(self) -> float | None:
        """The wait before the next attempt, or None when the deadline has passed."""
        self.pending.sort()
        return self.deadline.next_wait()

    def steps(self, attempted: bool = False) -> Iterator[Step]:
        """The round-trip loop: what the driver does next, until every unit is done or
        the deadline has passed (then the generator ends with ``done`` still False).

        Each attempt (a list of :class:`Batch`) is followed, while units are pending, by
        the backoff (a float: the seconds to sleep), :data:`REFRESH` when a redirect or a
        lost connection asks for a fresh slot map, and :class:`RepairNodes` when nodes
        answered a reply the caller repairs.  ``attempted``: the driver already made the
        first attempt (e.g. a pipelined first send), start with the backoff.
        """
        if not attempted:
            yield self.batches()
        while self.pending:
            wait = self.next_wait()
            if wait is None:
                return
            yield wait
            if self.refresh_needed:
                yield REFRESH
                self.refresh_needed = False  # routed by the driver's (now fresh) slot map
            if self.repair_on:
                nodes, self.repair_on = sorted(self.repair_on), set()
                yield RepairNodes(nodes)
            yield self.batches()
