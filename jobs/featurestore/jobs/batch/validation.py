"""The validation gate: built-in row checks, the view's Great Expectations suite, the collapse guard.

Run before anything is written; any failure raises
:class:`~featurestore.readers.errors.ValidationFailed` whose message names every failed
check with what was observed, and the job writes nothing.

1. **Row checks** (always on, whatever the suite says), counted in one Spark pass:
   a null entity id, a duplicated entity id, an infinite float feature, a vector of the
   wrong dimension or with a null element: failure.  A NaN float feature is stored as
   null (an absent field, per the storage format): not a failure, but counted per
   feature and reported (``nan_as_null``), never silently.
2. **The suite** ``<suite>.json`` (GX 1.x ``ExpectationSuite`` JSON), run on the Spark
   DataFrame with an ephemeral GX context.  It is read from ``--expectations DIR``, else
   ``$FEATURESTORE_EXPECTATIONS``, else the repository's ``expectations_dir`` (default
   ``expectations/``); outside a repository there is no default folder.
3. **The collapse guard**: rows to write, and rows read from the source, may not fall
   below ``min_row_ratio`` x those of the view's last successful run (``0`` turns it off).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from featurestore.jobs.core.settings import EXPECTATIONS_ENV_VAR as EXPECTATIONS_ENV_VAR
from featurestore.jobs.core.settings import Settings
from featurestore.readers.definitions import DType, FeatureView
from featurestore.readers.errors import ConfigurationError, GuardRefused, ValidationFailed

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

EXPECTATIONS_HELP = (
    f"folder of the GX suites, <suite>.json per batch view (default: ${EXPECTATIONS_ENV_VAR}, "
    "else the repository's expectations_dir, default expectations/)"
)
DEFAULT_MIN_ROW_RATIO = 0.5
_EXAMPLES = 5


# the guards' checks (featurestore.jobs.batch.guards): a refusal by them alone is a GuardRefused
INPUT_ROWS_CHECK = "featurestore:input_partition_rows"
INPUT_STALE_CHECK = "featurestore:input_not_stale"
DRIFT_CHECK = "featurestore:feature_drift"
GUARD_CHECKS = frozenset({INPUT_ROWS_CHECK, INPUT_STALE_CHECK, DRIFT_CHECK})


@dataclass(frozen=True)
class Failure:
    """One failed check: its name (the GX expectation type, or ``featurestore:<check>``) and what was seen."""

    check: str
    observed: str

    def __str__(self) -> str:
        return f"{self.check}: {self.observed}"


@dataclass(frozen=True)
class RowChecks:
    """What the built-in checks counted over the view's rows."""

    rows: int
    null_ids: int = 0
    duplicate_ids: int = 0
    duplicate_examples: tuple[Any, ...] = ()
    nan_as_null: Mapping[str, int] = field(default_factory=dict)
    infinite: Mapping[str, int] = field(default_factory=dict)
    bad_vectors: Mapping[str, int] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)  # the caller's own aggregates, by alias

    def failures(self, view: FeatureView) -> list[Failure]:
        key = view.entity.join_key
        out = []
        if self.null_ids:
            out.append(
                Failure("featurestore:entity_ids_not_null", f"{self.null_ids} of {self.rows} rows have a null {key}")
            )
        if self.duplicate_ids:
            examples = ", ".join(map(repr, self.duplicate_examples))
            out.append(
                Failure(
                    "featurestore:entity_ids_unique",
                    f"{self.duplicate_ids} {key} values appear on more than one row (e.g. {examples})",
                )
            )
        for name, count in self.infinite.items():
            out.append(Failure("featurestore:no_infinite_values", f"{name}: {count} of {self.rows} rows are +/-inf"))
        for name, count in self.bad_vectors.items():
            dim = view.feature(name).dim
            out.append(
                Failure(
                    "featurestore:vector_dimension",
                    f"{name}: {count} of {self.rows} vectors are not {dim} non-null floats",
                )
            )
        return out


