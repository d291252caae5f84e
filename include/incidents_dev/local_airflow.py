"""A local Airflow 3 for the demo, ``make airflow`` and the integration tests.

Starts the api-server, scheduler, dag-processor (and, for the distributed path, a Celery
worker) as separate processes in their own sessions, with the project's DAGs and plugins,
and stops them by PID — process group and all — so nothing is left behind. Airflow is run
as an external program (``.venv/bin/airflow``); this module does not import Airflow.
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
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, text

from incidents.config import REFERENCE_DIR, REPO_ROOT, local_home
from incidents_dev.ports import free_port

log = logging.getLogger(__name__)

VENV_BIN = Path(sys.executable).parent

SQLITE_CONNECT_ARGS = {"timeout": 60}
"""Airflow's SQLite metadata: wait up to a minute for a write lock (the scheduler, the dag-processor,
the api-server and CLI commands all write) instead of failing after pysqlite's 5 s default."""
ADMIN_USER = "admin"


@dataclass
class LocalAirflow:
    """One local Airflow installation under ``home``.

    :param metadata_url: SQLAlchemy URL of the metadata DB (SQLite file under ``home`` by default).
    :param executor: ``LocalExecutor`` (embedded default) or ``CeleryExecutor``.
    :param extra_env: more environment (connections ``AIRFLOW_CONN_*``, ``INCIDENTS_*`` settings).
    """

    home: Path
    metadata_url: str | None = None
    executor: str = "LocalExecutor"
    api_port: int = 0
    parallelism: int = 4
    extra_env: dict[str, str] = field(default_factory=dict)
    broker_url: str = "redis://127.0.0.1:6379/0"
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    max_restarts: int = 3
    _restarts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.home = Path(self.home).resolve()
        self.home.mkdir(parents=True, exist_ok=True)
        self.metadata_url = self.metadata_url or f"sqlite:///{self.home / 'airflow.db'}"
        self.api_port = self.api_port or free_port()
        secrets_file = self.home / "local_secrets.json"
        if not secrets_file.exists():
            secrets_file.write_text(json.dumps({"jwt": secrets.token_hex(32), "api": secrets.token_hex(16)}))
        self._secrets = json.loads(secrets_file.read_text())
        # The simple auth manager reads this file: a fixed local login for the UI.
        (self.home / "simple_auth_manager_passwords.json.generated").write_text(
            json.dumps({ADMIN_USER: "admin"})
        )

    # ------------------------------------------------------------------ environment

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def env(self) -> dict[str, str]:
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
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "5",
                "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
                "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.home / "logs"),
                "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
                "AIRFLOW__METRICS__STATSD_ON": "False",
            }
        )
        if self.metadata_url.startswith("sqlite"):
            env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS"] = (
                "incidents_dev.local_airflow.SQLITE_CONNECT_ARGS"
            )
        if self.executor == "CeleryExecutor":
            env["AIRFLOW__CELERY__BROKER_URL"] = self.broker_url
            env["AIRFLOW__CELERY__RESULT_BACKEND"] = "db+" + re.sub(
                r"^postgresql\+\w+", "postgresql", self.metadata_url
            )
            env["AIRFLOW__CELERY__WORKER_CONCURRENCY"] = str(self.parallelism)
        env.update(self.extra_env)
        return env

    # ------------------------------------------------------------------ commands

    def cli(
        self, *args: str, check: bool = True, timeout: float = 300, attempts: int = 5
    ) -> subprocess.CompletedProcess:
        """Run ``airflow <args>`` against this installation.

        On SQLite the scheduler holds write locks for moments at a time; a command that lost that
        race ("database is locked") rolled back and is simply run again.
        """
        for attempt in range(1, attempts + 1):
            proc = subprocess.run(
                [str(VENV_BIN / "airflow"), *args],
                env=self.env(),
                capture_output=True,
                text=True,
                timeout=timeout,
                cwd=self.home,
            )
            if proc.returncode == 0 or "database is locked" not in proc.stderr + proc.stdout:
                break
            log.info("airflow %s: database is locked (attempt %d/%d), retrying", args[0], attempt, attempts)
            time.sleep(2 * attempt)
        if check and proc.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
        return proc

    def migrate(self) -> None:
        """Migrate the metadata DB and create one pool per network API."""
        self.cli("db", "migrate")
        self.cli("pools", "import", str(REFERENCE_DIR / "airflow_pools.json"))

    def start(self, components: Iterable[str] = ("api-server", "scheduler", "dag-processor")) -> None:
        """Start the components in the background, each in its own process group.

        ``celery-worker`` starts a Celery worker (CeleryExecutor); a component that was killed
        can be started again under the same name.
        """
        logs = self.home / "process-logs"
        logs.mkdir(exist_ok=True)
        for name in components:
            old = self.processes.get(name)
            if old is not None and old.poll() is None:
                raise RuntimeError(f"airflow {name} is already running (pid {old.pid})")
            args = ["celery", "worker"] if name == "celery-worker" else [name]
            out = (logs / f"{name}.log").open("ab")
            self.processes[name] = subprocess.Popen(
                [str(VENV_BIN / "airflow"), *args],
                env=self.env(),
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.home,
                start_new_session=True,
            )
            log.info("started airflow %s (pid %s)", name, self.processes[name].pid)
        self._write_pids()

    def _write_pids(self) -> None:
        (self.home / "pids.json").write_text(json.dumps({k: p.pid for k, p in self.processes.items()}))

    def wait_ready(self, timeout: float = 180) -> None:
        """Wait until the api-server answers and the DAGs are parsed into the metadata DB."""
        import requests

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                if requests.get(f"{self.url}/api/v2/monitor/health", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(1)
        else:
            raise TimeoutError(f"api-server did not answer on {self.url} within {timeout}s")
        while time.monotonic() < deadline:
            self._check_alive()
            if len(self.dag_ids()) >= 8:
                return
            time.sleep(1)
        raise TimeoutError(f"DAGs were not parsed within {timeout}s (found {sorted(self.dag_ids())})")

    def _check_alive(self) -> None:
        """Restart a crashed scheduler or dag-processor (as a service manager would), at most
        ``max_restarts`` times each; any other dead component is an error."""
        for name, proc in list(self.processes.items()):
            if proc.poll() is None:
                continue
            tail = (self.home / "process-logs" / f"{name}.log").read_text(errors="replace")[-3000:]
            restarts = self._restarts.get(name, 0)
            if name in ("scheduler", "dag-processor", "triggerer") and restarts < self.max_restarts:
                self._restarts[name] = restarts + 1
                log.warning(
                    "airflow %s exited with %s; restarting it:\n%s", name, proc.returncode, tail[-1500:]
                )
                del self.processes[name]
                self.start([name])
                continue
            raise RuntimeError(f"airflow {name} exited with {proc.returncode}:\n{tail}")

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to one component's whole process group (its task processes included)."""
        proc = self.processes.pop(name)
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        proc.wait(30)
        self._write_pids()

    def stop(self, grace: float = 15) -> None:
        """Stop every component: SIGTERM to its group, SIGKILL after ``grace`` seconds."""
        for proc in list(self.processes.values()):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + grace
        for proc in self.processes.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for name, proc in self.processes.items():
            # the group may outlive its leader (task processes): kill it whatever the leader did
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                log.error("airflow %s (pid %s) did not stop", name, proc.pid)
        self.processes.clear()
        self._write_pids()

    def __enter__(self) -> LocalAirflow:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------ metadata queries

    def _metadata(self):
        if not hasattr(self, "_engine"):
            self._engine = create_engine(self.metadata_url)
        return self._engine

    def dag_ids(self) -> set[str]:
        try:
            with self._metadata().connect() as conn:
                return {r[0] for r in conn.execute(text("SELECT dag_id FROM dag WHERE is_stale = false"))}
        except Exception:  # table not there yet
            return set()

    def runs(self, dag_id: str) -> list[dict]:
        """The DAG's runs with their state, type, data interval and end time (UTC-aware)."""
        query = text(
            "SELECT run_id, state, run_type, data_interval_start, data_interval_end, end_date "
            "FROM dag_run WHERE dag_id = :d ORDER BY data_interval_start"
        )
        with self._metadata().connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(query, {"d": dag_id})]
        for row in rows:
            for key in ("data_interval_start", "data_interval_end", "end_date"):
                row[key] = _utc(row[key])
        return rows

    def task_states(self, dag_id: str) -> list[dict]:
        query = text("SELECT run_id, task_id, state, try_number FROM task_instance WHERE dag_id = :d")
        with self._metadata().connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query, {"d": dag_id})]

    def unpause(self, *dag_ids: str) -> None:
        for dag_id in dag_ids:
            self.cli("dags", "unpause", dag_id)

    def pause(self, *dag_ids: str) -> None:
        for dag_id in dag_ids:
            self.cli("dags", "pause", dag_id)

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
    ) -> None:
        """Create a backfill; the running scheduler executes it.

        Airflow allows one running backfill per DAG, and marks a backfill complete a moment after
        its last run finished: a new backfill of the same DAG waits for that (up to ``wait`` s).

        On SQLite metadata the scheduler and the dag-processor are stopped while the backfill is
        created (once no task is running) and started again: a ``backfill create`` that loses a
        write lock makes Airflow delete the runs it had already created, under the scheduler's
        feet, and may leave its backfill row behind. PostgreSQL has no such race.
        """
        args = (
            "backfill",
            "create",
            "--dag-id",
            dag_id,
            "--from-date",
            start,
            "--to-date",
            end,
            "--reprocess-behavior",
            reprocess,
            "--max-active-runs",
            str(max_active_runs),
        )
        deadline = time.monotonic() + wait
        while True:
            # the scheduler marks the previous backfill complete: it has to be alive for that
            while self._incomplete_backfills(dag_id):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{dag_id}: the previous backfill did not complete within {wait}s")
                self._check_alive()
                time.sleep(2)
            stopped = self._stop_writers_when_idle(deadline) if self.metadata_url.startswith("sqlite") else []
            try:
                proc = self.cli(*args, check=False)
            finally:
                if stopped:
                    self.start(stopped)
            if proc.returncode == 0:
                return
            if missing_ok and "No runs to create" in proc.stderr:
                log.info("%s: every run of [%s, %s] exists already", dag_id, start, end)
                return
            if "AlreadyRunningBackfill" in proc.stderr and time.monotonic() < deadline:
                # an attempt that lost a lock left its backfill row behind: the scheduler marks
                # such an orphan complete after two minutes
                log.info("%s: waiting for an unfinished backfill before creating this one", dag_id)
                continue
            raise RuntimeError(f"airflow backfill create failed ({proc.returncode}):\n{proc.stderr[-4000:]}")

    def _incomplete_backfills(self, dag_id: str) -> int:
        query = text("SELECT count(*) FROM backfill WHERE dag_id = :d AND completed_at IS NULL")
        with self._metadata().connect() as conn:
            return int(conn.execute(query, {"d": dag_id}).scalar_one())

    def _stop_writers_when_idle(self, deadline: float) -> list[str]:
        """Stop the scheduler and the dag-processor (the metadata's busy writers) once no task runs
        (the executor's tasks die with the scheduler); the names of those stopped."""
        running = [
            n
            for n in ("scheduler", "dag-processor")
            if n in self.processes and self.processes[n].poll() is None
        ]
        if not running:
            return []
        busy = text("SELECT count(*) FROM task_instance WHERE state IN ('running', 'queued', 'restarting')")
        while True:
            with self._metadata().connect() as conn:
                if not conn.execute(busy).scalar_one():
                    break
            if time.monotonic() > deadline:
                raise TimeoutError("tasks kept running: the scheduler could not be stopped for a backfill")
            self._check_alive()
            time.sleep(1)
        for name in running:
            _stop_group(self.processes.pop(name), name, grace=20)
        self._write_pids()
        return running

    def wait_runs(
        self,
        dag_id: str,
        *,
        count: int,
        run_type: str | None = None,
        finished_after: datetime | None = None,
        timeout: float = 600,
        progress=None,
    ) -> list[dict]:
        """Wait until ``count`` runs (of ``run_type``) reached a final state after ``finished_after``.

        A rerun (``backfill create --reprocess-behavior completed``) clears and re-runs the same
        run ids, so runs are told apart by when they finished, not by their ids.
        """
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            self._check_alive()
            runs = [r for r in self.runs(dag_id) if run_type is None or r["run_type"] == run_type]
            done = [
                r
                for r in runs
                if r["state"] in ("success", "failed")
                and (finished_after is None or (r["end_date"] is not None and r["end_date"] > finished_after))
            ]
            if progress and len(done) != last:
                progress(dag_id, len(done), count)
                last = len(done)
            if len(done) >= count:
                return done
            time.sleep(2)
        raise TimeoutError(f"{dag_id}: {count} runs did not finish within {timeout}s: {self.runs(dag_id)}")


