"""A one-view catalogue: the DAG's task groups follow whatever catalogue it is pointed at."""

from __future__ import annotations

from featurestore.readers import Catalog, Entity, Feature, FeatureView

customer = Entity("customer", join_key="customer_id")

orders = FeatureView("orders", customer, (Feature("order_count_7d", "int64", default=0),), ttl=86_400, source="orders")
clicks = FeatureView("clicks", customer, (Feature("clicks_5m", "int64", ttl=600),), kind="streaming")

catalog = Catalog(views=(orders, clicks))
