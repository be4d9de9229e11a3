"""The sample fraud warehouse: deterministic, seeded Delta tables for the demo, tests and benchmarks.

``featurestore generate --warehouse PATH [--users N] [--days D] [--end-date YYYY-MM-DD]``
writes three Delta tables under ``PATH``:

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
arguments always give the same rows (numpy's PCG64 seeded with ``--seed``): a few
thousand rows for tests, millions for benchmarks (generated and written in chunks of
days, so memory stays bounded).
"""

from __future__ import annotations

import argparse
import logging
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from featurestore.jobs.batch.sources import DEFAULT_WAREHOUSE, PARTITION_COLUMN, parse_date, table_path
from featurestore.jobs.core.settings import Settings
from featurestore.jobs.spark import session
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


@dataclass(frozen=True)
class GeneratedWarehouse:
    """Where the tables went and how many rows each has."""

    path: Path
    rows: dict[str, int]
    first_day: date
    last_day: date
    seconds: float


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


def generate(
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
    _write(spark.createDataFrame(merchants, MERCHANTS_DDL), table_path(root, "merchants"), partitioned=False)
    rows["merchants"] = len(merchants)
    log.info("users: %d rows", len(users))
    _write(spark.createDataFrame(users, USERS_DDL), table_path(root, "users"), partitioned=False)
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
        _write(
            spark.createDataFrame(frame, TRANSACTIONS_DDL),
            table_path(root, "transactions"),
            partitioned=True,
            mode=mode,
        )
        mode = "append"
    rows["transactions"] = total
    return GeneratedWarehouse(root, rows, spec.first_day, spec.last_day, time.monotonic() - started)


def _write(df: Any, path: Path, *, partitioned: bool, mode: str = "overwrite") -> None:
    if partitioned:
        # one file per ds partition keeps small warehouses from becoming thousands of files
        df = df.repartition(PARTITION_COLUMN)
    writer = df.write.format("delta").mode(mode).option("overwriteSchema", "true")
    if partitioned:
        writer = writer.partitionBy(PARTITION_COLUMN)
    writer.save(str(path))


# --- `featurestore generate` -----------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--warehouse", default=str(DEFAULT_WAREHOUSE), help="folder of the Delta tables")
    parser.add_argument("--users", type=int, default=1000, help="number of card holders (ids 1..N)")
    parser.add_argument("--merchants", type=int, default=None, help="number of merchants (default: users/20)")
    parser.add_argument("--days", type=int, default=35, help="days of transactions, ending at --end-date")
    parser.add_argument("--txns-per-user-day", type=float, default=0.4, help="mean payments per user per day")
    parser.add_argument("--end-date", default=None, help="last ds partition, YYYY-MM-DD (default: yesterday UTC)")
    parser.add_argument("--seed", type=int, default=7)


def spec_from_args(args: argparse.Namespace) -> WarehouseSpec:
    return WarehouseSpec(
        n_users=args.users,
        n_merchants=args.merchants,
        days=args.days,
        txns_per_user_day=args.txns_per_user_day,
        end_date=parse_date(args.end_date, "--end-date") if args.end_date else None,
        seed=args.seed,
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    from featurestore.jobs.core import console

    spec = spec_from_args(args)
    with console.Steps(2, "generate") as steps:
        with steps.step("start Spark"):
            spark, own_session = session(None, "featurestore-generate", settings)
        try:
            with steps.step("write the Delta tables"):
                result = generate(spark, args.warehouse, spec)
        finally:
            if own_session:
                spark.stop()
    counts = ", ".join(f"{table} {count:,}" for table, count in result.rows.items())
    console.echo(
        f"wrote {result.path} ({counts} rows; ds {result.first_day}..{result.last_day}) in {result.seconds:.1f}s"
    )
    return console.ExitCode.OK
