"""What the sync and the asyncio readers share, with no I/O: settings, catalogue, plans,
the registry check's state, the requests they send and the decoding of the replies.

:class:`~.reader.FeatureReader` and :class:`~.aio.AsyncFeatureReader` are this core plus a
driver of the one wire (:class:`~.wire.Wire` or :class:`~.wire.aio.AsyncWire`): each of
their methods builds its request here, makes the one round trip, and hands the replies
back here, so the two differ only in ``await``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from . import codec
from .definitions import Catalog, FeatureView
from .errors import ConfigurationError, ServerError
from .plan import Planner, ReadPlan
from .registry import check_registry
from .repository import load_catalog
from .results import FeatureBatch, FeatureVector
from .settings import DEFAULT_TIMEOUT_SECONDS, ConnectionSettings, redact_text
from .wire import RoundTrip, encode

if TYPE_CHECKING:
    from .metrics import ReaderMetrics

__all__ = ["BatchDecoder", "Features", "ReaderCore", "decode_one", "plan_many", "refused_read", "registry_entries"]

Features = str | FeatureView | Sequence[str]
WireT = TypeVar("WireT")


def _now_ms() -> int:
    return int(time.time() * 1000)


class ReaderCore(Generic[WireT]):
    """The state and the pure steps of a reader; subclasses add the wire and the I/O.

    The constructor does no I/O.  ``_new_wire()`` builds the subclass's driver and
    ``_instrument(metrics)`` wraps its ``get``/``get_many`` (sync or async wrappers).
    """

    _wire: WireT

    def __init__(
        self,
        url: str,
        *,
        catalog: Catalog | str | None = None,
        cluster: bool | None = None,
        read_from_replicas: bool | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        check_registry: bool = True,
        metrics: ReaderMetrics | None = None,
    ) -> None:
        self.settings = ConnectionSettings.from_url(
            url, cluster=cluster, read_from_replicas=read_from_replicas, timeout=timeout
        )
        self.catalog = catalog if isinstance(catalog, Catalog) else load_catalog(catalog)
        self._planner = Planner(self.catalog)
        self._wire = self._new_wire()
        self._must_check = check_registry
        self.registry_status: dict[str, str] = {}
        self.metrics = metrics
        if metrics is not None:  # per instance: a reader without metrics runs the plain methods
            self._instrument(metrics)

    def _new_wire(self) -> WireT:
        raise NotImplementedError

    def _instrument(self, metrics: ReaderMetrics) -> None:
        raise NotImplementedError

    def plan(self, features: Features, entity: str | None = None) -> ReadPlan:
        """The prepared request for ``features`` (cached; exposed for inspection)."""
        return self._planner.plan(features, entity)

    # --- requests and replies (the subclasses make the round trip in between) -----------

    def _seconds(self, timeout: float | None) -> float:
        """The budget of one call: its ``timeout``, else the reader's."""
        return timeout or self.settings.timeout

    @staticmethod
    def _registry_request() -> tuple[list[bytes], list[bytes]]:
        key = codec.REGISTRY_KEY
        return [key], [encode("HGETALL", key)]

    def _registry_checked(self, replies: list[Any], trip: RoundTrip) -> dict[str, str]:
        """Compare the definitions with the registry read (``HGETALL fs:registry``)."""
        if trip.failed:
            message = redact_text(next(iter(trip.failed.values())))
            raise ServerError(f"Redis at {self.settings.redacted_url} refused HGETALL: {message}")
        self.registry_status = check_registry(self.catalog, registry_entries(replies[0]))
        self._must_check = False
        return self.registry_status

    def _get_request(self, entity_id: object, features: Features, entity: str | None) -> tuple[ReadPlan, bytes, bytes]:
        """The plan, key and HMGET of a ``get``."""
        plan = self._planner.plan(features, entity)
        key = plan.key(entity_id)
        return plan, key, plan.command(key)

    def _many_request(
        self, entity_ids: Sequence[object], features: Features, entity: str | None, serve_stale: bool
    ) -> tuple[BatchDecoder, list[bytes], list[bytes]]:
        """The decoder, keys and HMGETs of a ``get_many`` (ids checked before any I/O)."""
        plan, keys, commands = plan_many(self._planner, entity_ids, features, entity)
        return BatchDecoder(plan, len(keys), serve_stale), keys, commands

    def _vector(
        self, plan: ReadPlan, entity_id: object, rows: list[Any], trip: RoundTrip, serve_stale: bool
    ) -> FeatureVector:
        if trip.failed:
            raise refused_read(self.settings, trip.failed)
        return decode_one(plan, entity_id, rows[0], serve_stale)

    def _batch(
        self,
        decoder: BatchDecoder,
        entity_ids: Sequence[object],
        rows: list[Any],
        trip: RoundTrip,
        *,
        decoded: bool = True,
    ) -> FeatureBatch:
        """The replies of a ``get_many`` as a batch (``decoded``: already, as they arrived)."""
        if trip.failed:
            raise refused_read(self.settings, trip.failed)
        if not decoded:
            for index, row in enumerate(rows):
                decoder(index, row)
        return decoder.result(entity_ids, rows)


def registry_entries(reply: list[Any]) -> dict[bytes, bytes]:
    """An ``HGETALL fs:registry`` reply (a flat list) as a dict."""
    return dict(zip(reply[::2], reply[1::2]))


def refused_read(settings: ConnectionSettings, failed: dict[int, str]) -> ServerError:
    message = next(iter(failed.values()))
    return ServerError(f"Redis at {settings.redacted_url} refused HMGET: {redact_text(message)}")


def plan_many(
    planner: Planner, entity_ids: Sequence[object], features: Features, entity: str | None
) -> tuple[ReadPlan, list[bytes], list[bytes]]:
    """The plan, keys and HMGET commands of a ``get_many`` (ids checked before any I/O)."""
    plan = planner.plan(features, entity)
    if isinstance(entity_ids, (str, bytes)):
        raise ConfigurationError("get_many() takes a sequence of ids; use get() for one id")
    keys = plan.keys(entity_ids)
    command = plan.command
    return plan, keys, [command(k) for k in keys]


def decode_one(plan: ReadPlan, entity_id: object, row: list[Any], serve_stale: bool) -> FeatureVector:
    """A ``get`` reply as a :class:`FeatureVector` (decoded in place)."""
    now = _now_ms()
    stamps = [0] * len(plan.views)
    missing, stale = plan.decode_row(row, now, serve_stale, stamps)
    return FeatureVector(entity_id, plan, row, missing, stale, stamps, now)


class BatchDecoder:
    """Decodes the replies of a ``get_many`` in place, one by one as they arrive."""

    __slots__ = ("missing", "now", "plan", "serve_stale", "stale", "stamps", "width")

    def __init__(self, plan: ReadPlan, count: int, serve_stale: bool) -> None:
        self.plan = plan
        self.now = _now_ms()
        self.serve_stale = serve_stale
        self.width = len(plan.views)
        self.missing = [0] * count
        self.stale = [0] * count
        self.stamps = [0] * (count * self.width)  # flat: no list per entity

    def __call__(self, index: int, row: list[Any]) -> None:
        self.missing[index], self.stale[index] = self.plan.decode_row(
            row, self.now, self.serve_stale, self.stamps, index * self.width
        )

    def result(self, entity_ids: Sequence[object], rows: list[Any]) -> FeatureBatch:
        return FeatureBatch(entity_ids, self.plan, rows, self.missing, self.stale, self.stamps, self.now)
