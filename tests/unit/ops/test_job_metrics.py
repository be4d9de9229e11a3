"""The jobs' Prometheus samples (pure), and the textfile node_exporter reads (prometheus-client's own
writer, parsed back with its own parser)."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from featurestore.jobs.core.job_metrics import RUN_METRICS, MetricsTarget, publish, run_samples
from tests.helpers.post_load_check import ok_run


def values(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_a_run_becomes_gauges_by_view_and_a_textfile(tmp_path: Path) -> None:
    record = ok_run(finished_at="2025-06-15T02:10:00+00:00", durations={"read": 1.5, "write": 4.0}, retries=2)
    samples = run_samples(record)
    assert {s.name for s in samples} == set(RUN_METRICS)  # every documented metric, nothing else

    written = publish(samples, MetricsTarget(textfile_dir=str(tmp_path)), "run_user_profile", {"view": "user_profile"})
    assert written == [str(tmp_path / "featurestore_run_user_profile.prom")]
    got = values((tmp_path / "featurestore_run_user_profile.prom").read_text())
    view = ("view", "user_profile")
    assert got[("featurestore_job_rows", (("kind", "written"), view))] == 500
    assert got[("featurestore_job_stage_seconds", (("stage", "write"), view))] == 4.0
    assert got[("featurestore_job_last_run_succeeded", (view,))] == 1
    assert got[("featurestore_job_retries", (view,))] == 2
    assert got[("featurestore_job_last_success_timestamp_seconds", (view,))] == 1749953400.0


def test_a_failed_run_keeps_the_last_success_it_is_told_of() -> None:
    failed = ok_run(status="failed_validation", failures=["a", "b"], finished_at="2025-06-15T02:10:00+00:00")
    by_name = {s.name: s.value for s in run_samples(failed, last_success_at="2025-06-14T02:10:00+00:00")}
    assert by_name["featurestore_job_last_run_succeeded"] == 0
    assert by_name["featurestore_job_validation_failures"] == 2
    assert by_name["featurestore_job_last_success_timestamp_seconds"] == 1749867000.0
    assert "featurestore_job_last_success_timestamp_seconds" not in {s.name for s in run_samples(failed)}


def test_nothing_is_published_without_a_target(tmp_path: Path) -> None:
    assert publish(run_samples(ok_run()), MetricsTarget(), "x", {}) == []
    assert list(tmp_path.iterdir()) == []
