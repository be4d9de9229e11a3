"""The fraud example's sample data: a seeded card-payment warehouse and a live transaction stream.

The hooks of the dev commands (docs/examples.md): :func:`generate` writes the warehouse
(``featurestore generate --example fraud``, the demo, tests and benchmarks), :func:`events`
makes the stream's events (``featurestore kafka produce --example fraud``).

The warehouse is three Delta tables:

* ``transactions`` — one row per card payment, partitioned by ``ds`` (the UTC day of
  ``event_time``): ``txn_id, user_id, merchant_id, amount, currency, country, device,
  event_time, is_fraud, fraud_reported_at, ds``.  A fraud label becomes known only at
  ``fraud_reported_at`` (a chargeback arrives days later), so a point-in-time correct
  feature may only count it after that moment.
* ``users`` — the account change log: one row at sign-up and one per later change
  (credit limit, KYC status): ``user_id, signup_time, home_country, account_type,
  credit_limit, kyc_verified, updated_at``.  The profile as of a time is the latest row
  with ``updated_at`` before it.
* ``merchants`` — ``merchant_id, category, country, created_at``.

User ids are ints ``1..n_users``; merchant ids are strings ``m0001``...  The same
arguments always give the same rows (numpy's PCG64 seeded with ``seed``): a few
thousand rows for tests, millions for benchmarks (generated and written in chunks of
days, so memory stays bounded).

The stream: card transactions as JSON on topic ``transactions``, keyed by user id
(:class:`EventGenerator`), a few of them late, and :data:`BAD_RECORDS` to mix in.
"""

from __future__ import annotations

import json
import logging
import random
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from featurestore.jobs.batch.sources import table_path
from featurestore.jobs.dev.sample_data import GeneratedWarehouse, write_table
from featurestore.readers.errors import ConfigurationError

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from pyspark.sql import SparkSession

TABLES = ("transactions", "users", "merchants")

COUNTRIES = ("US", "GB", "DE", "FR", "ES", "IT", "NL", "BR", "IN", "NG")
CURRENCY = {"US": "USD", "GB": "GBP", "BR": "BRL", "IN": "INR", "NG": "NGN"}  # the rest pay in EUR
CATEGORIES = ("grocery", "fuel", "restaurants", "travel", "electronics", "gaming", "fashion", "crypto")
# typical ticket size (median amount) and base fraud propensity per merchant category
_CATEGORY_MEDIAN = (35.0, 50.0, 28.0, 320.0, 180.0, 22.0, 75.0, 260.0)
_CATEGORY_RISK = (0.002, 0.003, 0.002, 0.01, 0.02, 0.015, 0.006, 0.05)
ACCOUNT_TYPES = ("standard", "premium", "business")
DEVICES = ("mobile", "web", "pos")

TRANSACTIONS_DDL = (
    "txn_id long, user_id long, merchant_id string, amount double, currency string, country string, "
    "device string, event_time timestamp, is_fraud boolean, fraud_reported_at timestamp, ds string"
)
USERS_DDL = (
    "user_id long, signup_time timestamp, home_country string, account_type string, "
    "credit_limit double, kyc_verified boolean, updated_at timestamp"
)
MERCHANTS_DDL = "merchant_id string, category string, country string, created_at timestamp"


