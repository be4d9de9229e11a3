"""The recommendations example's definitions: features of a recommender's ranking model.

A feature repository's ``definitions.py`` written only with the public definitions API: two
batch views computed nightly from the warehouse by the transforms of ``transforms.py``, and two
streaming views declared as windowed aggregations and last values over the ``interactions``
topic, computed by the generic ``featurestore stream`` job.  Nothing in the package is written
for this example (docs/examples.md).
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from featurestore.readers.definitions import (
    Aggregate,
    Catalog,
    Entity,
    Feature,
    FeatureView,
    LastValue,
    StreamSource,
)

from . import transforms

user = Entity("user", join_key="user_id", id_dtype="int64", description="A shopper.")
item = Entity("item", join_key="item_id", id_dtype="string", description="A catalogue item, 'i0001'...")
user_item = Entity(
    "user_item",
    join_key="user_item_id",
    id_dtype="string",
    description="A (user, item) pair: id '<user_id>:<item_id>'.",
)

# the live interactions, keyed by item; the user views read the same topic by user
interactions = StreamSource(
    topic="interactions",
    schema="user_id long, item_id string, kind string, category string, price double, event_time timestamp",
    id_field="item_id",
    time_field="event_time",
    allowed_lateness=timedelta(minutes=2),
)

item_stats = FeatureView(
    name="item_stats",
    entity=item,
    description="An item's catalogue facts and its last 7 days of traffic, as of the run date.",
    source="interactions",
    transform=transforms.item_stats,
    ttl=timedelta(days=2),
    features=(
        Feature("item_category", "string", default="unknown"),
        Feature("item_price", "float32"),
        Feature("item_purchases_7d", "int64", default=0),
        Feature("item_ctr_7d", "float32", description="Clicks per view over 7 days; absent without views."),
    ),
)

user_item_affinity = FeatureView(
    name="user_item_affinity",
    entity=user_item,
    description="How much a user cared for an item over 30 days, recent interactions weighing more.",
    source="interactions",
    transform=transforms.user_item_affinity,
    ttl=timedelta(days=2),
    features=(
        Feature("ui_views_30d", "int64", default=0),
        Feature("ui_purchased_30d", "bool", default=False),
        Feature(
            "ui_affinity_30d",
            "float32",
            default=0.0,
            description="Sum of kind weights (view 1, click 3, purchase 10) x exp(-age in days / 7).",
        ),
    ),
)

item_popularity = FeatureView(
    name="item_popularity",
    entity=item,
    kind="streaming",
    description="How popular an item is right now: views, buyers and revenue over sliding and tumbling windows.",
    stream=interactions,
    features=(
        Aggregate(
            "item_views_1h", "count", where={"kind": "view"}, window=timedelta(hours=1), slide=timedelta(minutes=5)
        ),
        Aggregate(
            "item_views_24h", "count", where={"kind": "view"}, window=timedelta(hours=24), slide=timedelta(hours=1)
        ),
        Aggregate(
            "item_buyers_24h",
            "distinct_count",
            "user_id",
            where={"kind": "purchase"},
            window=timedelta(hours=24),
            slide=timedelta(hours=1),
        ),
        # tumbling: the revenue of the current clock hour
        Aggregate("item_revenue_1h", "sum", "price", where={"kind": "purchase"}, window=timedelta(hours=1)),
    ),
)

user_recent = FeatureView(
    name="user_recent",
    entity=user,
    kind="streaming",
    description="What a user is doing right now: the last category and item, and the last 10 minutes' activity.",
    ttl=timedelta(hours=24),
    stream=dataclasses.replace(interactions, id_field="user_id"),
    features=(
        LastValue("last_category", "category", default=""),
        LastValue("last_item_id", "item_id", default=""),
        Aggregate("user_events_10m", "count", window=timedelta(minutes=10), slide=timedelta(minutes=1)),
        Aggregate("user_max_price_10m", "max", "price", window=timedelta(minutes=10), slide=timedelta(minutes=1)),
    ),
)

catalog = Catalog(views=(item_stats, user_item_affinity, item_popularity, user_recent))
