"""The transforms against hand-computed frames, including the point-in-time boundaries
(how a view finds its transform, and the run date: tests/unit/batch/test_batch_transforms.py).

Run date 2024-05-31: as of 2024-06-01 00:00 UTC (exclusive).  Windows are
[as_of - N days, as_of): an event at exactly as_of - 1 day is in the 1d window, an event at
exactly as_of is not in any (it is the next day's), nor is a fraud reported at as_of.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from featurestore.jobs.batch import transforms
from featurestore.jobs.examples.fraud import transforms as fraud
from featurestore.jobs.examples.fraud.sample_data import MERCHANTS_DDL, TRANSACTIONS_DDL, USERS_DDL

AS_OF = transforms.as_of_for(date(2024, 5, 31))


def t(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


TXNS = [
    # txn_id, user, merchant, amount, currency, country, device, event_time, is_fraud, reported_at
    (1, 1, "m0001", 10.0, "USD", "US", "web", t("2024-05-31 23:59:59.999"), False, None),
    (2, 1, "m0002", 20.0, "USD", "US", "web", t("2024-05-31 00:00:00"), True, t("2024-06-01 00:00:00")),
    (3, 1, "m0001", 30.0, "EUR", "FR", "pos", t("2024-05-28 03:00:00"), True, t("2024-05-30 00:00:00")),
    (4, 1, "m0003", 40.0, "USD", "US", "web", t("2024-05-10 12:00:00"), False, None),
    (5, 1, "m0003", 50.0, "USD", "US", "web", t("2024-05-02 00:00:00"), False, None),
    (6, 1, "m0003", 1000.0, "USD", "US", "web", t("2024-05-01 23:59:59"), True, t("2024-05-03 00:00:00")),
    (7, 1, "m0004", 5000.0, "USD", "US", "web", t("2024-06-01 00:00:00"), False, None),
    (8, 1, "m0001", 6000.0, "USD", "US", "web", t("2024-06-01 10:00:00"), True, t("2024-06-01 11:00:00")),
    (9, 2, "m0001", 70.0, "EUR", "DE", "web", t("2024-04-20 12:00:00"), False, None),
    (10, 3, "m0002", 80.0, "EUR", "FR", "web", t("2024-06-01 05:00:00"), False, None),
    (11, 4, "m0003", 7.5, "USD", "US", "mobile", t("2024-05-31 12:00:00"), False, None),
]
USERS = [
    # user, signup, home, type, limit, kyc, updated_at
    (1, t("2020-01-01 00:00:00"), "US", "standard", 1000.0, False, t("2020-01-01 00:00:00")),
    (1, t("2020-01-01 00:00:00"), "US", "premium", 2000.0, True, t("2024-05-31 23:00:00")),
    (1, t("2020-01-01 00:00:00"), "US", "business", 9000.0, True, t("2024-06-01 00:00:00")),  # after as_of
    (2, t("2023-06-01 12:00:00"), "DE", "standard", 500.0, True, t("2023-06-01 12:00:00")),
    (3, t("2024-06-01 00:00:00"), "FR", "standard", 500.0, False, t("2024-06-01 00:00:00")),  # signs up at as_of
]
MERCHANTS = [
    ("m0001", "crypto", "GB", t("2020-01-01 00:00:00")),
    ("m0002", "grocery", "US", t("2020-01-01 00:00:00")),
    ("m0003", "travel", "US", t("2020-01-01 00:00:00")),
    ("m0004", "fuel", "US", t("2024-06-01 00:00:00")),  # opens at as_of
    ("m0005", "fashion", "US", t("2021-01-01 00:00:00")),  # no traffic
]


@pytest.fixture(scope="module")
def inputs(batch_spark: Any) -> dict[str, Any]:
    rows = [(*r, r[7].strftime("%Y-%m-%d")) for r in TXNS]
    return {
        "transactions": batch_spark.createDataFrame(rows, TRANSACTIONS_DDL),
        "users": batch_spark.createDataFrame(USERS, USERS_DDL),
        "merchants": batch_spark.createDataFrame(MERCHANTS, MERCHANTS_DDL),
    }


def by_key(df: Any, key: str) -> dict[Any, dict[str, Any]]:
    return {row[key]: row.asDict() for row in df.collect()}


def assert_rows(actual: dict[Any, dict[str, Any]], expected: dict[Any, dict[str, Any]]) -> None:
    assert sorted(actual) == sorted(expected)
    for key, values in expected.items():
        got = actual[key]
        assert set(got) == set(values), key
        for name, value in values.items():
            if isinstance(value, float):
                assert got[name] == pytest.approx(value), (key, name)
            else:
                assert got[name] == value, (key, name)


def test_user_transactions_windows_and_boundaries(inputs: dict[str, Any]) -> None:
    out = fraud.user_transactions(inputs, AS_OF)
    zero = {
        "txn_count_1d": 0, "txn_count_7d": 0, "txn_count_30d": 0,
        "amount_sum_1d": 0.0, "amount_sum_7d": 0.0, "amount_sum_30d": 0.0,
        "amount_mean_7d": None, "amount_mean_30d": None, "amount_max_30d": None,
        "distinct_merchants_7d": 0, "distinct_merchants_30d": 0, "distinct_countries_30d": 0,
        "night_share_30d": None,
    }  # fmt: skip
    expected = {
        # txns 1..5 are in the 30-day window; 6 is 1 s too old, 7 and 8 are at/after as_of
        1: {
            "user_id": 1,
            "txn_count_1d": 2,
            "txn_count_7d": 3,
            "txn_count_30d": 5,
            "amount_sum_1d": 30.0,
            "amount_sum_7d": 60.0,
            "amount_sum_30d": 150.0,
            "amount_mean_7d": 20.0,
            "amount_mean_30d": 30.0,
            "amount_max_30d": 50.0,
            "distinct_merchants_7d": 2,
            "distinct_merchants_30d": 3,
            "distinct_countries_30d": 2,
            "night_share_30d": 3 / 5,  # 00:00:00 (txn 2 and 5) and 03:00 (txn 3)
        },
        # an account with no payment in 30 days still gets a row: zeros and nulls
        2: {"user_id": 2, **zero},
        # user 3 signs up at as_of: not yet an account, and its payment is after as_of
        # user 4 has no account row but paid: it still counts
        4: {
            "user_id": 4,
            **zero,
            "txn_count_1d": 1,
            "txn_count_7d": 1,
            "txn_count_30d": 1,
            "amount_sum_1d": 7.5,
            "amount_sum_7d": 7.5,
            "amount_sum_30d": 7.5,
            "amount_mean_7d": 7.5,
            "amount_mean_30d": 7.5,
            "amount_max_30d": 7.5,
            "distinct_merchants_7d": 1,
            "distinct_merchants_30d": 1,
            "distinct_countries_30d": 1,
            "night_share_30d": 0.0,
        },
    }
    assert_rows(by_key(out, "user_id"), expected)


def test_user_profile_is_the_account_as_of_the_run_date(inputs: dict[str, Any]) -> None:
    out = fraud.user_profile(inputs, AS_OF)
    age_1 = (AS_OF - t("2020-01-01 00:00:00")).days
    expected = {
        # the change at exactly as_of (business, 9000) is not visible yet
        1: {"user_id": 1, "account_age_days": age_1, "home_country": "US", "account_type": "premium",
            "credit_limit": 2000.0, "kyc_verified": True},
        # signed up 365.5 days before as_of: 365 whole days
        2: {"user_id": 2, "account_age_days": 365, "home_country": "DE", "account_type": "standard",
            "credit_limit": 500.0, "kyc_verified": True},
    }  # fmt: skip
    assert age_1 == 1613
    assert_rows(by_key(out, "user_id"), expected)


def test_merchant_risk_counts_only_frauds_reported_before_as_of(inputs: dict[str, Any]) -> None:
    out = fraud.merchant_risk(inputs, AS_OF)
    expected = {
        # txns 1 and 3; 3 is a fraud reported before as_of
        "m0001": {"merchant_id": "m0001", "merchant_txn_count_30d": 2, "merchant_fraud_rate_30d": 0.5,
                  "merchant_amount_mean_30d": 20.0, "merchant_distinct_users_30d": 1, "merchant_category": "crypto"},
        # txn 2 is a fraud, but reported only at as_of: not known yet
        "m0002": {"merchant_id": "m0002", "merchant_txn_count_30d": 1, "merchant_fraud_rate_30d": 0.0,
                  "merchant_amount_mean_30d": 20.0, "merchant_distinct_users_30d": 1, "merchant_category": "grocery"},
        # txns 4, 5, 11; txn 6 (a fraud) is outside the window
        "m0003": {"merchant_id": "m0003", "merchant_txn_count_30d": 3, "merchant_fraud_rate_30d": 0.0,
                  "merchant_amount_mean_30d": 97.5 / 3, "merchant_distinct_users_30d": 2,
                  "merchant_category": "travel"},
        # open, no traffic: zero counts, null rates; m0004 opens at as_of: absent
        "m0005": {"merchant_id": "m0005", "merchant_txn_count_30d": 0, "merchant_fraud_rate_30d": None,
                  "merchant_amount_mean_30d": None, "merchant_distinct_users_30d": 0,
                  "merchant_category": "fashion"},
    }  # fmt: skip
    assert_rows(by_key(out, "merchant_id"), expected)


def test_nothing_after_as_of_changes_any_view(inputs: dict[str, Any], batch_spark: Any) -> None:
    """Point-in-time: adding arbitrary events at or after as_of leaves every output identical."""
    future_txns = [
        (100 + i, user, merchant, 999.0, "USD", "US", "web", t(when), True, t(when), when[:10])
        for i, (user, merchant, when) in enumerate(
            [
                (1, "m0001", "2024-06-01 00:00:00"),
                (2, "m0005", "2024-06-02 01:00:00"),
                (9, "m0002", "2024-07-01 03:00:00"),
            ]
        )
    ]
    future_users = [(9, t("2024-06-01 00:00:00"), "NG", "business", 1.0, True, t("2024-06-01 00:00:00"))]
    future_merchants = [("m0009", "crypto", "NG", t("2024-06-01 00:00:00"))]
    more = {
        "transactions": inputs["transactions"].unionByName(batch_spark.createDataFrame(future_txns, TRANSACTIONS_DDL)),
        "users": inputs["users"].unionByName(batch_spark.createDataFrame(future_users, USERS_DDL)),
        "merchants": inputs["merchants"].unionByName(batch_spark.createDataFrame(future_merchants, MERCHANTS_DDL)),
    }
    for name, key in (("user_transactions", "user_id"), ("user_profile", "user_id"), ("merchant_risk", "merchant_id")):
        transform = getattr(fraud, name)
        assert by_key(transform(more, AS_OF), key) == by_key(transform(inputs, AS_OF), key), name
