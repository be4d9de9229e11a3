"""The pure pieces of the wire: reply classification, the retry policy, the slot map and
the round-trip engine (no I/O, injected clock)."""

from __future__ import annotations

import pytest

from featurestore.readers.errors import ConfigurationError
from featurestore.readers.wire import (
    REFRESH,
    RepairNodes,
    ReplyKind,
    RetryPolicy,
    RoundTrip,
    Router,
    SlotMap,
    classify,
    encode,
)
from featurestore.readers.wire.engine import RefusedReply


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("reply", "kind", "node"),
    [
        ("MOVED 3999 127.0.0.1:7001", ReplyKind.MOVED, "127.0.0.1:7001"),
        ("ASK 3999 127.0.0.1:7002", ReplyKind.ASK, "127.0.0.1:7002"),
        ("TRYAGAIN Multiple keys request during rehashing", ReplyKind.RETRY, None),
        ("CLUSTERDOWN The cluster is down", ReplyKind.RETRY, None),
        ("LOADING Redis is loading the dataset in memory", ReplyKind.RETRY, None),
        ("READONLY You can't write against a read only replica.", ReplyKind.RETRY, None),
        ("NOPERM User x has no permissions", ReplyKind.FATAL, None),
        ("WRONGPASS invalid username-password pair", ReplyKind.FATAL, None),
        ("OOM command not allowed when used memory > 'maxmemory'.", ReplyKind.FATAL, None),
        ("WRONGTYPE Operation against a key holding the wrong kind of value", ReplyKind.FAILED, None),
    ],
)
def test_every_error_reply_has_one_meaning(reply: str, kind: ReplyKind, node: str | None) -> None:
    assert classify(reply) == (kind, node)


def test_encode_is_resp_bulk_strings() -> None:
    expected = b"*4\r\n$5\r\nHMGET\r\n$11\r\nfs:user:{1}\r\n$1\r\na\r\n$1\r\n7\r\n"
    assert encode("HMGET", b"fs:user:{1}", "a", 7) == expected


def test_policy_backs_off_doubling_and_stops_at_the_deadline() -> None:
    clock = Clock()
    policy = RetryPolicy(seconds=1.0, first_backoff=0.1, max_backoff=0.4, jitter=False)
    deadline = policy.start(clock)
    waits = []
    while (wait := deadline.next_wait()) is not None:
        waits.append(wait)
        clock.now += wait
    assert waits == pytest.approx([0.1, 0.2, 0.4])  # a 4th 0.4 s wait would end past the deadline
    assert clock.now == pytest.approx(0.7)


def test_policy_jitter_stays_within_half_to_full_backoff() -> None:
    policy = RetryPolicy(seconds=10.0, first_backoff=0.2, max_backoff=0.2)
    assert all(0.1 <= policy.backoff(n) <= 0.2 for n in range(2, 50))


def test_policy_settings_are_checked() -> None:
    with pytest.raises(ConfigurationError, match="retry seconds"):
        RetryPolicy(seconds=0)
    with pytest.raises(ConfigurationError, match="backoff"):
        RetryPolicy(first_backoff=2.0, max_backoff=1.0)
    with pytest.raises(ConfigurationError, match="caller's deadline"):
        RetryPolicy(seconds=None).start()


def test_slot_map_parses_cluster_slots_and_routes_replicas_per_round_trip() -> None:
    reply = [
        [0, 8191, [b"127.0.0.1", 7000, b"id0"], [b"127.0.0.1", 7003, b"id3"]],
        [8192, 16383, [b"127.0.0.1", 7001, b"id1"], [b"127.0.0.1", 7004, b"id4"], [b"127.0.0.1", 7005, b"id5"]],
    ]
    slots = SlotMap.from_cluster_slots(reply)
    assert slots.primaries[0] == slots.primaries[8191] == "127.0.0.1:7000"
    assert slots.primaries[8192] == "127.0.0.1:7001"
    assert slots.covered and slots.primary_nodes == ["127.0.0.1:7000", "127.0.0.1:7001"]
    router = Router(slots, replicas=True)
    first = router.group([10, 9000, 9001], [0, 1, 2])
    second = router.group([10, 9000, 9001], [0, 1, 2])
    assert first == {"127.0.0.1:7003": [0], "127.0.0.1:7004": [1, 2]}  # one replica per shard per trip
    assert second == {"127.0.0.1:7003": [0], "127.0.0.1:7005": [1, 2]}


