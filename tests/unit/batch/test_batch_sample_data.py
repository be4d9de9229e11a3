"""The sample warehouse generator's arguments (generating it: tests/spark/batch/test_batch_sample_data.py)."""

from __future__ import annotations

import pytest

from featurestore.jobs import cli
from featurestore.jobs.examples.fraud.sample_data import WarehouseSpec
from featurestore.readers.errors import ConfigurationError


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="--users must be >= 1"):
        WarehouseSpec(n_users=0)
    assert cli.main(["generate", "--end-date", "31/05/2024"]) == 2  # a usage error, before Spark starts
