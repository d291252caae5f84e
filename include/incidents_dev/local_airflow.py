"""A local Airflow 3 for the demo, ``make airflow`` and the integration tests.

Starts the api-server, scheduler, dag-processor (and, for the distributed path, a Celery
worker) as separate processes, each the leader of a process group of its own (its task
processes included), with the project's DAGs and plugins and Airflow's metadata in PostgreSQL.
Airflow is driven through its REST API (``/api/v2``, with a JWT from the api-server's
``/auth/token``): run states, task states, (un)pausing, triggering and backfills. A component
that dies fails the caller with its log; nothing is restarted behind the caller's back.
This module does not import Airflow: Airflow runs as an external program (``.venv/bin/airflow``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from incidents.config import REFERENCE_DIR, REPO_ROOT, local_home
from incidents_dev.ports import free_port, reserve
from incidents_dev.servers import (
    EmbeddedPostgres,
    create_database,
    kill_recorded_groups,
    postgres_url_from_env,
    start_group,
    stop_group,
    stop_on_signals,
    with_driver,
)

log = logging.getLogger(__name__)

VENV_BIN = Path(sys.executable).parent

ADMIN_USER = "admin"
ADMIN_PASSWORD = "admin"
FINAL_STATES = ("success", "failed")
COMPONENTS = ("api-server", "scheduler", "dag-processor")


class AirflowApiError(RuntimeError):
    """The REST API refused a request; carries the status code and Airflow's detail."""

    def __init__(self, method: str, path: str, status: int, detail: str) -> None:
        super().__init__(f"{method} {path}: {status} {detail}")
        self.status = status
        self.detail = detail


