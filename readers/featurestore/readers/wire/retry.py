"""The one retry policy: keep trying until a deadline.

Every client of the wire retries the same things (lost connections, redirects,
``TRYAGAIN``/``CLUSTERDOWN``/``LOADING``...) the same way: exponential backoff with
jitter, a topology refresh between attempts, and one deadline that bounds the whole
operation.  Only the deadline differs by caller: the reader's is its per-call timeout
(inference must fail fast), the writers' is long enough to ride through a failover
(a replica takes a few seconds to be promoted).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import ConfigurationError

Clock = Callable[[], float]

# A Redis Cluster failover (node timeout + election) takes 6-9 s on the local test
# cluster; 30 s rides through one with margin and still fails a dead cluster in time.
WRITER_RETRY_SECONDS = 30.0


@dataclass(frozen=True)
class RetryPolicy:
    """How long to keep trying, and how long to wait between attempts.

    ``seconds`` is the whole budget of one operation, from its first attempt; ``None``
    means "the caller's deadline" (the reader passes its per-call timeout).  Waits grow
    from ``first_backoff`` by doubling up to ``max_backoff``, with jitter so that many
    writers do not retry in lockstep, and never past the deadline.
    """

    seconds: float | None = WRITER_RETRY_SECONDS
    first_backoff: float = 0.025
    max_backoff: float = 1.0
    jitter: bool = True

    def __post_init__(self) -> None:
        if self.seconds is not None and not self.seconds > 0:
            raise ConfigurationError(f"retry seconds must be > 0, got {self.seconds!r}")
        if not 0 < self.first_backoff <= self.max_backoff:
            raise ConfigurationError(
                f"backoff must satisfy 0 < first ({self.first_backoff}) <= max ({self.max_backoff})"
            )

    def backoff(self, attempt: int) -> float:
        """The wait before attempt ``attempt`` (2, 3, ...): doubling, capped, jittered."""
        wait = min(self.first_backoff * 2 ** max(attempt - 2, 0), self.max_backoff)
        return float(wait * random.uniform(0.5, 1.0)) if self.jitter else float(wait)

    def start(self, clock: Clock = time.monotonic, seconds: float | None = None) -> Deadline:
        """The deadline of one operation starting now (``seconds`` overrides the policy's)."""
        budget = seconds if seconds is not None else self.seconds
        if budget is None:
            raise ConfigurationError("a retry policy without seconds needs the caller's deadline")
        return Deadline(self, clock() + budget, budget, clock)


@dataclass
class Deadline:
    """One operation's budget: ``remaining()``, and the wait before the next attempt."""

    policy: RetryPolicy
    at: float
    seconds: float
    clock: Clock = field(default=time.monotonic)
    attempt: int = 1

    def remaining(self) -> float:
        return self.at - self.clock()

    def expired(self) -> bool:
        return self.remaining() <= 0

    def next_wait(self) -> float | None:
        """Count one more attempt; the wait before it, or None when it would start past the deadline."""
        wait = self.policy.backoff(self.attempt + 1)
        if wait >= self.remaining():
            return None
        self.attempt += 1
        return wait
