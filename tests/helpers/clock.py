"""A clock to inject in place of ``time.monotonic``/``time.time`` and ``time.sleep``: sleeping
advances it, and every sleep is recorded, so pacing and retry tests never wait."""

from __future__ import annotations


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
