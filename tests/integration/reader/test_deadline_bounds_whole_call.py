"""A call's timeout bounds the whole call: connecting, the handshake, the registry check and
the command (issue 25, item 7: ``timeout=0.5`` took 1.03 s against a server that never replies).

The server here is a plain TCP listener on loopback that accepts and never answers: it
stands in for a hung Redis (a process stopped mid-way, a black-holing proxy), which no real
Redis can be made to be for the handshake itself.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

from featurestore.readers import AsyncFeatureReader, FeatureReader, FeatureStoreTimeout
from tests.helpers.reader import test_catalog

TIMEOUT = 0.5
# the bug took >= 1.0 s; a loaded 2-core machine may add a little to 0.5 s, never 0.4 s
LIMIT = 0.9


@pytest.fixture
def hung_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """The URL of a server that accepts connections and never sends a byte."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.05)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])  # kept open, never answered
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield {
        "hello": f"redis://127.0.0.1:{port}",  # redis-py's handshake: CLIENT SETINFO
        "auth": f"redis://app:s3cret@127.0.0.1:{port}",  # AUTH first
        "cluster": f"redis://127.0.0.1:{port}?cluster=true",  # CLUSTER SLOTS first
    }[getattr(request, "param", "hello")]
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    listener.close()


def _timed(call: Callable[[], Any]) -> float:
    start = time.monotonic()
    with pytest.raises(FeatureStoreTimeout, match="timed out"):
        call()
    return time.monotonic() - start


async def _timed_async(call: Callable[[], Awaitable[Any]]) -> float:
    start = time.monotonic()
    with pytest.raises(FeatureStoreTimeout, match="timed out"):
        await call()
    return time.monotonic() - start


HANDSHAKES = pytest.mark.parametrize("hung_url", ["hello", "auth", "cluster"], indirect=True)


@HANDSHAKES
def test_connect_within_its_timeout(hung_url: str) -> None:
    assert _timed(lambda: FeatureReader.connect(hung_url, catalog=test_catalog, timeout=TIMEOUT)) < LIMIT


@HANDSHAKES
@pytest.mark.parametrize("check", [True, False], ids=["registry-check", "no-check"])
def test_first_get_within_its_per_call_timeout(hung_url: str, check: bool) -> None:
    # the reader's own timeout is longer: the call's bounds everything the call does
    reader = FeatureReader(hung_url, catalog=test_catalog, timeout=5.0, check_registry=check)
    try:
        assert _timed(lambda: reader.get(1, "scores", timeout=TIMEOUT)) < LIMIT
        assert _timed(lambda: reader.get_many([1, 2], "scores", timeout=TIMEOUT)) < LIMIT
    finally:
        reader.close()


@HANDSHAKES
async def test_async_connect_within_its_timeout(hung_url: str) -> None:
    elapsed = await _timed_async(lambda: AsyncFeatureReader.connect(hung_url, catalog=test_catalog, timeout=TIMEOUT))
    assert elapsed < LIMIT


@HANDSHAKES
@pytest.mark.parametrize("check", [True, False], ids=["registry-check", "no-check"])
async def test_async_first_get_within_its_per_call_timeout(hung_url: str, check: bool) -> None:
    reader = AsyncFeatureReader(hung_url, catalog=test_catalog, timeout=5.0, check_registry=check)
    try:
        assert await _timed_async(lambda: reader.get(1, "scores", timeout=TIMEOUT)) < LIMIT
        assert await _timed_async(lambda: reader.get_many([1, 2], "scores", timeout=TIMEOUT)) < LIMIT
    finally:
        await reader.close()
