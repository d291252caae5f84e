"""AirflowApiHook against a small fake of Airflow's REST API (a real HTTP server on 127.0.0.1)."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

RUNS = [
    {"dag_run_id": f"r{i}", "state": "success", "logical_date": f"2026-10-05T{i:02d}:00:00Z"}
    for i in range(7)
]


class FakeApi(BaseHTTPRequestHandler):
    token = "jwt-123"
    flaky = 0
    requests: list[tuple[str, str, dict]] = []

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    def _send(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> dict:
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length) or b"{}")

    def do_POST(self) -> None:  # http.server API
        body = self._body()
        FakeApi.requests.append(("POST", self.path, body))
        if self.path == "/auth/token":
            if body == {"username": "svc", "password": "s3cret"}:
                return self._send(201, {"access_token": self.token})
            return self._send(401, {"detail": "Invalid credentials"})
        if self.headers.get("Authorization") != f"Bearer {self.token}":
            return self._send(401, {"detail": "Not authenticated"})
        if self.path == "/api/v2/backfills":
            if body["dag_id"] == "busy":
                return self._send(409, {"detail": "There is already a running backfill for dag busy"})
            return self._send(200, {"id": 42, **body})
        if self.path == "/api/v2/backfills/dry_run":
            return self._send(200, {"backfills": [{"logical_date": body["from_date"]}], "total_entries": 1})
        return self._send(404, {"detail": "no such route"})

    def do_GET(self) -> None:  # http.server API
        url = urlsplit(self.path)
        params = {k: v[0] for k, v in parse_qs(url.query).items()}
        FakeApi.requests.append(("GET", url.path, params))
        if self.headers.get("Authorization") != f"Bearer {self.token}":
            return self._send(401, {"detail": "Not authenticated"})
        if FakeApi.flaky:
            FakeApi.flaky -= 1
            return self._send(503, {"detail": "database is locked"})
        if url.path == "/api/v2/dags/collect_vk/dagRuns":
            offset, limit = int(params["offset"]), int(params["limit"])
            runs = RUNS
            if "logical_date_gte" in params:
                runs = [
                    r for r in runs if r["logical_date"] >= params["logical_date_gte"].replace("+00:00", "Z")
                ]
            return self._send(
                200, {"dag_runs": runs[offset : offset + min(limit, 3)], "total_entries": len(runs)}
            )
        if url.path == "/api/v2/version":
            return self._send(200, {"version": "3.3.2"})
        return self._send(404, {"detail": "no such route"})


@pytest.fixture
def api(monkeypatch):
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    FakeApi.requests, FakeApi.flaky = [], 0
    host, port = server.server_address
    monkeypatch.setenv(
        "AIRFLOW_CONN_AIRFLOW_API",
        json.dumps(
            {"conn_type": "http", "host": f"http://{host}:{port}", "login": "svc", "password": "s3cret"}
        ),
    )
    yield server
    server.shutdown()
    server.server_close()


def test_token_from_login_and_runs_page_by_page(api) -> None:
    from incidents_provider.hooks.airflow_api import AirflowApiHook

    hook = AirflowApiHook(attempts=2)
    assert [r["dag_run_id"] for r in hook.dag_runs("collect_vk")] == [f"r{i}" for i in range(7)]
    assert [r["dag_run_id"] for r in hook.dag_runs("collect_vk", limit=2)] == ["r0", "r1"]
    since = datetime(2026, 10, 5, 4, tzinfo=UTC)
    assert [r["dag_run_id"] for r in hook.dag_runs("collect_vk", logical_date_gte=since)] == [
        "r4",
        "r5",
        "r6",
    ]
    assert [p for m, p, _ in FakeApi.requests if m == "POST"] == ["/auth/token"], "one login per hook"
    assert hook.test_connection() == (True, f"Airflow 3.3.2 at {hook.base_url()}")


def test_backfill_dry_run_create_and_conflict(api) -> None:
    from incidents_provider.hooks.airflow_api import AirflowApiError, AirflowApiHook

    hook = AirflowApiHook(attempts=2)
    start, end = datetime(2026, 10, 5, 2, tzinfo=UTC), datetime(2026, 10, 5, 4, tzinfo=UTC)
    dry = hook.create_backfill("collect_vk", start, end, max_active_runs=4, dry_run=True)
    assert dry["backfills"] == [{"logical_date": start.isoformat()}]
    created = hook.create_backfill("collect_vk", start, end, max_active_runs=4)
    assert (
        created["id"] == 42 and created["reprocess_behavior"] == "failed" and created["max_active_runs"] == 4
    )
    with pytest.raises(AirflowApiError) as err:
        hook.create_backfill("busy", start, end, max_active_runs=1)
    assert err.value.status == 409


def test_transient_answers_are_retried(api, monkeypatch) -> None:
    from incidents_provider.hooks import airflow_api

    monkeypatch.setattr(airflow_api.time, "sleep", lambda s: None)
    FakeApi.flaky = 2
    hook = airflow_api.AirflowApiHook(attempts=3)
    assert hook.request("GET", "/version") == {"version": "3.3.2"}
    FakeApi.flaky = 5
    with pytest.raises(airflow_api.AirflowApiError, match="503"):
        airflow_api.AirflowApiHook(attempts=2).request("GET", "/version")


def test_refused_login_is_a_clear_error_without_the_password(api, monkeypatch) -> None:
    from incidents_provider.hooks.airflow_api import AirflowApiError, AirflowApiHook

    host, port = api.server_address
    monkeypatch.setenv(
        "AIRFLOW_CONN_AIRFLOW_API",
        json.dumps(
            {"conn_type": "http", "host": f"http://{host}:{port}", "login": "svc", "password": "wrong-pw"}
        ),
    )
    with pytest.raises(AirflowApiError) as err:
        AirflowApiHook().dag_details("collect_vk")
    assert err.value.status == 401 and "wrong-pw" not in str(err.value)
    ok, message = AirflowApiHook().test_connection()
    assert not ok and "401" in message


def test_a_user_token_instead_of_the_connection(api) -> None:
    from incidents_provider.hooks.airflow_api import AirflowApiHook

    host, port = api.server_address
    hook = AirflowApiHook(token=FakeApi.token, base_url=f"http://{host}:{port}/")
    assert hook.request("GET", "/version")["version"] == "3.3.2"
    assert not [p for m, p, _ in FakeApi.requests if p == "/auth/token"]


def test_base_url_defaults_to_the_api_server_of_the_configuration(monkeypatch) -> None:
    from incidents_provider.hooks.airflow_api import _base_url

    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "")
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTION_API_SERVER_URL", "http://airflow-apiserver:8080/execution/")
    assert _base_url("", "", None) == "http://airflow-apiserver:8080"
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.example.org/")
    assert _base_url("", "", None) == "https://airflow.example.org"
    assert _base_url("api.internal", "https", 8443) == "https://api.internal:8443"
    assert _base_url("http://x:1/", "", None) == "http://x:1"
