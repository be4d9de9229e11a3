"""The Feast online store on our storage format (Feast 0.67; the ``[feast]`` extra).

``feature_store.yaml``::

    online_store:
      type: featurestore.feast.FeatureStoreOnlineStore
      connection_string: redis://localhost:6379     # rediss://user:${REDIS_PASSWORD}@host:6380, ?cluster=true

Writes go through our writers' own command builders and the one wire: a batch view
(``feast materialize``) is ``HSET``/``HDEL``/``EXPIRE`` (:class:`BatchWritePlan`), a view with a
push or stream source (``store.push``) goes through :class:`StreamingWriter` (``HSETEX`` per
field with the view's ``ttl``, the out-of-order guard).  Reads go through
:class:`FeatureReader` / :class:`AsyncFeatureReader`, with Feast's ``ttl`` as ``max_age``, and
our statuses become Feast's field statuses (:func:`.mapping.feast_status`).

Feast is imported here at module level: this module is loaded only where Feast runs
(``featurestore.feast`` resolves its two classes lazily).  mypy sees Feast as ``Any``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from feast import Entity as FeastEntity
from feast import utils as feast_utils
from feast.infra.online_stores.online_store import OnlineStore
from feast.infra.supported_async_methods import SupportedAsyncMethods
from feast.protos.feast.serving.ServingService_pb2 import FieldStatus
from feast.protos.feast.types.EntityKey_pb2 import EntityKey as EntityKeyProto
from feast.protos.feast.types.Value_pb2 import FloatList
from feast.protos.feast.types.Value_pb2 import Value as ValueProto
from feast.repo_config import FeastConfigBaseModel, RepoConfig
from feast.type_map import feast_value_type_to_python_type

from featurestore.jobs.streaming.writer import DEFAULT_TIMEOUT_SECONDS, StreamingWriter
from featurestore.jobs.write.commands import BatchWritePlan, resp
from featurestore.readers import codec
from featurestore.readers.aio import AsyncFeatureReader
from featurestore.readers.definitions import FeatureView
from featurestore.readers.errors import WriteError
from featurestore.readers.reader import FeatureReader
from featurestore.readers.results import FeatureBatch
from featurestore.readers.settings import ConnectionSettings, redact_text
from featurestore.readers.wire import ASKING, WRITER_RETRY_SECONDS, RetryPolicy, Wire, encode

from .mapping import PROTO_FIELDS, FeastField, FeastViewSpec, catalog_for, feast_status, key_ttl, view_for

log = logging.getLogger(__name__)

__all__ = ["FeatureStoreOnlineStore", "FeatureStoreOnlineStoreConfig", "spec_of"]

_ROWS_PER_ROUND_TRIP = 1000
ReadRow = tuple[datetime | None, dict[str, Any] | None]


class FeatureStoreOnlineStoreConfig(FeastConfigBaseModel):  # type: ignore[misc]  # Feast is untyped here
    """The ``online_store`` block of ``feature_store.yaml`` for this store."""

    type: Literal["featurestore.feast.FeatureStoreOnlineStore", "featurestore.feast.store.FeatureStoreOnlineStore"] = (
        "featurestore.feast.FeatureStoreOnlineStore"
    )
    # our connection string: redis:// or rediss:// (TLS), user:password@ for an ACL user,
    # ?cluster=true for a Redis Cluster; Feast expands ${ENV} in the yaml, so keep the password there
    connection_string: str = "redis://localhost:6379"
    # the TTL of views declared without one (every value in our store expires); None: refuse them
    default_ttl_seconds: int | None = None
    # per read call, retries included (the reader's timeout); writes retry for WRITER_RETRY_SECONDS
    timeout_seconds: float = 1.0
    # pushed views: skip an event older than the stored one (the out-of-order guard)
    guard: bool = True
    # batch views: "text" (one readable field per feature) or "compact" (one binary record, about a
    # third of the memory; docs/storage-format.md); pushed views are always text
    layout: Literal["text", "compact"] = "text"
    # one hash per (view, id), fs:<view>:{<id>}, instead of one per entity: two views of one entity
    # may then reuse feature names (Feast's pushed "fresh" copy of a batch view)
    hash_per_view: bool = False


def _ttl_seconds(view: Any) -> int:
    ttl = getattr(view, "ttl", None)
    return int(ttl.total_seconds()) if ttl else 0


def spec_of(view: Any) -> FeastViewSpec:
    """The plain-data :class:`FeastViewSpec` of a Feast ``FeatureView`` (its projection ignored)."""

    def field(f: Any) -> FeastField:
        return FeastField(f.name, f.dtype.to_value_type().name, int(getattr(f, "vector_length", 0) or 0))

    return FeastViewSpec(
        name=view.name,
        entities=tuple(view.entities),
        join_keys=tuple(field(c) for c in view.entity_columns),
        features=tuple(field(f) for f in view.features),
        ttl_seconds=_ttl_seconds(view),
        pushed=getattr(view, "stream_source", None) is not None,
        description=view.description or "",
    )


def _entity_id(key: Any) -> object:
    """Our entity id from Feast's ``EntityKey`` (one join key: :func:`view_for` refused the others)."""
    return feast_value_type_to_python_type(key.entity_values[0])


