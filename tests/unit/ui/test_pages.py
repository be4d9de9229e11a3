"""The console's page models (plain data in, view model out) and its status colours' contrast."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import pytest

from featurestore.jobs.core.run_records import RunRecord
from featurestore.jobs.ops.inspect import EntityReport, FeatureLine
from featurestore.jobs.ops.status import EntitySample, view_status
from featurestore.jobs.ui import pages
from featurestore.jobs.ui.access import CONSOLE
from tests.helpers.reader import live, scores, test_catalog

NOW_MS = 1_717_300_000_000


def record(status: str = "succeeded", **extra: object) -> RunRecord:
    return RunRecord(
        run_id="r1", view="scores", ds="2024-06-01", source_table="orders", source_version=3, status=status,
        rows_read=1200, rows_written=1100, finished_at="2024-06-01T02:01:00.000Z",
        durations={"read": 1.0, "write": 2.5}, **extra,  # type: ignore[arg-type]
    )  # fmt: skip


def test_the_views_list_shows_every_view_with_its_verdict() -> None:
    sample = EntitySample(keys=10, stamps_ms={"scores": [NOW_MS - 600_000]}, memory_per_entity=300.0)
    status = view_status(scores, [], sample, NOW_MS)
    rows = {r.name: r for r in pages.view_rows(test_catalog, [status])}
    assert set(rows) == {v.name for v in test_catalog.views}
    row = rows["scores"]
    assert (row.entity, row.kind, row.layout, row.ttl, row.max_age, row.features) == (
        "user", "batch", "text", "1.0h", "1.0h", 6,
    )  # fmt: skip
    assert row.freshness == pages.Badge("fresh", "status-fresh") and row.age == "10.0m"
    assert rows["live"].freshness.css == "status-unknown"  # no status read for it


def test_a_refused_run_shows_its_reasons_and_no_password() -> None:
    refused = record(
        "failed_validation",
        error="guards refused the input: redis://admin:s3cret@db:6379 partition 2024-06-01 has 12 rows",
        failures=["input: orders ds=2024-06-01 has 12 rows, below 50% of its trailing median 1,000"],
        notes=["drift: amount mean moved 3%"],
        overrides=[{"guard": "drift", "target": "amount", "by": "ana", "reason": "promo week"}],
        input_rows={"orders": {"2024-06-01": 12, "2024-05-31": 1000}},
    )
    row = pages.run_row("1-0", refused)
    assert row.result == pages.Badge("refused (nothing written)", "status-refused")
    assert "s3cret" not in row.reason and "***" in row.reason
    assert row.failures[0].startswith("input: orders ds=2024-06-01 has 12 rows")
    assert row.overrides == ["drift on amount accepted by ana: promo week"]
    assert row.input_rows == [("orders", "2024-05-31: 1,000, 2024-06-01: 12")]
    assert (row.rows_read, row.duration, row.source) == ("1,200", "3.5s", "orders@v3")


def test_a_runs_validation_report_names_who_refused_each_check_and_what_was_observed() -> None:
    from featurestore.jobs.batch import validation

    null_check = validation.Failure(
        "expect_column_values_to_not_be_null(column='n_orders', mostly=0.99)",
        validation._observed({"unexpected_count": 3, "element_count": 100, "unexpected_percent": 3.0,
                              "partial_unexpected_list": [None, None]}, None),
    )  # fmt: skip
    mean_check = validation.Failure(
        "expect_column_mean_to_be_between(column='spend', min_value=0, max_value=10)",
        validation._observed({"observed_value": 12.5}, None),
    )
    refused = record(
        "failed_validation",
        failures=[
            str(null_check),
            str(mean_check),
            f"{validation.DRIFT_CHECK}: spend mean moved 4.1 standard deviations",
            "featurestore:entity_ids_unique: 2 user_id values appear on more than one row (e.g. 7, 9)",
        ],
        feature_stats={"spend": {"rows": 1200.0, "null_share": 0.0, "mean": 12.5, "std": None}},
        nan_as_null={"spend": 2, "n_orders": 0},
        source_versions={"orders": 3},
    )
    row = pages.run_row("1-0", refused)
    assert row.refused and [(c.source, c.check) for c in row.checks] == [
        ("GX suite", "expect_column_values_to_not_be_null"),
        ("GX suite", "expect_column_mean_to_be_between"),
        ("drift guard", "feature_drift"),
        ("built-in check", "entity_ids_unique"),
    ]
    assert row.checks[0].arguments == "column='n_orders', mostly=0.99"
    assert row.checks[0].observed == "3 of 100 values unexpected (3.00% of non-null), e.g. [None, None]"
    assert row.checks[1].observed == "observed 12.5" and row.checks[2].observed.startswith("spend mean moved")
    assert row.feature_stats == [("spend", "rows 1200, null_share 0, mean 12.5, std -")]
    assert row.nan_as_null == ["spend: 2"] and row.source_versions == ["orders@v3"]
    assert pages.check_row("a write failed: partition 3").source == "run"
    guard = pages.run_row("2-0", record("refused_by_guard"))
    assert guard.result == pages.Badge("refused by a guard (nothing written)", "status-refused") and guard.refused
    assert pages.run_row("3-0", record("interrupted")).result.css == "status-unknown"


def test_runs_are_paged_by_a_cursor() -> None:
    entries = [(f"{i}-0", record()) for i in range(5, 0, -1)]
    page = pages.runs_page(entries, 4)
    assert len(page.rows) == 4 and page.next_cursor == "2-0"
    last = pages.runs_page(entries[4:], 4)
    assert len(last.rows) == 1 and last.next_cursor is None


def test_an_audit_shows_its_verdict_and_worst_features() -> None:
    row = pages.audit_row(
        {"view": "scores", "ds": "2024-06-01", "audited_at": "2024-06-02T01:00:00", "sample": 1000,
         "max_mismatch_rate": 0.01, "worst_rate": 0.05, "ok": False,
         "served": {"spend": {"compared": 1000, "mismatches": 50}, "n_orders": {"compared": 1000, "mismatches": 0}}}
    )  # fmt: skip
    assert row.result.css == "status-mismatch" and row.worst_rate == "5.00%" and row.limit == "1.00%"
    assert row.worst_features == ["spend (served): 5.00%"]


def test_a_stream_shows_its_progress_and_goes_stale_when_silent() -> None:
    progress = {
        "source": "kafka:clicks", "updated_ms": str(NOW_MS - 5_000), "events_per_second": "250.0",
        "latency_p50_ms": "12.0", "latency_p99_ms": "80.5", "lag": "3", "dead_letters": "2", "late": "1",
    }  # fmt: skip
    model = pages.stream_model(live, progress, NOW_MS)
    assert (model.events_per_second, model.latency_p50, model.latency_p99, model.lag) == (
        "250",
        "12.0 ms",
        "80.5 ms",
        "3",
    )
    assert model.dead_letters == "2" and model.late == "1" and model.reported_ago == "5s"
    assert "dead letters" in model.health.text
    silent = pages.stream_model(live, {**progress, "updated_ms": str(NOW_MS - 3_600_000)}, NOW_MS)
    assert silent.health.css == "status-stale"
    assert pages.stream_model(live, None, NOW_MS).health.css == "status-never"


def test_the_entity_page_serves_defaults_for_stale_and_missing_features() -> None:
    def line(feature: str, value: object, status: str) -> FeatureLine:
        return FeatureLine("scores", "text", feature, feature, value, status, 7200.0, None)

    report = EntityReport(
        key="fs:user:{42}", entity="user", exists=True, key_ttl_seconds=3000, encoding="listpack", memory_bytes=200,
        features=[line("n_orders", 7, "stale"), line("segment", "gold", "present"), line("spend", 0.0, "missing")],
    )  # fmt: skip
    model = pages.entity_model(test_catalog, report, "42")
    features = {f.feature: f for f in model.views[0].features}
    assert features["n_orders"].served == "0" and features["n_orders"].stored == "7"  # the default, not the old value
    assert features["n_orders"].status.css == "status-stale" and features["n_orders"].age == "2.0h"
    assert features["segment"].served == '"gold"' and features["segment"].status.text == "present"
    assert features["spend"].served == "0.0" and features["spend"].status.css == "status-missing"
    assert [v.view for v in model.views] == [v.name for v in test_catalog.views_of("user")]


@pytest.mark.parametrize(
    ("seconds", "text"), [(None, "-"), (42, "42s"), (210, "3.5m"), (7560, "2.1h"), (129600, "1.5d")]
)
def test_ages_read_like_the_cli(seconds: float | None, text: str) -> None:
    assert pages.age_text(seconds) == text


def _luminance(hex_colour: str) -> float:
    channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    """The WCAG 2 contrast ratio of two #rrggbb colours."""
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_every_status_colour_has_aa_contrast() -> None:
    css = (resources.files("featurestore.jobs.ui") / "static" / "console.css").read_text()
    rules = dict(re.findall(r"\.status-([a-z]+) \{ ([^}]*)\}", css))
    assert set(rules) == set(pages.STATUS_WORDS)  # every badge a page can show has its colours
    for word, body in rules.items():
        colour = re.search(r"(?<!-)color: (#[0-9a-f]{6})", body)
        background = re.search(r"background: (#[0-9a-f]{6})", body)
        assert colour and background, word
        assert contrast(colour[1], background[1]) >= 4.5, f"status-{word}: {contrast(colour[1], background[1]):.2f}"
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)


