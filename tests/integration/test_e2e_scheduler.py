"""The whole pipeline under the real scheduler (LocalExecutor, PostgreSQL: the embedded defaults).

Collection is backfilled for a short period of history (ended a week ago) and for a live day; the
collection Assets trigger processing and routing; the history's cases are registered as historical
and stay silent, while the escalation DAG escalates every live hazard once and e-mails it through
the local SMTP server; a 12-month backfill of the
monthly statistics writes 12 reports, and rerunning a month replaces it. Everything is checked
against the sandbox's ground truth.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from incidents import NETWORKS
from incidents.db.models import (
    Batch,
    Case,
    CaseEvent,
    CasePost,
    MonthlyReport,
    MonthlyStat,
    Notification,
    Post,
)
from incidents_dev.sandbox.generator import ground_truth

from .stack import Stack

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

COLLECT_DAGS = [f"collect_{n}" for n in NETWORKS]
RATE = 4.0
DAYS = 2


def _period() -> tuple[datetime, datetime]:
    """Two days ending a week ago (clear of the window the scheduler runs when a DAG is unpaused)."""
    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=7)
    return end - timedelta(days=DAYS), end


LIVE_HAZARDS = 2
"""Hazards the live day holds in the sandbox's ground truth (one the classifier misses leaves another)."""
MARGIN_HOURS = 12


@dataclass(frozen=True)
class LiveDay:
    """A daily window after the history whose cases are live."""

    start: datetime
    end: datetime
    horizon_hours: float
    """The stack's ``INCIDENTS_LIVE_HORIZON_HOURS``: the day's end lies ``MARGIN_HOURS`` inside it,
    the history's end (a week ago) days beyond it."""


@cache
def _live_day() -> LiveDay:
    """The latest complete day from two days back (the scheduler runs yesterday's window itself when
    the DAGs are unpaused) whose sandbox ground truth holds ``LIVE_HAZARDS`` hazards, so the test does
    not depend on today's date."""
    now = datetime.now(UTC)
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    for back in range(1, 6):
        end = today - timedelta(days=back)
        start = end - timedelta(days=1)
        truth = ground_truth(start, end, now=now, rate_per_source_per_day=RATE)
        if sum(1 for t in truth if t["hazard"]) >= LIVE_HAZARDS:
            break
    else:
        raise AssertionError(f"no day of the last five holds {LIVE_HAZARDS} hazards in the sandbox")
    horizon = (now - end).total_seconds() / 3600 + MARGIN_HOURS
    return LiveDay(start, end, round(horizon, 2))


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, pg_admin_url: str):
    stack = Stack(
        home=tmp_path_factory.mktemp("e2e_stack"), pg_url=pg_admin_url, rate_per_source_per_day=RATE
    )
    try:
        stack.env_overrides["INCIDENTS_LIVE_HORIZON_HOURS"] = str(_live_day().horizon_hours)
        stack.start()
        yield stack
    finally:
        stack.stop()


