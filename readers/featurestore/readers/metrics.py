"""Prometheus metrics of a reader: latency, values served by status, errors (the ``[metrics]`` extra).

Off by default and then free: a reader built without ``metrics=`` runs exactly the code it
ran before (no flag checked per call).  With ``metrics=ReaderMetrics()`` its ``get`` and
``get_many`` are wrapped, per instance, to record:

* ``featurestore_reader_call_seconds{method, view}`` — a histogram of each call's latency;
  ``view`` is the request's view, or the views of a feature list joined with ``+``;
* ``featurestore_reader_values_total{view, feature, status}`` — values served, by status
  (``present``, ``missing``, ``stale``): a rising share of missing or stale values is the
  early sign of a dead pipeline, long before a model's metrics move;
* ``featurestore_reader_errors_total{method, error}`` — failed calls by error class.

prometheus-client is imported when a :class:`ReaderMetrics` is built, never at import time.
Expose them as any prometheus-client metrics (``prometheus_client.start_http_server``, a
web framework's ``/metrics`` route); the names are stable.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from .errors import ConfigurationError, FeatureStoreError
from .plan import ReadPlan
from .results import FeatureBatch, FeatureVector

CALL_SECONDS = "featurestore_reader_call_seconds"
VALUES_TOTAL = "featurestore_reader_values_total"
ERRORS_TOTAL = "featurestore_reader_errors_total"
# latency buckets for calls of ~100 µs to ~100 ms (the defaults start at 5 ms)
BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)

_Result = TypeVar("_Result", FeatureVector, FeatureBatch)
_Params = ParamSpec("_Params")
_StatusCounters = tuple[Any, Any, Any]  # one feature's present, missing and stale counters


class ReaderMetrics:
    """The reader's Prometheus metrics, registered in ``registry`` (default: the global one).

    One instance per process and registry (Prometheus refuses a metric name registered
    twice); share it between readers.
    """

    def __init__(self, registry: Any = None) -> None:
        try:
            import prometheus_client
        except ImportError:
            raise ConfigurationError(
                "reader metrics need prometheus-client: pip install 'redis-feature-store[metrics]'"
            ) from None
        registry = prometheus_client.REGISTRY if registry is None else registry
        self.calls = prometheus_client.Histogram(
            CALL_SECONDS, "Latency of reader calls", ["method", "view"], buckets=BUCKETS, registry=registry
        )
        self.values = prometheus_client.Counter(
            VALUES_TOTAL, "Feature values served, by status", ["view", "feature", "status"], registry=registry
        )
        self.errors = prometheus_client.Counter(
            ERRORS_TOTAL, "Failed reader calls, by error class", ["method", "error"], registry=registry
        )
        # per plan: its view label and each feature's (present, missing, stale) counters, so a
        # call costs no label lookups (``labels()`` takes a lock and builds a tuple each time)
        self._children: dict[tuple[str, tuple[str, ...]], tuple[str, list[_StatusCounters]]] = {}

    def _for(self, plan: ReadPlan) -> tuple[str, list[_StatusCounters]]:
        key = (plan.entity.name, plan.names)  # feature names are unique per entity
        cached = self._children.get(key)
        if cached is None:
            view_of = {f.name: slot.view.name for slot in plan.views for f in slot.view.features}
            label = "+".join(slot.view.name for slot in plan.views)
            counters = [
                (
                    self.values.labels(view_of[name], name, "present"),
                    self.values.labels(view_of[name], name, "missing"),
                    self.values.labels(view_of[name], name, "stale"),
                )
                for name in plan.names
            ]
            cached = self._children[key] = (label, counters)
        return cached

    def record(self, method: str, result: FeatureVector | FeatureBatch, seconds: float) -> None:
        """Count one successful call: its latency and each value's status."""
        plan: ReadPlan = result._plan
        label, counters = self._for(plan)
        self.calls.labels(method, label).observe(seconds)
        if isinstance(result, FeatureVector):
            masks = [(result._missing, result._stale)]
        else:
            masks = list(zip(result._missing, result._stale))
        rows = len(masks)
        if not any(missing or stale for missing, stale in masks):  # the common case: all present
            for present, _, _ in counters:
                present.inc(rows)
            return
        for position, (present, missing_counter, stale_counter) in enumerate(counters):
            bit = 1 << position
            missing = sum(1 for m, _ in masks if m & bit)
            stale = sum(1 for m, s in masks if s & bit and not m & bit)
            if rows - missing - stale:
                present.inc(rows - missing - stale)
            if missing:
                missing_counter.inc(missing)
            if stale:
                stale_counter.inc(stale)

    def failed(self, method: str, error: BaseException) -> None:
        self.errors.labels(method, type(error).__name__).inc()

    def wrap(self, method: str, call: Callable[_Params, _Result]) -> Callable[_Params, _Result]:
        """``call`` (a reader's bound ``get``/``get_many``), recording each call."""

        @functools.wraps(call)
        def recorded(*args: _Params.args, **kwargs: _Params.kwargs) -> _Result:
            started = time.perf_counter()
            try:
                result = call(*args, **kwargs)
            except FeatureStoreError as exc:
                self.failed(method, exc)
                raise
            self.record(method, result, time.perf_counter() - started)
            return result

        return recorded

    def wrap_async(
        self, method: str, call: Callable[_Params, Coroutine[Any, Any, _Result]]
    ) -> Callable[_Params, Coroutine[Any, Any, _Result]]:
        """The same for an async reader's coroutine methods."""

        @functools.wraps(call)
        async def recorded(*args: _Params.args, **kwargs: _Params.kwargs) -> _Result:
            started = time.perf_counter()
            try:
                result = await call(*args, **kwargs)
            except FeatureStoreError as exc:
                self.failed(method, exc)
                raise
            self.record(method, result, time.perf_counter() - started)
            return result

        return recorded
