"""``python -m incidents db migrate|downgrade [REV]|seed|status``: the case database's lifecycle.

* ``migrate``    Alembic upgrade to head, then load the reference data (idempotent)
* ``downgrade``  Alembic downgrade to REV (default ``base``: drops every table)
* ``seed``       load the reference data only
* ``status``     current and head revision, row count of every table

The database is ``--url`` or, by default, :func:`incidents.config.case_db_url`
(``AIRFLOW_CONN_INCIDENTS_DB`` or the embedded SQLite file).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

from sqlalchemy import Engine, func, inspect, select

from incidents.config import case_db_url
from incidents.db import migrate
from incidents.db.engine import make_engine
from incidents.db.models import Base

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Sub-commands of ``incidents db``."""
    parser.add_argument("--url", help="SQLAlchemy URL of the case database (default: the configured one)")
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    m = sub.add_parser("migrate", help="upgrade the schema to head and load the reference data")
    m.add_argument("--no-seed", action="store_true", help="only migrate, do not load the reference data")
    d = sub.add_parser("downgrade", help="downgrade the schema (default: to base, dropping every table)")
    d.add_argument("revision", nargs="?", default="base", help="target revision (default: base)")
    s = sub.add_parser("seed", help="load the reference data (idempotent)")
    s.add_argument("--directory", help="folder of the reference files (default: the packaged ones)")
    st = sub.add_parser("status", help="revision and row counts")
    st.add_argument("--json", action="store_true", help="machine-readable output")


def table_counts(engine: Engine) -> dict[str, int | None]:
    """Row count of every table of the models (``None`` when the table does not exist)."""
    existing = set(inspect(engine).get_table_names())
    counts: dict[str, int | None] = {}
    with engine.connect() as conn:
        for name, table in Base.metadata.tables.items():
            counts[name] = (
                int(conn.execute(select(func.count()).select_from(table)).scalar_one())
                if name in existing
                else None
            )
    return counts


def status(engine: Engine) -> dict[str, Any]:
    """Current and head revision plus row counts."""
    current = migrate.current_revision(engine)
    head = migrate.head_revision()
    return {
        "url": engine.url.render_as_string(hide_password=True),
        "current_revision": current,
        "head_revision": head,
        "up_to_date": current == head,
        "tables": table_counts(engine),
    }


def _seed(engine: Engine, directory: str | None = None) -> None:
    from incidents.reference.seed import load_reference

    counts = load_reference(engine, directory)
    sys.stdout.write("reference data: " + ", ".join(f"{k} {v} changed" for k, v in counts.items()) + "\n")


def run(args: argparse.Namespace) -> int:
    """Execute one ``db`` action; 0 on success."""
    engine = make_engine(args.url or case_db_url())
    try:
        if args.action == "migrate":
            migrate.upgrade(engine)
            sys.stdout.write(f"migrated to {migrate.current_revision(engine)}\n")
            if not args.no_seed:
                _seed(engine)
        elif args.action == "downgrade":
            migrate.downgrade(engine, args.revision)
            sys.stdout.write(f"downgraded to {migrate.current_revision(engine) or 'base'}\n")
        elif args.action == "seed":
            if not migrate.is_up_to_date(engine):
                sys.stderr.write("the schema is not at head: run `incidents db migrate` first\n")
                return 1
            _seed(engine, args.directory)
        elif args.action == "status":
            info = status(engine)
            if args.json:
                sys.stdout.write(json.dumps(info, ensure_ascii=False, indent=2) + "\n")
            else:
                sys.stdout.write(
                    f"database: {info['url']}\nrevision: {info['current_revision'] or 'base (empty)'}"
                    f" (head {info['head_revision']}{', up to date' if info['up_to_date'] else ''})\n"
                )
                for name, n in sorted(info["tables"].items()):
                    sys.stdout.write(f"  {name:<24} {'-' if n is None else n}\n")
        return 0
    finally:
        engine.dispose()
