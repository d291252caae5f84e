"""Idempotent loader of the reference data into the case database.

:func:`load_reference` compares the files (read through :mod:`incidents.reference`) with
what the tables hold and writes only the difference, in bulk: new rows are inserted,
changed rows updated, and rows no longer in the files removed where nothing can point
at them (settlements, topics, routing and deadline rules, calendar days). Municipalities,
executors and categories that disappear from the files are kept (cases reference them by
foreign key) and reported in the log. Loading the same files twice writes nothing.

Works on SQLite and PostgreSQL; on PostgreSQL concurrent loaders serialise on an
advisory lock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Table, and_, bindparam, delete, insert, select, update
from sqlalchemy.orm import Session

from incidents.db import models
from incidents.reference import (
    load_calendar,
    load_deadline_rules,
    load_executors,
    load_municipalities,
    load_routing_rules,
    load_rubricator,
    load_settlements,
    reference_dir,
)

log = logging.getLogger(__name__)

SEED_LOCK_ID = 727112
"""PostgreSQL advisory lock key of the loader."""


def _sync(
    conn: Connection,
    table: Table,
    key: Sequence[str],
    rows: Iterable[dict[str, Any]],
    *,
    remove_missing: bool,
    normalise: Callable[[str, Any], Any] | None = None,
) -> int:
    """Make ``table`` hold ``rows`` (matched on the ``key`` columns); return the number of rows changed.

    Only the columns present in the rows are compared and written; a surrogate ``id`` is left alone.
    """
    desired = {tuple(r[k] for k in key): r for r in rows}
    if not desired:
        raise ValueError(f"no reference rows for {table.name}")
    columns = list(next(iter(desired.values())))
    has_id = "id" in table.c and "id" not in key
    selected = [table.c[c] for c in columns] + ([table.c.id] if has_id else [])
    norm = normalise or (lambda _c, v: v)
    existing: dict[tuple[Any, ...], dict[str, Any]] = {}
    for rec in conn.execute(select(*selected)).mappings():
        existing[tuple(rec[k] for k in key)] = dict(rec)

    to_insert = [r for k, r in desired.items() if k not in existing]
    to_update = []
    for k, r in desired.items():
        old = existing.get(k)
        if old is not None and any(norm(c, old[c]) != norm(c, r[c]) for c in columns):
            to_update.append(r)
    stale = [k for k in existing if k not in desired]

    if to_insert:
        conn.execute(insert(table), to_insert)
    if to_update:
        values = [c for c in columns if c not in key]
        stmt = (
            update(table)
            .where(and_(*(table.c[k] == bindparam(f"k_{k}") for k in key)))
            .values({c: bindparam(f"v_{c}") for c in values})
        )
        conn.execute(
            stmt,
            [{**{f"k_{k}": r[k] for k in key}, **{f"v_{c}": r[c] for c in values}} for r in to_update],
        )
    removed = 0
    if stale and remove_missing:
        if has_id:
            ids = [existing[k]["id"] for k in stale]
            for i in range(0, len(ids), 500):
                conn.execute(delete(table).where(table.c.id.in_(ids[i : i + 500])))
        else:
            conn.execute(
                delete(table).where(and_(*(table.c[k] == bindparam(f"k_{k}") for k in key))),
                [{f"k_{k}": v for k, v in zip(key, sk, strict=True)} for sk in stale],
            )
        removed = len(stale)
    elif stale:
        log.warning(
            "%s: %d row(s) no longer in the reference files are kept (referenced by cases): %s",
            table.name,
            len(stale),
            ", ".join("/".join(map(str, k)) for k in stale[:10]),
        )
    changed = len(to_insert) + len(to_update) + removed
    log.debug("%s: %d inserted, %d updated, %d removed", table.name, len(to_insert), len(to_update), removed)
    return changed


def _normalise_json(column: str, value: Any) -> Any:
    if column == "source_topics":
        return list(value or [])
    return value


def _load_all(conn: Connection, directory: Path) -> dict[str, int]:
    rubricator = load_rubricator(directory)
    calendar = load_calendar(directory)
    counts: dict[str, int] = {}
    counts["municipalities"] = _sync(
        conn,
        models.table_of(models.Municipality),
        ("code",),
        (asdict(m) for m in load_municipalities(directory)),
        remove_missing=False,
    )
    counts["settlements"] = _sync(
        conn,
        models.table_of(models.Settlement),
        ("oktmo",),
        (asdict(s) for s in load_settlements(directory)),
        remove_missing=True,
    )
    counts["executors"] = _sync(
        conn,
        models.table_of(models.Executor),
        ("code",),
        (asdict(e) for e in load_executors(directory)),
        remove_missing=False,
    )
    counts["categories"] = _sync(
        conn,
        models.table_of(models.Category),
        ("slug",),
        ({"slug": c.slug, "name": c.name} for c in rubricator.categories),
        remove_missing=False,
    )
    counts["topics"] = _sync(
        conn,
        models.table_of(models.Topic),
        ("slug",),
        (
            {**asdict(t), "source_topics": list(t.source_topics)}
            for c in rubricator.categories
            for t in c.topics
        ),
        remove_missing=True,
        normalise=_normalise_json,
    )
    counts["routing_rules"] = _sync(
        conn,
        models.table_of(models.RoutingRule),
        ("category_slug", "topic_slug", "municipality_code"),
        (asdict(r) for r in load_routing_rules(directory)),
        remove_missing=True,
    )
    counts["deadline_rules"] = _sync(
        conn,
        models.table_of(models.DeadlineRule),
        ("category_slug", "topic_slug"),
        (asdict(r) for r in load_deadline_rules(directory)),
        remove_missing=True,
    )
    counts["production_calendar"] = _sync(
        conn,
        models.table_of(models.CalendarDay),
        ("day",),
        (
            {"day": day, "is_working": working, "note": calendar.notes.get(day) or None}
            for day, working in sorted(calendar.exceptions.items())
        ),
        remove_missing=True,
    )
    return counts


def load_reference(target: Engine | Session, directory: str | Path | None = None) -> dict[str, int]:
    """Upsert the reference files into the case database; return the rows changed per table.

    ``target`` is an engine (the load runs in its own transaction) or a session (the load
    joins the session's transaction and the caller commits). A second load of the same
    files returns all zeros. Raises :class:`incidents.reference.ReferenceError` for bad files.
    """
    directory = reference_dir(directory)
    if isinstance(target, Session):
        counts = _run(target.connection(), directory)
    else:
        with target.begin() as conn:
            counts = _run(conn, directory)
    log.info(
        "reference data from %s loaded: %s",
        directory,
        ", ".join(f"{k}={v}" for k, v in counts.items()) or "nothing",
    )
    return counts


def _run(conn: Connection, directory: Path) -> dict[str, int]:
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({SEED_LOCK_ID})")
    return _load_all(conn, directory)
