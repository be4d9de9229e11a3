"""The reader without a server: a port nobody listens on, and what importing it loads
(against real servers: tests/integration/reader/)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest

from featurestore.readers import FeatureReader, FeatureStoreConnectionError
from tests.helpers.reader import test_catalog


def test_server_down_is_a_clear_error_without_hanging() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket closes
    url = f"redis://app:s3cret@127.0.0.1:{port}"
    reader = FeatureReader(url, catalog=test_catalog, timeout=0.5)  # the constructor does no I/O
    start = time.monotonic()
    for attempt in (
        lambda: FeatureReader.connect(url, catalog=test_catalog, timeout=0.5),
        lambda: reader.get(1, "scores"),
    ):
        with pytest.raises(
            FeatureStoreConnectionError, match=f"cannot reach Redis at redis://app:\\*\\*\\*@127.0.0.1:{port}"
        ):
            attempt()
    assert time.monotonic() - start < 3  # kept trying for at most the 0.5 s timeout, each


def test_importing_the_reader_loads_no_heavy_dependency() -> None:
    heavy = "('pyspark', 'great_expectations', 'airflow', 'pandas', 'numpy', 'pyarrow')"
    code = (
        "import sys, featurestore.readers\n"
        f"heavy = sorted(m for m in sys.modules if m.split('.')[0] in {heavy})\n"
        "heavy += [m for m in sys.modules if m.startswith('featurestore.jobs')]\n"
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    # an example's definitions (a repository's, now inside featurestore.jobs.examples) load no heavy dependency either
    code = (
        "import sys, featurestore.readers, featurestore.jobs.examples.fraud.definitions\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {heavy}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
