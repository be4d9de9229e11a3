"""The recommendations example's sample data: a seeded shop warehouse and a live interaction stream.

The hooks of the dev commands (docs/examples.md): :func:`generate` writes the warehouse
(``featurestore generate --example recommendations``), :func:`events` makes the stream's
events (``featurestore kafka produce --example recommendations``).

The warehouse is two Delta tables:

* ``items`` — ``item_id ('i0001'...), category, price, created_at``: the catalogue.
* ``interactions`` — ``user_id, item_id, kind (view | click | purchase), category, price,
  event_time, ds``, partitioned by ``ds`` (the UTC day of ``event_time``).

Item popularity is Zipf-like, each user prefers one or two categories (four interactions in
five fall there), about 12% of interactions are clicks and 3% purchases.  The same arguments
always give the same rows (numpy's PCG64 seeded with ``seed``).  The default size is small:
500 users, 200 items, about 1,000 interactions a day.

The stream: the same interactions as JSON on topic ``interactions``, keyed by item id; about
``late_share`` of them arrive late, half within the views' 2-minute allowed lateness and half
beyond it; :data:`BAD_RECORDS` are malformed records to mix in.
"""

from __future__ import annotations

import logging
import random
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from featurestore.jobs.batch.sources import table_path
from featurestore.jobs.dev.sample_data import GeneratedWarehouse, write_table

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

TOPIC = "interactions"
USERS_PER_SCALE = 500  # scale 1.0: 500 users and 200 items (`--users N` is scale N / 500)
ITEMS_PER_SCALE = 200
INTERACTIONS_PER_USER_DAY = 2.0
CATEGORIES = ("books", "music", "games", "garden", "kitchen", "sports")
_CATEGORY_PRICE = (14.0, 11.0, 45.0, 30.0, 25.0, 40.0)  # median price per category
KINDS = ("view", "click", "purchase")
_KIND_SHARE = (0.85, 0.12, 0.03)

ITEMS_DDL = "item_id string, category string, price double, created_at timestamp"
INTERACTIONS_DDL = (
    "user_id long, item_id string, kind string, category string, price double, event_time timestamp, ds string"
)

# malformed records for the dead-letter path: each one a dead letter for its reason
BAD_RECORDS: tuple[bytes, ...] = (
    b"{not json",
    b'"a string"',
    b'{"user_id": 3, "kind": "view", "category": "books", "price": 9.5, "event_time": "2026-01-01T00:00:00Z"}',
    b'{"user_id": 3, "item_id": "i0001", "kind": "view", "price": "cheap", "event_time": "2026-01-01T00:00:00Z"}',
    b'{"user_id": 3, "item_id": "i0001", "kind": "view", "category": "books", "price": 9.5}',
)

# what `featurestore demo --example recommendations` reads back at the end (entity -> ids)
SAMPLE_IDS: dict[str, list[object]] = {"item": ["i0001", "i0002"], "user": [1, 2], "user_item": ["1:i0001"]}


def item_id(index: int) -> str:
    """``i0001`` style ids (1-based), zero-padded to four digits."""
    return f"i{index:04d}"


def _catalogue(n_items: int, rng: np.random.Generator, first_day: date) -> pd.DataFrame:
    import numpy as np
    import pandas as pd

    category = rng.integers(0, len(CATEGORIES), n_items)
    price = np.round(np.array(_CATEGORY_PRICE)[category] * rng.lognormal(0.0, 0.5, n_items), 2) + 0.99
    start_us = _epoch_us(first_day)
    created = start_us - rng.integers(86_400_000_000, 365 * 86_400_000_000, n_items)
    return pd.DataFrame(
        {
            "item_id": [item_id(i) for i in range(1, n_items + 1)],
            "category": np.array(CATEGORIES, dtype=object)[category],
            "price": price,
            "created_at": pd.to_datetime(created, unit="us", utc=True),
        }
    )


def _epoch_us(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) * 1_000_000


