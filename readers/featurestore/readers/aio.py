"""The asyncio reader: the same plans, commands and decoding as :class:`FeatureReader`.

Only the I/O differs: the asyncio driver of the one wire
(:class:`featurestore.readers.wire.aio.AsyncWire`), same routing, retries and errors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from . import codec
from .definitions import Catalog, load_catalog
from .plan import Planner, ReadPlan
from .reader import BatchDecoder, Features, decode_one, plan_many, refused_read, registry_entries
from .registry import check_registry
from .results import FeatureBatch, FeatureVector
from .settings import DEFAULT_TIMEOUT_SECONDS, ConnectionSettings
from .wire import encode
from .wire.aio import AsyncWire

if TYPE_CHECKING:
    from .metrics import ReaderMetrics


class AsyncFeatureReader:
    """asyncio twin of :class:`FeatureReader`; build it with ``await AsyncFeatureReader.connect(url)``."""

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
        self._wire = AsyncWire(self.settings)
        self._must_check = check_registry
        self.registry_status: dict[str, str] = {}
        self.metrics = metrics
        if metrics is not None:  # per instance: a reader without metrics runs the plain methods
            self.get = metrics.wrap_async("get", self.get)  # type: ignore[method-assign]
            self.get_many = metrics.wrap_async("get_many", self.get_many)  # type: ignore[method-assign]

    @classmethod
    async def connect(cls, url: str, **options: Any) -> AsyncFeatureReader:
        """Create a reader, connect, and (by default) check the registry."""
        reader = cls(url, **options)
        try:
            await reader._wire.connect(reader._wire.start(reader.settings.timeout))
            if reader._must_check:
                await reader.check_registry()
        except BaseException:
            await reader.close()
            raise
        return reader

    async def check_registry(self) -> dict[str, str]:
        """Compare definitions with what was materialized (see :func:`check_registry`)."""
        key = codec.REGISTRY_KEY
        wire = self._wire
        replies, trip = await wire.round_trip([key], [encode("HGETALL", key)], wire.start(self.settings.timeout))
        if trip.failed:
            raise refused_read(self.settings, trip.failed)
        self.registry_status = check_registry(self.catalog, registry_entries(replies[0]))
        self._must_check = False
        return self.registry_status

    def plan(self, features: Features, entity: str | None = None) -> ReadPlan:
        return self._planner.plan(features, entity)

    async def get(
        self,
        entity_id: object,
        features: Features,
        *,
        entity: str | None = None,
        timeout: float | None = None,
        serve_stale: bool = False,
    ) -> FeatureVector:
        """One entity's features with one HMGET (see :meth:`FeatureReader.get`)."""
        plan = self._planner.plan(features, entity)
        key = plan.key(entity_id)
        if self._must_check:
            await self.check_registry()
        wire = self._wire
        rows, trip = await wire.round_trip([key], [plan.command(key)], wire.start(timeout or self.settings.timeout))
        if trip.failed:
            raise refused_read(self.settings, trip.failed)
        return decode_one(plan, entity_id, rows[0], serve_stale)

    async def get_many(
        self,
        entity_ids: Sequence[object],
        features: Features,
        *,
        entity: str | None = None,
        timeout: float | None = None,
        serve_stale: bool = False,
    ) -> FeatureBatch:
        """Many entities' features in one pipelined round trip (see :meth:`FeatureReader.get_many`)."""
        plan, keys, commands = plan_many(self._planner, entity_ids, features, entity)
        decoder = BatchDecoder(plan, len(keys), serve_stale)
        if not keys:
            return decoder.result(entity_ids, [])
        if self._must_check:
            await self.check_registry()
        wire = self._wire
        rows, trip = await wire.round_trip(keys, commands, wire.start(timeout or self.settings.timeout))
        if trip.failed:
            raise refused_read(self.settings, trip.failed)
        for index, row in enumerate(rows):
            decoder(index, row)
        return decoder.result(entity_ids, rows)

    async def close(self) -> None:
        await self._wire.close()

    async def __aenter__(self) -> AsyncFeatureReader:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"AsyncFeatureReader({self.settings!r})"
