"""Run the case database's Alembic migrations programmatically (the pipeline migrates itself)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from incidents.db.engine import MIGRATIONS_DIR, get_engine

log = logging.getLogger(__name__)


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    return cfg


def _with_connection(engine: Engine, fn: Callable[[Config], object]) -> None:
    cfg = alembic_config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        fn(cfg)


def upgrade(engine: Engine | None = None, revision: str = "head") -> None:
    """Migrate up to ``revision``; safe to call concurrently on PostgreSQL (advisory lock)."""
    engine = engine or get_engine()

    def _do(cfg: Config) -> None:
        conn = cfg.attributes["connection"]
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(727110)")
        command.upgrade(cfg, revision)

    _with_connection(engine, _do)
    log.info("case database at %s migrated to %s", engine.url.render_as_string(hide_password=True), revision)


def downgrade(engine: Engine | None = None, revision: str = "base") -> None:
    engine = engine or get_engine()
    _with_connection(engine, lambda cfg: command.downgrade(cfg, revision))


def current_revision(engine: Engine | None = None) -> str | None:
    engine = engine or get_engine()
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    if head is None:
        raise RuntimeError(f"no migration found in {MIGRATIONS_DIR}")
    return head


def is_up_to_date(engine: Engine | None = None) -> bool:
    return current_revision(engine) == head_revision()
