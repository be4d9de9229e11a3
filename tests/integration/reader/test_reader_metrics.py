"""Reader metrics (the [metrics] extra) on a real Redis 8: latency, values by status, errors."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from featurestore.readers import FeatureReader
from featurestore.readers.aio import AsyncFeatureReader
from featurestore.readers.errors import FeatureNotFoundError
from featurestore.readers.metrics import CALL_SECONDS, ERRORS_TOTAL, VALUES_TOTAL, ReaderMetrics
from tests.helpers.reader import client_for, now_ms, scores, test_catalog, write_view

ROW = {"n_orders": 3, "spend": 9.5, "ratio": 0.5, "segment": "a", "is_vip": True, "embedding": [1.0, 2.0, 3.0]}


def values(registry: CollectorRegistry, feature: str, status: str) -> float:
    return registry.get_sample_value(VALUES_TOTAL, {"view": "scores", "feature": feature, "status": status}) or 0


def test_calls_values_by_status_and_errors_are_counted(redis_url: str) -> None:
    client = client_for(redis_url)
    write_view(client, test_catalog, scores, {1: ROW, 2: {**ROW, "ratio": None}}, now_ms())
    write_view(client, test_catalog, scores, {3: ROW}, now_ms() - 7_200_000)  # older than the 1 h TTL: stale
    registry = CollectorRegistry()
    with FeatureReader.connect(redis_url, catalog=test_catalog, metrics=ReaderMetrics(registry)) as reader:
        assert reader.get(1, "scores")["n_orders"] == 3
        batch = reader.get_many([1, 2, 3, 404], "scores")
        assert batch[3]["n_orders"] == 0  # the reader's answer is unchanged by the metrics
        with pytest.raises(FeatureNotFoundError):
            reader.get(1, ["no_such_feature"])

    assert registry.get_sample_value(CALL_SECONDS + "_count", {"method": "get", "view": "scores"}) == 1
    assert registry.get_sample_value(CALL_SECONDS + "_count", {"method": "get_many", "view": "scores"}) == 1
    # n_orders: present for 1 (twice), 2; stale for 3; missing for 404
    assert (values(registry, "n_orders", "present"), values(registry, "n_orders", "stale")) == (3, 1)
    assert values(registry, "n_orders", "missing") == 1
    # ratio is null for 2: missing there too
    assert (values(registry, "ratio", "present"), values(registry, "ratio", "missing")) == (2, 2)
    assert registry.get_sample_value(ERRORS_TOTAL, {"method": "get", "error": "feature_not_found_error"}) == 1


async def test_the_async_reader_records_too(redis_url: str) -> None:
    write_view(client_for(redis_url), test_catalog, scores, {1: ROW}, now_ms())
    registry = CollectorRegistry()
    reader = await AsyncFeatureReader.connect(redis_url, catalog=test_catalog, metrics=ReaderMetrics(registry))
    try:
        await reader.get_many([1, 2], "scores")
    finally:
        await reader.close()
    assert registry.get_sample_value(CALL_SECONDS + "_count", {"method": "get_many", "view": "scores"}) == 1
    assert values(registry, "spend", "present") == 1 and values(registry, "spend", "missing") == 1


def test_without_metrics_the_reader_runs_its_plain_methods(redis_url: str) -> None:
    reader = FeatureReader(redis_url, catalog=test_catalog)
    assert reader.get.__func__ is FeatureReader.get  # type: ignore[attr-defined]
    assert reader.get_many.__func__ is FeatureReader.get_many  # type: ignore[attr-defined]
    reader.close()
