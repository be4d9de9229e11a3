"""A team's repository end to end on Spark: `featurestore init`, its own transform (with a UDF defined
in the repository, which the executors cannot import), `featurestore materialize --repo`, the reader."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from featurestore.jobs import cli
from featurestore.jobs.core.console import ExitCode
from featurestore.jobs.repo.init_command import init_repository
from featurestore.readers import FeatureReader

DS = date(2024, 5, 31)
TRANSFORMS = """\
from __future__ import annotations

from datetime import timedelta

from featurestore.readers import batch_transform


def to_cents(amount):  # a plain function of the repository, run inside the executors' Python workers
    return None if amount is None else int(round(amount * 100))


@batch_transform(sources=["orders"], lookback_days={"orders": 30})
def customer_orders(inputs, as_of):
    from pyspark.sql import functions as F

    cents = F.udf(to_cents, "long")
    start = F.lit(as_of - timedelta(days=30)).cast("timestamp")
    orders = inputs["orders"].where((F.col("ordered_at") >= start) & (F.col("ordered_at") < F.lit(as_of)))
    return orders.groupBy("customer_id").agg(
        F.count(F.lit(1)).alias("orders_30d"),
        (F.sum(cents(F.col("amount"))) / 100.0).alias("spend_30d"),
    )
"""


@pytest.fixture
def team(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for name in [n for n in os.environ if n.startswith("FEATURESTORE_") and n != "FEATURESTORE_HOME"]:
        monkeypatch.delenv(name)
    made = init_repository(tmp_path / "team", name="team_spark")
    definitions = made.folder / "definitions.py"
    text = definitions.read_text()
    start, end = text.index("@batch_transform("), text.index("customer_orders_30d = FeatureView(")
    definitions.write_text(text[:start] + text[end:] + "\n")
    definitions.write_text(
        definitions.read_text().replace(
            "customer = Entity(", "from .transforms import customer_orders\n\ncustomer = Entity("
        )
    )
    (made.folder / "transforms.py").write_text(TRANSFORMS)
    yield made.folder
    for module in [m for m in sys.modules if m.startswith("featurestore_repo_team_spark")]:
        del sys.modules[module]


def test_a_repository_materializes_with_its_own_transform_and_the_reader_finds_it(
    batch_spark: Any, team: Path, redis_url: str
) -> None:
    rows = [
        (1, 10.25, datetime(2024, 5, 30, 12), "2024-05-30"),
        (1, 5.5, datetime(2024, 5, 31, 8), "2024-05-31"),
        (2, 7.0, datetime(2024, 5, 31, 9), "2024-05-31"),
        (2, 99.0, datetime(2024, 6, 1, 9), "2024-06-01"),  # after the run's day: not counted
    ]
    frame = batch_spark.createDataFrame(rows, "customer_id long, amount double, ordered_at timestamp, ds string")
    frame.write.format("delta").partitionBy("ds").save(str(team / ".featurestore" / "warehouse" / "orders"))

    code = cli.main(
        ["materialize", "--repo", str(team), "--view", "customer_orders_30d", "--ds", str(DS), "--redis-url", redis_url]
    )
    assert code == ExitCode.OK

    with FeatureReader.connect(redis_url, catalog=str(team)) as reader:
        one, two = reader.get_many([1, 2], ["orders_30d", "spend_30d"], entity="customer")
    assert (one["orders_30d"], one["spend_30d"]) == (2, 15.75)
    assert (two["orders_30d"], two["spend_30d"]) == (1, 7.0)
