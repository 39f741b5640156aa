"""A real Redis for the Celery tests: the server ``.ci/run`` starts (or
``$DRIFTLOOP_TEST_REDIS_URL``), with one of its numbered databases to each test.

Without a reachable Redis the tests that need one skip, except under CI, where it is a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

REDIS_URL = os.environ.get("DRIFTLOOP_TEST_REDIS_URL", "redis://127.0.0.1:6379")
_MARK = "driftloop:test-database"


def require_redis(url: str = REDIS_URL) -> None:
    """Skip the calling test without Redis; under CI, fail instead."""
    import redis

    try:
        redis.Redis.from_url(url, socket_timeout=5).ping()
    except redis.RedisError as exc:
        if os.environ.get("CI"):
            raise RuntimeError(f"CI is set but Redis at {url} is unreachable") from exc
        pytest.skip(f"no Redis reachable at {url} (set DRIFTLOOP_TEST_REDIS_URL)")


@contextmanager
def temporary_redis_database(url: str = REDIS_URL) -> Iterator[str]:
    """An empty numbered database (1 to 15) taken for this test, emptied afterwards.

    A database counts as taken once it holds anything; the marker key is set only where
    nothing else was, so two test runs (or another user of the server) never share one.
    """
    import redis

    mark = uuid.uuid4().hex
    for number in range(1, 16):
        client = redis.Redis.from_url(f"{url}/{number}", socket_timeout=5)
        try:
            if client.dbsize() == 0 and client.set(_MARK, mark, nx=True) and client.dbsize() == 1:
                try:
                    yield f"{url}/{number}"
                finally:
                    if client.get(_MARK) == mark.encode():
                        client.flushdb()
                return
        finally:
            client.close()
    raise RuntimeError(f"every database of the Redis at {url} is in use")
