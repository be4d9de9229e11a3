"""The streaming package's public API: a curated ``__all__`` (httpx's ``test_exported_members`` habit)."""

from __future__ import annotations

import importlib

import pytest

MODULES = [
    "featurestore.jobs.streaming",
    "featurestore.jobs.streaming.plan",
    "featurestore.jobs.streaming.guard",
    "featurestore.jobs.streaming.writer",
    "featurestore.jobs.streaming.spark_sink",
    "featurestore.jobs.streaming.windows",
    "featurestore.jobs.streaming.processor",
]


@pytest.mark.parametrize("module", MODULES)
def test_exported_members_are_real_and_sorted(module: str) -> None:
    package = importlib.import_module(module)
    assert all(hasattr(package, name) for name in package.__all__), "exported but missing"
    assert list(package.__all__) == sorted(package.__all__, key=lambda n: (not n.isupper(), n))


def test_the_package_exports_exactly_its_public_api() -> None:
    package = importlib.import_module("featurestore.jobs.streaming")
    exported = {
        name
        for name, value in vars(package).items()
        if not name.startswith("_") and getattr(value, "__module__", "").startswith("featurestore.")
    }
    assert exported <= set(package.__all__), "public but not exported"
    assert {"StreamingWriter", "StreamingWritePlan", "ForeachBatchSink", "WriteStats", "HSETEX"} <= set(package.__all__)


def test_importing_the_streaming_hook_loads_no_spark() -> None:
    import subprocess
    import sys

    code = "import sys, featurestore.jobs.streaming; print('pyspark' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
