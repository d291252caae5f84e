"""Hook for the case database (Connection ``case_db``: SQLite by default, PostgreSQL in production)."""

from __future__ import annotations

import logging
from typing import Any

from airflow.sdk import BaseHook

from incidents.config import ConnectionInfo, default_case_db_url, sqlalchemy_url_from_connection

log = logging.getLogger(__name__)


def connection_info(conn: Any) -> ConnectionInfo:
    """Convert an Airflow ``Connection`` into the domain package's ``ConnectionInfo``."""
    return ConnectionInfo(
        conn_id=conn.conn_id,
        conn_type=conn.conn_type or "",
        host=conn.host or "",
        schema=conn.schema or "",
        login=conn.login or "",
        password=conn.password or "",
        port=conn.port,
        extra=conn.extra_dejson or {},
    )


class CaseDbHook(BaseHook):
    """Build an SQLAlchemy engine for the case database and keep its schema migrated.

    :param case_db_conn_id: the Connection id; when it does not exist, the embedded SQLite
        default under ``INCIDENTS_HOME`` is used (the demo's embedded default).
    """

    conn_name_attr = "case_db_conn_id"
    default_conn_name = "case_db"
    conn_type = "sqlite"
    hook_name = "Incidents case database"

    def __init__(self, case_db_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.case_db_conn_id = case_db_conn_id

    def get_uri(self) -> str:
        """The SQLAlchemy URL of the case database."""
        try:
            conn = self.get_connection(self.case_db_conn_id)
        except Exception as exc:  # the SDK raises its own not-found error type
            if "isn't defined" in str(exc) or "not found" in str(exc).lower():
                log.warning(
                    "connection %r not defined: using the embedded SQLite default", self.case_db_conn_id
                )
                return default_case_db_url()
            raise
        return sqlalchemy_url_from_connection(connection_info(conn))

    def get_conn(self):
        """A cached engine whose schema is at the latest migration (the pipeline migrates itself)."""
        from incidents.db import migrate
        from incidents.db.engine import get_engine

        engine = get_engine(self.get_uri())
        if not migrate.is_up_to_date(engine):
            migrate.upgrade(engine)
            from incidents.reference.seed import load_reference

            load_reference(engine)
        return engine

    def test_connection(self) -> tuple[bool, str]:
        try:
            engine = self.get_conn()
            with engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
            return True, f"connected to {engine.dialect.name} case database"
        except Exception as exc:
            return False, str(exc)
