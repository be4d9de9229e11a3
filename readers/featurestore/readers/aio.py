"""The asyncio reader: the same plans, commands and decoding as :class:`FeatureReader`.

Both are a :class:`~.core.ReaderCore` (requests and decoding, no I/O); only the I/O
differs: the asyncio driver of the one wire (:class:`featurestore.readers.wire.aio.AsyncWire`),
same routing, retries and errors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .core import Features, ReaderCore
from .results import FeatureBatch, FeatureVector
from .wire import Deadline
from .wire.aio import AsyncWire

if TYPE_CHECKING:
    from .metrics import ReaderMetrics


class AsyncFeatureReader(ReaderCore[AsyncWire]):
    """asyncio twin of :class:`FeatureReader`; build it with ``await AsyncFeatureReader.connect(url)``."""

    def _new_wire(self) -> AsyncWire:
        return AsyncWire(self.settings)

    def _instrument(self, metrics: ReaderMetrics) -> None:
        self.get = metrics.wrap_async("get", self.get)  # type: ignore[method-assign]
        self.get_many = metrics.wrap_async("get_many", self.get_many)  # type: ignore[method-assign]

    @classmethod
    async def connect(cls, url: str, **options: Any) -> AsyncFeatureReader:
        """Create a reader, connect, and (by default) check the registry."""
        reader = cls(url, **options)
        try:
            deadline = reader._wire.start(reader.settings.timeout)  # bounds connecting and the check
            await reader._wire.connect(deadline)
            if reader._must_check:
                await reader._check_registry(deadline)
        except BaseException:
            await reader.close()
            raise
        return reader

    async def check_registry(self) -> dict[str, str]:
        """Compare definitions with what was materialized (see :func:`check_registry`)."""
        return await self._check_registry(self._wire.start(self.settings.timeout))

    async def _check_registry(self, deadline: Deadline) -> dict[str, str]:
        keys, commands = self._registry_request()
        replies, trip = await self._wire.round_trip(keys, commands, deadline)
        return self._registry_checked(replies, trip)

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
        plan, key, command = self._get_request(entity_id, features, entity)
        wire = self._wire
        deadline = wire.start(self._seconds(timeout))  # one for the whole call, the check included
        if self._must_check:
            await self._check_registry(deadline)
        rows, trip = await wire.round_trip([key], [command], deadline)
        return self._vector(plan, entity_id, rows, trip, serve_stale)

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
        decoder, keys, commands = self._many_request(entity_ids, features, entity, serve_stale)
        if not keys:
            return decoder.result(entity_ids, [])
        wire = self._wire
        deadline = wire.start(self._seconds(timeout))  # one for the whole call, the check included
        if self._must_check:
            await self._check_registry(deadline)
        rows, trip = await wire.round_trip(keys, commands, deadline)
        return self._batch(decoder, entity_ids, rows, trip, decoded=False)

    async def close(self) -> None:
        await self._wire.close()

    async def __aenter__(self) -> AsyncFeatureReader:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"AsyncFeatureReader({self.settings!r})"
