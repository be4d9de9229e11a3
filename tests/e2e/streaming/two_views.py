"""A catalogue for `featurestore stream --catalog tests.e2e.streaming.two_views`: the fraud example plus a
second declared view on the same topic, so that one driver runs two views (tests/e2e/streaming/test_kafka_stream.py)."""

from __future__ import annotations

from datetime import timedelta

from featurestore.jobs.examples.fraud.definitions import catalog as example
from featurestore.jobs.examples.fraud.definitions import user, user_realtime
from featurestore.readers import Aggregate, Catalog, FeatureView

assert user_realtime.stream is not None
user_countries_live = FeatureView(
    name="user_countries_live",
    entity=user,
    kind="streaming",
    stream=user_realtime.stream,
    features=(
        Aggregate("countries_10m", "distinct_count", "country", window=timedelta(minutes=10), slide=60),
        Aggregate("amount_max_10m", "max", "amount", window=timedelta(minutes=10), slide=timedelta(minutes=5)),
    ),
)
catalog = Catalog(views=(*example.views, user_countries_live))
