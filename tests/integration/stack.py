"""A real local stack for integration tests: sandbox APIs, SMTP server, case DB and Airflow.

Airflow's metadata and the case database are two fresh databases on the PostgreSQL server the
test session uses (``pg_admin_url``: the machine's server, or an embedded one where none runs),
dropped when the stack stops.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine

from incidents.db import migrate
from incidents.db.engine import make_engine
from incidents.reference.seed import load_reference
from incidents_dev.local_airflow import LocalAirflow
from incidents_dev.runtime import LocalServices
from incidents_dev.servers import create_database, drop_database, unique_name


@dataclass
class Stack:
    """Everything a scheduler-driven test needs; stop() leaves nothing running and drops its
    databases."""

    home: Path
    pg_url: str
    """Admin URL of the PostgreSQL server that holds the stack's two databases."""
    executor: str = "LocalExecutor"
    collect_cron: str = "0 0 * * *"
    env_overrides: dict[str, str] = field(default_factory=dict)
    components: tuple[str, ...] = ("api-server", "scheduler", "dag-processor")
    rate_per_source_per_day: float | None = None
    broker_url: str = "redis://127.0.0.1:6379/0"
    client_extra: dict = field(
        default_factory=lambda: {
            "backoff_base": 0.2,
            "backoff_cap": 3.0,
            "max_retries": 12,
            "read_timeout": 0.5,
        }
    )
    """Quick but patient retries for the sandbox's injected faults and per-second rate limits
    (production waits longer between tries)."""
    databases: list[str] = field(default_factory=list)

    def start(self) -> Stack:
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> Stack:
        metadata_db, cases_db = unique_name("incidents_meta"), unique_name("incidents_cases")
        self.databases += [metadata_db, cases_db]
        self.metadata_url = create_database(self.pg_url, metadata_db)
        self.case_db_url = create_database(self.pg_url, cases_db)
        self.services = LocalServices(
            sandbox=True,
            home=self.home,
            case_db_url=self.case_db_url,
            rate_per_source_per_day=self.rate_per_source_per_day,
            client_extra=self.client_extra,
        ).start()
        env = self.services.env()
        env.update(
            {
                "INCIDENTS_COLLECT_CRON": self.collect_cron,
                "INCIDENTS_LANDING_URI": f"file://{self.home / 'landing'}",
                "INCIDENTS_REPORTS_URI": f"file://{self.home / 'reports'}",
            }
        )
        env.update(self.env_overrides)
        self.engine: Engine = make_engine(self.case_db_url)
        migrate.upgrade(self.engine)
        load_reference(self.engine)
        self.airflow = LocalAirflow(
            home=self.home / "airflow",
            metadata_url=self.metadata_url,
            executor=self.executor,
            extra_env=env,
            broker_url=self.broker_url,
        )
        self.airflow.migrate()
        self.airflow.start(self.components)
        self.airflow.wait_ready()
        return self

    @property
    def sandbox(self):
        return self.services.server

    def stop(self) -> None:
        try:
            if hasattr(self, "airflow"):
                self.airflow.stop()
        finally:
            if hasattr(self, "services"):
                self.services.stop()
            if hasattr(self, "engine"):
                self.engine.dispose()
            for name in self.databases:
                drop_database(self.pg_url, name)
            self.databases.clear()

    def failed_task_logs(self, dag_id: str) -> str:
        """The logs of the DAG's failed tasks (for assertion messages)."""
        out = []
        for path in sorted((self.home / "airflow" / "logs").rglob("*.log")):
            if f"dag_id={dag_id}" in str(path):
                text = path.read_text(errors="replace")
                if '"level":"error"' in text or "ERROR" in text or "Traceback" in text:
                    out.append(f"--- {path}\n{text[-4000:]}")
        return "\n".join(out)
