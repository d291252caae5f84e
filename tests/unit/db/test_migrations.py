"""Schema lifecycle on fresh databases: upgrade → seed → downgrade base → upgrade, on SQLite and PostgreSQL."""

from __future__ import annotations

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


def _fresh_sqlite(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'fresh.sqlite'}")
    yield engine
    engine.dispose()


def _fresh_postgres(admin_url: str) -> Iterator[Engine]:
    name = f"incidents_mig_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(admin_url.rsplit("/", 1)[0] + "/" + name)
    yield engine
    engine.dispose()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def fresh_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An empty database of its own (the shared session databases are left alone)."""
    if request.param == "sqlite":
        gen = _fresh_sqlite(tmp_path)
    else:
        gen = _fresh_postgres(request.getfixturevalue("pg_admin_url"))
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
