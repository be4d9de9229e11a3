"""The input and drift guards' arithmetic, and their settings in the definitions (no Spark, no server;
on the sample warehouse: tests/spark/batch/test_batch_guards.py)."""

from __future__ import annotations

import math
from datetime import date
from typing import Any

import pytest

from featurestore.jobs.batch import guards, materialize
from featurestore.jobs.batch.guards import Override, SourceRows
from featurestore.jobs.core.run_records import RunRecord
from featurestore.readers import Drift, Entity, Feature, FeatureView, Guards
from featurestore.readers.errors import ConfigurationError, DefinitionError

D = date(2024, 5, 31)
user = Entity("user", join_key="user_id")


def view(**settings: Any) -> FeatureView:
    return FeatureView(
        "spend", user, ttl=3600, source="tx",
        features=(Feature("n", "int64", default=0), Feature("mean", "float32"), Feature("tier", "string")),
        guards=Guards(**settings),
    )  # fmt: skip


def good_run(ds: str, tx: dict[str, int], *, users: int = 100, version: int = 0, **extra: Any) -> RunRecord:
    return RunRecord(
        run_id=f"r-{ds}", view="spend", ds=ds, source_table="tx", source_version=version, status="succeeded",
        source_versions={"tx": version, "users": version}, input_rows={"tx": tx, "users": {"all": users}}, **extra,
    )  # fmt: skip


def tx(rows: dict[str, int], version: int = 5) -> SourceRows:
    return SourceRows("tx", version, rows, partitioned=True, first_ds=date(2024, 5, 2))


def users(rows: int, version: int = 5) -> SourceRows:
    return SourceRows("users", version, {"all": rows}, partitioned=False)


HISTORY = [good_run(f"2024-05-{d}", {f"2024-05-{d}": n}) for d, n in ((30, 480), (29, 520), (28, 500), (27, 470))]


def test_median_baseline_takes_each_partition_once_newest_first() -> None:
    rerun = good_run("2024-05-30", {"2024-05-30": 10_000})  # a re-run of a day: its newer count wins
    assert guards.baseline("tx", [rerun, *HISTORY], partitioned=True, size=3) == [10_000, 520, 500]
    assert guards.baseline("users", HISTORY, partitioned=False, size=3) == [100, 100, 100]  # one sample per run
    assert guards.baseline("tx", [], partitioned=True, size=7) == []
    assert guards.median([480, 520, 500, 470]) == 490.0


def test_new_partitions_since_the_last_good_run() -> None:
    source = tx({})
    assert guards.new_partitions(source, D, HISTORY[0]) == ["2024-05-31"]
    assert guards.new_partitions(source, D, good_run("2024-05-28", {})) == ["2024-05-29", "2024-05-30", "2024-05-31"]
    assert guards.new_partitions(source, D, None) == ["2024-05-31"]  # first run
    assert guards.new_partitions(source, date(2024, 5, 20), HISTORY[0]) == ["2024-05-20"]  # a backfill
    assert guards.new_partitions(source, D, good_run("2024-04-01", {}))[0] == "2024-05-02"  # within what was read
    assert guards.new_partitions(users(1), D, HISTORY[0]) == ["all"]


def test_a_partition_far_below_the_baseline_is_refused_naming_table_partition_and_numbers() -> None:
    verdict = guards.input_guard(view(), D, [tx({"2024-05-31": 49}), users(100)], HISTORY)
    assert [str(f) for f in verdict.failures] == [
        "featurestore:input_partition_rows: source 'tx' partition ds=2024-05-31 has 49 rows, 10% of the baseline "
        "490 (median of the last 4 recorded partitions); view 'spend' needs at least 50% (Guards.min_partition_share)"
    ]
    assert verdict.input_rows == {"tx": {"2024-05-31": 49}, "users": {"all": 100}}
    assert verdict.notes == []


def test_ordinary_variation_passes_and_the_share_is_the_views_setting() -> None:
    ok = guards.input_guard(view(), D, [tx({"2024-05-31": 300, "2024-05-30": 9}), users(104)], HISTORY)
    assert ok.failures == [] and ok.input_rows["tx"] == {"2024-05-31": 300}  # 61% of 490; old partitions not checked
    strict = guards.input_guard(view(min_partition_share=0.8), D, [tx({"2024-05-31": 300}), users(104)], HISTORY)
    assert [f.check for f in strict.failures] == ["featurestore:input_partition_rows"]
    off = guards.input_guard(view(min_partition_share=0), D, [tx({"2024-05-31": 1}), users(1)], HISTORY)
    assert off.failures == []


