"""Small dialect helpers shared by the case modules (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Table, text

if TYPE_CHECKING:
    from sqlalchemy.dialects import postgresql, sqlite

ROUTING_LOCK = 727201
"""PostgreSQL advisory lock key taken by routing transactions (one router at a time)."""


def begin_write(conn: Connection, lock_key: int | None = None) -> None:
    """Make the current transaction a writer from its first statement.

    SQLite: ``BEGIN IMMEDIATE`` takes the database's write lock now, so what the
    transaction reads cannot be changed by another writer before it writes (the Python
    driver would otherwise start the transaction only at the first write). PostgreSQL:
    with ``lock_key``, a transaction-scoped advisory lock serialises the callers.
    Call right after ``conn.begin()``, before any other statement.
    """
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    elif lock_key is not None and conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock_key})


def _dialect_insert(conn: Connection, table: Table) -> postgresql.Insert | sqlite.Insert:
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    if conn.dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table)
    raise RuntimeError(
        f"unsupported database {conn.dialect.name!r}"
    )  # pragma: no cover - only the two supported databases


def insert_ignore(
    conn: Connection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    *,
    returning: str | None = None,
    chunk: int = 1000,
) -> list[Any]:
    """``INSERT ... ON CONFLICT DO NOTHING``; with ``returning``, the values of the rows inserted."""
    won: list[Any] = []
    for i in range(0, len(rows), chunk):
        part = list(rows[i : i + chunk])
        if not part:
            continue
        # executemany of one cached statement; with RETURNING, SQLAlchemy's "insertmanyvalues"
        # batches it into multi-row INSERTs that return exactly the rows that were inserted
        stmt = _dialect_insert(conn, table).on_conflict_do_nothing()
        if returning is None:
            conn.execute(stmt, part)
            continue
        result = conn.execute(stmt.returning(table.c[returning]), part)
        won.extend(result.scalars().all())
    return won