@dataclass(frozen=True)
class WarehouseSpec:
    """What to generate.  ``end_date`` is the last ``ds`` partition (default: yesterday, UTC)."""

    n_users: int = 1000
    n_merchants: int | None = None  # default: n_users // 20, at least 20
    days: int = 35
    txns_per_user_day: float = 0.4
    end_date: date | None = None
    seed: int = 7

    def __post_init__(self) -> None:
        if self.n_users < 1:
            raise ConfigurationError(f"--users must be >= 1, got {self.n_users}")
        if self.days < 1:
            raise ConfigurationError(f"--days must be >= 1, got {self.days}")
        if self.txns_per_user_day <= 0:
            raise ConfigurationError(f"--txns-per-user-day must be > 0, got {self.txns_per_user_day}")
        if self.n_merchants is not None and self.n_merchants < 1:
            raise ConfigurationError(f"--merchants must be >= 1, got {self.n_merchants}")

    @property
    def merchants(self) -> int:
        return self.n_merchants if self.n_merchants is not None else max(20, self.n_users // 20)

    @property
    def last_day(self) -> date:
        return self.end_date or (datetime.now(UTC).date() - timedelta(days=1))

    @property
    def first_day(self) -> date:
        return self.last_day - timedelta(days=self.days - 1)


def merchant_id(index: int, n_merchants: int) -> str:
    """``m0001`` style ids, zero-padded to at least four digits."""
    return f"m{index:0{max(4, len(str(n_merchants)))}d}"


def _epoch_us(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) * 1_000_000


def _timestamps(us: np.ndarray) -> pd.Series:
    import pandas as pd

    # timezone-aware UTC, so Spark does not reinterpret them in a local time zone
    return pd.Series(pd.to_datetime(us, unit="us", utc=True))


def _merchants(spec: WarehouseSpec, rng: np.random.Generator) -> tuple[pd.DataFrame, np.ndarray]:
    import numpy as np
    import pandas as pd

    n = spec.merchants
    category = rng.integers(0, len(CATEGORIES), n)
    country = rng.choice(len(COUNTRIES), n, p=_country_weights())
    # most merchants existed long before the window; a few open during it
    start = _epoch_us(spec.first_day)
    created = start - rng.integers(0, 3 * 365 * 86_400_000_000, n)
    opening = rng.random(n) < 0.05
    created[opening] = start + rng.integers(0, spec.days * 86_400_000_000, int(opening.sum()))
    frame = pd.DataFrame(
        {
            "merchant_id": [merchant_id(i, n) for i in range(1, n + 1)],
            "category": np.array(CATEGORIES, dtype=object)[category],
            "country": np.array(COUNTRIES, dtype=object)[country],
            "created_at": _timestamps(created),
        }
    )
    return frame, np.column_stack([category, country, created])


def _country_weights() -> list[float]:
    weights = [0.3, 0.12, 0.12, 0.1, 0.08, 0.08, 0.06, 0.06, 0.05, 0.03]
    return [w / sum(weights) for w in weights]


def _users(spec: WarehouseSpec, rng: np.random.Generator) -> tuple[pd.DataFrame, np.ndarray]:
    import numpy as np
    import pandas as pd

    n = spec.n_users
    ids = np.arange(1, n + 1, dtype=np.int64)
    start = _epoch_us(spec.first_day)
    signup = start - rng.integers(86_400_000_000, 3 * 365 * 86_400_000_000, n)
    recent = rng.random(n) < 0.08  # sign-ups during the window: absent before they exist
    signup[recent] = start + rng.integers(0, spec.days * 86_400_000_000, int(recent.sum()))
    home = rng.choice(len(COUNTRIES), n, p=_country_weights())
    account_type = rng.choice(len(ACCOUNT_TYPES), n, p=[0.8, 0.15, 0.05])
    limit = np.round(rng.choice([500.0, 1000.0, 2500.0, 5000.0, 10000.0], n), 2)
    kyc = rng.random(n) < 0.85
    base = pd.DataFrame(
        {
            "user_id": ids,
            "signup_time": _timestamps(signup),
            "home_country": np.array(COUNTRIES, dtype=object)[home],
            "account_type": np.array(ACCOUNT_TYPES, dtype=object)[account_type],
            "credit_limit": limit,
            "kyc_verified": kyc,
            "updated_at": _timestamps(signup),
        }
    )
    # ~20% of accounts change during the window: a new limit, KYC completed.
    changed = np.flatnonzero(rng.random(n) < 0.2)
    when = np.maximum(signup[changed], start) + rng.integers(3_600_000_000, spec.days * 86_400_000_000, changed.size)
    inside = when < _epoch_us(spec.last_day + timedelta(days=1))
    changed, when = changed[inside], when[inside]
    updates = base.iloc[changed].copy()
    updates["credit_limit"] = np.round(
        updates["credit_limit"].to_numpy() * rng.choice([0.5, 1.5, 2.0], changed.size), 2
    )
    updates["kyc_verified"] = True
    updates["updated_at"] = _timestamps(when).to_numpy()
    users = pd.concat([base, updates], ignore_index=True)
    return users, np.column_stack([signup, home])


def activity_weights(spec: WarehouseSpec, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """How often each user pays and each merchant is paid: skewed (Zipf-like), fixed for the whole table."""
    import numpy as np

    user_weight = 1.0 / np.arange(1, spec.n_users + 1) ** 0.6
    merchant_weight = 1.0 / np.arange(1, spec.merchants + 1) ** 0.9
    return (
        rng.permutation(user_weight / user_weight.sum()),
        rng.permutation(merchant_weight / merchant_weight.sum()),
    )


def _transactions(
    spec: WarehouseSpec,
    rng: np.random.Generator,
    users: np.ndarray,
    merchants: np.ndarray,
    weights: tuple[np.ndarray, np.ndarray],
    day: date,
    first_txn_id: int,
) -> pd.DataFrame:
    """One day of payments (ids from ``first_txn_id``), from a generator of that day alone."""
    import numpy as np
    import pandas as pd

    n_users, n_merchants = spec.n_users, spec.merchants
    rows = int(rng.poisson(spec.txns_per_user_day * n_users))
    user_idx = rng.choice(n_users, rows, p=weights[0])
    merchant_idx = rng.choice(n_merchants, rows, p=weights[1])
    # a daytime-heavy clock; ~8% of payments fall between 00:00 and 06:00 UTC
    night = rng.random(rows) < 0.08
    second = np.where(night, rng.integers(0, 6 * 3600, rows), rng.integers(6 * 3600, 86_400, rows))
    event = _epoch_us(day) + second * 1_000_000 + rng.integers(0, 1_000_000, rows)
    category = merchants[merchant_idx, 0]
    median = np.array(_CATEGORY_MEDIAN)[category]
    amount = np.round(median * rng.lognormal(0.0, 0.8, rows), 2) + 0.01
    home = users[user_idx, 1]
    abroad = rng.random(rows) < 0.07
    country = np.where(abroad, rng.integers(0, len(COUNTRIES), rows), home)
    risk = np.array(_CATEGORY_RISK)[category] * np.where(night, 4.0, 1.0) * np.where(country != home, 3.0, 1.0)
    fraud = rng.random(rows) < np.minimum(risk, 0.9)
    reported = event + rng.integers(3_600_000_000, 10 * 86_400_000_000, rows)
    country_code = np.array(COUNTRIES, dtype=object)[country]
    frame = pd.DataFrame(
        {
            "txn_id": np.arange(first_txn_id, first_txn_id + rows, dtype=np.int64),
            "user_id": (user_idx + 1).astype(np.int64),
            "merchant_id": np.array([merchant_id(i, n_merchants) for i in range(1, n_merchants + 1)], dtype=object)[
                merchant_idx
            ],
            "amount": amount,
            "currency": np.array([CURRENCY.get(c, "EUR") for c in country_code], dtype=object),
            "country": country_code,
            "device": np.array(DEVICES, dtype=object)[rng.choice(3, rows, p=[0.55, 0.3, 0.15])],
            "event_time": _timestamps(event),
            "is_fraud": fraud,
            "fraud_reported_at": _timestamps(np.where(fraud, reported, 0)).where(fraud, None),
            "ds": pd.to_datetime(event, unit="us", utc=True).strftime("%Y-%m-%d"),
        }
    )
    # nobody pays before they sign up, nor at a merchant that does not exist yet
    valid = (event >= users[user_idx, 0]) & (event >= merchants[merchant_idx, 2])
    frame = frame[valid].reset_index(drop=True)
    frame["txn_id"] = np.arange(first_txn_id, first_txn_id + len(frame), dtype=np.int64)  # dense across days
    return frame


def generate_warehouse(
    spark: SparkSession,
    warehouse: str | Path,
    spec: WarehouseSpec | None = None,
    *,
    chunk_days: int | None = None,
) -> GeneratedWarehouse:
    """Write the sample warehouse (overwriting it) and return its row counts.

    Transactions are generated and appended ``chunk_days`` days at a time (default: as
    many days as keep a chunk near two million rows), so benchmark-sized tables do not
    need the whole table in memory.
    """
    import numpy as np
    import pandas as pd

    spec = spec or WarehouseSpec()
    started = time.monotonic()
    root = Path(warehouse).absolute()
    rng = np.random.default_rng(spec.seed)
    merchants, merchant_facts = _merchants(spec, rng)
    users, user_facts = _users(spec, rng)
    rows: dict[str, int] = {}
    log.info("merchants: %d rows", len(merchants))
    write_table(spark.createDataFrame(merchants, MERCHANTS_DDL), table_path(root, "merchants"), partitioned=False)
    rows["merchants"] = len(merchants)
    log.info("users: %d rows", len(users))
    write_table(spark.createDataFrame(users, USERS_DDL), table_path(root, "users"), partitioned=False)
    rows["users"] = len(users)
    per_day = max(1.0, spec.txns_per_user_day * spec.n_users)
    chunk = chunk_days or max(1, min(spec.days, int(2_000_000 / per_day)))
    weights = activity_weights(spec, rng)
    total, next_id, mode = 0, 1, "overwrite"
    for offset in range(0, spec.days, chunk):
        frames = []
        for day in range(offset, min(offset + chunk, spec.days)):
            # a generator per day, derived from the seed: the same rows however the days are chunked
            day_rng = np.random.default_rng([spec.seed, day])
            frame = _transactions(
                spec, day_rng, user_facts, merchant_facts, weights, spec.first_day + timedelta(days=day), next_id
            )
            next_id += len(frame)
            frames.append(frame)
        frame = pd.concat(frames, ignore_index=True)
        total += len(frame)
        log.info("transactions: days %d..%d of %d, %d rows", offset + 1, offset + len(frames), spec.days, total)
        write_table(
            spark.createDataFrame(frame, TRANSACTIONS_DDL),
            table_path(root, "transactions"),
            partitioned=True,
            mode=mode,
        )
        mode = "append"
    rows["transactions"] = total
    return GeneratedWarehouse(root, rows, spec.first_day, spec.last_day, time.monotonic() - started)


# --- the hooks of the dev commands ----------------------------------------------------------

TOPIC = "transactions"
USERS_PER_SCALE = 1000  # scale 1.0: 1000 card holders (`--users N` is scale N / 1000)
EVENT_SCHEMA = "user_id long, amount double, country string, event_time timestamp"
EVENT_COUNTRIES = ("US", "US", "US", "GB", "FR", "DE", "IN", "BR", "NG", "JP")

# malformed records for the dead-letter path (`kafka produce --bad-share`): each one a dead letter for its reason
BAD_RECORDS: tuple[bytes, ...] = (
    b"{not json",
    b'["a", "list"]',
    b'{"amount": 1.5, "country": "FR", "event_time": "2026-01-01T00:00:00Z"}',
    b'{"user_id": "seven", "amount": 1.5, "country": "FR", "event_time": "2026-01-01T00:00:00Z"}',
    b'{"user_id": 7, "amount": 1.5, "country": "FR"}',
)


def generate(
    spark: SparkSession,
    warehouse: str | Path,
    *,
    end_date: date | None = None,
    days: int = 35,
    scale: float = 1.0,
    seed: int = 7,
) -> GeneratedWarehouse:
    """The hook of ``featurestore generate``: ``USERS_PER_SCALE * scale`` card holders, ``days`` days."""
    users = max(1, round(USERS_PER_SCALE * scale))
    return generate_warehouse(spark, warehouse, WarehouseSpec(n_users=users, days=days, end_date=end_date, seed=seed))


@dataclass(frozen=True)
class TxnEvent:
    """One card transaction of the sample stream."""

    user_id: int
    amount: float
    country: str
    event_ms: int

    def as_dict(self) -> dict[str, Any]:
        """The event as the stream carries it (event time as ISO 8601 UTC, millisecond precision)."""
        stamp = datetime.fromtimestamp(self.event_ms / 1000, UTC).isoformat(timespec="milliseconds")
        return {"user_id": self.user_id, "amount": self.amount, "country": self.country, "event_time": stamp}

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), separators=(",", ":"))


