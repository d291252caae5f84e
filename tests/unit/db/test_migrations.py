"""Schema lifecycle on fresh databases: upgrade → seed → downgrade base → upgrade, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, create_engine, inspect, text

from incidents.db import migrate
from incidents.db.engine import make_engine
from incidents.db.models import Base
from incidents.reference.seed import load_reference

PG_ADMIN_URL = os.environ.get(
    "INCIDENTS_TEST_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _fresh_sqlite(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'fresh.sqlite'}")
    yield engine
    engine.dispose()


def _fresh_postgres() -> Iterator[Engine]:
    name = f"incidents_mig_{uuid.uuid4().hex[:10]}"
    try:
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # any failure to reach the server
        message = f"PostgreSQL is required but unavailable: {str(exc).splitlines()[0]}"
        if IN_CI:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    engine = make_engine(PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name)
    yield engine
    engine.dispose()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def fresh_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An empty database of its own (the shared session databases are left alone)."""
    gen = _fresh_sqlite(tmp_path) if request.param == "sqlite" else _fresh_postgres()
    engine = next(gen)
    yield engine
    next(gen, None)


def _tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names()) - {"alembic_version"}


def _schema_diff(engine: Engine) -> list:
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(ctx, Base.metadata)


def test_upgrade_downgrade_upgrade(fresh_engine: Engine) -> None:
    assert migrate.current_revision(fresh_engine) is None
    migrate.upgrade(fresh_engine)
    assert migrate.is_up_to_date(fresh_engine)
    assert _tables(fresh_engine) == set(Base.metadata.tables)
    assert _schema_diff(fresh_engine) == []

    started = time.perf_counter()
    counts = load_reference(fresh_engine)
    elapsed = time.perf_counter() - started
    assert counts["settlements"] == 4288
    assert elapsed < 5, f"seeding took {elapsed:.1f}s"

    migrate.downgrade(fresh_engine, "base")
    assert migrate.current_revision(fresh_engine) is None
    assert _tables(fresh_engine) == set()

    migrate.upgrade(fresh_engine)
    assert migrate.is_up_to_date(fresh_engine)
    assert _schema_diff(fresh_engine) == []
    assert load_reference(fresh_engine)["settlements"] == 4288
    assert sum(load_reference(fresh_engine).values()) == 0


def test_upgrade_is_idempotent(fresh_engine: Engine) -> None:
    migrate.upgrade(fresh_engine)
    migrate.upgrade(fresh_engine)
    assert migrate.current_revision(fresh_engine) == migrate.head_revision()
