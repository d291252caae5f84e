"""Hook for the case database (Connection ``case_db``: PostgreSQL in production).

The case database is never guessed: a task whose ``case_db`` connection is missing fails with a
clear error, so cases can never land in a file on a worker that nobody reads. The only other
source is ``INCIDENTS_CASE_DB_URL``, the explicit switch the local stack (demo, ``make airflow``,
the scheduler tests) sets together with the connection (see :class:`incidents.config.Settings`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowNotFoundException

from incidents.config import ConnectionInfo, settings, sqlalchemy_url_from_connection

if TYPE_CHECKING:
    from sqlalchemy import Engine

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

    :param case_db_conn_id: the Connection id. When it does not exist, ``INCIDENTS_CASE_DB_URL``
        is used if it is set (the local stack's explicit switch); otherwise the task fails with
        :class:`~airflow.sdk.exceptions.AirflowNotFoundException` naming the connection.
    """

    conn_name_attr = "case_db_conn_id"
    default_conn_name = "case_db"
    conn_type = "sqlite"
    hook_name = "Incidents case database"

    def __init__(self, case_db_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.case_db_conn_id = case_db_conn_id

    def get_uri(self) -> str:
        """The SQLAlchemy URL of the case database (see the class docstring); never a guess."""
        try:
            conn = self.get_connection(self.case_db_conn_id)
        except AirflowNotFoundException:
            explicit = settings().case_db_url
            if explicit:
                log.info(
                    "connection %r not defined: using INCIDENTS_CASE_DB_URL (set by the local stack)",
                    self.case_db_conn_id,
                )
                return explicit
            raise AirflowNotFoundException(
                f"the case database connection {self.case_db_conn_id!r} is not defined: create it "
                f"(e.g. AIRFLOW_CONN_{self.case_db_conn_id.upper()}=postgres://user:password@host:5432/db "
                "or an Airflow Connection of type postgres); the pipeline never falls back to a local "
                "file. The local stack sets INCIDENTS_CASE_DB_URL for its embedded database."
            ) from None
        return sqlalchemy_url_from_connection(connection_info(conn))

    def get_conn(self) -> Engine:
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
