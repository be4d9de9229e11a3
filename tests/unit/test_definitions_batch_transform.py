"""``BatchTransform`` and ``FeatureView(transform=...)``: checked when defined, invisible to the storage format."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import pytest

from featurestore.readers import (
    BatchTransform,
    DefinitionError,
    Entity,
    Feature,
    FeatureView,
    batch_transform,
    codec,
)

CUSTOMER = Entity("customer", "customer_id")
FEATURES = (Feature("orders_7d", "int64"), Feature("spend_7d", "float64"))


@batch_transform(sources=["orders", "customers"], lookback_days={"orders": 7, "customers": None})
def customer_spend(inputs: Mapping[str, Any], as_of: datetime) -> Any:
    return inputs["orders"]


def test_the_decorator_builds_a_frozen_batch_transform() -> None:
    assert isinstance(customer_spend, BatchTransform)
    assert customer_spend.sources == ("orders", "customers")
    assert dict(customer_spend.lookback_days) == {"orders": 7, "customers": None}
    assert customer_spend({"orders": "frame"}, datetime(2024, 1, 1)) == "frame"
    with pytest.raises(TypeError):
        customer_spend.lookback_days["orders"] = 1  # type: ignore[index]


def test_the_transform_is_not_part_of_the_views_identity_nor_its_fingerprint() -> None:
    plain = FeatureView("customer_spend", CUSTOMER, FEATURES, ttl=86_400, source="orders")
    with_transform = FeatureView("customer_spend", CUSTOMER, FEATURES, ttl=86_400, transform=customer_spend)
    assert with_transform.transform is customer_spend
    assert with_transform == plain  # compare=False
    assert "transform" not in repr(with_transform)
    assert codec.view_spec(with_transform) == codec.view_spec(plain)
    assert codec.fingerprint(with_transform) == codec.fingerprint(plain)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: batch_transform(sources=[])(lambda i, a: None), "sources must name at least one table"),
        (lambda: batch_transform(sources=["a", "a"])(lambda i, a: None), "sources name a table twice"),
        (
            lambda: batch_transform(sources=["a"], lookback_days={"b": 3})(lambda i, a: None),
            "lookback_days names ['b'], which are not among its sources ['a']",
        ),
        (
            lambda: batch_transform(sources=["a"], lookback_days={"a": 0})(lambda i, a: None),
            "lookback_days['a'] must be a whole number of days >= 1 or None",
        ),
    ],
)
def test_a_bad_transform_is_refused_with_the_setting_named(build: Any, message: str) -> None:
    with pytest.raises(DefinitionError) as raised:
        build()
    assert message in str(raised.value)


def test_a_streaming_view_with_a_transform_is_refused() -> None:
    with pytest.raises(DefinitionError) as raised:
        FeatureView("live", CUSTOMER, (Feature("last_amount", "float64"),), kind="streaming", ttl=60,
                    transform=customer_spend)  # fmt: skip
    assert str(raised.value).startswith("streaming view 'live': transform= is only for batch views")


def test_the_views_source_must_be_the_transforms_first() -> None:
    with pytest.raises(DefinitionError) as raised:
        FeatureView("customer_spend", CUSTOMER, FEATURES, ttl=60, source="customers", transform=customer_spend)
    assert "its source is 'customers' but its transform customer_spend reads 'orders' first" in str(raised.value)


def test_a_plain_function_is_refused_as_a_transform() -> None:
    with pytest.raises(DefinitionError, match="transform must be a BatchTransform"):
        FeatureView("customer_spend", CUSTOMER, FEATURES, ttl=60, transform=lambda i, a: None)  # type: ignore[arg-type]
