"""The Feast side venv, once per session (tests/helpers/feast.py): built on first use, then reused."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.helpers.feast import feast_python as build_feast_python
from tests.helpers.feast import venv_path

log = logging.getLogger(__name__)


@pytest.fixture(scope="session")
def feast_python() -> Path:
    """The python of a venv with Feast 0.67 (pip-installed from PyPI the first time, ~1 min)."""
    try:
        python, seconds = build_feast_python()
    except RuntimeError as exc:
        pytest.fail(f"{exc}\n(set FEATURESTORE_FEAST_VENV to a venv with feast[redis]==0.67.* and hiredis)")
    if seconds:
        log.warning("built the Feast side venv %s in %.0f s", venv_path(), seconds)
    return python