def _wait_quiet(stack: Stack, dag_id: str, timeout: float = 600) -> None:
    """Wait until an asset-triggered DAG has nothing queued or running, and no batch is pending."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = stack.airflow.runs(dag_id)
        active = [r for r in runs if r["state"] in ("queued", "running")]
        with stack.engine.connect() as conn:
            pending = conn.execute(
                select(func.count()).select_from(Batch).where(Batch.status == "collected")
            ).scalar_one()
        if runs and not active and not pending:
            failed = [r for r in runs if r["state"] == "failed"]
            assert not failed, stack.failed_task_logs(dag_id)
            return
        time.sleep(3)
    raise TimeoutError(f"{dag_id} still busy: {stack.airflow.runs(dag_id)}")


@pytest.fixture(scope="module")
def collected(stack: Stack):
    start, end = _period()
    stack.airflow.unpause(*COLLECT_DAGS, "process_posts")
    for dag_id in COLLECT_DAGS:
        stack.airflow.backfill(dag_id, start.isoformat(), (end - timedelta(seconds=1)).isoformat())
    for dag_id in COLLECT_DAGS:
        runs = stack.airflow.wait_runs(dag_id, count=DAYS, run_type="backfill", timeout=600)
        assert all(r["state"] == "success" for r in runs), stack.failed_task_logs(dag_id)
    live = _live_day()
    for dag_id in COLLECT_DAGS:
        stack.airflow.backfill(dag_id, live.start.isoformat(), (live.end - timedelta(seconds=1)).isoformat())
    for dag_id in COLLECT_DAGS:
        runs = stack.airflow.wait_runs(dag_id, count=DAYS + 1, run_type="backfill", timeout=600)
        assert all(r["state"] == "success" for r in runs), stack.failed_task_logs(dag_id)
        # yesterday's window, which unpausing scheduled: live too, routed before escalation runs
        stack.airflow.wait_runs(dag_id, count=1, run_type="scheduled", timeout=600)
    _wait_quiet(stack, "process_posts")
    return start, end


def test_posts_are_exactly_the_ground_truth_and_hazards_are_special_cases(stack: Stack, collected) -> None:
    start, end = collected
    truth = {
        (t["network"], t["external_id"]): t
        for t in ground_truth(start, end, now=stack.sandbox.now(), rate_per_source_per_day=RATE)
    }
    with stack.engine.connect() as conn:
        rows = conn.execute(
            select(Post.id, Post.network, Post.external_id, Post.is_incident)
            .join(Batch, Batch.id == Post.batch_id)
            .where(Batch.window_start >= start, Batch.window_end <= end)
        ).all()
        links = dict(conn.execute(select(CasePost.post_id, Case.special_control).join(Case)).all())
        duplicate_links = conn.execute(
            select(CasePost.post_id).group_by(CasePost.post_id).having(func.count() > 1)
        ).all()
    posts = {(r.network, r.external_id): r for r in rows}
    assert len(rows) == len(posts), "no post stored twice"
    assert set(posts) == set(truth)
    assert all(r.is_incident is not None for r in rows), "every post of the period was analysed"
    hazards = [k for k, t in truth.items() if t["hazard"]]
    assert hazards
    missed = [truth[k]["text"][:80] for k in hazards if not links.get(posts[k].id)]
    assert not missed, f"hazards without a special-control case: {missed}"
    assert not duplicate_links


def test_history_is_silent_and_a_live_hazard_is_escalated_and_emailed_once(stack: Stack, collected) -> None:
    """Issue 11: backfilled history sends no case e-mail and escalates nothing; a hazard of a live
    window is escalated (once, level 1) and every e-mail about it is delivered once."""
    start, end = collected
    live = _live_day()
    stack.airflow.unpause("escalate_cases")
    triggered = datetime.now(UTC)
    stack.airflow.trigger("escalate_cases")
    runs = stack.airflow.wait_runs(
        "escalate_cases", count=1, run_type="manual", finished_after=triggered, timeout=300
    )
    assert runs[0]["state"] == "success", stack.failed_task_logs("escalate_cases")
    mails = stack.services.smtp.messages()
    with stack.engine.connect() as conn:
        cases = {r.id: r for r in conn.execute(select(Case.id, Case.historical, Case.special_control))}
        windows: dict[int, set[datetime]] = {}
        for case_id, window_end in conn.execute(
            select(CasePost.case_id, Batch.window_end)
            .join(Post, Post.id == CasePost.post_id)
            .join(Batch, Batch.id == Post.batch_id)
        ):
            windows.setdefault(case_id, set()).add(_utc(window_end))
        escalated = conn.execute(
            select(CaseEvent.case_id, CaseEvent.level).where(CaseEvent.kind == "escalated")
        ).all()
        notified = set(
            conn.execute(select(Notification.case_id).where(Notification.case_id.is_not(None))).scalars()
        )
    history = {c for c, ends in windows.items() if max(ends) <= end}
    live_cases = set(cases) - history
    assert history and all(cases[c].historical for c in history), "backfilled history is historical"
    assert not any(cases[c].historical for c in live_cases), "cases of live windows are live"
    assert any(cases[c].special_control for c in history), "history has hazards, and they stay silent"
    assert not history & notified, "no e-mail about history is even queued"
    assert not {c for c, _level in escalated} & history, "history never escalates"
    live_hazards = {c for c in live_cases if cases[c].special_control}
    live_day = {c for c in live_hazards if any(live.start < e <= live.end for e in windows[c])}
    assert live_day, "a hazard of the live day is a live special-control case"
    assert sorted(escalated) == sorted((c, 1) for c in live_hazards), (
        "each live hazard climbs once, to level 1"
    )
    subjects = [str(m["Subject"]) for m in mails]
    mailed = {int(n) for subject in subjects for n in re.findall(r"#(\d+)", subject)}
    assert not mailed & history, "no e-mail about history"
    escalation_mails = {
        int(n)
        for subject in subjects
        if "ЭСКАЛАЦИЯ, уровень 1" in subject
        for n in re.findall(r"#(\d+)", subject)
    }
    assert live_hazards <= escalation_mails, "every live hazard's escalation is e-mailed"
    keys = [m["X-Incidents-Notification"] for m in mails]
    assert len(keys) == len(set(keys)), "no notification delivered twice"


def test_twelve_month_backfill_writes_twelve_reports_and_reruns_replace(stack: Stack, collected) -> None:
    # the 12 months up to the latest complete one. The backfill is created while the DAG is paused:
    # unpausing first would let the scheduler create the latest month's run while the backfill
    # creates it too, and the loser of that race (the scheduler) dies on the unique key.
    # the months are the region's (the DAG's timetable is in Europe/Kirov): from 21:00 UTC on a
    # month's last day the region is in the next month already
    today = datetime.now(ZoneInfo("Europe/Kirov")).date()
    last = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
    months = []
    month = last
    for _ in range(12):
        months.append(month)
        month = (month - timedelta(days=1)).replace(day=1)
    first = months[-1]
    stack.airflow.backfill("monthly_stats", f"{first}T00:00:00+03:00", f"{last}T00:00:00+03:00")
    stack.airflow.unpause("monthly_stats")  # the scheduler finds the latest month's run there already
    runs = stack.airflow.wait_runs("monthly_stats", count=12, timeout=900)
    assert all(r["state"] == "success" for r in runs), stack.failed_task_logs("monthly_stats")
    reports_root = Path(stack.home / "reports")
    for m in months:
        assert (reports_root / f"{m:%Y-%m}" / "report.html").exists(), m
    with stack.engine.connect() as conn:
        stored = sorted(r[0] for r in conn.execute(select(MonthlyReport.month)))
        figures = conn.execute(select(func.count()).select_from(MonthlyStat)).scalar_one()
    assert [_as_date(d) for d in stored] == sorted(months)
    middle = months[5]
    html = reports_root / f"{middle:%Y-%m}" / "report.html"
    first_mtime = html.stat().st_mtime_ns

    rerun_started = datetime.now(UTC)
    stack.airflow.backfill(
        "monthly_stats", f"{middle}T00:00:00+03:00", f"{middle}T00:00:00+03:00", reprocess="completed"
    )
    rerun = stack.airflow.wait_runs("monthly_stats", count=1, finished_after=rerun_started, timeout=300)
    assert len(rerun) == 1 and rerun[0]["state"] == "success", stack.failed_task_logs("monthly_stats")
    with stack.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(MonthlyReport)).scalar_one() == 12
        assert conn.execute(select(func.count()).select_from(MonthlyStat)).scalar_one() == figures
    assert html.stat().st_mtime_ns > first_mtime, "the rerun replaced the report"


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _as_date(value) -> date:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).date()
    return value
