"""Feast's own reusable online-store tests (its "universal" tests), run against our store.

They live in Feast's source tree, not in its wheel: this runs when ``$FEATURESTORE_FEAST_SOURCE``
names a checkout of github.com/feast-dev/feast (there is no network here but PyPI), and says so
when it does not.  What passes, and why the others do not, is in tests/helpers/feast_suite.py
and docs/feast.md.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from tests.helpers import feast_suite

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not os.environ.get(feast_suite.SOURCE_ENV),
        reason=f"${feast_suite.SOURCE_ENV} names no Feast checkout (Feast's tests are not in its wheel)",
    ),
]
log = logging.getLogger(__name__)


def test_feasts_universal_online_store_tests(feast_python: Path, redis_url: str, tmp_path: Path) -> None:
    source = os.environ[feast_suite.SOURCE_ENV]
    python, built = feast_suite.suite_python(feast_python)
    if built:
        log.warning("built the Feast suite venv %s in %.0f s", python.parent.parent, built)
    results, seconds = feast_suite.run_suites(python, Path(source), redis_url, tmp_path)
    assert feast_suite.unexpected(results) == []
    passed = sorted(label for label, result in results.items() if result.outcome == "passed")
    assert len(passed) == len(feast_suite.EXPECTED_PASSED) == 8, passed
    assert seconds <= 60, f"Feast's tests took {seconds:.0f} s"
