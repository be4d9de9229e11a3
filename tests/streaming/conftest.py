"""Fixtures of the streaming tests (helpers and the short-TTL catalogue: helpers.py)."""

from __future__ import annotations

import pytest

from featurestore.jobs import local_redis


@pytest.fixture
def redis7_url(redis7: local_redis.LocalRedis) -> str:
    """Debian's Redis 7.0, emptied (data and functions)."""
    redis7.client().flushall()
    redis7.client().function_flush()
    return redis7.url
