"""The real-time features of the example ``user_realtime`` view, from transaction events.

* ``txn_count_5m`` — transactions in the 5 minutes up to the user's latest transaction
* ``last_amount``, ``last_country`` — of the latest transaction (by event time)
* ``seconds_since_prev_txn`` — between the latest and the one before it

:func:`fold_events` and :func:`features_of` are the logic (pure); :func:`processor` wraps
them in a Spark ``StatefulProcessor`` for ``transformWithState`` (one state row per user,
checkpointed with the query).  Late events (event time before the user's latest) are
folded into the state, so they count where they belong and never replace the latest
values.  Both the Kafka job and the file-fed demo use this module.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

__all__ = [
    "NEEDED_FIELDS",
    "OUTPUT_SCHEMA",
    "STATE_SCHEMA",
    "VIEW",
    "WINDOW_MS",
    "features_of",
    "fold_events",
    "processor",
]

VIEW = "user_realtime"
WINDOW_MS = 5 * 60 * 1000
NEEDED_FIELDS = {"amount": "double", "country": "string"}  # besides the entity id and the event time
OUTPUT_SCHEMA = (
    "user_id long, txn_count_5m long, last_amount double, last_country string, "
    "seconds_since_prev_txn double, event_time long"
)
STATE_SCHEMA = "last_ms long, prev_ms long, last_amount double, last_country string, recent array<long>"

State = tuple[int, int, Any, Any, list[int]]


def fold_events(state: State, events: Iterable[tuple[int, float, str]]) -> State:
    """Fold ``(event_ms, amount, country)`` events into a user's state (pure).

    State: the latest and previous event times (-1: none), the latest amount and country,
    and the event times within 5 minutes of the latest, so that late events count where
    they belong and never replace the latest values.
    """
    last_ms, prev_ms, last_amount, last_country, recent = state
    recent = list(recent)
    for ms, amount, country in events:
        recent.append(ms)
        if ms > last_ms:
            prev_ms, last_ms, last_amount, last_country = last_ms, ms, amount, country
        elif ms > prev_ms:
            prev_ms = ms
    return last_ms, prev_ms, last_amount, last_country, [ms for ms in recent if ms > last_ms - WINDOW_MS]


def features_of(user_id: Any, state: State) -> dict[str, Any]:
    """The ``user_realtime`` row of a user's state (``event_time``: epoch ms of the latest)."""
    last_ms, prev_ms, last_amount, last_country, recent = state
    return {
        "user_id": user_id,
        "txn_count_5m": len(recent),
        "last_amount": last_amount,
        "last_country": last_country,
        "seconds_since_prev_txn": (last_ms - prev_ms) / 1000 if prev_ms >= 0 else None,
        "event_time": last_ms,
    }


def processor(produced_col: str | None = None) -> Any:
    """A ``StatefulProcessor`` for ``transformWithState``, keeping one state row per user.

    With ``produced_col``, each output row also carries the values of that input column
    (e.g. the Kafka record timestamps of the events folded in this micro-batch), as an
    ``array<long>`` column of the same name, for the latency measurement.

    Built in a function so that importing this module does not import pyspark; Spark
    ships the class to the executors by value, and this module's functions with it
    (``register_pickle_by_value``): the Python worker Spark starts on the driver to check
    the state schema then imports nothing of ours, so it starts within Spark's fixed 10 s
    on a busy machine too.
    """
    import sys

    from pyspark import cloudpickle
    from pyspark.sql import Row
    from pyspark.sql.streaming.stateful_processor import StatefulProcessor, StatefulProcessorHandle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # type: ignore[no-untyped-call]

    class UserRealtime(StatefulProcessor):
        def init(self, handle: StatefulProcessorHandle) -> None:
            self.state = handle.getValueState("user", STATE_SCHEMA)

        def handleInputRows(self, key: Any, rows: Iterator[Any], timerValues: Any) -> Iterator[Any]:
            stored = self.state.get() if self.state.exists() else None
            state: State = tuple(stored) if stored is not None else (-1, -1, None, None, [])
            produced: list[int] = []
            events = []
            for r in rows:
                events.append((r.event_ms, r.amount, r.country))
                if produced_col:
                    produced.append(r[produced_col])
            state = fold_events(state, events)
            self.state.update(state)
            out = features_of(key[0], state)
            if produced_col:
                out[produced_col] = produced
            yield Row(**out)

        def close(self) -> None:
            pass

    return UserRealtime()
