"""The reader: typed feature vectors for inference, one round trip per call.

``get`` is one HMGET.  ``get_many`` is one pipelined round trip: the RESP for every HMGET
is built in one go from the prepared plan, sent with a single write (per shard in a
Cluster, all shards written before any is read), and the replies are parsed by hiredis
and decoded as they arrive.  All I/O goes through the one wire
(:mod:`featurestore.readers.wire`); requests and decoding are the :class:`~.core.ReaderCore`
the asyncio reader shares.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .core import BatchDecoder, Features, ReaderCore, decode_one, plan_many
from .registry import check_registry
from .results import FeatureBatch, FeatureVector
from .wire import Deadline, Wire, translate_error

if TYPE_CHECKING:
    from .metrics import ReaderMetrics

__all__ = ["BatchDecoder", "FeatureReader", "Features", "check_registry", "decode_one", "plan_many", "translate_error"]


class FeatureReader(ReaderCore[Wire]):
    """Serves typed feature vectors from Redis (standalone or Cluster).

    >>> reader = FeatureReader.connect("redis://localhost:6379")  # doctest: +SKIP
    >>> v = reader.get(42, ["orders_7d_count", "basket_mean_30d"])  # doctest: +SKIP
    >>> v["orders_7d_count"], v.status("basket_mean_30d"), v.age("orders_7d")  # doctest: +SKIP

    ``catalog`` is a
    :class:`Catalog`, a feature repository folder, a ``definitions.py`` path or the name of
    the module defining it (default: ``$FEATURESTORE_CATALOG``, then the feature repository
    of ``$FEATURESTORE_REPO`` or the working directory, as the jobs find it: see
    :func:`featurestore.readers.repository.load_catalog`).  The constructor does no
    I/O; :meth:`connect` builds a reader and checks the registry at once (start-up),
    otherwise the check runs before the first read.  A feature the batch job
    materialized differently raises :class:`RegistryMismatchError`
    (``check_registry=False`` skips the check).  ``timeout`` (seconds) bounds each call,
    retries included; ``metrics`` (a :class:`ReaderMetrics`) times ``get``/``get_many``.
    """

    def _new_wire(self) -> Wire:
        return Wire(self.settings)

    def _instrument(self, metrics: ReaderMetrics) -> None:
        self.get = metrics.wrap("get", self.get)  # type: ignore[method-assign]
        self.get_many = metrics.wrap("get_many", self.get_many)  # type: ignore[method-assign]

    @classmethod
    def connect(cls, url: str, **options: Any) -> FeatureReader:
        """A reader, connected, with its definitions checked against the registry."""
        reader = cls(url, **options)
        try:
            deadline = reader._wire.start(reader.settings.timeout)  # bounds connecting and the check
            reader._wire.connect(deadline)
            if reader._must_check:
                reader._check_registry(deadline)
        except BaseException:
            reader.close()
            raise
        return reader

    from_url = connect

    def check_registry(self) -> dict[str, str]:
        """Compare definitions with what was materialized; see :func:`check_registry`."""
        return self._check_registry(self._wire.start(self.settings.timeout))

    def _check_registry(self, deadline: Deadline) -> dict[str, str]:
        keys, commands = self._registry_request()
        replies, trip = self._wire.round_trip(keys, commands, deadline)
        return self._registry_checked(replies, trip)

    def get(
        self,
        entity_id: object,
        features: Features,
        *,
        entity: str | None = None,
        timeout: float | None = None,
        serve_stale: bool = False,
    ) -> FeatureVector:
        """One entity's features with one HMGET.

        ``features`` is a view name, a :class:`FeatureView` or a list of feature names
        (``entity=`` disambiguates a name defined for several entities).  Missing and
        stale features hold their default; ``serve_stale=True`` returns the old value of
        a stale feature instead (its status stays *stale*).
        """
        plan, key, command = self._get_request(entity_id, features, entity)
        wire = self._wire
        deadline = wire.start(self._seconds(timeout))  # one for the whole call, the check included
        if self._must_check:
            self._check_registry(deadline)
        rows, trip = wire.round_trip((key,), (command,), deadline)
        return self._vector(plan, entity_id, rows, trip, serve_stale)

    def get_many(
        self,
        entity_ids: Sequence[object],
        features: Features,
        *,
        entity: str | None = None,
        timeout: float | None = None,
        serve_stale: bool = False,
    ) -> FeatureBatch:
        """Many entities' features in one pipelined round trip, in the caller's order."""
        decoder, keys, commands = self._many_request(entity_ids, features, entity, serve_stale)
        if not keys:
            return decoder.result(entity_ids, [])
        wire = self._wire
        deadline = wire.start(self._seconds(timeout))  # one for the whole call, the check included
        if self._must_check:
            self._check_registry(deadline)
        rows, trip = wire.round_trip(keys, commands, deadline, on_reply=decoder)
        return self._batch(decoder, entity_ids, rows, trip)

    def close(self) -> None:
        self._wire.close()

    def __enter__(self) -> FeatureReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"FeatureReader({self.settings!r})"
