"""CoverageOperator's decisions against a fake REST API of one hourly collection DAG (no scheduler):
paused → no backfill; a dry-run-checked backfill over exactly the gaps; wait while it runs; a gap
that survives is alerted once; caught-up windows are recorded. Real SMTP server, SQLite case DB."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import text

from incidents_dev.runtime import SmtpSink, case_db_connection

NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


def h(k: int) -> datetime:
    """The start of the hourly window ``k`` hours before the current hour."""
    return NOW - timedelta(hours=k)


def iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


class Dag:
    """The fake's state: one DAG's runs and backfills; the test plays the scheduler."""

    paused = False
    runs: dict[datetime, str] = {}
    backfills: list[dict] = []
    created: list[tuple[datetime, datetime]] = []


class FakeApi(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass

    def _send(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # http.server API
        url = urlsplit(self.path)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path == "/api/v2/dags/collect_vk/details":
            return self._send(
                200, {"is_paused": Dag.paused, "max_active_runs": 3, "timetable_summary": "0 * * * *"}
            )
        if url.path.startswith("/api/v2/dags/") and url.path.endswith("/details"):
            return self._send(404, {"detail": "no such DAG"})
        if url.path == "/api/v2/dags/collect_vk/dagRuns":
            runs = sorted(Dag.runs.items())
            if "logical_date_gte" in q:
                runs = [r for r in runs if r[0] >= datetime.fromisoformat(q["logical_date_gte"])]
            if "logical_date_lte" in q:
                runs = [r for r in runs if r[0] <= datetime.fromisoformat(q["logical_date_lte"])]
            page = runs[int(q["offset"]) : int(q["offset"]) + int(q["limit"])]
            return self._send(
                200,
                {
                    "dag_runs": [
                        {
                            "dag_run_id": f"run_{iso(s)}",
                            "state": state,
                            "run_type": "scheduled",
                            "logical_date": iso(s),
                            "data_interval_start": iso(s),
                            "data_interval_end": iso(s + timedelta(hours=1)),
                        }
                        for s, state in page
                    ],
                    "total_entries": len(runs),
                },
            )
        if url.path == "/api/v2/backfills":
            return self._send(200, {"backfills": Dag.backfills, "total_entries": len(Dag.backfills)})
        return self._send(404, {"detail": f"no route {url.path}"})

    def do_POST(self) -> None:  # http.server API
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path == "/auth/token":
            return self._send(201, {"access_token": "t"})
        start, end = datetime.fromisoformat(body["from_date"]), datetime.fromisoformat(body["to_date"])
        dates = []
        moment = start
        while moment <= end:
            if Dag.runs.get(moment) in (None, "failed"):
                dates.append(moment)
            moment += timedelta(hours=1)
        if self.path == "/api/v2/backfills/dry_run":
            return self._send(
                200, {"backfills": [{"logical_date": iso(d)} for d in dates], "total_entries": 0}
            )
        if self.path == "/api/v2/backfills":
            assert body["reprocess_behavior"] == "failed" and body["max_active_runs"] == 3
            Dag.created.append((start, end))
            Dag.backfills.append({"id": len(Dag.backfills) + 1, "completed_at": None})
            for d in dates:
                Dag.runs[d] = "queued"
            return self._send(200, Dag.backfills[-1])
        return self._send(404, {"detail": "no route"})


@pytest.fixture
def env(tmp_path: Path, monkeypatch):
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    smtp = SmtpSink(tmp_path / "mail").start()
    host, port = server.server_address
    monkeypatch.setenv(
        "AIRFLOW_CONN_AIRFLOW_API",
        json.dumps({"conn_type": "http", "host": f"http://{host}:{port}", "login": "a", "password": "b"}),
    )
    monkeypatch.setenv("AIRFLOW_CONN_CASE_DB", case_db_connection(f"sqlite:///{tmp_path / 'cases.sqlite'}"))
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", smtp.connection_uri())
    monkeypatch.setenv("INCIDENTS_ALERT_EMAILS", "oncall@example.org")
    Dag.paused, Dag.runs, Dag.backfills, Dag.created = False, {}, [], []
    yield smtp
    smtp.stop()
    server.shutdown()
    server.server_close()


def _run(n: int) -> dict:
    from incidents_provider.operators.coverage import CoverageOperator

    op = CoverageOperator(task_id="cover", dag_ids=["collect_vk"], grace=timedelta(minutes=30))
    return op.execute({"run_id": f"coverage_{n}"})["collect_vk"]


def _actions(tmp_path: Path) -> list[tuple[str, datetime]]:
    from incidents.coverage.windows import utc
    from incidents.db.engine import get_engine

    engine = get_engine(f"sqlite:///{tmp_path / 'cases.sqlite'}")
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT action, window_start FROM coverage_actions ORDER BY id")).all()
    return [(a, utc(w)) for a, w in rows]


def test_paused_then_backfilled_then_alerted_once_then_caught_up(env, tmp_path: Path) -> None:
    # the DAG ran h(8) and runs from h(3) on; h(7)..h(5) missing, h(4) failed; h(1) is within grace
    Dag.runs = {h(8): "success", h(4): "failed", h(3): "success", h(2): "success", h(1): "running"}
    gaps = [h(7), h(6), h(5), h(4)]

    Dag.paused = True
    summary = _run(1)
    assert summary["gaps"] == 4 and summary["backfill_id"] is None and Dag.created == []
    assert sorted(w for a, w in _actions(tmp_path) if a == "skipped_paused") == gaps

    Dag.paused = False
    summary = _run(2)
    assert Dag.created == [(h(7), h(4))] and summary["backfill_id"] == 1
    assert sorted(summary["backfilled"]) == [g.isoformat() for g in gaps]

    # the backfill runs: no new backfill, no alert while it has not completed
    for g in gaps:
        Dag.runs[g] = "running"
    assert _run(3)["gaps"] == 0 and len(Dag.created) == 1
    # it completed: three windows caught up, h(4) failed again
    Dag.runs.update({h(7): "success", h(6): "success", h(5): "success", h(4): "failed"})
    Dag.backfills[-1]["completed_at"] = iso(NOW)
    summary = _run(4)
    assert sorted(summary["caught_up"]) == [g.isoformat() for g in gaps[:3]]
    assert summary["alerted_now"] == [h(4).isoformat()] and len(Dag.created) == 1
    mails = env.messages()
    assert (
        len(mails) == 1
        and "collect_vk" in str(mails[0]["Subject"])
        and mails[0]["To"] == "oncall@example.org"
    )
    assert h(4).strftime("%Y-%m-%d %H:%M") in mails[0].get_body().get_content()

    # later runs: no second alert, no second backfill
    assert _run(5)["alerted_now"] == [] and _run(6)["alerted_now"] == []
    assert len(env.messages()) == 1 and len(Dag.created) == 1
    counts = {}
    for action, _ in _actions(tmp_path):
        counts[action] = counts.get(action, 0) + 1
    assert counts == {
        "detected": 4,
        "skipped_paused": 4,
        "backfill_requested": 4,
        "caught_up": 3,
        "alerted": 1,
    }


def test_a_backfill_that_would_run_other_windows_is_not_created(env, monkeypatch) -> None:
    from incidents_provider.hooks.airflow_api import AirflowApiHook

    Dag.runs = {h(6): "success", h(3): "success", h(1): "success"}
    real = AirflowApiHook.create_backfill

    def dry_run_with_an_extra_window(self, dag_id, start, end, **kwargs):
        answer = real(self, dag_id, start, end, **kwargs)
        if kwargs.get("dry_run"):
            answer["backfills"].append({"logical_date": iso(h(3))})
        return answer

    monkeypatch.setattr(AirflowApiHook, "create_backfill", dry_run_with_an_extra_window)
    summary = _run(1)
    assert summary["gaps"] == 3 and summary["backfill_id"] is None and Dag.created == []


def test_a_dag_the_api_does_not_know_fails_the_task_after_checking_the_others(env) -> None:
    from incidents_provider.operators.coverage import CoverageOperator

    Dag.runs = {h(3): "success"}
    op = CoverageOperator(task_id="cover", dag_ids=["collect_xx", "collect_vk"], grace=timedelta(0))
    with pytest.raises(RuntimeError, match="collect_xx"):
        op.execute({"run_id": "c"})
