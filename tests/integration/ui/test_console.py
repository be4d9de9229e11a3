"""The console against a real Redis 8, through Starlette's TestClient: every page, the refusal of a
user that can write, and a store that is down (a 503 page, not a stack trace)."""

from __future__ import annotations

import html
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from featurestore.jobs.core.run_records import RunRecord, record_run
from featurestore.jobs.ops.acl import apply
from featurestore.jobs.ui.access import CONSOLE
from featurestore.jobs.ui.app import create_app
from featurestore.jobs.ui.store import ConsoleConfig
from featurestore.readers.settings import ConnectionSettings
from tests.helpers.reader import client_for, test_catalog
from tests.helpers.ui import populate

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
