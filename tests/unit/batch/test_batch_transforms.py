"""How a view's transform is found, and the run date, without Spark (the transforms on hand-computed frames:
tests/spark/batch/test_batch_transforms.py)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

import pytest

from featurestore.jobs.batch import transforms
from featurestore.readers import BatchTransform, Entity, Feature, FeatureView, batch_transform

AS_OF = transforms.as_of_for(date(2024, 5, 31))


def test_every_batch_view_of_the_example_catalogue_has_its_transform() -> None:
    from featurestore.jobs.examples.fraud import transforms as fraud
    from featurestore.jobs.examples.fraud.definitions import catalog

    for view in catalog.batch_views:
        assert transforms.transform_for(view) is getattr(fraud, view.name)
        assert transforms.transform_for(view).sources[0] == view.source


def test_as_of_is_the_end_of_the_run_date_in_utc() -> None:
    assert datetime(2024, 6, 1, tzinfo=UTC) == AS_OF


def test_a_view_without_transform_says_where_to_add_one() -> None:
    from featurestore.readers.errors import FeatureStoreError

    with pytest.raises(FeatureStoreError) as raised:
        transforms.transform_for("nope")
    assert str(raised.value) == "view 'nope' has no transform: add transform=... to it in definitions.py"
    view = FeatureView("orphan", Entity("thing", "thing_id"), (Feature("x", "int64"),), ttl=60)
    with pytest.raises(FeatureStoreError, match="view 'orphan' has no transform: add transform=... to it"):
        transforms.transform_for(view)


def _spend(inputs: Mapping[str, Any], as_of: datetime) -> Any:
    return ("spend", sorted(inputs), as_of)


def test_a_views_own_transform_comes_first_and_is_called_with_inputs_and_as_of() -> None:
    spend = batch_transform(sources=["orders", "customers"], lookback_days={"orders": 30})(_spend)
    assert isinstance(spend, BatchTransform)
    assert spend.sources == ("orders", "customers")
    assert dict(spend.lookback_days) == {"orders": 30}
    assert spend.name == "_spend"
    # same name as a registered example view: the view's own transform wins over the registry
    view = FeatureView(
        "user_profile", Entity("customer", "customer_id"), (Feature("x", "int64"),), ttl=60, transform=spend
    )
    assert view.source == "orders"  # defaults to the transform's first source
    assert transforms.transform_for(view) is spend
    assert spend({"orders": 1, "customers": 2}, AS_OF) == ("spend", ["customers", "orders"], AS_OF)


def test_the_example_transforms_are_batch_transforms() -> None:
    from featurestore.jobs.examples.fraud.definitions import catalog

    view = catalog.view("user_transactions")
    found = transforms.transform_for(view)
    assert isinstance(found, BatchTransform)
    assert dict(found.lookback_days) == {"transactions": 30, "users": None}
