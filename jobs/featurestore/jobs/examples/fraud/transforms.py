"""The fraud example's batch transforms: one pure DataFrame -> DataFrame function per batch view.

Each is a :func:`~featurestore.readers.definitions.batch_transform` given to its view in
``definitions.py`` (``transform=``).  A transform gets its input tables (already read at a
pinned Delta version) and the *as-of* instant, and returns one row per entity: the entity's
join key plus one column per feature of the view.  It does no I/O, so it is tested against
hand-computed frames (tests/spark/batch/test_batch_transforms.py).

Point-in-time rule: the run for ``ds`` computes features **as of the end of that day**,
``as_of = ds + 1 day, 00:00 UTC`` (exclusive).  Every transform filters its inputs on
their own event times (``event_time``, ``updated_at``, ``fraud_reported_at``,
``created_at``) against ``as_of`` itself, so nothing that happened, or became known,
at or after ``as_of`` leaks in — even if a caller hands it more data than the job's
partition pruning would.  Windows: ``1d`` = ``[as_of - 1 day, as_of)``, and likewise
``7d`` and ``30d``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from featurestore.jobs.batch.transforms import in_window, timestamp
from featurestore.readers.definitions import batch_transform

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame


def accounts_as_of(users: DataFrame, as_of: datetime) -> DataFrame:
    """The latest state of every account known before ``as_of`` (from the change log)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    known = users.where((F.col("updated_at") < timestamp(as_of)) & (F.col("signup_time") < timestamp(as_of)))
    # ties on updated_at are broken by the row's values so the result is deterministic
    latest = Window.partitionBy("user_id").orderBy(
        F.col("updated_at").desc(), F.col("credit_limit").desc(), F.col("kyc_verified").desc()
    )
    return known.withColumn("_rank", F.row_number().over(latest)).where("_rank = 1").drop("_rank")


@batch_transform(sources=("transactions", "users"), lookback_days={"transactions": 30, "users": None})
def user_transactions(inputs: Mapping[str, DataFrame], as_of: datetime) -> DataFrame:
    """Spending over 1/7/30 days before ``as_of``, for every account that exists then.

    Accounts without payments in a window get count 0 and sum 0.0; means, max and night
    share are null (stored as absent fields) when there is nothing to average.  Because
    every account gets a row, yesterday's counts of a user who stopped paying are
    overwritten with zeros instead of lingering until their TTL.
    """
    from pyspark.sql import functions as F

    tx = inputs["transactions"].where(in_window("event_time", as_of, 30))
    amount = F.col("amount")

    def within(days: int) -> Column:
        return F.col("event_time") >= timestamp(as_of - timedelta(days=days))

    night = (F.unix_seconds(F.col("event_time")) % 86_400) < 6 * 3600  # 00:00-06:00 UTC, any session tz
    spend = tx.groupBy("user_id").agg(
        F.count(F.when(within(1), True)).alias("txn_count_1d"),
        F.count(F.when(within(7), True)).alias("txn_count_7d"),
        F.count(F.lit(1)).alias("txn_count_30d"),
        # money: sums rounded to cents, so float noise (17.130000000000003) is not served
        F.round(F.sum(F.when(within(1), amount)), 2).alias("amount_sum_1d"),
        F.round(F.sum(F.when(within(7), amount)), 2).alias("amount_sum_7d"),
        F.round(F.sum(amount), 2).alias("amount_sum_30d"),
        F.avg(F.when(within(7), amount)).alias("amount_mean_7d"),
        F.avg(amount).alias("amount_mean_30d"),
        F.max(amount).alias("amount_max_30d"),
        F.count_distinct(F.when(within(7), F.col("merchant_id"))).alias("distinct_merchants_7d"),
        F.count_distinct(F.col("merchant_id")).alias("distinct_merchants_30d"),
        F.count_distinct(F.col("country")).alias("distinct_countries_30d"),
        F.avg(F.when(night, 1.0).otherwise(0.0)).alias("night_share_30d"),
    )
    accounts = accounts_as_of(inputs["users"], as_of).select("user_id")
    # full join: a payment by an id missing from the account table still counts
    joined = accounts.join(spend, "user_id", "full")
    zeros: dict[str, bool | float | int | str] = {
        **{c: 0 for c in ("txn_count_1d", "txn_count_7d", "txn_count_30d")},
        **{c: 0 for c in ("distinct_merchants_7d", "distinct_merchants_30d", "distinct_countries_30d")},
        **{c: 0.0 for c in ("amount_sum_1d", "amount_sum_7d", "amount_sum_30d")},
    }
    return joined.fillna(zeros)


@batch_transform(sources=("users",), lookback_days={"users": None})
def user_profile(inputs: Mapping[str, DataFrame], as_of: datetime) -> DataFrame:
    """The account as of ``as_of``: its latest change-log row, and its age in whole days."""
    from pyspark.sql import functions as F

    accounts = accounts_as_of(inputs["users"], as_of)
    age_seconds = F.unix_seconds(timestamp(as_of)) - F.unix_seconds(F.col("signup_time"))
    return accounts.select(
        "user_id",
        F.floor(age_seconds / 86_400).cast("long").alias("account_age_days"),
        "home_country",
        "account_type",
        "credit_limit",
        "kyc_verified",
    )


@batch_transform(sources=("transactions", "merchants"), lookback_days={"transactions": 30, "merchants": None})
def merchant_risk(inputs: Mapping[str, DataFrame], as_of: datetime) -> DataFrame:
    """Traffic and fraud over the 30 days before ``as_of``, for every merchant open then.

    A fraud counts only once it was reported before ``as_of`` (``fraud_reported_at``):
    a chargeback that arrives later is not known to a model scoring at ``as_of``.
    """
    from pyspark.sql import functions as F

    tx = inputs["transactions"].where(in_window("event_time", as_of, 30))
    known_fraud = (
        F.col("is_fraud") & F.col("fraud_reported_at").isNotNull() & (F.col("fraud_reported_at") < timestamp(as_of))
    )
    traffic = tx.groupBy("merchant_id").agg(
        F.count(F.lit(1)).alias("merchant_txn_count_30d"),
        F.avg(F.when(known_fraud, 1.0).otherwise(0.0)).alias("merchant_fraud_rate_30d"),
        F.avg("amount").alias("merchant_amount_mean_30d"),
        F.count_distinct("user_id").alias("merchant_distinct_users_30d"),
    )
    merchants = (
        inputs["merchants"]
        .where(F.col("created_at") < timestamp(as_of))
        .select("merchant_id", F.col("category").alias("merchant_category"))
    )
    joined = merchants.join(traffic, "merchant_id", "full")
    return joined.fillna({"merchant_txn_count_30d": 0, "merchant_distinct_users_30d": 0}).select(
        "merchant_id",
        "merchant_txn_count_30d",
        "merchant_fraud_rate_30d",
        "merchant_amount_mean_30d",
        "merchant_distinct_users_30d",
        "merchant_category",
    )
