"""The reader: typed feature vectors for inference, one round trip per call.

``get`` is one HMGET.  ``get_many`` is one pipelined round trip: the RESP for every HMGET
is built in one go from the prepared plan, sent with a single write (per shard in a
Cluster, all shards written before any is read), and the replies are parsed by hiredis
and decoded as they arrive.  All I/O goes through the one wire
(:mod:`featurestore.readers.wire`); this module only prepares and decodes.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from . import codec
from .definitions import Catalog, FeatureView, load_catalog
from .errors import ConfigurationError, ServerError
from .plan import Planner, ReadPlan
from .registry import check_registry
from .results import FeatureBatch, FeatureVector
from .settings import DEFAULT_TIMEOUT_SECONDS, ConnectionSettings, redact_text
from .wire import Wire, translate_error

if TYPE_CHECKING:
    from .metrics import ReaderMetrics

__all__ = ["BatchDecoder", "FeatureReader", "Features", "check_registry", "decode_one", "plan_many", "translate_error"]

Features = str | FeatureView | Sequence[str]


def _now_ms() -> int:
    return int(time.time() * 1000)


def registry_entries(reply: list[Any]) -> dict[bytes, bytes]:
    """An ``HGETALL fs:registry`` reply (a flat list) as a dict."""
    return dict(zip(reply[::2], reply[1::2]))


def refused_read(settings: ConnectionSettings, failed: dict[int, str]) -> ServerError:
    message = next(iter(failed.values()))
    return ServerError(f"Redis at {settings.redacted_url} refused HMGET: {redact_text(message)}")


class FeatureReader:
    """Serves typed feature vectors from Redis (standalone or Cluster).

    >>> reader = FeatureReader.connect("redis://localhost:6379")  # doctest: +SKIP
    >>> v = reader.get(42, ["txn_count_7d", "amount_mean_30d"])  # doctest: +SKIP
    >>> v["txn_count_7d"], v.status("amount_mean_30d"), v.age("user_transactions")  # doctest: +SKIP

    ``catalog`` is a :class:`Catalog` or the name of the module defining it (default:
    ``$FEATURESTORE_CATALOG``, then the example catalogue).  The constructor does no
    I/O; :meth:`connect` builds a reader and checks the registry at once (start-up),
    otherwise the check runs before the first read.  A feature the batch job
    materialized differently raises :class:`RegistryMismatchError`
    (``check_registry=False`` skips the check).
    """

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
        self._wire = Wire(self.settings)
        self._must_check = check_registry
        self.registry_status: dict[str, str] = {}
        self.metrics = metrics
        if metrics is not None:  # per instance: a reader without metrics runs the plain methods
            self.get = metrics.wrap("get", self.get)  # type: ignore[method-assign]
            self.get_many = metrics.wrap("get_many", self.get_many)  # type: ignore[method-assign]

    @classmethod
    def connect(cls, url: str, **options: Any) -> FeatureReader:
        """A reader, connected, with its definitions checked against the registry."""
        reader = cls(url, **options)
        try:
            reader._wire.connect(reader._wire.start(reader.settings.timeout))
            if reader._must_check:
                reader.check_registry()
        except BaseException:
            reader.close()
            raise
        return reader

    from_url = connect

    def check_registry(self) -> dict[str, str]:
        """Compare definitions with what was materialized; see :func:`check_registry`."""
        reply = self._wire.execute("HGETALL", codec.REGISTRY_KEY, key=codec.REGISTRY_KEY)
        self.registry_status = check_registry(self.catalog, registry_entries(reply))
        self._must_check = False
        return self.registry_status

    def plan(self, features: Features, entity: str | None = None) -> ReadPlan:
        """The prepared request for ``features`` (cached; exposed for inspection)."""
        return self._planner.plan(features, entity)

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
        plan = self._planner.plan(features, entity)
        key = plan.key(entity_id)
        if self._must_check:
            self.check_registry()
        wire = self._wire
        rows, trip = wire.round_trip((key,), (plan.command(key),), wire.start(timeout or self.settings.timeout))
        if trip.failed:
            raise refused_read(self.settings, trip.failed)
        return decode_one(plan, entity_id, rows[0], serve_stale)

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
        plan, keys, commands = plan_many(self._planner, entity_ids, features, entity)
        decoder = BatchDecoder(plan, len(keys), serve_stale)
        if not keys:
            return decoder.result(entity_ids, [])
        if self._must_check:
            self.check_registry()
        wire = self._wire
        rows, trip = wire.round_trip(keys, commands, wire.start(timeout or self.settings.timeout), on_reply=decoder)
        if trip.failed:
            raise refused_read(self.settings, trip.failed)
        return decoder.result(entity_ids, rows)

    def close(self) -> None:
        self._wire.close()

    def __enter__(self) -> FeatureReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"FeatureReader({self.settings!r})"


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
