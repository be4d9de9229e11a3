"""The fraud example's definitions: features of a card-fraud scoring model.

A feature repository's ``definitions.py``: entities, views and, for each batch view, its
transform (``transforms.py``, attached with ``transform=``); each batch view's Great
Expectations suite is ``expectations/<view>.json`` next to this file.  ``featurestore init
--example fraud DIR`` copies this repository into a folder of your own (docs/examples.md).
"""

from __future__ import annotations

from datetime import timedelta

from featurestore.readers.definitions import (
    Aggregate,
    Catalog,
    Entity,
    Feature,
    FeatureView,
    LastValue,
    SecondsSincePrevious,
    StreamSource,
)

from . import transforms

user = Entity("user", join_key="user_id", id_dtype="int64", description="A card holder.")
merchant = Entity("merchant", join_key="merchant_id", id_dtype="string", description="A card acceptor.")

user_transactions = FeatureView(
    name="user_transactions",
    transform=transforms.user_transactions,
    entity=user,
    description="Spending behaviour over 1, 7 and 30 days before the run date.",
    source="transactions",
    ttl=timedelta(days=2),  # shorter than the key TTL: gets HEXPIRE on its own fields
    features=(
        Feature("txn_count_1d", "int64", default=0),
        Feature("txn_count_7d", "int64", default=0),
        Feature("txn_count_30d", "int64", default=0),
        Feature("amount_sum_1d", "float64", default=0.0),
        Feature("amount_sum_7d", "float64", default=0.0),
        Feature("amount_sum_30d", "float64", default=0.0),
        Feature("amount_mean_7d", "float32"),
        Feature("amount_mean_30d", "float32"),
        Feature("amount_max_30d", "float32"),
        Feature("distinct_merchants_7d", "int64", default=0),
        Feature("distinct_merchants_30d", "int64", default=0),
        Feature("distinct_countries_30d", "int64", default=0),
        Feature("night_share_30d", "float32", description="Share of transactions 00:00-06:00 UTC."),
    ),
)

user_profile = FeatureView(
    name="user_profile",
    transform=transforms.user_profile,
    entity=user,
    description="The account as of the run date.",
    source="users",
    ttl=timedelta(days=7),  # the longest batch TTL of `user`: the key TTL
    features=(
        Feature("account_age_days", "int64"),
        Feature("home_country", "string", default=""),
        Feature("account_type", "string", default="standard"),
        Feature("credit_limit", "float64"),
        Feature("kyc_verified", "bool", default=False),
    ),
)

merchant_risk = FeatureView(
    name="merchant_risk",
    transform=transforms.merchant_risk,
    entity=merchant,
    description="How risky a merchant's traffic was over the last 30 days.",
    source="transactions",
    ttl=timedelta(days=2),
    features=(
        Feature("merchant_txn_count_30d", "int64", default=0),
        Feature("merchant_fraud_rate_30d", "float32"),
        Feature("merchant_amount_mean_30d", "float32"),
        Feature("merchant_distinct_users_30d", "int64", default=0),
        Feature("merchant_category", "string", default="unknown"),
    ),
)

user_realtime = FeatureView(
    name="user_realtime",
    entity=user,
    kind="streaming",
    description="Signals from the live transaction stream, each with its own freshness window.",
    stream=StreamSource(
        topic="transactions",
        schema="user_id long, amount double, country string, event_time timestamp",
        id_field="user_id",
        time_field="event_time",
        allowed_lateness=timedelta(minutes=1),
    ),
    features=(
        # a 5-minute window in 1-minute steps (derived TTL: window + lateness = 6 min)
        Aggregate("txn_count_5m", "count", window=timedelta(minutes=5), slide=timedelta(minutes=1)),
        # own TTLs rather than a view ttl: the registry contract keeps "ttl": null, as before
        LastValue("last_amount", "amount", dtype="float32", ttl=timedelta(hours=1)),
        LastValue("last_country", "country", default="", ttl=timedelta(hours=1)),
        SecondsSincePrevious("seconds_since_prev_txn", dtype="float32", ttl=timedelta(hours=1)),
    ),
)

catalog = Catalog(views=(user_transactions, user_profile, merchant_risk, user_realtime))