def test_a_truncated_table_without_partitions_is_compared_as_a_whole() -> None:
    verdict = guards.input_guard(view(), D, [tx({"2024-05-31": 500}), users(30)], HISTORY)
    assert [str(f) for f in verdict.failures] == [
        "featurestore:input_partition_rows: source 'users' (whole table) has 30 rows, 30% of the baseline 100 "
        "(median of the last 4 recorded partitions); view 'spend' needs at least 50% (Guards.min_partition_share)"
    ]


def test_first_run_is_accepted_with_a_note() -> None:
    verdict = guards.input_guard(view(), D, [tx({"2024-05-31": 7}), users(100)], [])
    assert verdict.failures == []
    assert verdict.notes[0] == (
        "input guard: no earlier successful run of view 'spend' recorded source 'tx': nothing to compare "
        "partition ds=2024-05-31 7 rows with (first run); recorded as the baseline of the next runs"
    )
    assert verdict.input_rows["tx"] == {"2024-05-31": 7}


def test_a_stale_upstream_is_refused() -> None:
    empty = guards.input_guard(view(), D, [tx({"2024-05-30": 480}), users(100)], [])  # no rows today, even first run
    assert [str(f) for f in empty.failures] == [
        "featurestore:input_not_stale: source 'tx' has no rows in its new partition(s) ds=2024-05-31: no upstream load"
    ]
    stale = view(must_change=("users",))
    same = guards.input_guard(stale, D, [tx({"2024-05-31": 500}), users(100, version=0)], HISTORY)
    assert [str(f) for f in same.failures] == [
        "featurestore:input_not_stale: source 'users' is still at version 0, as in the last successful run "
        "r-2024-05-30 (ds 2024-05-30): nothing was loaded since, but view 'spend' expects it to change "
        "(Guards.must_change)"
    ]
    assert guards.input_guard(stale, D, [tx({"2024-05-31": 500}), users(100, version=1)], HISTORY).failures == []
    rerun = guards.input_guard(stale, date(2024, 5, 30), [tx({"2024-05-30": 480}), users(100, version=0)], HISTORY)
    assert rerun.failures == []  # a re-run of the same day need not see a new version


def test_an_accepted_input_refusal_is_recorded_with_who_and_why() -> None:
    override = Override(tables=frozenset({"tx"}), by="alice", reason="bank holiday")
    verdict = guards.input_guard(view(), D, [tx({"2024-05-31": 49}), users(100)], HISTORY, override)
    assert verdict.failures == []
    assert [(o["guard"], o["target"], o["by"], o["reason"]) for o in verdict.overrides] == [
        ("input", "tx", "alice", "bank holiday")
    ]
    assert "has 49 rows" in verdict.overrides[0]["failure"]
    unused = Override(tables=frozenset({"users"}), features=frozenset({"n"}))
    assert guards.unused_overrides(verdict, unused) == [
        "--accept-input users: the input guards did not refuse it",
        "--accept-drift n: it did not drift beyond its limits",
    ]


def stats(null: float, default: float | None, mean: float | None, std: float | None) -> dict[str, float | None]:
    out: dict[str, float | None] = {"rows": 100.0, "null_share": null}
    if default is not None:
        out["default_share"] = default
    if mean is not None:
        out.update(mean=mean, std=std)
    return out


def test_profile_turns_one_aggregation_into_shares_and_moments() -> None:
    aggregates = {
        "null:n": 0, "dflt:n": 48, "mean:n": 0.61, "sd:n": 0.8,
        "null:mean": 25, "dflt:mean": 0, "mean:mean": 81.234567891, "sd:mean": None,
        "null:tier": 0, "dflt:tier": 3,
    }  # fmt: skip
    assert guards.profile(view(), 100, aggregates) == {
        "n": {"rows": 100.0, "null_share": 0.0, "default_share": 0.48, "mean": 0.61, "std": 0.8},
        "mean": {"rows": 100.0, "null_share": 0.25, "default_share": 0.0, "mean": 81.2346, "std": 0.0},
        "tier": {"rows": 100.0, "null_share": 0.0, "default_share": 0.03},
    }
    assert guards.default_value(Feature("v", "vector", dim=2)) is None
    assert guards.default_value(Feature("s", "string")) == "" and guards.default_value(Feature("b", "bool")) is False