def check_rows(df: DataFrame, view: FeatureView, extra: Sequence[Column] = ()) -> RowChecks:
    """Count null/duplicate ids, NaN/inf floats and malformed vectors in one pass (plus one for examples).

    ``extra`` aggregates (aliased columns, e.g. the drift guard's statistics) ride along in
    the same pass; their values come back in ``RowChecks.extra``.
    """
    from pyspark.sql import functions as F

    key = F.col(view.entity.join_key)
    aggregates = [
        F.count(F.lit(1)).alias("rows"),
        F.count(F.when(key.isNull(), True)).alias("null_ids"),
        F.count_distinct(key).alias("distinct_ids"),
    ]
    floats = [f.name for f in view.features if DType(f.dtype) in (DType.FLOAT32, DType.FLOAT64)]
    vectors = [f for f in view.features if DType(f.dtype) is DType.VECTOR]
    for name in floats:
        column = F.col(name)
        aggregates.append(F.count(F.when(F.isnan(column), True)).alias(f"nan:{name}"))
        aggregates.append(F.count(F.when(column.isin(float("inf"), float("-inf")), True)).alias(f"inf:{name}"))
    for feature in vectors:
        column = F.col(feature.name)
        malformed = (F.size(column) != feature.dim) | F.exists(column, lambda x: x.isNull())
        aggregates.append(F.count(F.when(column.isNotNull() & malformed, True)).alias(f"vec:{feature.name}"))
    own = len(aggregates)  # the extra aggregates' values follow the checks' own in the row
    counts = df.agg(*aggregates, *extra).first()
    assert counts is not None  # a global aggregate always has one row
    values = counts.asDict()
    rows, null_ids = int(values["rows"]), int(values["null_ids"])
    duplicates = rows - null_ids - int(values["distinct_ids"])
    examples: tuple[Any, ...] = ()
    if duplicates:
        repeated = df.where(key.isNotNull()).groupBy(key).count().where("count > 1")
        duplicates = repeated.count()
        examples = tuple(r[0] for r in repeated.orderBy(view.entity.join_key).limit(_EXAMPLES).collect())
    return RowChecks(
        rows=rows,
        null_ids=null_ids,
        duplicate_ids=duplicates,
        duplicate_examples=examples,
        nan_as_null={n: int(values[f"nan:{n}"]) for n in floats if values[f"nan:{n}"]},
        infinite={n: int(values[f"inf:{n}"]) for n in floats if values[f"inf:{n}"]},
        bad_vectors={f.name: int(values[f"vec:{f.name}"]) for f in vectors if values[f"vec:{f.name}"]},
        extra=dict(list(values.items())[own:]),
    )


def nan_to_null(df: DataFrame, view: FeatureView) -> DataFrame:
    """NaN float features become null: the storage format keeps both as an absent field.

    Done before the suite runs because Spark orders NaN above every number, so a range
    expectation would otherwise count a NaN as out of range.
    """
    from pyspark.sql import functions as F

    floats = {f.name for f in view.features if DType(f.dtype) in (DType.FLOAT32, DType.FLOAT64)}
    return df.select(
        *[
            F.when(F.isnan(F.col(c)), F.lit(None)).otherwise(F.col(c)).alias(c) if c in floats else F.col(c)
            for c in df.columns
        ]
    )


# --- Great Expectations -------------------------------------------------------------------


def suite_path(view: FeatureView, expectations_dir: str | os.PathLike[str] | None = None) -> Traversable:
    """``<dir>/<suite>.json``: ``expectations_dir`` (the settings': ``--expectations``, else
    ``$FEATURESTORE_EXPECTATIONS``, else the settings file's ``expectations_dir``, else the
    repository's ``expectations/``); ``None`` resolves them as the command line does (for a caller of
    the Python API).  One folder is searched, never several; outside a repository there is no default."""
    if not expectations_dir:
        expectations_dir = Settings.from_env().expectations_dir
    if not expectations_dir:
        raise ConfigurationError(
            f"view {view.name!r}: no folder of expectation suites: pass --expectations DIR, set "
            f"{EXPECTATIONS_ENV_VAR}=DIR or expectations_dir in featurestore.toml (a repository's "
            f"expectations/ is the default: featurestore init DIR makes one)"
        )
    return Path(expectations_dir).joinpath(f"{view.expectation_suite}.json")


def load_suite(path: str | os.PathLike[str] | Traversable, view: FeatureView) -> dict[str, Any]:
    """The suite file as a dict, checked for the shape GX 1.x expects."""
    if isinstance(path, (str, os.PathLike)):
        path = Path(path)
    if not path.is_file():
        raise ConfigurationError(
            f"view {view.name!r}: expectation suite {str(path)!r} not found (every batch view needs "
            f"<DIR>/{view.expectation_suite}.json in the folder given by --expectations DIR, {EXPECTATIONS_ENV_VAR} "
            "or expectations_dir in featurestore.toml, default the repository's expectations/)"
        )
    try:
        suite = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ConfigurationError(f"view {view.name!r}: suite {str(path)!r} is not valid JSON: {exc}") from None
    expectations = suite.get("expectations") if isinstance(suite, dict) else None
    if not isinstance(expectations, list) or not expectations:
        raise ConfigurationError(f"view {view.name!r}: suite {str(path)!r} has no 'expectations' list")
    for i, expectation in enumerate(expectations):
        if not isinstance(expectation, dict) or not isinstance(expectation.get("type"), str):
            raise ConfigurationError(f"view {view.name!r}: suite {str(path)!r}, expectation #{i + 1} has no 'type'")
    return dict(suite)


def _describe(config: Any) -> str:
    kwargs = {k: v for k, v in dict(config.kwargs).items() if k not in ("batch_id", "result_format")}
    args = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
    return f"{config.type}({args})"


def _observed(result: Mapping[str, Any], exception: Mapping[str, Any] | None) -> str:
    if exception and exception.get("raised_exception"):
        return f"could not be evaluated: {exception.get('exception_message')}"
    if "observed_value" in result:
        return f"observed {result['observed_value']!r}"
    if "unexpected_count" in result:
        total = result.get("element_count")
        share = result.get("unexpected_percent")
        share_text = f" ({share:.2f}% of non-null)" if isinstance(share, (int, float)) and not math.isnan(share) else ""
        examples = list(result.get("partial_unexpected_list") or [])[:_EXAMPLES]
        return f"{result['unexpected_count']} of {total} values unexpected{share_text}, e.g. {examples!r}"
    return f"observed {dict(result)!r}"


