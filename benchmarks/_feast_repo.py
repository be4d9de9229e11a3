"""The Feast repository both Feast side scripts use (``_feast_writer.py``, ``_feast_reader.py``):
one ``user`` entity and one ``bench_view`` over a Parquet file, Feast's Redis online store.
Runs in Feast's side venv: imports nothing from redis-feature-store."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any


def bench_store(
    workdir: Path,
    redis: str,
    schema: list[Any],
    *,
    online_store: Any = None,
    project: str = "feature_repo",
    registry: str = "registry.db",
) -> Any:
    """A ``FeatureStore`` with ``bench_view`` (``schema``: Feast ``Field`` s) applied; its online store is
    ``online_store`` (a Feast online-store config), else Feast's Redis store at ``redis`` (host:port)."""
    from feast import Entity, FeatureStore, FeatureView, FileSource, RepoConfig
    from feast.infra.online_stores.redis import RedisOnlineStoreConfig
    from feast.repo_config import RegistryConfig
    from feast.value_type import ValueType

    user = Entity(name="user", join_keys=["user_id"], value_type=ValueType.INT64)
    view = FeatureView(
        name="bench_view",
        entities=[user],
        ttl=timedelta(days=2),
        schema=schema,
        source=FileSource(path=str(workdir / "source.parquet"), timestamp_field="event_timestamp"),
        online=True,
    )
    config = RepoConfig(
        project=project,
        provider="local",
        registry=RegistryConfig(path=str(workdir / registry)),
        online_store=online_store or RedisOnlineStoreConfig(connection_string=redis),
        entity_key_serialization_version=3,
    )
    store = FeatureStore(config=config)
    store.apply([user, view])
    return store