def _popularity(items: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
    """Zipf-like weights over the items (a random item is the most popular)."""
    import numpy as np

    weights = 1.0 / np.arange(1, len(items) + 1) ** 1.1
    return np.asarray(rng.permutation(weights / weights.sum()))


def _day(
    items: pd.DataFrame,
    popularity: np.ndarray,
    preferred: np.ndarray,
    n_users: int,
    day: date,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """One day of interactions: each picks a user, then an item (mostly of the user's categories)."""
    import numpy as np
    import pandas as pd

    rows = int(rng.poisson(INTERACTIONS_PER_USER_DAY * n_users))
    users = rng.integers(1, n_users + 1, rows)
    categories = items["category"].to_numpy()
    by_category = {c: np.flatnonzero(categories == c) for c in CATEGORIES}
    chosen = np.empty(rows, dtype=np.int64)
    faithful = rng.random(rows) < 0.8
    for row in range(rows):
        pool = by_category[CATEGORIES[preferred[users[row] - 1, rng.integers(0, 2)]]] if faithful[row] else None
        if pool is None or pool.size == 0:
            chosen[row] = rng.choice(len(items), p=popularity)
        else:
            weights = popularity[pool] / popularity[pool].sum()
            chosen[row] = pool[rng.choice(pool.size, p=weights)]
    event_us = _epoch_us(day) + rng.integers(0, 86_400_000_000, rows)
    frame = pd.DataFrame(
        {
            "user_id": users.astype(np.int64),
            "item_id": items["item_id"].to_numpy()[chosen],
            "kind": np.array(KINDS, dtype=object)[rng.choice(len(KINDS), rows, p=_KIND_SHARE)],
            "category": categories[chosen],
            "price": items["price"].to_numpy()[chosen],
            "event_time": pd.to_datetime(event_us, unit="us", utc=True),
            "ds": day.isoformat(),
        }
    )
    return frame.sort_values("event_time", kind="stable").reset_index(drop=True)


def generate(
    spark: SparkSession,
    warehouse: str | Path,
    *,
    end_date: date | None = None,
    days: int = 14,
    scale: float = 1.0,
    seed: int = 7,
) -> GeneratedWarehouse:
    """The hook of ``featurestore generate``: ``items`` and ``days`` days of ``interactions`` up to ``end_date``."""
    import numpy as np
    import pandas as pd

    if days < 1 or scale <= 0:
        raise ValueError(f"days must be >= 1 and scale > 0, got days={days}, scale={scale}")
    started = time.monotonic()
    last_day = end_date or (datetime.now(UTC).date() - timedelta(days=1))
    first_day = last_day - timedelta(days=days - 1)
    n_users = max(1, round(USERS_PER_SCALE * scale))
    n_items = max(len(CATEGORIES), round(ITEMS_PER_SCALE * scale))
    rng = np.random.default_rng(seed)
    items = _catalogue(n_items, rng, first_day)
    popularity = _popularity(items, rng)
    preferred = rng.integers(0, len(CATEGORIES), (n_users, 2))  # one or two categories (both may be the same)
    # a generator per day, derived from the seed: a day's rows do not depend on the days before it
    frames = [
        _day(items, popularity, preferred, n_users, first_day + timedelta(days=d), np.random.default_rng([seed, d]))
        for d in range(days)
    ]
    interactions = pd.concat(frames, ignore_index=True)
    root = Path(warehouse).absolute()
    write_table(spark.createDataFrame(items, ITEMS_DDL), table_path(root, "items"), partitioned=False)
    log.info("items: %d rows; interactions: %d rows", len(items), len(interactions))
    write_table(
        spark.createDataFrame(interactions, INTERACTIONS_DDL), table_path(root, "interactions"), partitioned=True
    )
    rows = {"items": len(items), "interactions": len(interactions)}
    return GeneratedWarehouse(root, rows, first_day, last_day, time.monotonic() - started)


def events(n: int, now_ms: int, *, seed: int = 7, late_share: float = 0.05) -> list[tuple[str, str, dict[str, Any]]]:
    """The hook of ``featurestore kafka produce``: ``n`` interactions around ``now_ms`` as (topic, key, event).

    About ``late_share`` of them are late: half by 30 s to 110 s (inside the 2-minute allowed
    lateness: folded into their windows), half by 3 to 10 minutes (beyond it: dropped, counted
    as late).  No two events of one item share a millisecond.
    """
    rnd = random.Random(seed)
    n_users, n_items = USERS_PER_SCALE, ITEMS_PER_SCALE
    weights = [1.0 / rank**1.1 for rank in range(1, n_items + 1)]
    taken: set[tuple[str, int]] = set()
    out: list[tuple[str, str, dict[str, Any]]] = []
    for _ in range(n):
        index = rnd.choices(range(1, n_items + 1), weights=weights)[0]
        item = item_id(index)
        category = CATEGORIES[index % len(CATEGORIES)]
        price = round(_CATEGORY_PRICE[index % len(_CATEGORY_PRICE)] * (0.5 + (index % 10) / 10), 2)
        ms = now_ms - rnd.randint(0, 500)
        if rnd.random() < late_share:
            ms -= rnd.randint(30_000, 110_000) if rnd.random() < 0.5 else rnd.randint(180_000, 600_000)
        while (item, ms) in taken:
            ms -= 1
        taken.add((item, ms))
        kind = rnd.choices(KINDS, weights=_KIND_SHARE)[0]
        stamp = datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")
        event = {
            "user_id": rnd.randint(1, n_users),
            "item_id": item,
            "kind": kind,
            "category": category,
            "price": price,
            "event_time": stamp,
        }
        out.append((TOPIC, item, event))
    return out
