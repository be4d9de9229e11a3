"""Point-in-time values from hand-made feature logs: visibility, ties, leakage, TTLs, key deaths, staleness,
deletions and defaults, each checked against values computed by hand from the serving rules."""

from __future__ import annotations

from typing import Any

import pytest

from featurestore.jobs.training.point_in_time import point_in_time
from featurestore.readers.errors import ConfigurationError
from tests.helpers.training import CATALOG, PROFILE, RT, T0, TXN, log_frame, log_row

FEATURES = ["count", "mean", "country", "f5", "last"]


@pytest.fixture(scope="module")
def logs(spark: Any) -> dict[str, Any]:
    return {
        "txn": log_frame(spark, TXN, [
            log_row(TXN, 1, T0, ts=T0 - 5_000, count=1, mean=1.5),
            log_row(TXN, 1, T0 + 60_000, count=2, mean=None),  # mean null: deleted, so missing
            log_row(TXN, 3, T0),
            log_row(TXN, 4, T0 + 10_001, ts=T0 + 10_001, count=99, mean=9.0),  # 1 ms after a label: never seen
        ]),
        "profile": log_frame(spark, PROFILE, [log_row(PROFILE, 1, T0, country="FR")]),
        "rt": log_frame(spark, RT, [
            log_row(RT, 1, T0 + 1_000, ts=T0 + 900, f5=3, last=2.5),
            log_row(RT, 1, T0 + 5_000, ts=T0 + 4_900, f5=None),  # deletes f5 only
            log_row(RT, 2, T0, ts=T0 - 25_000, f5=7, last=1.0),  # a late event: stale soon
            log_row(RT, 3, T0 + 990_000, last=4.0),
        ]),
    }  # fmt: skip


CASES = [  # (user, t - T0, expected {feature: (value, status)})
    (1, -1, {"count": (0, "missing"), "mean": (None, "missing"), "country": ("", "missing")}),
    (1, 0, {"count": (1, "present"), "mean": (1.5, "present"), "country": ("FR", "present")}),  # a tie is visible
    (1, 56_000, {"count": (0, "stale"), "mean": (None, "stale"), "country": ("FR", "present")}),
    (1, 59_999, {"count": (0, "stale")}),  # the next run is 1 ms away: not seen
    (1, 60_000, {"count": (2, "present"), "mean": (None, "missing")}),
    (1, 160_000, {"count": (0, "missing"), "country": ("FR", "present")}),  # txn's HEXPIRE; the key lives on
    (1, 1_059_999, {"country": ("", "stale")}),  # older than max_age (the view's TTL) but the key is alive
    (1, 1_060_000, {"country": ("", "missing")}),  # the key died 1000 s after the last batch write
    (1, 2_000, {"f5": (3, "present"), "last": (2.5, "present")}),
    (1, 6_000, {"f5": (0, "missing"), "last": (2.5, "present")}),
    (1, 31_000, {"f5": (0, "missing"), "last": (None, "missing")}),  # the field's own TTL
    (2, 6_000, {"f5": (0, "stale"), "last": (None, "stale")}),  # event time 31 s old > max_age 30 s
    (2, 10_000, {"f5": (0, "missing"), "last": (None, "stale")}),
    (3, 995_000, {"last": (4.0, "present")}),
    (3, 1_000_000, {"last": (None, "missing"), "count": (0, "missing")}),  # the key's death takes streaming fields
    (4, 10_000, {"count": (0, "missing")}),  # written 1 ms later
    (4, 10_001, {"count": (99, "present")}),
    (5, 0, {f: (d, "missing") for f, d in [("count", 0), ("mean", None), ("country", ""), ("f5", 0)]}),
]


def test_values_and_statuses_follow_the_serving_rules(spark: Any, logs: dict[str, Any]) -> None:
    labels = spark.createDataFrame(
        [(i, user, T0 + dt, f"label-{i}") for i, (user, dt, _) in enumerate(CASES)],
        "row long, user_id long, ts long, y string",
    )
    got = {r["row"]: r.asDict() for r in point_in_time(labels, logs, CATALOG, FEATURES, statuses=True).collect()}
    assert len(got) == len(CASES)
    for i, (user, dt, expected) in enumerate(CASES):
        row = got[i]
        assert row["y"] == f"label-{i}"  # label columns pass through
        for feature, (value, status) in expected.items():
            assert (row[feature], row[feature + "__status"]) == (value, status), (user, dt, feature)


def test_requests_are_checked_before_any_job(spark: Any, logs: dict[str, Any]) -> None:
    labels = spark.createDataFrame([(1, T0, "x")], "user_id long, ms long, count string")
    plain = labels.drop("count")
    assert "count__status" not in point_in_time(plain, logs, CATALOG, ["txn"], timestamp_col="ms").columns
    with pytest.raises(ConfigurationError, match="no timestamp column 'when'"):
        point_in_time(plain, logs, CATALOG, ["txn"], timestamp_col="when")
    with pytest.raises(ConfigurationError, match="join key of entity 'user'"):
        point_in_time(plain.drop("user_id"), logs, CATALOG, ["txn"], timestamp_col="ms")
    with pytest.raises(ConfigurationError, match="already have columns named like requested features"):
        point_in_time(labels, logs, CATALOG, ["txn"], timestamp_col="ms")
    with pytest.raises(ConfigurationError, match="no feature log given for view 'profile'"):
        point_in_time(plain, {"txn": logs["txn"]}, CATALOG, ["txn"], timestamp_col="ms")