def run_suite(df: DataFrame, view: FeatureView, suite: Mapping[str, Any]) -> tuple[int, list[Failure]]:
    """Run a GX suite on ``df``; returns (number of expectations, failures)."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    expectations = list(suite["expectations"])
    gx_suite = gx.ExpectationSuite(
        name=str(suite.get("name") or view.expectation_suite),
        expectations=[{k: v for k, v in e.items() if k in ("type", "kwargs", "meta")} for e in expectations],
        meta=dict(suite.get("meta") or {}),
    )
    # GX logs and drops an expectation it cannot build; a gate must not lose one silently.
    if len(gx_suite.expectations) != len(expectations):
        built = {e.expectation_type for e in gx_suite.expectations}
        lost = [e["type"] for e in expectations if e["type"] not in built]
        raise ConfigurationError(
            f"view {view.name!r}: suite {view.expectation_suite!r} has expectations GX cannot build: {lost}"
        )
    gx_suite = context.suites.add(gx_suite)
    source = context.data_sources.add_spark(name="featurestore")
    asset = source.add_dataframe_asset(name=view.name)
    batch = asset.add_batch_definition_whole_dataframe("run").get_batch(batch_parameters={"dataframe": df})
    result = batch.validate(gx_suite, result_format="SUMMARY")
    failures = [
        Failure(_describe(r.expectation_config), _observed(r.result or {}, r.exception_info))
        for r in result.results
        if not r.success
    ]
    return len(result.results), failures


# --- the collapse guard ----------------------------------------------------------------------


def collapse_failures(
    current: Mapping[str, int], previous: Mapping[str, int] | None, min_row_ratio: float, previous_run: str = ""
) -> list[Failure]:
    """Compare this run's counts (``rows``, ``rows_read``) with the last successful run's.

    A count below ``min_row_ratio`` x the previous one is a failure; ``min_row_ratio=0``
    or no previous run disables the guard.
    """
    if not 0 <= min_row_ratio <= 1:
        raise ConfigurationError(f"--min-row-ratio must be between 0 and 1, got {min_row_ratio}")
    if previous is None or min_row_ratio == 0:
        return []
    out = []
    for name, now in current.items():
        before = previous.get(name)
        if not before:
            continue
        if now < min_row_ratio * before:
            out.append(
                Failure(
                    "featurestore:row_count_not_collapsed",
                    f"{name} fell to {now} from {before} in the last successful run {previous_run} "
                    f"({now / before:.0%}; the guard needs at least {min_row_ratio:.0%}, --min-row-ratio)",
                )
            )
    return out


@dataclass(frozen=True)
class ValidationReport:
    """The gate's verdict on one run: every failure of the row checks, the suite and the guards."""

    view: FeatureView
    suite: str  # the suite file, as the failure message names it
    failures: tuple[Failure, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.failures

    def raise_if_failed(self) -> None:
        """Raise :class:`ValidationFailed` listing every failure (nothing when the run passed)."""
        raise_if_failed(self.view, self.failures, self.suite)


def raise_if_failed(view: FeatureView, failures: Sequence[Failure], suite: str) -> None:
    """Raise :class:`ValidationFailed` listing every failure (``exc.failures`` keeps them);
    :class:`GuardRefused` (its subclass, its own exit code) when only the guards refused."""
    if not failures:
        return
    listed = "; ".join(str(f) for f in failures)
    error: ValidationFailed
    if all(f.check in GUARD_CHECKS for f in failures):
        # the data passed every check: only a guard's comparison with earlier runs stopped it
        names = guard_names(failures)
        options = " / ".join(dict.fromkeys(_GUARD_OVERRIDES[f.check] for f in failures))
        error = GuardRefused(
            f"view {view.name!r} was refused by the {' and the '.join(names)}, nothing was written "
            f"(suite {suite} and built-in checks passed): {len(failures)} refusal(s): {listed} "
            f"(to write anyway: {options} with --reason TEXT)"
        )
    else:
        error = ValidationFailed(
            f"view {view.name!r} failed validation, nothing was written: {len(failures)} check(s) failed "
            f"(suite {suite} and built-in checks): {listed}"
        )
    error.failures = list(failures)  # type: ignore[attr-defined]
    raise error


_GUARD_NAMES = {INPUT_ROWS_CHECK: "input guard", INPUT_STALE_CHECK: "input guard", DRIFT_CHECK: "drift guard"}
_GUARD_OVERRIDES = {
    INPUT_ROWS_CHECK: "--accept-input TABLE",
    INPUT_STALE_CHECK: "--accept-input TABLE",
    DRIFT_CHECK: "--accept-drift FEATURE",
}


def guard_names(failures: Sequence[Failure]) -> list[str]:
    """The guards that refused (``input guard``, ``drift guard``), in the order of their failures."""
    return list(dict.fromkeys(_GUARD_NAMES[f.check] for f in failures if f.check in _GUARD_NAMES))