class EventGenerator:
    """Deterministic sample transactions (for a seed), timed around the clock it is given.

    About ``late_share`` of the events arrive late: their event time lies 30 s to 4 min
    before the moment they are produced, as with a mobile terminal that reconnects.
    """

    def __init__(self, users: int, seed: int = 7, late_share: float = 0.05) -> None:
        if users < 1:
            raise ValueError(f"users must be >= 1, got {users}")
        self.users = users
        self.late_share = late_share
        self._random = random.Random(seed)
        self._taken: set[tuple[int, int]] = set()  # (user, ms): no two events of a user share a ms

    def events(self, count: int, now_ms: int) -> list[TxnEvent]:
        rnd = self._random
        out = []
        for _ in range(count):
            user = rnd.randint(1, self.users)
            ms = now_ms - rnd.randint(0, 500)
            if rnd.random() < self.late_share:
                ms -= rnd.randint(30_000, 240_000)
            while (user, ms) in self._taken:
                ms -= 1
            self._taken.add((user, ms))
            amount = round(rnd.lognormvariate(3.5, 1.0), 2)
            out.append(TxnEvent(user, amount, rnd.choice(EVENT_COUNTRIES), ms))
        return out


def events(n: int, now_ms: int, *, seed: int = 7, late_share: float = 0.05) -> list[tuple[str, str, dict[str, Any]]]:
    """The hook of ``featurestore kafka produce``: ``n`` transactions around ``now_ms`` as (topic, key, event)."""
    return [
        (TOPIC, str(e.user_id), e.as_dict())
        for e in EventGenerator(USERS_PER_SCALE, seed=seed, late_share=late_share).events(n, now_ms)
    ]


# what `featurestore demo --example fraud` reads back at the end (entity -> ids)
SAMPLE_IDS: dict[str, list[object]] = {"user": [1, 2, 3], "merchant": ["m0001", "m0002"]}
