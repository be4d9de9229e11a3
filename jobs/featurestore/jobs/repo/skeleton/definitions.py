"""The feature definitions of this repository: entities, views, batch transforms, streaming features.

`featurestore plan` checks them without writing anything; docs/feature-repository.md explains
each part.  A batch transform is a pure function (inputs, as_of) -> DataFrame: `inputs` holds
each table of `sources` read at one Delta version, `as_of` is the end of the run's day.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from featurestore.readers import (
    Aggregate,
    Catalog,
    Entity,
    Feature,
    FeatureView,
    LastValue,
    StreamSource,
    batch_transform,
)

customer = Entity("customer", join_key="customer_id")


@batch_transform(sources=["orders"], lookback_days={"orders": 30})
def customer_orders(inputs: Mapping[str, Any], as_of: datetime) -> Any:
    """Orders and spend of each customer over the 30 days before `as_of`."""
    from pyspark.sql import functions as F

    start = F.lit(as_of - timedelta(days=30)).cast("timestamp")
    end = F.lit(as_of).cast("timestamp")
    orders = inputs["orders"].where((F.col("ordered_at") >= start) & (F.col("ordered_at") < end))
    return orders.groupBy("customer_id").agg(
        F.count(F.lit(1)).alias("orders_30d"),
        F.round(F.sum("amount"), 2).alias("spend_30d"),
    )


customer_orders_30d = FeatureView(
    name="customer_orders_30d",
    entity=customer,
    features=(
        Feature("orders_30d", "int64", default=0),
        Feature("spend_30d", "float64", default=0.0),
    ),
    ttl=timedelta(days=2),
    transform=customer_orders,
    description="orders and spend over 30 days, computed nightly",
)

customer_activity = FeatureView(
    name="customer_activity",
    entity=customer,
    kind="streaming",
    ttl=timedelta(hours=1),
    stream=StreamSource(
        topic="orders",
        schema="customer_id long, amount double, category string, event_time timestamp",
        id_field="customer_id",
        time_field="event_time",
        allowed_lateness=timedelta(minutes=2),
    ),
    features=(
        Aggregate("orders_1h", "count", window=timedelta(hours=1), slide=timedelta(minutes=5)),
        LastValue("last_category", "category", default=""),
    ),
    description="real-time activity from the orders topic (featurestore stream)",
)

catalog = Catalog(views=(customer_orders_30d, customer_activity))