@dataclass
class LocalAirflow:
    """One local Airflow installation under ``home``, its metadata in PostgreSQL.

    :param metadata_url: SQLAlchemy URL of the (PostgreSQL) metadata database.
    :param executor: ``LocalExecutor`` (embedded default) or ``CeleryExecutor``.
    :param extra_env: more environment (connections ``AIRFLOW_CONN_*``, ``INCIDENTS_*`` settings).
    """

    home: Path
    metadata_url: str
    executor: str = "LocalExecutor"
    api_port: int = 0
    parallelism: int = 4
    extra_env: dict[str, str] = field(default_factory=dict)
    broker_url: str = "redis://127.0.0.1:6379/0"
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict[str, Any])

    def __post_init__(self) -> None:
        self.home = Path(self.home).resolve()
        self.home.mkdir(parents=True, exist_ok=True)
        if not self.metadata_url or not self.metadata_url.startswith("postgresql"):
            raise ValueError(
                f"the local Airflow keeps its metadata in PostgreSQL, not {self.metadata_url!r} "
                "(incidents_dev.servers.EmbeddedPostgres starts one)"
            )
        self.metadata_url = with_driver(self.metadata_url, "psycopg2")
        self.api_port = reserve(self.api_port) or free_port()
        secrets_file = self.home / "local_secrets.json"
        if not secrets_file.exists():
            secrets_file.write_text(json.dumps({"jwt": secrets.token_hex(32), "api": secrets.token_hex(16)}))
        self._secrets = json.loads(secrets_file.read_text())
        # The simple auth manager reads this file: a fixed local login for the UI.
        (self.home / "simple_auth_manager_passwords.json.generated").write_text(
            json.dumps({ADMIN_USER: ADMIN_PASSWORD})
        )
        self._http = requests.Session()
        self._token: str | None = None

    # ------------------------------------------------------------------ environment

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def env(self) -> dict[str, str]:
        """The environment of every Airflow process of this installation."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")}
        env.update(
            {
                "PATH": f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
                "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO_ROOT / "plugins"),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__EXECUTOR": self.executor,
                "AIRFLOW__CORE__PARALLELISM": str(self.parallelism),
                "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": str(self.parallelism),
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.metadata_url,
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.api_port),
                "AIRFLOW__API__BASE_URL": self.url,
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__API__SECRET_KEY": self._secrets["api"],
                "AIRFLOW__API_AUTH__JWT_SECRET": self._secrets["jwt"],
                # new DAG files are found within 5 s; a parsed file is parsed again every 30 s
                # (Airflow's default), not every 5 s: parsing competes with the tasks for the CPU
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "30",
                "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
                "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.home / "logs"),
                "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
                "AIRFLOW__METRICS__STATSD_ON": "False",
                # the coverage DAG's REST client: the local admin (host = [api] base_url)
                "AIRFLOW_CONN_AIRFLOW_API": json.dumps(
                    {"conn_type": "http", "login": ADMIN_USER, "password": ADMIN_PASSWORD}
                ),
            }
        )
        if self.executor == "CeleryExecutor":
            env["AIRFLOW__CELERY__BROKER_URL"] = self.broker_url
            env["AIRFLOW__CELERY__RESULT_BACKEND"] = "db+" + re.sub(
                r"^postgresql\+\w+", "postgresql", self.metadata_url
            )
            env["AIRFLOW__CELERY__WORKER_CONCURRENCY"] = str(self.parallelism)
        env.update(self.extra_env)
        return env

    # ------------------------------------------------------------------ processes

    def cli(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Run ``airflow <args>`` against this installation."""
        proc = subprocess.run(
            [str(VENV_BIN / "airflow"), *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.home,
        )
        if check and proc.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
        return proc

    def migrate(self) -> None:
        """Migrate the metadata DB and create one pool per network API."""
        self.cli("db", "migrate")
        self.cli("pools", "import", str(REFERENCE_DIR / "airflow_pools.json"))

    def start(self, components: Iterable[str] = COMPONENTS) -> None:
        """Start the components in the background, each the leader of its own process group.

        ``celery-worker`` starts a Celery worker (CeleryExecutor), ``triggerer`` the triggerer;
        a component that was stopped with :meth:`kill` can be started again under its name.
        """
        logs = self.home / "process-logs"
        logs.mkdir(exist_ok=True)
        for name in components:
            old = self.processes.get(name)
            if old is not None and old.poll() is None:
                raise RuntimeError(f"airflow {name} is already running (pid {old.pid})")
            args = ["celery", "worker"] if name == "celery-worker" else [name]
            self.processes[name] = start_group(
                [str(VENV_BIN / "airflow"), *args],
                log_file=logs / f"{name}.log",
                env=self.env(),
                cwd=self.home,
            )
            log.info("started airflow %s (pid %s)", name, self.processes[name].pid)
        self._write_pids()

    def _write_pids(self) -> None:
        (self.home / "pids.json").write_text(json.dumps({k: p.pid for k, p in self.processes.items()}))

    def component_log(self, name: str, chars: int = 3000) -> str:
        path = self.home / "process-logs" / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def check_alive(self) -> None:
        """Raise with its log when a component has exited: nothing is restarted silently."""
        for name, proc in self.processes.items():
            if proc.poll() is not None:
                raise RuntimeError(
                    f"airflow {name} exited with {proc.returncode}:\n{self.component_log(name)}"
                )

    def wait_ready(self, timeout: float = 180) -> None:
        """Wait until the api-server answers and every DAG file of ``dags/`` has been parsed."""
        deadline = time.monotonic() + timeout
        while True:
            self.check_alive()
            try:
                if self._http.get(f"{self.url}/api/v2/monitor/health", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"api-server did not answer on {self.url} within {timeout}s")
            time.sleep(0.5)
        expected = dag_files()
        while True:
            self.check_alive()
            parsed = {d["relative_fileloc"] for d in self._paged("/api/v2/dags", "dags")}
            if expected <= parsed:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"DAG files not parsed within {timeout}s: {sorted(expected - parsed)}")
            time.sleep(1)

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to one component's whole process group (its task processes included)."""
        proc = self.processes.pop(name)
        stop_group(proc, f"airflow {name}", sig=sig, grace=30)
        self._write_pids()

    def stop(self, grace: float = 15) -> None:
        """Stop every component: SIGTERM to each process group, SIGKILL after ``grace`` seconds."""
        for proc in list(self.processes.values()):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for name, proc in list(self.processes.items()):
            stop_group(proc, f"airflow {name}", grace=grace)
        self.processes.clear()
        self._write_pids()
        self._http.close()

    def __enter__(self) -> LocalAirflow:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ REST API

    def _authenticate(self) -> str:
        response = self._http.post(
            f"{self.url}/auth/token", json={"username": ADMIN_USER, "password": ADMIN_PASSWORD}, timeout=30
        )
        response.raise_for_status()
        self._token = str(response.json()["access_token"])
        return self._token

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        """Call the REST API (``path`` from ``/api/v2``) as the admin user; the decoded JSON.

        An error response raises :class:`AirflowApiError` with Airflow's detail.
        """
        kwargs.setdefault("timeout", 60)
        for attempt in (1, 2):
            token = self._token or self._authenticate()
            response = self._http.request(
                method, f"{self.url}{path}", headers={"Authorization": f"Bearer {token}"}, **kwargs
            )
            if response.status_code == 401 and attempt == 1:
                self._token = None  # expired: log in again
                continue
            break
        if response.status_code >= 400:
            try:
                detail = json.dumps(response.json().get("detail"))
            except ValueError:
                detail = response.text[:2000]
            raise AirflowApiError(method, path, response.status_code, detail)
        return response.json() if response.content else None

    def _paged(self, path: str, key: str, **params: Any) -> Iterator[dict[str, Any]]:
        offset = 0
        while True:
            page = self.api("GET", path, params={**params, "limit": 100, "offset": offset})
            items = page[key]
            yield from items
            offset += len(items)
            if not items or offset >= page.get("total_entries", 0):
                return

    def dag_ids(self) -> set[str]:
        """The DAGs the dag-processor has parsed (stale ones excluded)."""
        return {d["dag_id"] for d in self._paged("/api/v2/dags", "dags")}

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        """The DAG's runs, oldest window first: ``run_id``, ``state``, ``run_type``,
        ``data_interval_start``, ``data_interval_end``, ``end_date`` (aware UTC datetimes)."""
        out = []
        for run in self._paged(f"/api/v2/dags/{dag_id}/dagRuns", "dag_runs", order_by="id"):
            out.append(
                {
                    "run_id": run["dag_run_id"],
                    "state": run["state"],
                    "run_type": run["run_type"],
                    "data_interval_start": _utc(run.get("data_interval_start")),
                    "data_interval_end": _utc(run.get("data_interval_end")),
                    "end_date": _utc(run.get("end_date")),
                }
            )
        epoch = datetime.min.replace(tzinfo=UTC)
        return sorted(out, key=lambda r: (r["data_interval_start"] or epoch, r["run_id"]))

    def task_states(self, dag_id: str) -> list[dict[str, Any]]:
        """Every task instance of the DAG: ``run_id``, ``task_id``, ``state``, ``try_number``."""
        return [
            {
                "run_id": t["dag_run_id"],
                "task_id": t["task_id"],
                "state": t["state"],
                "try_number": t["try_number"],
            }
            for t in self._paged(f"/api/v2/dags/{dag_id}/dagRuns/~/taskInstances", "task_instances")
        ]

    def unpause(self, *dag_ids: str) -> None:
        for dag_id in dag_ids:
            self.api("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": False})

    def pause(self, *dag_ids: str) -> None:
        for dag_id in dag_ids:
            self.api("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": True})

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        """Trigger a manual run now; its run id."""
        run = self.api(
            "POST", f"/api/v2/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf or {}}
        )
        return str(run["dag_run_id"])

    def backfills(self, dag_id: str) -> list[dict[str, Any]]:
        """The DAG's backfills (``id``, ``from_date``, ``to_date``, ``completed_at``, ...)."""
        return list(self._paged("/api/v2/backfills", "backfills", dag_id=dag_id))

    def backfill(
        self,
        dag_id: str,
        start: str,
        end: str,
        *,
        reprocess: str = "none",
        max_active_runs: int = 4,
        wait: float = 300,
        missing_ok: bool = False,
    ) -> int | None:
        """Create a backfill of the runs whose logical date lies in ``[start, end]``; the running
        scheduler executes it. Returns the backfill's id (None when ``missing_ok`` and every run
        of the range exists already).

        Airflow allows one unfinished backfill per DAG and marks a backfill complete a moment
        after its last run finished: a new backfill of the same DAG first waits for the previous
        one to complete (up to ``wait`` s, the components watched meanwhile).
        """
        body = {
            "dag_id": dag_id,
            "from_date": start,
            "to_date": end,
            "reprocess_behavior": reprocess,
            "max_active_runs": max_active_runs,
        }
        deadline = time.monotonic() + wait
        while True:
            while any(b["completed_at"] is None for b in self.backfills(dag_id)):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{dag_id}: the previous backfill did not complete within {wait}s")
                self.check_alive()
                time.sleep(1)
            try:
                created = self.api("POST", "/api/v2/backfills", json=body)
            except AirflowApiError as exc:
                if exc.status == 409 and time.monotonic() < deadline:
                    continue  # another backfill of the DAG was created meanwhile: wait for it too
                if missing_ok and exc.status == 422 and "No runs to create" in exc.detail:
                    log.info("%s: every run of [%s, %s] exists already", dag_id, start, end)
                    return None
                raise
            log.info("%s: backfill %s of [%s, %s] created", dag_id, created["id"], start, end)
            return int(created["id"])

    def wait_runs(
        self,
        dag_id: str,
        *,
        count: int,
        run_type: str | None = None,
        finished_after: datetime | None = None,
        timeout: float = 600,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> list[dict[str, Any]]:
        """Wait until ``count`` runs (of ``run_type``) reached a final state after ``finished_after``.

        A rerun (a backfill with ``reprocess="completed"``) clears and re-runs the same run ids,
        so runs are told apart by when they finished, not by their ids.
        """
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            self.check_alive()
            runs = [r for r in self.runs(dag_id) if run_type is None or r["run_type"] == run_type]
            done = [
                r
                for r in runs
                if r["state"] in FINAL_STATES
                and (finished_after is None or (r["end_date"] is not None and r["end_date"] > finished_after))
            ]
            if progress and len(done) != last:
                progress(dag_id, len(done), count)
                last = len(done)
            if len(done) >= count:
                return done
            time.sleep(1)
        raise TimeoutError(f"{dag_id}: {count} runs did not finish within {timeout}s: {self.runs(dag_id)}")


def dag_files() -> set[str]:
    """The DAG files of ``dags/`` relative to it: those Airflow's safe mode parses (their text
    names both "airflow" and "dag")."""
    out = set()
    for path in (REPO_ROOT / "dags").rglob("*.py"):
        text = path.read_text(errors="replace").lower()
        if "airflow" in text and "dag" in text:
            out.add(str(path.relative_to(REPO_ROOT / "dags")))
    return out


def _utc(value: str | datetime | None) -> datetime | None:
    """An API timestamp as an aware UTC datetime."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def stop_leftovers(home: Path) -> None:
    """Kill process groups recorded in ``home/pids.json`` by a run that was itself killed."""
    kill_recorded_groups(Path(home) / "pids.json")


@contextmanager
def postgres_server(data_dir: Path) -> Iterator[str]:
    """The PostgreSQL server of a local stack: the configured one (``INCIDENTS_PG_URL``), or an
    embedded server on ``data_dir``, started here and stopped on leaving. Yields its admin URL."""
    configured = postgres_url_from_env()
    if configured:
        log.info("PostgreSQL: the configured server (INCIDENTS_PG_URL)")
        yield configured
        return
    with EmbeddedPostgres(data_dir) as server:
        yield server.url()


# ---------------------------------------------------------------------- CLI: make airflow


def demo_settings(home: Path) -> dict[str, str]:
    """The demo's settings, shared by ``make airflow`` (which opens the demo's installation)."""
    return {
        "INCIDENTS_COLLECT_CRON": "0 0 * * *",
        "INCIDENTS_LANDING_URI": f"file://{home / 'landing'}",
        "INCIDENTS_REPORTS_URI": f"file://{home / 'reports'}",
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=8080, help="api-server port on 127.0.0.1")
    parser.add_argument("--home", type=Path, default=None, help="the demo's folder (default .local/demo)")
    parser.add_argument("--no-sandbox", action="store_true", help="do not start the local API sandbox")


def run(args: argparse.Namespace) -> int:
    """Start a local Airflow UI with the project's DAGs until Ctrl-C, SIGTERM or SIGHUP."""
    from incidents.db import migrate
    from incidents.db.engine import make_engine
    from incidents.reference.seed import load_reference
    from incidents_dev.runtime import LocalServices

    # the demo's installation: after `make demo` the UI shows the demo's runs and data (its
    # PostgreSQL folder, its case database and Airflow metadata, its landing area and reports)
    demo_home = (args.home or local_home() / "demo").resolve()
    home = demo_home / "airflow"
    reserve(args.port)  # the api-server binds it last: no service started before may take it
    stop_leftovers(home)
    with stop_on_signals(), ExitStack() as stack:
        try:
            server_url = stack.enter_context(postgres_server(demo_home / "postgres"))
            case_db_url = create_database(server_url, "incidents_demo_cases")
            engine = make_engine(case_db_url)
            migrate.upgrade(engine)
            load_reference(engine)
            engine.dispose()
            services = stack.enter_context(
                LocalServices(sandbox=not args.no_sandbox, home=demo_home, case_db_url=case_db_url)
            )
            airflow = LocalAirflow(
                home=home,
                metadata_url=create_database(server_url, "incidents_demo_airflow"),
                api_port=args.port,
                extra_env={**services.env(), **demo_settings(demo_home)},
            )
            stack.callback(airflow.stop)
            airflow.migrate()
            airflow.start()
            airflow.wait_ready()
            sys.stdout.write(
                f"\nAirflow UI: {airflow.url}\nlogin: {ADMIN_USER} / {ADMIN_PASSWORD}\n"
                f"AIRFLOW_HOME: {home}\nCase database: {case_db_url}\n"
                "Press Ctrl-C to stop.\n"
            )
            sys.stdout.flush()
            while True:
                airflow.check_alive()
                time.sleep(2)
        except KeyboardInterrupt as exc:
            log.info("stopping (%s)", exc or "SIGINT")
            return 0