def test_unserved_slots_stay_pending_and_ask_for_a_refresh() -> None:
    slots = SlotMap(primaries=("a:1",) * 100 + ("",) * (16384 - 100), replicas=((),) * 16384)
    clock = Clock()
    trip = RoundTrip.of([5, 200, 6], Router(slots).group, RetryPolicy(seconds=1.0).start(clock))
    batches = trip.batches()
    assert [(b.node, b.units) for b in batches] == [("a:1", [0, 2])]
    assert trip.pending == [1] and trip.refresh_needed
    assert "reconfiguring" in str(trip.last_error)


def test_engine_tracks_redirects_failures_and_refusals() -> None:
    slots = SlotMap.single("n:1")
    trip = RoundTrip.of([0, 0, 0, 0], Router(slots).group, RetryPolicy(seconds=1.0).start(Clock()))
    (batch,) = trip.batches()
    trip.replied(batch, [(0, "ASK 0 m:2"), (1, "WRONGTYPE no"), (3, "MOVED 0 m:2")])
    assert trip.failed == {1: "WRONGTYPE no"}
    assert sorted(trip.pending) == [0, 3] and trip.retries == 2 and trip.refresh_needed
    assert trip.next_wait() is not None
    trip.reroute(Router(slots).group)
    batches = trip.batches()
    assert [(b.node, b.units, b.asking) for b in batches] == [("n:1", [3], False), ("m:2", [0], True)]
    with pytest.raises(RefusedReply, match="NOPERM"):
        trip.replied(batches[0], [(0, "NOPERM nope")])


def test_engine_judges_a_transaction_by_its_real_error_not_execabort() -> None:
    trip = RoundTrip.of([0], Router(SlotMap.single("n:1")).group, RetryPolicy(seconds=1.0).start(Clock()))
    (batch,) = trip.batches()
    trip.replied(batch, [(0, "EXECABORT Transaction discarded"), (0, "MOVED 0 m:2")])
    assert trip.pending == [0] and not trip.failed


# --- the one round-trip loop (RoundTrip.steps), as every driver steps through it -------------


def test_the_loop_backs_off_refreshes_after_a_redirect_and_resends_only_the_pending_units() -> None:
    clock = Clock()
    policy = RetryPolicy(seconds=1.0, jitter=False)
    trip = RoundTrip.of([0, 0, 0], Router(SlotMap.single("n:1")).group, policy.start(clock))
    steps = trip.steps()
    first = next(steps)
    assert isinstance(first, list) and [(b.node, b.units) for b in first] == [("n:1", [0, 1, 2])]
    trip.replied(first[0], [(1, "MOVED 0 n:1")])
    assert next(steps) == 0.025  # the backoff
    assert next(steps) is REFRESH
    again = next(steps)
    assert isinstance(again, list) and [(b.node, b.units) for b in again] == [("n:1", [1])]
    assert not trip.refresh_needed  # the driver refreshed: routed by its fresh slot map
    with pytest.raises(StopIteration):
        next(steps)
    assert trip.done


def test_the_loop_ends_undone_when_the_deadline_passes() -> None:
    clock = Clock()
    trip = RoundTrip.of([0], Router(SlotMap.single("n:1")).group, RetryPolicy(seconds=0.2, jitter=False).start(clock))
    waits: list[float] = []
    for step in trip.steps():
        if isinstance(step, list):
            trip.replied(step[0], [(0, "TRYAGAIN busy")])  # ASK aside, a retry asks for a refresh
        elif isinstance(step, float):
            waits.append(step)
            clock.now += step
    assert not trip.done and waits == pytest.approx([0.025, 0.05, 0.1])
    assert trip.last_error == "TRYAGAIN busy"


def test_the_loop_asks_for_a_repair_where_a_repairable_reply_came_from() -> None:
    trip = RoundTrip.of(
        [0, 0],
        Router(SlotMap.single("n:1")).group,
        RetryPolicy(seconds=1.0, jitter=False).start(Clock()),
        repairable=lambda reply: "not found" in reply,
    )
    steps = trip.steps()
    (batch,) = next(steps)  # type: ignore[misc]
    trip.replied(batch, [(0, "ERR Function not found"), (1, "WRONGTYPE no")])
    assert trip.failed == {1: "WRONGTYPE no"} and trip.pending == [0]
    assert next(steps) == 0.025
    assert next(steps) == RepairNodes(["n:1"])  # no refresh: the slot map is right
    (again,) = next(steps)  # type: ignore[misc]
    assert again.units == [0]