def _stop_group(proc: subprocess.Popen, name: str, grace: float) -> None:
    """SIGTERM to the process group, SIGKILL to whatever is left after ``grace`` seconds."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        log.warning("airflow %s (pid %s) outlived SIGTERM for %ss; killing it", name, proc.pid, grace)
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the group may outlive its leader
    except ProcessLookupError:
        pass
    proc.wait(10)


def _utc(value) -> datetime | None:
    """A metadata timestamp (string on SQLite, naive or aware datetime) as an aware UTC datetime."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def stop_leftovers(home: Path) -> None:
    """Kill process groups recorded in ``home/pids.json`` (after a crash of the parent)."""
    pid_file = Path(home) / "pids.json"
    if not pid_file.exists():
        return
    for pid in json.loads(pid_file.read_text()).values():
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    pid_file.write_text("{}")


# ---------------------------------------------------------------------- CLI: make airflow


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=8080, help="api-server port on 127.0.0.1")
    parser.add_argument("--home", type=Path, default=None, help="AIRFLOW_HOME (default .local/airflow)")
    parser.add_argument("--no-sandbox", action="store_true", help="do not start the local API sandbox")


def run(args: argparse.Namespace) -> int:
    """Start a local Airflow UI with the project's DAGs until Ctrl-C."""
    from incidents_dev.runtime import LocalServices

    home = args.home or local_home() / "airflow"
    stop_leftovers(home)
    with LocalServices(sandbox=not args.no_sandbox) as services:
        airflow = LocalAirflow(home=home, api_port=args.port, extra_env=services.env())
        airflow.migrate()
        airflow.start()
        try:
            airflow.wait_ready()
            sys.stdout.write(
                f"\nAirflow UI: {airflow.url}\nlogin: {ADMIN_USER} / admin\n"
                f"AIRFLOW_HOME: {home}\nPress Ctrl-C to stop.\n"
            )
            sys.stdout.flush()
            while True:
                airflow._check_alive()
                time.sleep(2)
        except KeyboardInterrupt:
            return 0
        finally:
            airflow.stop()
