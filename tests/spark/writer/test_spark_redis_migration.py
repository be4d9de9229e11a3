"""The "Coming from spark-redis" example (docs/spark-redis.md), run as written (against the test server),
and the difference it promises: a null removes the stale field spark-redis would leave behind.

spark-redis itself (Scala 2.12, Spark <= 3.2) cannot load in this Spark 4 session, so its
side of the page is not run; the state it would leave (the old value kept when a column
becomes null) is written here by hand as the starting point.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import redis

PAGE = Path(__file__).resolve().parents[3] / "docs" / "spark-redis.md"
EXAMPLE_URL = "redis://localhost:6379"


def page_example() -> str:
    """The python block after "After — redis-feature-store" in docs/spark-redis.md."""
    after = PAGE.read_text().split("After — redis-feature-store", 1)[1]
    match = re.search(r"```python\n(.*?)```", after, re.S)
    assert match, "no python block after 'After — redis-feature-store' in docs/spark-redis.md"
    return match.group(1)


def test_the_migration_example_runs_and_a_null_removes_the_stale_field(spark: Any, redis_url: str) -> None:
    code = page_example()
    assert EXAMPLE_URL in code and "from featurestore.jobs.write import write_view" in code
    client = redis.Redis.from_url(redis_url)
    # what a spark-redis load left yesterday (here already in this project's key layout):
    # user 7 had a credit limit; spark-redis would skip today's null and keep it forever
    client.hset("fs:user:{7}", mapping={"home_country": "DE", "credit_limit": "1000", "kyc_verified": "0"})

    namespace: dict[str, Any] = {"spark": spark}
    exec(compile(code.replace(EXAMPLE_URL, redis_url), str(PAGE), "exec"), namespace)  # the asserts inside hold

    assert namespace["stats"].entities == 2
    seven = client.hgetall("fs:user:{7}")
    assert b"credit_limit" not in seven  # HDEL: the stale 1000 is gone
    assert seven[b"home_country"] == b"DE" and seven[b"kyc_verified"] == b"0"
    forty_two = client.hgetall("fs:user:{42}")
    assert forty_two[b"home_country"] == b"FR" and forty_two[b"credit_limit"] == b"5000"
    assert forty_two[b"kyc_verified"] == b"1" and b"_ts:user_profile" in forty_two
    assert 6 * 86_400 < client.ttl("fs:user:{42}") <= 7 * 86_400  # the view's ttl, as spark-redis' "ttl" option

    from featurestore.readers import FeatureReader

    with FeatureReader(redis_url, catalog=namespace["catalog"]) as reader:
        vector = reader.get(42, "user_profile")
    assert vector.to_dict() == {"home_country": "FR", "credit_limit": 5000, "kyc_verified": True}
