"""DAG integrity: every DAG file imports cleanly, touches no network, database, Connection or
Variable at parse time, imports nothing heavy, and carries the settings operators rely on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PROBE = Path(__file__).with_name("parse_probe.py")
DAGS = REPO / "dags"
EXPECTED_DAGS = {
    "collect_vk",
    "collect_ok",
    "collect_twitter",
    "collect_facebook",
    "collect_instagram",
    "process_posts",
    "escalate_cases",
    "monthly_stats",
    "coverage",
}
HEAVY_MODULES = ("pandas", "great_expectations", "matplotlib", "pymorphy3", "requests", "openpyxl", "psycopg")


def parse(folder: Path, tmp_path: Path) -> dict:
    """Parse ``folder`` in a fresh interpreter with the traps of ``parse_probe.py``."""
    home = tmp_path / "airflow_home"
    home.mkdir(exist_ok=True)
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(folder),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
    }
    out = tmp_path / f"parse-{folder.name}.json"
    proc = subprocess.run(
        [sys.executable, str(PROBE), str(folder), str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return parse(DAGS, tmp_path_factory.mktemp("parse"))


def test_no_import_errors(report: dict) -> None:
    assert report["import_errors"] == {}


def test_expected_dags(report: dict) -> None:
    assert set(report["dags"]) == EXPECTED_DAGS


def test_no_access_at_parse_time(report: dict) -> None:
    assert report["violations"] == []


def test_no_heavy_imports_at_parse_time(report: dict) -> None:
    heavy = [m for m in report["imported"] if m.split(".")[0] in HEAVY_MODULES]
    assert heavy == []


def test_parse_time_reported(report: dict, record_property) -> None:
    record_property("dag_parse_seconds", report["parse_seconds"])
    sys.stderr.write(f"\nDAG folder parse time: {report['parse_seconds']:.3f} s\n")
    assert report["parse_seconds"] >= 0


@pytest.mark.parametrize("dag_id", sorted(EXPECTED_DAGS))
def test_dag_settings(report: dict, dag_id: str) -> None:
    dag = report["dags"][dag_id]
    assert dag["tags"], "every DAG has tags"
    assert dag["doc_md"], "every DAG has doc_md"
    assert dag["start_date"] is not None
    start = datetime.fromisoformat(dag["start_date"])
    assert start <= datetime.now(UTC), "a static start date in the past"
    for task_id, task in dag["tasks"].items():
        assert task["owner"] and task["owner"] != "airflow", f"{task_id}: owner"
        assert task["retries"] >= 2, f"{task_id}: retries"
        assert task["retry_exponential_backoff"], f"{task_id}: backoff"


def test_windows_are_real_intervals(report: dict) -> None:
    """Collection and statistics need real ``[start, end)`` windows, not zero-length cron triggers."""
    for dag_id in (
        "collect_vk",
        "collect_ok",
        "collect_twitter",
        "collect_facebook",
        "collect_instagram",
        "monthly_stats",
    ):
        assert report["dags"][dag_id]["timetable"] == "CronDataIntervalTimetable"


@pytest.mark.parametrize(
    "body, violation",
    [
        ("from airflow.sdk import Variable\nVariable.get('x')\n", "Variable access"),
        ("from airflow.sdk import BaseHook\nBaseHook.get_connection('case_db')\n", "Connection access"),
        ("import socket\nsocket.create_connection(('127.0.0.1', 9))\n", "network access"),
        ("import sqlite3\nsqlite3.connect('/tmp/x.db')\n", "database access"),
    ],
)
def test_traps_catch_parse_time_access(tmp_path: Path, body: str, violation: str) -> None:
    """The traps themselves work: a DAG file that reaches out at parse time is caught."""
    folder = tmp_path / "bad_dags"
    folder.mkdir()
    (folder / "bad_dag.py").write_text(
        "from airflow.sdk import DAG\n" + body + "with DAG(dag_id='bad', schedule=None):\n    pass\n"
    )
    result = parse(folder, tmp_path)
    assert any(v.startswith(violation) for v in result["violations"]), result
    assert result["import_errors"], "the failing file is reported as an import error"
