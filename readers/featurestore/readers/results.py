"""What the reader returns: typed values, each with a status, and each view's age."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from .definitions import DType
from .errors import FeatureNotFoundError

if TYPE_CHECKING:
    from .plan import ReadPlan

_NEVER = -1


class FeatureStatus(StrEnum):
    """Why a value is what it is."""

    PRESENT = "present"  # the stored value, fresh
    MISSING = "missing"  # no value stored (never written, null, or expired): the default
    STALE = "stale"  # the view's `_ts` is older than its max_age: the default, not the old value


def _status(missing: int, stale: int, position: int) -> FeatureStatus:
    if missing >> position & 1:
        return FeatureStatus.MISSING
    if stale >> position & 1:
        return FeatureStatus.STALE
    return FeatureStatus.PRESENT


class FeatureVector:
    """The features of one entity, in the order they were requested."""

    __slots__ = ("_missing", "_now_ms", "_plan", "_stale", "_stamps", "entity_id", "values")

    def __init__(
        self,
        entity_id: object,
        plan: ReadPlan,
        values: list[Any],
        missing: int,
        stale: int,
        stamps: Sequence[int],
        now_ms: int,
    ) -> None:
        self.entity_id = entity_id
        self._plan = plan
        self.values = values  #: typed values in request order (defaults where not present)
        self._missing = missing
        self._stale = stale
        self._stamps = stamps
        self._now_ms = now_ms

    @property
    def features(self) -> tuple[str, ...]:
        return self._plan.names

    @property
    def read_at_ms(self) -> int:
        """When the values were judged (epoch ms): the ``now`` of their ages and staleness."""
        return self._now_ms

    def _position(self, name: str) -> int:
        try:
            return self._plan.index[name]
        except KeyError:
            raise FeatureNotFoundError(
                f"feature {name!r} was not requested (requested: {', '.join(self._plan.names)})"
            ) from None

    def __getitem__(self, name: str) -> Any:
        return self.values[self._position(name)]

    def __len__(self) -> int:
        return len(self.values)

    def status(self, name: str) -> FeatureStatus:
        return _status(self._missing, self._stale, self._position(name))

    @property
    def statuses(self) -> dict[str, FeatureStatus]:
        return {n: _status(self._missing, self._stale, i) for i, n in enumerate(self._plan.names)}

    @property
    def all_present(self) -> bool:
        return not (self._missing or self._stale)

    @property
    def found(self) -> bool:
        """True if at least one requested feature is stored (the entity exists)."""
        return self._missing != (1 << len(self.values)) - 1

    def age(self, view: str) -> float | None:
        """Seconds since the view's values were computed; None if it has no values."""
        for slot, ts in zip(self._plan.views, self._stamps):
            if slot.view.name == view:
                return None if ts == _NEVER else (self._now_ms - ts) / 1000.0
        raise FeatureNotFoundError(
            f"view {view!r} is not part of this request (views: {', '.join(s.view.name for s in self._plan.views)})"
        )

    @property
    def ages(self) -> dict[str, float | None]:
        return {
            slot.view.name: None if ts == _NEVER else (self._now_ms - ts) / 1000.0
            for slot, ts in zip(self._plan.views, self._stamps)
        }

    def to_dict(self) -> dict[str, Any]:
        return dict(zip(self._plan.names, self.values))

    def to_list(self) -> list[Any]:
        """The model's input: values in request order, defaults where not present."""
        return self.values

    def to_numpy(self, dtype: Any = None) -> Any:
        """A 1-D numpy array of the values (vectors flattened in place); needs numpy."""
        return _to_numpy(self._plan, [self.values], dtype)[0]

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{n}={v!r}" + ("" if s is FeatureStatus.PRESENT else f" ({s.value})")
            for (n, s), v in zip(self.statuses.items(), self.values)
        )
        return f"FeatureVector({self._plan.entity.name}={self.entity_id!r}: {shown})"


class FeatureBatch(Sequence[FeatureVector]):
    """The features of many entities, in the caller's order (duplicates allowed)."""

    __slots__ = ("_missing", "_now_ms", "_plan", "_stale", "_stamps", "entity_ids", "rows")

    def __init__(
        self,
        entity_ids: Sequence[object],
        plan: ReadPlan,
        rows: list[list[Any]],
        missing: list[int],
        stale: list[int],
        stamps: list[int],
        now_ms: int,
    ) -> None:
        self.entity_ids = entity_ids
        self._plan = plan
        self.rows = rows  #: one list of typed values per entity, in request order
        self._missing = missing
        self._stale = stale
        self._stamps = stamps
        self._now_ms = now_ms

    @property
    def features(self) -> tuple[str, ...]:
        return self._plan.names

    @property
    def read_at_ms(self) -> int:
        """When the values were judged (epoch ms): the ``now`` of their ages and staleness."""
        return self._now_ms

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> FeatureVector:  # type: ignore[override]
        width = len(self._plan.views)
        start = (index % len(self.rows)) * width
        return FeatureVector(
            self.entity_ids[index], self._plan, self.rows[index], self._missing[index],
            self._stale[index], self._stamps[start : start + width], self._now_ms,
        )  # fmt: skip

    def __iter__(self) -> Iterator[FeatureVector]:
        for i in range(len(self.rows)):
            yield self[i]

    def status(self, index: int, name: str) -> FeatureStatus:
        return self[index].status(name)

    def count(self, status: FeatureStatus) -> int:
        """How many (entity, feature) values have ``status``."""
        total = 0
        for i in range(len(self.rows)):
            missing, stale = self._missing[i], self._stale[i]
            if status is FeatureStatus.MISSING:
                total += bin(missing).count("1")
            elif status is FeatureStatus.STALE:
                total += bin(stale).count("1")
            else:
                total += len(self.rows[i]) - bin(missing | stale).count("1")
        return total

    def to_list(self) -> list[list[Any]]:
        """The model's input: one row per entity, values in request order."""
        return self.rows

    def to_numpy(self, dtype: Any = None) -> Any:
        """A 2-D numpy array, one row per entity (vectors flattened); needs numpy."""
        return _to_numpy(self._plan, self.rows, dtype)

    def __repr__(self) -> str:
        return f"FeatureBatch({len(self.rows)} x {self._plan.entity.name}, features={list(self._plan.names)})"


def _to_numpy(plan: ReadPlan, rows: list[list[Any]], dtype: Any) -> Any:
    try:
        import numpy as np
    except ImportError:
        raise ImportError("to_numpy() needs numpy: pip install numpy") from None
    strings = [f.name for f in plan.features if f.dtype is DType.STRING]
    if strings and dtype is None:
        return np.array(rows, dtype=object)
    if any(f.dtype is DType.VECTOR for f in plan.features):
        flat = [[x for v in row for x in (v if isinstance(v, (tuple, list)) else (v,))] for row in rows]
        return np.array(flat, dtype=dtype or np.float64)
    return np.array([[float("nan") if v is None else v for v in row] for row in rows], dtype=dtype or np.float64)
