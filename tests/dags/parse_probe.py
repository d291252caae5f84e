"""Parse a DAG folder in a clean interpreter with traps on network, database, Connection and
Variable access; print a JSON report. Run by ``test_dag_integrity.py`` as a subprocess so that
``sys.modules`` shows exactly what parsing imported."""

from __future__ import annotations

import json
import socket
import sys
import time
from pathlib import Path

violations: list[str] = []


def _trap(what: str):
    def _raise(*_args, **_kwargs):
        violations.append(what)
        raise RuntimeError(f"{what} at DAG parse time")

    return _raise


def install_traps() -> None:
    socket.socket.connect = _trap("network access (socket.connect)")  # type: ignore[method-assign]
    socket.socket.connect_ex = _trap("network access (socket.connect_ex)")  # type: ignore[method-assign]
    socket.create_connection = _trap("network access (socket.create_connection)")
    import sqlalchemy.engine

    sqlalchemy.engine.Engine.connect = _trap("database access (Engine.connect)")  # type: ignore[method-assign]
    sqlalchemy.engine.Engine.raw_connection = _trap("database access (Engine.raw_connection)")  # type: ignore[method-assign]
    import sqlite3

    sqlite3.connect = _trap("database access (sqlite3.connect)")
    from airflow.sdk import BaseHook, Variable

    BaseHook.get_connection = classmethod(_trap("Connection access (BaseHook.get_connection)"))  # type: ignore[method-assign]
    Variable.get = staticmethod(_trap("Variable access (Variable.get)"))  # type: ignore[method-assign]


def main(folder: str, out: str) -> None:
    import airflow  # noqa: F401 - configuration is read before the traps

    before = set(sys.modules)
    install_traps()
    from airflow.dag_processing.dagbag import DagBag

    started = time.perf_counter()
    bag = DagBag(dag_folder=folder, safe_mode=False)
    seconds = time.perf_counter() - started
    dags = {}
    for dag_id, dag in bag.dags.items():
        dags[dag_id] = {
            "fileloc": dag.fileloc,
            "tags": sorted(dag.tags or []),
            "doc_md": bool(dag.doc_md and dag.doc_md.strip()),
            "start_date": dag.start_date.isoformat() if dag.start_date else None,
            "timetable": type(dag.timetable).__name__,
            "tasks": {
                t.task_id: {
                    "owner": t.owner,
                    "retries": t.retries,
                    "retry_exponential_backoff": bool(t.retry_exponential_backoff),
                }
                for t in dag.tasks
            },
        }
    imported = sorted(set(sys.modules) - before)
    Path(out).write_text(
        json.dumps(
            {
                "dags": dags,
                "import_errors": {k: str(v) for k, v in bag.import_errors.items()},
                "violations": violations,
                "imported": imported,
                "parse_seconds": seconds,
            }
        ),
        encoding="utf-8",
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