def test_the_console_role_is_read_only() -> None:
    assert CONSOLE.keys == ("%R~fs:*",)
    assert not {"hset", "hdel", "expire", "hexpire", "hsetex", "xadd", "fcall", "del"} & set(CONSOLE.command_names)


def test_importing_the_console_package_loads_no_web_framework() -> None:
    import subprocess
    import sys

    code = (
        "import featurestore.jobs.ui.pages, featurestore.jobs.cli, sys; "
        "print(sorted(m for m in ('starlette', 'uvicorn', 'jinja2') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_command_reads_the_feature_log_of_the_warehouse_unless_told(tmp_path: Path) -> None:
    import argparse

    from featurestore.jobs.cli import ui as ui_command
    from featurestore.jobs.core.settings import Settings

    parser = argparse.ArgumentParser()
    ui_command.add_arguments(parser)
    settings = Settings(redis_url="redis://127.0.0.1:6399")  # the catalogue: $FEATURESTORE_CATALOG (conftest)
    config = ui_command.console_config(parser.parse_args(["--warehouse", f"{tmp_path}/wh"]), settings)
    assert config.feature_log is not None and config.feature_log.root == Path(f"{tmp_path}/wh/_feature_log")
    off = ui_command.console_config(parser.parse_args(["--feature-log", "off"]), settings)
    assert off.feature_log is not None and not off.feature_log.enabled