# Feast ValueType name -> a read value as Feast's ValueProto (mapping.PROTO_FIELDS, spelled out: one call each)
_PROTO_MAKERS: dict[str, Callable[[Any], Any]] = {
    "INT32": lambda v: ValueProto(int32_val=v),
    "INT64": lambda v: ValueProto(int64_val=v),
    "FLOAT": lambda v: ValueProto(float_val=v),
    "DOUBLE": lambda v: ValueProto(double_val=v),
    "STRING": lambda v: ValueProto(string_val=v),
    "BOOL": lambda v: ValueProto(bool_val=v),
    "FLOAT_LIST": lambda v: ValueProto(float_list_val=FloatList(val=v)),
}
assert set(_PROTO_MAKERS) == set(PROTO_FIELDS)


def _timestamp_ms(moment: datetime) -> int:
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return int(aware.timestamp() * 1000)


_FEAST_STATUS = {name: FieldStatus.Value(name) for name in ("PRESENT", "NOT_FOUND", "NULL_VALUE", "OUTSIDE_MAX_AGE")}


class _ViewState:
    """One Feast view as our view, with its readers and writers (built once per definition)."""

    def __init__(self, spec: FeastViewSpec, view: FeatureView) -> None:
        self.spec = spec
        self.view = view
        self.catalog = catalog_for([view])
        self.makers = {f.name: _PROTO_MAKERS[f.value_type] for f in spec.features}
        self.reader: FeatureReader | None = None
        self.async_readers: dict[int, AsyncFeatureReader] = {}
        self.streaming: StreamingWriter | None = None
        self.published = False


