"""Shared fixtures: case databases on SQLite and PostgreSQL, migrated and seeded once per session.

PostgreSQL runs at 127.0.0.1:5432 on these machines (trust auth). When it cannot be
reached, tests that need it are skipped with a loud reason locally, and fail with
``CI=true``: CI never passes without having exercised PostgreSQL.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, text

from incidents.db import migrate
from incidents.db.engine import make_engine

# Airflow reads its configuration when first imported: give the test process its own home
# (never the user's ~/airflow) before any test imports it.
_AIRFLOW_HOME = tempfile.mkdtemp(prefix="incidents-test-airflow-")
os.environ.setdefault("AIRFLOW_HOME", _AIRFLOW_HOME)
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{_AIRFLOW_HOME}/airflow.db")
os.environ.setdefault("INCIDENTS_HOME", tempfile.mkdtemp(prefix="incidents-test-home-"))

PG_ADMIN_URL = os.environ.get(
    "INCIDENTS_TEST_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# Tables written by the pipeline (cleared between tests); reference tables stay seeded.
DYNAMIC_TABLES = (
    "notifications",
    "case_events",
    "case_posts",
    "cases",
    "quarantine",
    "posts",
    "batches",
    "monthly_stats",
    "executor_monthly_stats",
    "monthly_reports",
    "coverage_actions",
)


def postgres_unavailable(reason: str) -> None:
    """Fail in CI, skip loudly elsewhere."""
    message = f"PostgreSQL is required but unavailable: {reason}"
    if IN_CI:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    """URL of the PostgreSQL server's ``postgres`` database, once it answered (fails in CI if not)."""
    engine = create_engine(PG_ADMIN_URL)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # any failure to reach the server
        postgres_unavailable(str(exc).splitlines()[0])
    finally:
        engine.dispose()
    return PG_ADMIN_URL


@pytest.fixture(scope="session")
def pg_database_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped afterwards."""
    name = f"incidents_test_{uuid.uuid4().hex[:10]}"
    try:
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # any failure to reach the server
        postgres_unavailable(str(exc).splitlines()[0])
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _seed(engine: Engine) -> None:
    migrate.upgrade(engine)
    from incidents.reference.seed import load_reference

    load_reference(engine)


@pytest.fixture(scope="session")
def sqlite_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    path = tmp_path_factory.mktemp("casedb") / "cases.sqlite"
    engine = make_engine(f"sqlite:///{path}")
    _seed(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def pg_engine(pg_database_url: str) -> Iterator[Engine]:
    engine = make_engine(pg_database_url)
    _seed(engine)
    yield engine
    engine.dispose()


def _clear(engine: Engine) -> None:
    with engine.begin() as conn:
        for table in DYNAMIC_TABLES:
            conn.execute(text(f"DELETE FROM {table}"))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """A migrated, seeded case database, on SQLite and on PostgreSQL; pipeline tables start empty."""
    eng = request.getfixturevalue("sqlite_engine" if request.param == "sqlite" else "pg_engine")
    _clear(eng)
    yield eng
    _clear(eng)


@pytest.fixture
def session(engine: Engine):
    """A session on :func:`engine`, committed by the code under test as it sees fit."""
    from sqlalchemy.orm import Session

    with Session(engine, expire_on_commit=False) as s:
        yield s
