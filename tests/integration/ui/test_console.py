"""The console against a real Redis 8, through Starlette's TestClient: every page, the refusal of a
user that can write, and a store that is down (a 503 page, not a stack trace)."""

from __future__ import annotations

import html
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from featurestore.jobs.core.feature_log import LogSettings
from featurestore.jobs.core.run_records import RunRecord, record_run
from featurestore.jobs.ops.acl import apply
from featurestore.jobs.ui.access import CONSOLE
from featurestore.jobs.ui.app import ENTITY_LOG_ROWS, create_app
from featurestore.jobs.ui.store import ConsoleConfig
from featurestore.readers.settings import ConnectionSettings
from tests.helpers.reader import client_for, now_ms, scores, test_catalog
from tests.helpers.ui import log_commit, log_file, log_row, populate

PASSWORD = "c0nsole-Pa55"


@pytest.fixture
def console_url(redis_url: str) -> Iterator[str]:
    """The store populated, and a user with the console's role."""
    admin = client_for(redis_url)
    populate(admin)
    apply(admin, CONSOLE, CONSOLE.default_user, PASSWORD, cluster=False)
    yield f"redis://{CONSOLE.default_user}:{PASSWORD}@{redis_url.split('//', 1)[1]}"
    admin.execute_command("ACL", "DELUSER", CONSOLE.default_user)
    admin.close()


def console(url: str, **options: Any) -> TestClient:
    config = ConsoleConfig(ConnectionSettings.from_url(url, timeout=2.0), test_catalog, **options)
    return TestClient(create_app(config), raise_server_exceptions=False)


def test_every_page_with_the_read_only_role(console_url: str) -> None:
    with console(console_url) as browser:
        home = browser.get("/")
        assert home.status_code == 200, home.text
        assert "<h1>Feature views</h1>" in home.text and "status-failing" in home.text and PASSWORD not in home.text
        view = browser.get("/views/scores")
        assert view.status_code == 200, view.text
        assert "refused (nothing written)" in view.text and "n_orders" in view.text and "Older runs" in view.text
        older = browser.get(view.text.split('rel="next" href="')[1].split('"')[0].replace("&amp;", "&"))
        assert older.status_code == 200 and "ok1" not in older.text.split("<h2>Last runs</h2>")[0]
        runs = browser.get("/runs")
        assert runs.status_code == 200 and runs.text.count('<tr><td><a href="/runs/') == 25
        refused = runs.text.split('<a href="/runs/')[1].split('"')[0]
        page = browser.get(f"/runs/{refused}")
        assert page.status_code == 200 and "below its baseline" in page.text and "status-refused" in page.text
        stream = browser.get("/streams/live")
        assert stream.status_code == 200 and "30" in stream.text and "12.0 ms" in stream.text
        fresh = html.unescape(browser.get("/entities/user/42").text)
        assert '"gold"' in fresh and "status-present" in fresh
        stale = browser.get("/entities/user/7").text
        assert "status-stale" in stale  # older than the view's max_age: the default is served
        assert "status-missing" in browser.get("/entities/user/999").text
        assert (
            browser.get("/entity?entity=user&id=42", follow_redirects=False).headers["location"] == "/entities/user/42"
        )
        assert browser.get("/views/nope").status_code == 404
        assert browser.get("/runs/1-0").status_code == 404


def test_a_user_that_can_write_is_refused(redis_url: str) -> None:
    with console(redis_url) as browser:  # the default user: every command
        page = browser.get("/")
        assert page.status_code == 503 and "may write to the store" in page.text and "--allow-write-user" in page.text
    with console(redis_url, allow_write_user=True) as browser:
        assert browser.get("/").status_code == 200


def test_a_store_that_is_down_is_a_503_page() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with console(f"redis://someone:hunter2@127.0.0.1:{port}") as browser:
        page = browser.get("/")
        assert page.status_code == 503 and "The store is unavailable" in page.text
        assert "hunter2" not in page.text and "Traceback" not in page.text


def test_a_page_of_runs_stays_fast_with_thousands_of_runs(redis_url: str) -> None:
    admin = client_for(redis_url)
    with admin.pipeline(transaction=False) as pipe:
        for i in range(5000):
            record_run(pipe, RunRecord(f"bulk{i}", "scores", "2024-06-01", "orders", i, "succeeded"))
        pipe.execute()
    admin.close()
    with console(redis_url, allow_write_user=True) as browser:
        started = time.perf_counter()
        page = browser.get("/runs")
        older = browser.get(page.text.split('rel="next" href="')[1].split('"')[0])
        elapsed = time.perf_counter() - started
    assert page.status_code == older.status_code == 200
    assert "bulk4999" in page.text and "bulk4974" in older.text and "bulk4999" not in older.text
    assert elapsed < 2.0, f"two pages of runs took {elapsed:.2f}s"


def test_the_entity_page_shows_its_feature_log_history(console_url: str, tmp_path: Path) -> None:
    settings = LogSettings.resolve(tmp_path, tmp_path / "log")
    table, day = settings.path(scores), 86_400_000
    written = now_ms() - 3 * day
    for version in range(8):  # eight nightly runs of scores; entity 42 in each, 7 in none
        rows = [log_row(scores, 42, f"run{version}", written + version * day, n_orders=version, segment="gold")]
        log_commit(table, version, log_file(table, scores, f"2024-06-{version + 1:02d}", rows))
    with console(console_url, feature_log=settings) as browser:
        page = html.unescape(browser.get("/entities/user/42").text)
        assert page.count("<td>batch</td>") == ENTITY_LOG_ROWS and "run7" in page and "run2" not in page
        assert "No logged rows of scores" not in page and "Nothing logged for live: no Delta table at" in page
        assert '"gold"' in page.split("Feature-log history")[1]
        full = html.unescape(browser.get("/entities/user/42/log/scores").text)
        assert full.count("<td>batch</td>") == 8 and "Older rows" not in full
        older = html.unescape(browser.get("/entities/user/42/log/scores?offset=6").text)
        assert older.count("<td>batch</td>") == 2 and "run1" in older and "run0" in older
        assert "No logged rows of scores for id 7." in browser.get("/entities/user/7").text
        assert browser.get("/entities/account/a1/log/scores").status_code == 404  # scores is a view of user
    with console(console_url) as browser:  # no feature log configured
        assert "No feature log is configured" in browser.get("/entities/user/42").text


def test_a_refused_runs_page_shows_its_validation_report(console_url: str) -> None:
    admin = client_for(console_url.replace(f"{CONSOLE.default_user}:{PASSWORD}@", ""))
    refused = RunRecord(
        "gx1", "scores", "2024-06-03", "orders", 40, "failed_validation", error="view 'scores' failed validation",
        failures=["expect_column_values_to_not_be_null(column='n_orders'): 3 of 100 values unexpected, e.g. [None]"],
        feature_stats={"n_orders": {"rows": 100.0, "null_share": 0.03}},
    )  # fmt: skip
    entry = record_run(admin, refused)
    admin.close()
    with console(console_url) as browser:
        page = html.unescape(browser.get(f"/runs/{entry}").text)
    assert "Validation report" in page and "<td>GX suite</td>" in page
    assert "expect_column_values_to_not_be_null" in page and "column='n_orders'" in page
    assert "3 of 100 values unexpected" in page and "null_share 0.03" in page