class FeatureStoreOnlineStore(OnlineStore):  # type: ignore[misc]  # Feast is untyped here
    """Feast's online store on redis-feature-store's format (docs/feast.md)."""

    def __init__(self) -> None:
        super().__init__()
        self._views: dict[tuple[str, str, FeastViewSpec], _ViewState] = {}
        # the same Feast objects come back call after call: skip rebuilding their spec (~25 us a read).
        # Keyed by identity, holding the objects so an id is not reused while it is in here
        self._by_identity: dict[tuple[int, int], tuple[Any, Any, _ViewState]] = {}
        self._wires: dict[str, Wire] = {}

    @property
    def async_supported(self) -> SupportedAsyncMethods:
        return SupportedAsyncMethods(read=True, write=False)

    # --- definitions -------------------------------------------------------------------

    def _config(self, config: RepoConfig) -> FeatureStoreOnlineStoreConfig:
        store_config: FeatureStoreOnlineStoreConfig = config.online_store
        return store_config

    def _state(self, config: RepoConfig, table: Any) -> _ViewState:
        store = self._config(config)
        known = self._by_identity.get((id(table), id(store)))
        if known is not None:
            return known[2]
        spec = spec_of(table)
        options = (store.default_ttl_seconds, store.layout, store.hash_per_view)
        cache_key = (store.connection_string, repr(options), spec)
        state = self._views.get(cache_key)
        if state is None:
            state = _ViewState(spec, view_for(spec, *options))
            self._views[cache_key] = state
        if len(self._by_identity) >= 1024:  # Feast made new objects (a registry refresh): forget the old
            self._by_identity.clear()
        self._by_identity[(id(table), id(store))] = (table, store, state)
        return state

    def _wire(self, config: RepoConfig) -> Wire:
        """The control and batch-write wire (primaries only; retries until the writers' deadline)."""
        url = self._config(config).connection_string
        wire = self._wires.get(url)
        if wire is None:
            # control commands get the streaming writer's timeout; batch writes retry until their deadline
            settings = ConnectionSettings.from_url(url, timeout=DEFAULT_TIMEOUT_SECONDS)
            wire = Wire(settings, policy=RetryPolicy(seconds=WRITER_RETRY_SECONDS), replicas=False)
            self._wires[url] = wire
        return wire

    def _publish(self, config: RepoConfig, state: _ViewState, run_id: str) -> None:
        """The view's definition into ``fs:registry``, which our readers check at start-up."""
        entry = codec.registry_entry(state.view, int(time.time() * 1000), run_id=run_id)
        self._wire(config).execute("HSET", codec.REGISTRY_KEY, state.view.name, entry, key=codec.REGISTRY_KEY)
        state.published = True

    def update(
        self,
        config: RepoConfig,
        tables_to_delete: Sequence[Any],
        tables_to_keep: Sequence[Any],
        entities_to_delete: Sequence[FeastEntity],
        entities_to_keep: Sequence[FeastEntity],
        partial: bool,
    ) -> None:
        """``feast apply``: refuse what we cannot represent (naming view, feature and type), then
        publish every kept view and drop the deleted ones (their data expires with its TTL)."""
        self._by_identity.clear()  # a view object edited in place (a notebook's re-apply) is seen afresh
        states = [self._state(config, table) for table in tables_to_keep]
        catalog_for([s.view for s in states])  # feature names unique per entity, across views
        for state in states:
            self._publish(config, state, run_id="feast:apply")
        log.info("feast apply: published %d views to %s", len(states), self._wire(config).settings.redacted_url)
        if tables_to_delete:
            names = [t.name for t in tables_to_delete]
            self._wire(config).execute("HDEL", codec.REGISTRY_KEY, *names, key=codec.REGISTRY_KEY)

    def teardown(self, config: RepoConfig, tables: Sequence[Any], entities: Sequence[FeastEntity]) -> None:
        """``feast teardown``: delete the views' fields from every entity hash, and their registry entries."""
        wire = self._wire(config)
        self._by_identity.clear()
        for table in tables:
            try:
                view = self._state(config, table).view
            except ValueError:  # never applied here: nothing of ours to remove
                continue
            fields = list(codec.record_fields(view)) if view.is_compact else [f.name.encode() for f in view.features]
            names = [*fields, codec.ts_field(view)]
            pattern = f"{codec.KEY_PREFIX.decode()}{view.entity.name}:*"
            for node in wire.primaries():
                cursor = b"0"
                while True:
                    cursor, keys = wire.execute_on(node, "SCAN", cursor, "MATCH", pattern, "COUNT", 1000)
                    if keys:  # one pipelined round trip per SCAN page
                        self._send(wire, view.name, list(keys), [[encode(b"HDEL", key, *names)] for key in keys])
                    if cursor in (b"0", 0, "0"):
                        break
            wire.execute("HDEL", codec.REGISTRY_KEY, view.name, key=codec.REGISTRY_KEY)
            log.info("feast teardown: removed view %r from %s", view.name, wire.settings.redacted_url)

    # --- writes ------------------------------------------------------------------------

    def online_write_batch(
        self,
        config: RepoConfig,
        table: Any,
        data: list[tuple[EntityKeyProto, dict[str, Any], datetime, datetime | None]],
        progress: Callable[[int], Any] | None,
    ) -> None:
        """Materialized rows (a batch view) or pushed rows (a streaming view) in our format."""
        state = self._state(config, table)
        if state.view.kind == "streaming":
            self._write_streaming(config, state, data, progress)
        else:
            self._write_batch(config, state, data, progress)

    async def online_write_batch_async(
        self,
        config: RepoConfig,
        table: Any,
        data: list[tuple[EntityKeyProto, dict[str, Any], datetime, datetime | None]],
        progress: Callable[[int], Any] | None,
    ) -> None:
        """``store.push_async(...)``: the same write, in a worker thread (our writers are synchronous;
        ``async_supported`` says so, so Feast's own server pushes synchronously)."""
        await asyncio.to_thread(self.online_write_batch, config, table, data, progress)

    def _write_streaming(
        self, config: RepoConfig, state: _ViewState, data: Sequence[Any], progress: Callable[[int], Any] | None
    ) -> None:
        if state.streaming is None:
            store = self._config(config)
            state.streaming = StreamingWriter.connect(
                store.connection_string, state.view, catalog=state.catalog, guard=store.guard, publish=True
            )
        for start in range(0, len(data), _ROWS_PER_ROUND_TRIP):
            chunk = data[start : start + _ROWS_PER_ROUND_TRIP]
            events = [
                (_entity_id(key), {n: feast_value_type_to_python_type(v) for n, v in values.items()}, _timestamp_ms(ts))
                for key, values, ts, _created in chunk
            ]
            state.streaming.write_many(events)
            if progress is not None:
                progress(len(chunk))

    def _write_batch(
        self, config: RepoConfig, state: _ViewState, data: Sequence[Any], progress: Callable[[int], Any] | None
    ) -> None:
        wire = self._wire(config)
        if not state.published:
            self._publish(config, state, run_id="feast:materialize")
        registry = wire.execute("HGETALL", codec.REGISTRY_KEY, key=codec.REGISTRY_KEY) or []
        entries = [codec.parse_registry_entry(raw) for raw in registry[1::2]]
        plan = BatchWritePlan.build(state.catalog, state.view)
        ttl = key_ttl(state.view, entries)
        assert state.view.ttl_seconds is not None
        plan = dataclasses.replace(
            plan, key_ttl=ttl, field_ttl=state.view.ttl_seconds if state.view.ttl_seconds < ttl else None
        )
        for start in range(0, len(data), _ROWS_PER_ROUND_TRIP):
            chunk = data[start : start + _ROWS_PER_ROUND_TRIP]
            keys: list[bytes] = []
            units: list[list[bytes]] = []
            for key, values, ts, _created in chunk:
                entity_id = _entity_id(key)
                python = {n: feast_value_type_to_python_type(v) for n, v in values.items()}
                commands = [resp(c) for c in plan.commands(entity_id, python, _timestamp_ms(ts))]
                keys.append(codec.entity_key(state.view.entity, entity_id))
                units.append(commands)
            self._send(wire, state.view.name, keys, units)
            if progress is not None:
                progress(len(chunk))

    def _send(self, wire: Wire, view: str, keys: list[bytes], units: list[list[bytes]]) -> None:
        def with_asking(position: int) -> bytes:
            return b"".join(ASKING + command for command in units[position])

        _, trip = wire.round_trip(
            keys, [b"".join(u) for u in units], wire.start(), counts=[len(u) for u in units], with_asking=with_asking
        )
        if trip.failed:
            unit = min(trip.failed)
            raise WriteError(
                f"Feast view {view!r}: Redis refused the write of {keys[unit].decode(errors='replace')} "
                f"at {wire.settings.redacted_url}: {redact_text(str(trip.failed[unit]))}"
            )

    # --- reads -------------------------------------------------------------------------

    def _reader(self, config: RepoConfig, state: _ViewState) -> FeatureReader:
        if state.reader is None:
            store = self._config(config)
            state.reader = FeatureReader(
                store.connection_string, catalog=state.catalog, timeout=float(store.timeout_seconds)
            )
        return state.reader

    async def _async_reader(self, config: RepoConfig, state: _ViewState) -> AsyncFeatureReader:
        loop = id(asyncio.get_running_loop())  # an asyncio connection belongs to its loop
        reader = state.async_readers.get(loop)
        if reader is None:
            store = self._config(config)
            reader = AsyncFeatureReader(
                store.connection_string, catalog=state.catalog, timeout=float(store.timeout_seconds)
            )
            state.async_readers[loop] = reader
        return reader

    @staticmethod
    def _features(state: _ViewState, requested: Sequence[str] | None) -> list[str]:
        return list(requested) if requested else [f.name for f in state.view.features]

    def _rows(self, state: _ViewState, batch: FeatureBatch) -> tuple[list[ReadRow], list[dict[str, str] | None]]:
        """Feast's rows (present values only) and each row's Feast status per feature, or None
        for a row Feast's own builder gets right (all present, or not found at all)."""
        rows: list[ReadRow] = []
        statuses: list[dict[str, str] | None] = []
        read_at = batch.read_at_ms / 1000.0
        makers = [state.makers[name] for name in batch.features]
        view = state.view.name
        for vector in batch:
            age = vector.age(view)
            if age is None:  # no _ts:<view>: every feature NOT_FOUND
                rows.append((None, None))
                statuses.append(None)
                continue
            moment = datetime.fromtimestamp(read_at - age, tz=UTC)
            if vector.all_present:
                values = {n: make(v) for n, make, v in zip(batch.features, makers, vector.values, strict=True)}
                rows.append((moment, values))
                statuses.append(None)
                continue
            row_status = {name: feast_status(status, age) for name, status in vector.statuses.items()}
            values = {
                n: make(v)
                for n, make, v in zip(batch.features, makers, vector.values, strict=True)
                if row_status[n] == "PRESENT"
            }
            rows.append((moment, values or None))
            statuses.append(row_status)
        return rows, statuses

    def _read(self, config: RepoConfig, table: Any, keys: list[Any], requested: Sequence[str] | None) -> Any:
        state = self._state(config, table)
        ids = [_entity_id(k) for k in keys]
        batch = self._reader(config, state).get_many(
            ids, self._features(state, requested), entity=state.view.entity.name
        )
        return self._rows(state, batch)

    async def _read_async(
        self, config: RepoConfig, table: Any, keys: list[Any], requested: Sequence[str] | None
    ) -> Any:
        state = self._state(config, table)
        ids = [_entity_id(k) for k in keys]
        reader = await self._async_reader(config, state)
        batch = await reader.get_many(ids, self._features(state, requested), entity=state.view.entity.name)
        return self._rows(state, batch)

    def online_read(
        self,
        config: RepoConfig,
        table: Any,
        entity_keys: list[EntityKeyProto],
        requested_features: list[str] | None = None,
    ) -> list[ReadRow]:
        """Feast's rows: each entity's view timestamp and its present (fresh) values."""
        rows, _ = self._read(config, table, entity_keys, requested_features)
        return rows  # type: ignore[no-any-return]

    async def online_read_async(
        self,
        config: RepoConfig,
        table: Any,
        entity_keys: list[EntityKeyProto],
        requested_features: list[str] | None = None,
    ) -> list[ReadRow]:
        rows, _ = await self._read_async(config, table, entity_keys, requested_features)
        return rows  # type: ignore[no-any-return]

    # Feast's generic response builder knows only PRESENT and NOT_FOUND; these two overrides
    # (the extension point Feast documents for batching reads) put our statuses in, value by value.

    def _read_features_per_fv(
        self,
        config: RepoConfig,
        grouped_refs: list[Any],
        join_key_values: dict[str, Any],
        entity_name_to_join_key_map: dict[str, Any],
        online_features_response: Any,
        full_feature_names: bool,
        include_feature_view_version_metadata: bool,
    ) -> None:
        for table, requested in grouped_refs:
            keys, idxs, output_len = _unique_keys(table, join_key_values, entity_name_to_join_key_map)
            rows, statuses = self._read(config, table, keys, requested)
            _populate(
                requested, rows, statuses, idxs, online_features_response, full_feature_names, table, output_len,
                include_feature_view_version_metadata,
            )  # fmt: skip

    async def _read_features_per_fv_async(
        self,
        config: RepoConfig,
        grouped_refs: list[Any],
        join_key_values: dict[str, Any],
        entity_name_to_join_key_map: dict[str, Any],
        online_features_response: Any,
        full_feature_names: bool,
        include_feature_view_version_metadata: bool,
    ) -> None:
        async def one(table: Any, requested: list[str]) -> Any:
            keys, idxs, output_len = _unique_keys(table, join_key_values, entity_name_to_join_key_map)
            rows, statuses = await self._read_async(config, table, keys, requested)
            return rows, statuses, idxs, output_len

        answers = await asyncio.gather(*(one(table, requested) for table, requested in grouped_refs))
        for (rows, statuses, idxs, output_len), (table, requested) in zip(answers, grouped_refs, strict=True):
            _populate(
                requested, rows, statuses, idxs, online_features_response, full_feature_names, table, output_len,
                include_feature_view_version_metadata,
            )  # fmt: skip

    async def close(self) -> None:
        for state in self._views.values():
            for reader in state.async_readers.values():
                await reader.close()
            state.async_readers.clear()


def _unique_keys(table: Any, join_key_values: dict[str, Any], join_keys: dict[str, Any]) -> tuple[list[Any], Any, int]:
    """The distinct entity keys of one view's request (Feast's helpers), where each request row points, and
    how many rows the response has: what the sync and async reads share."""
    values, idxs, output_len = feast_utils._get_unique_entities(table, join_key_values, join_keys)
    return feast_utils._get_entity_key_protos(values), idxs, output_len


def _populate(
    requested: list[str],
    rows: list[ReadRow],
    statuses: list[dict[str, str] | None],
    idxs: Any,
    response: Any,
    full_feature_names: bool,
    table: Any,
    output_len: int,
    include_version: bool,
) -> None:
    """Feast's own response builder, then our status of each value (it only knows PRESENT/NOT_FOUND)."""
    feast_utils._populate_response_from_feature_data(
        requested, rows, idxs, response, full_feature_names, table, output_len, include_version
    )
    vectors = response.results[len(response.results) - len(requested) :]
    for row, destinations in enumerate(tuple(idxs)):
        row_status = statuses[row]
        if row_status is None:
            continue
        for position, name in enumerate(requested):
            status = _FEAST_STATUS[row_status[name]]
            for out in destinations:
                vectors[position].statuses[out] = status
