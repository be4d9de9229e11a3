"""The batch writer's pacing logic (featurestore.jobs.write.throttle) on an injected clock:
the per-task schedule, the job-wide budget shared by tasks, and the AIMD controller."""

from __future__ import annotations

from collections import Counter

import pytest

from featurestore.jobs.write.throttle import AdaptiveRate, Pacer, SharedBudget
from tests.helpers.clock import FakeClock


class Counters:
    """The shared counter (Redis INCRBY per window) as a dict."""

    def __init__(self) -> None:
        self.totals: Counter[int] = Counter()

    def take(self, index: int, rows: int) -> int:
        self.totals[index] += rows
        return self.totals[index]


def test_the_pacer_keeps_the_rate() -> None:
    clock = FakeClock()
    pacer = Pacer(100.0, clock, clock.sleep)
    for _ in range(10):
        pacer.wait(25)  # after each 25 rows sent: 250 rows at 100 rows/s take 2.5 s
    assert clock.now - 1000.0 == pytest.approx(2.5)
    assert clock.slept == pytest.approx([0.25] * 10)


def test_the_pacer_changes_rate_from_now_on() -> None:
    clock = FakeClock()
    pacer = Pacer(100.0, clock, clock.sleep)
    pacer.wait(100)  # 1 s at 100 rows/s
    pacer.set_rate(1000.0)
    pacer.wait(100)  # 0.1 s at the new rate, after what was owed
    assert clock.now - 1000.0 == pytest.approx(1.1)


def test_a_single_task_gets_the_whole_job_rate() -> None:
    # The even split gave each of N tasks rate/N, so an empty partition halved the load
    # rate (issue 14: 2,403 writes/s for 5,000 asked).  The shared budget has no split.
    clock, counters = FakeClock(), Counters()
    budget = SharedBudget(5000.0, counters.take, clock, clock.sleep)
    for _ in range(100):
        budget.wait(250)  # 25,000 rows
    assert 25_000 / (clock.now - 1000.0) == pytest.approx(5000.0, rel=0.03)
    assert len(counters.totals) == 50  # 0.1 s windows of 500 rows each


def test_tasks_share_the_budget_and_never_exceed_it() -> None:
    clock, counters = FakeClock(), Counters()
    tasks = [SharedBudget(5000.0, counters.take, clock, clock.sleep) for _ in range(3)]
    for _ in range(40):
        for task in tasks:  # interleaved, on one clock: what concurrent executors do
            task.wait(150)
    rows = 3 * 40 * 150
    assert rows / (clock.now - 1000.0) == pytest.approx(5000.0, rel=0.05)
    granted_per_window = [min(total, 500) for total in counters.totals.values()]
    assert max(granted_per_window) <= 500
    assert sum(granted_per_window) == rows  # every row was granted exactly once


def test_a_claim_larger_than_the_window_spreads_over_windows() -> None:
    clock, counters = FakeClock(), Counters()
    budget = SharedBudget(1000.0, counters.take, clock, clock.sleep)  # 100 rows per window
    budget.wait(350)
    assert budget.claims == 4  # 100 + 100 + 100 + 50
    assert clock.now - 1000.0 == pytest.approx(0.3)


def test_a_rate_below_one_row_per_window_widens_the_window() -> None:
    clock, counters = FakeClock(), Counters()
    budget = SharedBudget(2.0, counters.take, clock, clock.sleep)
    assert budget.window == pytest.approx(0.5) and budget.allowance == 1
    for _ in range(4):
        budget.wait(1)
    assert clock.now - 1000.0 == pytest.approx(1.5)  # 4 rows at 2/s: the 4th starts at 1.5 s


def test_the_budget_refuses_a_rate_of_zero() -> None:
    with pytest.raises(ValueError, match="rate must be > 0"):
        SharedBudget(0.0, Counters().take)


def adaptive(clock: FakeClock, ceiling: float | None = None) -> AdaptiveRate:
    controller = AdaptiveRate(
        start=1000.0, floor=100.0, ceiling=ceiling, step=500.0, target=0.0002, clock=clock, interval=0.2
    )
    controller.calibrate([0.00005, 0.00004, 0.00005, 0.00004])
    return controller


def test_adaptive_rate_grows_while_the_probe_is_fine() -> None:
    clock = FakeClock()
    controller = adaptive(clock)
    assert controller.baseline == pytest.approx(0.00005) and controller.limit == pytest.approx(0.00025)
    rates = []
    for _ in range(10):
        controller.observe(0.00008)
        clock.now += 0.1
        rates.append(controller.observe(0.00009))
        clock.now += 0.1
    assert rates[-1] == pytest.approx(1000.0 + 500.0 * controller.increases)
    assert controller.increases >= 9 and controller.decreases == 0


def test_adaptive_rate_drops_when_the_probes_go_above_the_limit() -> None:
    clock = FakeClock()
    controller = adaptive(clock)
    controller.rate = 8000.0
    controller.observe(0.00005)  # starts the interval
    clock.now += 0.1
    assert controller.observe(0.001) == 8000.0  # inside the interval: no decision yet
    clock.now += 0.1
    assert controller.observe(0.001) == pytest.approx(5600.0)  # most recent probes took 1 ms: -30 %
    for _ in range(20):
        clock.now += 0.2
        controller.observe(0.01)
    assert controller.rate == 100.0  # never below the floor


def test_one_late_probe_among_good_ones_does_not_slow_down() -> None:
    # On a shared machine a probe is sometimes late on its own (the task was descheduled).
    clock = FakeClock()
    controller = adaptive(clock)
    for i in range(16):
        clock.now += 0.05
        controller.observe(0.005 if i == 10 else 0.00006)
    assert controller.decreases == 0 and controller.increases >= 3


def test_adaptive_rate_stays_under_its_ceiling() -> None:
    clock = FakeClock()
    controller = adaptive(clock, ceiling=1800.0)
    for _ in range(10):
        clock.now += 0.2
        controller.observe(0.00005)
    assert controller.rate == 1800.0


def test_aimd_finds_the_rate_where_serving_stays_within_target() -> None:
    # A server whose probe round trip grows with the write rate (queueing behind the
    # writer's commands): 50 us idle, +100 us per 10,000 rows/s.  Target: +200 us, i.e. at
    # most 20,000 rows/s.  AIMD oscillates below that and uses most of it.
    clock = FakeClock()
    controller = AdaptiveRate(start=1000.0, floor=100.0, ceiling=None, step=1000.0, target=0.0002, clock=clock)
    controller.calibrate([0.00005])
    rates = []
    for _ in range(600):
        clock.now += 0.05
        rates.append(controller.observe(0.00005 + controller.rate * 1e-8))
    settled = rates[200:]
    assert max(settled) <= 21_000
    assert sum(settled) / len(settled) >= 13_000
