"""The recommendations example's transforms against hand-computed frames, point-in-time boundaries included.

Run date 2024-05-31: as of 2024-06-01 00:00 UTC (exclusive).  ``item_stats`` reads 7 days,
``[2024-05-25 00:00, as_of)``; ``user_item_affinity`` 30 days, ``[2024-05-02 00:00, as_of)``.
An interaction at exactly ``as_of`` is the next day's, and an item listed at ``as_of`` is not
listed yet.  Every expected value below is computed by hand from the rows, not by Spark.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from typing import Any

import pytest

from featurestore.jobs.batch import schema, transforms
from featurestore.jobs.examples.recommendations import transforms as recs
from featurestore.jobs.examples.recommendations.definitions import catalog
from featurestore.jobs.examples.recommendations.sample_data import INTERACTIONS_DDL, ITEMS_DDL

AS_OF = transforms.as_of_for(date(2024, 5, 31))
DAY = 86_400.0


def t(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


ITEMS = [
    ("i0001", "books", 10.0, t("2020-01-01 00:00:00")),
    ("i0002", "games", 50.0, t("2020-01-01 00:00:00")),
    ("i0003", "music", 5.0, t("2024-06-01 00:00:00")),  # listed at as_of: not yet
    ("i0004", "garden", 20.0, t("2024-01-01 00:00:00")),  # no traffic
]
INTERACTIONS = [
    # user, item, kind, category, price, event_time
    (1, "i0001", "view", "books", 10.0, t("2024-05-31 23:59:59.999")),  # the last millisecond of the day
    (1, "i0001", "click", "books", 10.0, t("2024-05-31 10:00:00")),
    (2, "i0001", "view", "books", 10.0, t("2024-05-25 00:00:00")),  # the first instant of the 7-day window
    (2, "i0001", "purchase", "books", 10.0, t("2024-05-24 23:59:59")),  # just before it: 30 days only
    (1, "i0002", "purchase", "games", 50.0, t("2024-05-30 12:00:00")),
    (1, "i0002", "view", "games", 50.0, t("2024-06-01 00:00:00")),  # at as_of: the next day's
    (3, "i0009", "view", "toys", 3.0, t("2024-05-31 12:00:00")),  # an item missing from the catalogue
    (1, "i0001", "view", "books", 10.0, t("2024-05-01 23:59:59")),  # before the 30-day window
    (2, "i0002", "click", "games", 50.0, t("2024-05-02 00:00:00")),  # the first instant of the 30-day window
]


@pytest.fixture(scope="module")
def inputs(batch_spark: Any) -> dict[str, Any]:
    rows = [(*r, r[5].strftime("%Y-%m-%d")) for r in INTERACTIONS]
    return {
        "interactions": batch_spark.createDataFrame(rows, INTERACTIONS_DDL),
        "items": batch_spark.createDataFrame(ITEMS, ITEMS_DDL),
    }


def rows_by_key(df: Any, key: str) -> dict[Any, dict[str, Any]]:
    collected = [row.asDict() for row in df.collect()]
    assert len({row[key] for row in collected}) == len(collected), "one row per entity"
    return {row[key]: row for row in collected}


def assert_rows(actual: dict[Any, dict[str, Any]], expected: dict[Any, dict[str, Any]]) -> None:
    """Same keys, same columns, same values (floats to 1e-12 relative: exp() of Spark and of Python)."""
    assert sorted(actual) == sorted(expected)
    for key, want in expected.items():
        got = actual[key]
        assert set(got) == set(want), key
        for name, value in want.items():
            if isinstance(value, float):
                assert got[name] == pytest.approx(value, rel=1e-12), (key, name)
            else:
                assert got[name] == value and type(got[name]) is type(value), (key, name, got[name])


def test_item_stats(inputs: dict[str, Any]) -> None:
    out = recs.item_stats(inputs, AS_OF)
    assert_rows(
        rows_by_key(out, "item_id"),
        {
            # 7 days: views at 23:59:59.999 and at 05-25 00:00, one click; the purchase is a second too old
            "i0001": {"item_id": "i0001", "item_category": "books", "item_price": 10.0, "item_purchases_7d": 0,
                      "item_ctr_7d": 0.5},
            # the view at as_of does not count: no views, no click-through rate
            "i0002": {"item_id": "i0002", "item_category": "games", "item_price": 50.0, "item_purchases_7d": 1,
                      "item_ctr_7d": None},
            "i0004": {"item_id": "i0004", "item_category": "garden", "item_price": 20.0, "item_purchases_7d": 0,
                      "item_ctr_7d": None},
            # traffic for an item missing from the catalogue: counted, its facts absent (served as defaults)
            "i0009": {"item_id": "i0009", "item_category": None, "item_price": None, "item_purchases_7d": 0,
                      "item_ctr_7d": 0.0},
        },
    )  # fmt: skip


def decayed(weight: float, age_seconds: float) -> float:
    return weight * math.exp(-age_seconds / DAY / 7)


def test_user_item_affinity(inputs: dict[str, Any]) -> None:
    out = recs.user_item_affinity(inputs, AS_OF)
    assert_rows(
        rows_by_key(out, "user_item_id"),
        {
            # a view 1 ms old, a click 14 h old; the view of 05-01 23:59:59 is outside the 30 days
            "1:i0001": {"user_item_id": "1:i0001", "ui_views_30d": 1, "ui_purchased_30d": False,
                        "ui_affinity_30d": decayed(1, 0.001) + decayed(3, 14 * 3600)},
            # a view exactly 7 days old and a purchase a second older
            "2:i0001": {"user_item_id": "2:i0001", "ui_views_30d": 1, "ui_purchased_30d": True,
                        "ui_affinity_30d": math.exp(-1) + decayed(10, 7 * DAY + 1)},
            # a purchase 1.5 days old; the view at as_of is the next day's
            "1:i0002": {"user_item_id": "1:i0002", "ui_views_30d": 0, "ui_purchased_30d": True,
                        "ui_affinity_30d": decayed(10, 1.5 * DAY)},
            "3:i0009": {"user_item_id": "3:i0009", "ui_views_30d": 1, "ui_purchased_30d": False,
                        "ui_affinity_30d": decayed(1, 12 * 3600)},
            # a click exactly 30 days old: the first instant of the window
            "2:i0002": {"user_item_id": "2:i0002", "ui_views_30d": 0, "ui_purchased_30d": False,
                        "ui_affinity_30d": decayed(3, 30 * DAY)},
        },
    )  # fmt: skip


def test_the_outputs_cast_to_their_views(inputs: dict[str, Any]) -> None:
    """Join key plus exactly the view's features, in types the job's cast accepts."""
    for view in catalog.batch_views:
        out = transforms.transform_for(view)(inputs, AS_OF)
        cast = schema.cast_to_view(out, view)
        assert cast.columns == [view.entity.join_key, *view.feature_names]
        assert cast.count() == out.count() > 0


def test_data_after_as_of_changes_nothing(batch_spark: Any, inputs: dict[str, Any]) -> None:
    """Rows from after the run (a later load, a backfill's extra days) never leak into it."""
    later = [
        (1, "i0001", "purchase", "books", 10.0, t("2024-06-01 00:00:00")),
        (9, "i0004", "view", "garden", 20.0, t("2024-06-03 08:00:00")),
    ]
    more = {
        "interactions": inputs["interactions"].unionByName(
            batch_spark.createDataFrame([(*r, r[5].strftime("%Y-%m-%d")) for r in later], INTERACTIONS_DDL)
        ),
        "items": inputs["items"].unionByName(
            batch_spark.createDataFrame([("i0005", "books", 1.0, t("2024-06-02 00:00:00"))], ITEMS_DDL)
        ),
    }
    for view, key in ((recs.item_stats, "item_id"), (recs.user_item_affinity, "user_item_id")):
        assert rows_by_key(view(more, AS_OF), key) == rows_by_key(view(inputs, AS_OF), key)