def test_a_drifting_feature_is_refused_naming_it_and_both_values() -> None:
    before = good_run(
        "2024-05-30", {}, feature_stats={"n": stats(0.0, 0.48, 0.6, 0.8), "mean": stats(0.1, 0.0, 80.0, 60.0)}
    )
    now = {"n": stats(0.0, 0.94, 0.06, 0.3), "mean": stats(0.1, 0.0, 95.0, 61.0), "tier": stats(0.0, 0.0, None, None)}
    verdict = guards.drift_guard(view(), now, before)
    assert [str(f) for f in verdict.failures] == [
        "featurestore:feature_drift: feature 'n': default share 48.0% -> 94.0% since the last successful run "
        "r-2024-05-30 (ds 2024-05-30), a change of 46.0%; view 'spend' allows 25.0% (Guards.drift.default_share)"
    ]  # the mean moved by 0.675 sd of n and 0.25 sd of mean: within 1.0
    per_feature = view(feature_drift={"mean": Drift(mean_shift=0.2)})
    assert [str(f).split(", a shift")[0] for f in guards.drift_guard(per_feature, now, before).failures][1:] == [
        "featurestore:feature_drift: feature 'mean': mean 80 -> 95 since the last successful run "
        "r-2024-05-30 (ds 2024-05-30)"
    ]
    assert "(Guards.feature_drift['mean'].mean_shift)" in str(guards.drift_guard(per_feature, now, before).failures[1])
    off = view(feature_drift={"n": Drift.off()})
    assert guards.drift_guard(off, now, before).failures == []
    accepted = guards.drift_guard(view(), now, before, Override(features=frozenset({"n"}), by="bob", reason="why"))
    assert accepted.failures == [] and accepted.overrides[0]["target"] == "n"


def test_drift_without_a_previous_profile_is_a_note_and_a_constant_that_moves_is_infinite() -> None:
    verdict = guards.drift_guard(view(), {"n": stats(0.0, 0.5, 1.0, 1.0)}, None)
    assert verdict.failures == [] and verdict.notes[0].startswith("drift guard: no earlier successful run of view")
    assert guards.mean_shift(2.0, 2.0, 0.0) == 0.0
    assert math.isinf(guards.mean_shift(2.0, 3.0, 0.0))
    assert guards.mean_shift(10.0, 13.0, 2.0) == 1.5


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"min_partition_share": 1.5}, "view 'spend' guards: min_partition_share must be between 0 and 1, got 1.5"),
        ({"baseline_runs": 0}, "view 'spend' guards: baseline_runs must be a whole number >= 1, got 0"),
        (
            {"drift": Drift(null_share=2)},
            "view 'spend' guards: drift.null_share must be between 0 and 1 or None, got 2",
        ),
        (
            {"feature_drift": {"n": Drift(mean_shift=0)}},
            "view 'spend' guards: feature_drift['n'].mean_shift must be > 0 or None, got 0",
        ),
        ({"feature_drift": {"nope": Drift()}}, "feature_drift names ['nope'], which are not features of the view"),
    ],
)
def test_bad_guard_settings_name_the_view_and_the_setting(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(DefinitionError, match=message.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(")):
        view(**settings)


def test_guards_are_batch_only_and_keep_the_view_hashable() -> None:
    with pytest.raises(DefinitionError, match="streaming view 'live': guards are checked by the batch job only"):
        FeatureView(
            "live", user, kind="streaming", ttl=60, features=(Feature("x", "int64"),), guards=Guards(baseline_runs=3)
        )
    custom = view(feature_drift={"n": Drift.off()}, must_change="users")
    assert custom.guards.must_change == ("users",) and custom.guards.drift_for("n") == Drift.off()
    assert custom.guards.drift_for("mean") == Drift() and hash(custom) == hash(
        view(feature_drift={"n": Drift.off()}, must_change="users")
    )


def test_an_override_needs_a_reason() -> None:
    with pytest.raises(ConfigurationError, match="--accept-drift/--accept-input need --reason"):
        materialize.MaterializeRequest(view="v", ds=D, redis_url="redis://x", accept_drift=("n",))
    request = materialize.MaterializeRequest(
        view="v", ds=D, redis_url="redis://x", accept_input=["tx"], override_reason="r"
    )
    assert request.accept_input == ("tx",)
