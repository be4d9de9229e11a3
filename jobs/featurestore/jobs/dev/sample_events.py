"""The demo's sample transaction events: what ``featurestore kafka produce-demo`` sends to Kafka
and the file-source streaming demo drops into a folder (one generator, so both paths see the
same traffic for a seed)."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime

COUNTRIES = ("US", "US", "US", "GB", "FR", "DE", "IN", "BR", "NG", "JP")
EVENT_SCHEMA = "user_id long, amount double, country string, event_time timestamp"


@dataclass(frozen=True)
class TxnEvent:
    """One card transaction of the sample stream."""

    user_id: int
    amount: float
    country: str
    event_ms: int

    def to_json(self) -> str:
        stamp = datetime.fromtimestamp(self.event_ms / 1000, UTC).isoformat(timespec="milliseconds")
        return json.dumps(
            {"user_id": self.user_id, "amount": self.amount, "country": self.country, "event_time": stamp},
            separators=(",", ":"),
        )


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
            out.append(TxnEvent(user, amount, rnd.choice(COUNTRIES), ms))
        return out
