"""``make demo``: the whole pipeline end to end on embedded defaults, under the real scheduler.

Starts the API sandbox, an SMTP server, PostgreSQL (embedded, unless ``INCIDENTS_PG_URL`` names a
server) for Airflow's metadata and the case database, and a local Airflow (LocalExecutor);
backfills two weeks of collection (daily windows) and the month they belong to through the
scheduler, lets a simulated operator answer and resolve part of the cases through the ``case``
command (:mod:`incidents_dev.operator_sim`), runs the escalation DAG, prints a summary read from
the case database and the mailbox, and stops everything it started, also when stopped by Ctrl-C,
SIGTERM or SIGHUP.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, func, select

from incidents import NETWORKS
from incidents.config import local_home

if TYPE_CHECKING:
    from incidents_dev.local_airflow import LocalAirflow
    from incidents_dev.runtime import LocalServices

log = logging.getLogger(__name__)

COLLECT_DAGS = [f"collect_{n}" for n in NETWORKS]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--days", type=int, default=14, help="days of collection to backfill (default 14)")
    parser.add_argument("--home", type=Path, default=None, help="working folder (default .local/demo)")
    parser.add_argument("--keep", action="store_true", help="keep the previous demo's data")
    parser.add_argument("--seed", type=int, default=0, help="sandbox seed")


def demo_period(today: date, days: int) -> tuple[datetime, datetime, date]:
    """The last ``days`` days of the previous calendar month, and that month."""
    month_start = today.replace(day=1)
    prev_month = (month_start - timedelta(days=1)).replace(day=1)
    end = datetime(month_start.year, month_start.month, 1, tzinfo=UTC)
    return end - timedelta(days=days), end, prev_month


def _say(message: str) -> None:
    sys.stdout.write(message + "\n")
    sys.stdout.flush()


def _progress(dag_id: str, done: int, total: int) -> None:
    _say(f"  {dag_id}: {done}/{total} runs finished")


def run(args: argparse.Namespace) -> int:
    from incidents_dev.local_airflow import stop_leftovers
    from incidents_dev.servers import stop_leftover_postgres, stop_on_signals

    home = (args.home or local_home() / "demo").resolve()
    stop_leftovers(home / "airflow")
    stop_leftover_postgres(home / "postgres")
    with stop_on_signals():  # SIGTERM and SIGHUP stop the demo as Ctrl-C does
        try:
            return _run(args, home)
        except KeyboardInterrupt as exc:
            _say(f"Demo interrupted ({exc or 'SIGINT'}); every process it started has been stopped.")
            return 130


def _run(args: argparse.Namespace, home: Path) -> int:
    from incidents.db import migrate
    from incidents.db.engine import make_engine
    from incidents.reference.seed import load_reference
    from incidents_dev.local_airflow import ADMIN_USER, LocalAirflow, demo_settings, postgres_server
    from incidents_dev.runtime import LocalServices
    from incidents_dev.servers import create_database

    if home.exists() and not args.keep:
        shutil.rmtree(home)
    home.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    start, end, month = demo_period(datetime.now(UTC).date(), args.days)
    _say(f"Demo: collection {start:%Y-%m-%d} – {end:%Y-%m-%d} (daily windows), statistics for {month:%Y-%m}")

    # PostgreSQL for Airflow's metadata and the case database: the configured server
    # (INCIDENTS_PG_URL) or an embedded one under the demo's folder
    with (
        postgres_server(home / "postgres") as server_url,
        LocalServices(
            sandbox=True,
            seed=args.seed,
            home=home,
            case_db_url=create_database(server_url, "incidents_demo_cases", replace=not args.keep),
        ) as services,
    ):
        env = {**services.env(), **demo_settings(home)}
        case_db_url = services.case_db_url
        assert case_db_url is not None  # created above
        engine = make_engine(case_db_url)
        migrate.upgrade(engine)
        load_reference(engine)
        _say(f"Case database migrated and seeded: {case_db_url}")

        airflow = LocalAirflow(
            home=home / "airflow",
            metadata_url=create_database(server_url, "incidents_demo_airflow", replace=not args.keep),
            extra_env=env,
            # collection tasks mostly wait on the APIs' rate limits: more slots than cores
            parallelism=8,
        )
        try:
            airflow.migrate()
            airflow.start()
            airflow.wait_ready()
            _say(f"Airflow is up: {airflow.url} (login {ADMIN_USER} / admin)")
            airflow.unpause(*COLLECT_DAGS, "process_posts")
            for dag_id in COLLECT_DAGS:
                # runs whose logical date (the window start) lies in [from, to]
                airflow.backfill(dag_id, start.isoformat(), (end - timedelta(seconds=1)).isoformat())
            _say(f"Backfilling {args.days} days × {len(COLLECT_DAGS)} networks …")
            for dag_id in COLLECT_DAGS:
                airflow.wait_runs(
                    dag_id, count=args.days, run_type="backfill", progress=_progress, timeout=1200
                )
            _say("Waiting for processing and routing …")
            _wait_quiet(airflow, "process_posts")
            from incidents_dev.operator_sim import simulate

            operator = simulate(case_db_url, seed=args.seed)
            _say(
                f"Simulated operator (case command): {operator.answered} of {operator.cases} cases answered, "
                f"{operator.resolved} resolved, {operator.rejected} rejected, {operator.reopened} historical "
                "hazard reopened as live"
            )
            stats_started = datetime.now(UTC)
            month_start = f"{month.isoformat()}T00:00:00+03:00"  # the month's logical date, Europe/Kirov
            # backfill while paused, then unpause: the month is the latest complete one, whose run
            # the scheduler creates on unpausing, and a backfill creating it at the same moment
            # makes the scheduler die on the unique key (logical date) it loses
            airflow.backfill("monthly_stats", month_start, month_start, missing_ok=True)
            airflow.unpause("monthly_stats", "escalate_cases")
            airflow.wait_runs(
                "monthly_stats", count=1, finished_after=stats_started, progress=_progress, timeout=600
            )
            triggered = datetime.now(UTC)
            airflow.trigger("escalate_cases")
            airflow.wait_runs(
                "escalate_cases", count=1, run_type="manual", finished_after=triggered, timeout=600
            )
            _say(summary(engine, services, airflow, home, month))
        finally:
            airflow.stop()
            engine.dispose()
    _say(f"Done in {time.monotonic() - started:.0f} s; every process the demo started has been stopped.")
    return 0


def _wait_quiet(airflow: LocalAirflow, dag_id: str, timeout: float = 900) -> None:
    """Wait until the asset-triggered DAG has no queued or running runs left."""
    deadline = time.monotonic() + timeout
    quiet_since = None
    while time.monotonic() < deadline:
        runs = airflow.runs(dag_id)
        active = [r for r in runs if r["state"] in ("queued", "running")]
        if not active and runs:
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since > 10:
                return
        else:
            quiet_since = None
        time.sleep(2)
    raise TimeoutError(f"{dag_id} still busy after {timeout}s")


def summary(engine: Engine, services: LocalServices, airflow: LocalAirflow, home: Path, month: date) -> str:
    """The demo's closing summary, read from the case database and the mailbox."""
    from incidents.db.models import Case, CaseEvent, MonthlyReport, Municipality, Post, Quarantine

    lines = ["", "=" * 72, "Summary", "=" * 72]
    with engine.connect() as conn:
        per_network = dict(conn.execute(select(Post.network, func.count()).group_by(Post.network)).all())
        lines.append("Posts per network: " + ", ".join(f"{n} {per_network.get(n, 0)}" for n in NETWORKS))
        quarantined = conn.execute(select(Quarantine.stage, func.count()).group_by(Quarantine.stage)).all()
        lines.append(
            "Quarantined: " + (", ".join(f"{stage} {count}" for stage, count in quarantined) or "none")
        )
        incidents = conn.execute(
            select(Post.category, func.count()).where(Post.is_incident.is_(True)).group_by(Post.category)
        ).all()
        lines.append(
            "Incidents by category: "
            + ", ".join(f"{c} {n}" for c, n in sorted(incidents, key=lambda x: -x[1]))
        )
        cases = conn.execute(
            select(Municipality.short_name, func.count())
            .join(Case, Case.municipality_code == Municipality.code)
            .group_by(Municipality.short_name)
            .order_by(func.count().desc())
        ).all()
        total_cases = conn.execute(select(func.count()).select_from(Case)).scalar_one()
        historical = conn.execute(
            select(func.count()).select_from(Case).where(Case.historical.is_(True))
        ).scalar_one()
        lines.append(
            f"Cases: {total_cases} ({historical} historical: from backfilled windows, never notified "
            f"or escalated; {total_cases - historical} live); per municipality (top 10): "
            + ", ".join(f"{m} {n}" for m, n in cases[:10])
        )
        special = conn.execute(
            select(func.count()).select_from(Case).where(Case.special_control.is_(True))
        ).scalar_one()
        escalated = conn.execute(
            select(func.count(func.distinct(CaseEvent.case_id))).where(CaseEvent.kind == "escalated")
        ).scalar_one()
        live_special = conn.execute(
            select(func.count())
            .select_from(Case)
            .where(Case.special_control.is_(True), Case.historical.is_(False))
        ).scalar_one()
        lines.append(
            f"Hazards under special control: {special} ({live_special} live); cases escalated: {escalated}"
        )
        report = conn.execute(select(MonthlyReport.html_uri).where(MonthlyReport.month == month)).first()
    mails = services.smtp.messages()
    lines.append(f"E-mails received by the local SMTP server: {len(mails)} (in {services.smtp.maildir})")
    if report:
        lines.append(f"Monthly report {month:%Y-%m}: {report[0]}")
    lines.append(f"Airflow UI while it ran: {airflow.url} (login admin / admin); AIRFLOW_HOME {airflow.home}")
    lines.append(f"Case database: {engine.url.render_as_string(hide_password=True)}")
    return "\n".join(lines)
