"""The console in a real browser: headless Chromium (Debian's chromium + chromium-driver) through
Selenium, over a small store written without Spark; what a person sees on each page, an
accessibility check per page, and a screenshot of each for docs/ui.md (docs/img/ui-*.png)."""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from featurestore.jobs.core.feature_log import LogSettings
from featurestore.jobs.ui.app import create_app
from featurestore.jobs.ui.store import ConsoleConfig
from featurestore.readers.settings import ConnectionSettings
from tests.helpers.reader import client_for, test_catalog
from tests.helpers.ui import populate, write_feature_log

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.common.exceptions import WebDriverException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.wait import WebDriverWait  # noqa: E402

# FEATURESTORE_UI_SCREENSHOTS=docs/img refreshes the documentation's screenshots; else they go to a temporary folder
SCREENSHOTS_ENV_VAR = "FEATURESTORE_UI_SCREENSHOTS"
pytestmark = pytest.mark.skipif(shutil.which("chromedriver") is None, reason="needs Debian's chromium-driver")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def console_address(redis_url: str, tmp_path: Path) -> Iterator[str]:
    """The console on a free loopback port (uvicorn in a thread) over a populated store and a feature log."""
    admin = client_for(redis_url)
    populate(admin)
    admin.close()
    feature_log = LogSettings.resolve(tmp_path, tmp_path / "feature_log")
    write_feature_log(feature_log, entity_id=7)
    config = ConsoleConfig(ConnectionSettings.from_url(redis_url, timeout=2.0), test_catalog,
                           allow_write_user=True, feature_log=feature_log)  # fmt: skip
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(config), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def browser() -> Iterator[Any]:
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1100,800",
    ):
        options.add_argument(argument)
    service = webdriver.ChromeService(executable_path=shutil.which("chromedriver"))
    driver = webdriver.Chrome(options=options, service=service)
    driver.implicitly_wait(2)
    yield driver
    driver.quit()


def accessible(driver: Any) -> None:
    """One h1, headings that never skip a level, a label for every form control, a lang attribute."""
    levels = [int(h.tag_name[1]) for h in driver.find_elements(By.CSS_SELECTOR, "h1, h2, h3, h4, h5, h6")]
    assert levels.count(1) == 1 and levels[0] == 1, levels
    assert all(b - a <= 1 for a, b in itertools.pairwise(levels)), f"a heading level is skipped: {levels}"
    for control in driver.find_elements(By.CSS_SELECTOR, "input, select, textarea"):
        control_id = control.get_attribute("id")
        assert control_id and driver.find_elements(By.CSS_SELECTOR, f"label[for='{control_id}']"), control_id
    assert driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"
    for table in driver.find_elements(By.TAG_NAME, "table"):
        assert table.find_elements(By.TAG_NAME, "caption") and table.find_elements(By.TAG_NAME, "th")


def visit(driver: Any, name: str, heading: str, shots: Path, whole_page: bool = False) -> str:
    """Wait for the page whose h1 starts with ``heading``, check it, screenshot it (``whole_page``: the
    window stretched to the page's height for the shot); its text."""
    script = (
        "return document.readyState === 'complete' ? [...document.querySelectorAll('h1')].map(h => h.textContent) : []"
    )
    # a page still unloading may answer with an error: retried until the new page's h1 is there
    WebDriverWait(driver, 10, ignored_exceptions=(WebDriverException,)).until(
        lambda d: any(text.startswith(heading) for text in d.execute_script(script))
    )
    accessible(driver)
    shots.mkdir(parents=True, exist_ok=True)
    width, height = driver.get_window_size()["width"], driver.get_window_size()["height"]
    if whole_page:
        driver.set_window_size(width, min(int(driver.execute_script("return document.body.scrollHeight")) + 140, 4000))
    driver.save_screenshot(str(shots / f"ui-{name}.png"))
    driver.set_window_size(width, height)
    return str(driver.find_element(By.TAG_NAME, "main").text)


def test_a_person_walks_through_the_console(console_address: str, browser: Any, tmp_path: Path) -> None:
    shots = Path(os.environ.get(SCREENSHOTS_ENV_VAR) or tmp_path)
    browser.get(console_address + "/")
    text = visit(browser, "views", "Feature views", shots)
    assert "Feature views" in browser.title and "failing" in text and "never materialized" in text

    browser.find_element(By.LINK_TEXT, "scores").click()
    text = visit(browser, "view", "View scores", shots)
    assert "View scores" in text and "n_orders" in text and "refused (nothing written)" in text

    browser.find_elements(By.CSS_SELECTOR, "a[href^='/runs/']")[0].click()
    text = visit(browser, "run", "Run refused1", shots, whole_page=True)
    assert "Run refused1" in text and "below its baseline" in text and "refused (nothing written)" in text
    assert "Validation report" in text and "input guard" in text and "GX suite" in text
    assert "expect_column_values_to_be_between" in text and "2 of 12 values unexpected" in text

    browser.get(console_address + "/")
    browser.find_element(By.LINK_TEXT, "stream").click()
    text = visit(browser, "stream", "Stream live", shots)
    assert "Stream live" in text and "12.0 ms" in text and "dead letters" in text

    browser.get(console_address + "/")
    browser.find_element(By.ID, "entity-id").send_keys("7")
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    text = visit(browser, "entity", "user 7", shots, whole_page=True)
    assert browser.current_url.endswith("/entities/user/7")
    assert "stale" in text and "2.0h" in text and "missing" in text  # n_orders stale, the packed view missing
    history = text.split("Feature-log history")[1]
    assert "scores-2024-06-02" in history and "stream-" in history and '"silver"' in history
    assert history.index("scores-2024-06-02") < history.index("scores-2024-05-31")  # newest first

    browser.get(console_address + "/entities/user/7/log/scores")
    text = visit(browser, "entity-log", "user 7: feature log of scores", shots)
    assert "Logged rows of scores" in text and text.count("scores-2024-0") == 3
