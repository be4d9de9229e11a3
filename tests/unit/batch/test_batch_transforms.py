"""The transforms' registry and run date, without Spark (the transforms on hand-computed frames:
tests/spark/batch/test_batch_transforms.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from featurestore.jobs.batch import transforms

AS_OF = transforms.as_of_for(date(2024, 5, 31))


def test_registry_has_every_batch_view_of_the_example_catalogue() -> None:
    from featurestore.jobs.examples.fraud.definitions import catalog

    assert set(transforms.TRANSFORMS) >= {v.name for v in catalog.batch_views}
    for view in catalog.batch_views:
        assert transforms.transform_for(view.name).sources[0] == view.source


def test_as_of_is_the_end_of_the_run_date_in_utc() -> None:
    assert datetime(2024, 6, 1, tzinfo=UTC) == AS_OF


def test_unknown_view_names_the_registered_ones() -> None:
    from featurestore.readers.errors import FeatureStoreError

    with pytest.raises(FeatureStoreError, match="no transform registered for view 'nope'.*merchant_risk"):
        transforms.transform_for("nope")
