"""A Redis Cluster's slot map, parsed from ``CLUSTER SLOTS``: pure data, no I/O.

Nodes are named ``host:port``, as in ``MOVED``/``ASK`` redirects.  Keys are routed by
their hash slot (CRC16 of the hash tag: our keys ``fs:<entity>:{<id>}`` put the id in
braces, so the slot is the id's).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from redis.crc import key_slot

SLOTS = 16384

__all__ = ["SLOTS", "SlotMap", "key_slot"]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass(frozen=True)
class SlotMap:
    """Which primary (and replicas) serve each of the 16384 slots.

    ``primaries[slot]`` is a node name or ``""`` where no node serves the slot (while a
    failover or a resharding runs).
    """

    primaries: tuple[str, ...]
    replicas: tuple[tuple[str, ...], ...]

    @classmethod
    def from_cluster_slots(cls, reply: Sequence[Any]) -> SlotMap:
        """Parse a ``CLUSTER SLOTS`` reply: ``[[start, end, [host, port, id...], [replica]...]...]``."""
        primaries = [""] * SLOTS
        replicas: list[tuple[str, ...]] = [()] * SLOTS
        for entry in reply:
            start, end, primary, *others = entry
            name = f"{_text(primary[0])}:{int(primary[1])}"
            names = tuple(f"{_text(r[0])}:{int(r[1])}" for r in others)
            for slot in range(int(start), int(end) + 1):
                primaries[slot] = name
                replicas[slot] = names
        return cls(tuple(primaries), tuple(replicas))

    @classmethod
    def single(cls, name: str) -> SlotMap:
        """Every slot on one node (a standalone server)."""
        return cls((name,) * SLOTS, ((),) * SLOTS)

    @property
    def nodes(self) -> list[str]:
        """Every node named in the map, primaries first."""
        seen = dict.fromkeys(n for n in self.primaries if n)
        for names in self.replicas:
            seen.update(dict.fromkeys(names))
        return list(seen)

    @property
    def primary_nodes(self) -> list[str]:
        return list(dict.fromkeys(n for n in self.primaries if n))

    @property
    def covered(self) -> bool:
        return all(self.primaries)


class Router:
    """Routes slots to nodes; with ``replicas=True`` spreads reads over each shard's replicas."""

    def __init__(self, slots: SlotMap, *, replicas: bool = False) -> None:
        self.slots = slots
        self.replicas = replicas
        self._turn = itertools.count()
        nodes = slots.nodes
        self._single = nodes[0] if len(nodes) == 1 and slots.covered else None

    def node(self, slot: int, turn: int = 0) -> str:
        """The node for ``slot``, or ``""`` if none serves it right now."""
        if self.replicas:
            names = self.slots.replicas[slot]
            if names:
                return names[turn % len(names)]
        return self.slots.primaries[slot]

    def group(self, slots: Sequence[int], units: Iterable[int]) -> dict[str, list[int]]:
        """``units`` (indexes into ``slots``) grouped by node, in order.

        Reading from replicas, one round trip uses one replica per shard (the next one
        each time), so a batch costs one connection per shard, as with primaries.
        """
        if self._single is not None:  # a standalone server: no per-unit lookup
            return {self._single: list(units)}
        groups: dict[str, list[int]] = {}
        turn = next(self._turn) if self.replicas else 0
        node = self.node
        for unit in units:
            groups.setdefault(node(slots[unit], turn), []).append(unit)
        return groups
