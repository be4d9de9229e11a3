"""Prometheus metrics of a reader: latency, values served by status, errors (the ``[metrics]`` extra).

Off by default and then free: a reader built without ``metrics=`` runs exactly the code it
ran before (no flag checked per call).  With ``metrics=ReaderMetrics()`` its ``get`` and
``get_many`` are wrapped, per instance, to record:

* ``featurestore_reader_call_seconds{method, view}`` — a histogram of each call's latency;
  ``view`` is the request's view, or the views of a feature list joined with ``+``;
* ``featurestore_reader_values_total{view, feature, status}`` — values served, by status
  (``present``, ``missing``, ``stale``): a rising share of missing or stale values is the
  early sign of a dead pipeline, long before a model's metrics move;
* ``featurestore_reader_errors_total{method, error}`` — failed calls by error class, in
  ``snake_case`` like every label value (``FeatureNotFoundError`` -> ``feature_not_found_error``).

prometheus-client is imported when a :class:`ReaderMetrics` is built, never at import time.
Expose them as any prometheus-client metrics (``prometheus_client.start_http_server``, a
web framework's ``/metrics`` route); the names are stable.
"""

from __future__ import annotations

import functools
import re
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


def label_value(text: str) -> str:
    """``text`` as a ``snake_case`` label value, the one spelling of every label value of the reader and
    the jobs: ``never materialized`` -> ``never_materialized``, ``FeatureNotFoundError`` ->
    ``feature_not_found_error``."""
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", text.strip())
    return re.sub(r"[^a-z0-9]+", "_", words.lower()).strip("_")


_cached_label = functools.lru_cache(maxsize=256)(label_value)  # an error class's name, once per class


def error_label(error_class: type[BaseException]) -> str:
    """An error class's name as a label value (``FeatureNotFoundError`` -> ``feature_not_found_error``)."""
    return _cached_label(error_class.__name__)


def _bit_counts(masks: list[int], width: int) -> list[int]:
    """How many of ``masks`` have each of the ``width`` low bits set."""
    counts = [0] * width
    for mask in masks:
        while mask:
            low = mask & -mask
            counts[low.bit_length() - 1] += 1
            mask ^= low
    return counts


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
        self._histograms: dict[tuple[str, str], Any] = {}

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
        histogram = self._histograms.get((method, label))
        if histogram is None:
            histogram = self._histograms[(method, label)] = self.calls.labels(method, label)
        histogram.observe(seconds)
        if isinstance(result, FeatureVector):
            missing_masks, stale_masks = [result._missing], [result._stale]
        else:
            missing_masks, stale_masks = result._missing, result._stale
        rows = len(missing_masks)
        if not any(missing_masks) and not any(stale_masks):  # the common case: all present
            for present, _, _ in counters:
                present.inc(rows)
            return
        # visit only the set bits: a batch has few missing or stale values, and most rows none
        missing = _bit_counts(missing_masks, len(counters))
        stale = _bit_counts(stale_masks, len(counters))  # a missing value is never also stale
        for (present_counter, missing_counter, stale_counter), n_missing, n_stale in zip(counters, missing, stale):
            if rows - n_missing - n_stale:
                present_counter.inc(rows - n_missing - n_stale)
            if n_missing:
                missing_counter.inc(n_missing)
            if n_stale:
                stale_counter.inc(n_stale)

    def failed(self, method: str, error: BaseException) -> None:
        self.errors.labels(method, error_label(type(error))).inc()

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
