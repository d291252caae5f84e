"""Coverage and the health view under the real scheduler, with a real browser.

* ``collect_vk`` ran a window (D-5) and runs again from the latest one (D-1): the windows in
  between (D-4 … D-2) are the windows a paused collection leaves behind. While it is still paused
  the ``coverage`` DAG backfills nothing (a paused DAG's backfill never starts); once unpaused, it
  backfills exactly those windows through the REST API, and the stored posts of D-5 … D-1 equal
  the sandbox's ground truth.
* ``collect_ok``'s token is refused: its window fails, the catch-up fails too, and the gap
  produces one alert e-mail — not one per coverage run.
* headless Chromium (Playwright) logs into the Airflow UI, opens "Incidents pipeline health" from
  the navigation and finds the case database's figures; screenshots go to the test's folder.

Windows are daily (the collection cron is configuration), so past windows stand for the paused
ones and no test waits for the clock. They begin at the hour opposite the clock's when the module
loads, so no window ends while the module runs: a run that crossed a window's end would see the
scheduler add that window and the coverage DAG find it (a module run at 23:59 UTC once did).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from sqlalchemy import Engine, text

from incidents_dev.sandbox.generator import ground_truth

from . import stack as stack_module
from .stack import Stack

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

BOUNDARY_HOUR = (datetime.now(UTC).hour + 12) % 24
"""The UTC hour at which the daily windows begin: 11-12 hours from any moment of the module's run."""
CRON = f"0 {BOUNDARY_HOUR} * * *"
RATE = 1.5
CHROMIUM = "/usr/bin/chromium"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
GAP_SUBJECT = "still missing after catch-up"


def _today() -> datetime:
    """The latest window boundary (``BOUNDARY_HOUR``) at or before now."""
    now = datetime.now(UTC)
    boundary = now.replace(hour=BOUNDARY_HOUR, minute=0, second=0, microsecond=0)
    return boundary if boundary <= now else boundary - timedelta(days=1)


def day(k: int, today: datetime) -> datetime:
    """The start of the daily window ``k`` days before ``today``'s boundary."""
    return today - timedelta(days=k)


class Api:
    """The stack's REST API as the admin user."""

    def __init__(self, base_url: str) -> None:
        self.base = base_url
        token = requests.post(
            f"{base_url}/auth/token", json={"username": "admin", "password": "admin"}, timeout=30
        ).json()["access_token"]
        self.token = token
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"

    def get(self, path: str, **params) -> dict:
        response = self.session.get(f"{self.base}/api/v2{path}", params=params, timeout=30)
        response.raise_for_status()
        return response.json()

    def runs(self, dag_id: str) -> list[dict]:
        return self.get(f"/dags/{dag_id}/dagRuns", limit=100, order_by="logical_date")["dag_runs"]

    def trigger(self, dag_id: str) -> str:
        response = self.session.post(
            f"{self.base}/api/v2/dags/{dag_id}/dagRuns", json={"logical_date": None}, timeout=30
        )
        response.raise_for_status()
        return response.json()["dag_run_id"]

    def wait_run(self, dag_id: str, run_id: str, timeout: float = 240) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.get(f"/dags/{dag_id}/dagRuns/{run_id}")
            if run["state"] in ("success", "failed"):
                return run
            time.sleep(2)
        raise TimeoutError(f"{dag_id} {run_id} did not finish within {timeout}s")

    def wait_states(self, dag_id: str, want: dict[datetime, str], timeout: float = 300) -> list[dict]:
        """Wait until the runs of the given window starts reached the given final states."""
        deadline = time.monotonic() + timeout
        while True:
            runs = self.runs(dag_id)
            states = {_utc(r["logical_date"]): r["state"] for r in runs if r.get("logical_date")}
            if all(states.get(k) == v for k, v in want.items()):
                return runs
            if time.monotonic() > deadline:
                raise TimeoutError(f"{dag_id}: wanted {want}, have {states}")
            time.sleep(2)


def _utc(value: str | datetime) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, pg_admin_url: str):
    """Airflow (metadata in PostgreSQL) with the coverage DAG's REST connection."""
    home = tmp_path_factory.mktemp("coverage_stack")
    options = {
        "collect_cron": CRON,
        "rate_per_source_per_day": RATE,
        "env_overrides": {
            # the coverage DAG's REST client: an Airflow user (host = [api] base_url)
            "AIRFLOW_CONN_AIRFLOW_API": json.dumps(
                {"conn_type": "http", "login": "admin", "password": "admin"}
            ),
            "INCIDENTS_COVERAGE_GRACE_MINUTES": "0",
            # one scheduled run on unpausing, then only the test's own: a scheduled run at the next
            # hour boundary would otherwise join in whenever the test happens to cross one
            "INCIDENTS_COVERAGE_EVERY_MINUTES": str(60 * 24 * 30),
            "INCIDENTS_COVERAGE_LOOKBACK_HOURS": str(24 * 10),
        },
    }
    with contextlib.ExitStack() as resources:
        if "pg_url" in {f.name for f in dataclasses.fields(Stack)}:
            stack = Stack(home=home, pg_url=pg_admin_url, **options)  # both databases in PostgreSQL
        else:
            metadata_url = resources.enter_context(
                stack_module.fresh_pg_database(pg_admin_url, "incidents_coverage_meta")
            )
            stack = Stack(
                home=home,
                case_db_url=f"sqlite:///{home / 'cases.sqlite'}",
                metadata_url=metadata_url,
                **options,
            )
        try:
            stack.start()
            yield stack
        finally:
            stack.stop()


@pytest.fixture(scope="module")
def collected(stack: Stack) -> dict:
    """vk collected D-5 (backfill) and D-1 (scheduled), ok's token refused on D-1; processed."""
    today = _today()
    api = Api(stack.airflow.url)
    # the coverage DAG's first scheduled run finds no collection run yet: nothing to do
    stack.airflow.unpause("coverage", "process_posts")
    stack.airflow.wait_runs("coverage", count=1, timeout=240)
    stack.sandbox.faults.update({"expired_tokens": ["ok"]}, replace=True)
    stack.airflow.unpause("collect_vk", "collect_ok")
    stack.airflow.backfill("collect_vk", day(5, today).isoformat(), day(5, today).isoformat())
    api.wait_states("collect_vk", {day(5, today): "success", day(1, today): "success"})
    api.wait_states("collect_ok", {day(1, today): "failed"})
    _wait_backfills_complete(api, "collect_vk")
    return {"today": today, "api": api, "vk_backfills": {b["id"] for b in _backfills(api, "collect_vk")}}


def _backfills(api: Api, dag_id: str) -> list[dict]:
    return api.get("/backfills", dag_id=dag_id, limit=100)["backfills"]


def _wait_backfills_complete(api: Api, dag_id: str, timeout: float = 240) -> None:
    """Airflow runs one backfill per DAG; the scheduler marks it complete after its last run."""
    deadline = time.monotonic() + timeout
    while [b for b in _backfills(api, dag_id) if b["completed_at"] is None]:
        assert time.monotonic() < deadline, (
            f"a backfill of {dag_id} did not complete: {_backfills(api, dag_id)}"
        )
        time.sleep(2)


def _coverage_run(stack: Stack, api: Api) -> dict:
    run_id = api.trigger("coverage")
    run = api.wait_run("coverage", run_id)
    assert run["state"] == "success", stack.failed_task_logs("coverage")
    return run


def _actions(engine: Engine, dag_id: str) -> list[tuple]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT action, window_start, backfill_id FROM coverage_actions WHERE dag_id = :d ORDER BY id"
            ),
            {"d": dag_id},
        ).all()
    return [(a, _utc(w), b) for a, w, b in rows]


def _gap_mails(stack: Stack) -> list:
    return [m for m in stack.services.smtp.messages() if GAP_SUBJECT in str(m["Subject"])]


def test_coverage_backfills_exactly_the_missing_windows_and_alerts_a_lasting_gap_once(
    stack: Stack, collected: dict
) -> None:
    today, api = collected["today"], collected["api"]
    missing = [day(k, today) for k in (4, 3, 2)]

    # the collection is paused: coverage records the gaps, but never backfills a paused DAG
    stack.airflow.pause("collect_vk")
    _coverage_run(stack, api)
    vk = _actions(stack.engine, "collect_vk")
    assert sorted(w for a, w, _ in vk if a == "detected") == missing
    assert sorted(w for a, w, _ in vk if a == "skipped_paused") == missing
    assert not [a for a, _, _ in vk if a == "backfill_requested"]
    assert {b["id"] for b in _backfills(api, "collect_vk")} == collected["vk_backfills"]
    # ok's failed window is caught up once (the backfill reruns it; the token is still refused)
    ok = _actions(stack.engine, "collect_ok")
    assert [(a, w) for a, w, _ in ok] == [("detected", day(1, today)), ("backfill_requested", day(1, today))]

    # unpaused: the next coverage run backfills exactly the three missing windows
    stack.airflow.unpause("collect_vk")
    _wait_backfills_complete(api, "collect_ok")
    api.wait_states("collect_ok", {day(1, today): "failed"})
    _coverage_run(stack, api)
    backfills = [b for b in _backfills(api, "collect_vk") if b["id"] not in collected["vk_backfills"]]
    assert len(backfills) == 1, backfills
    assert (_utc(backfills[0]["from_date"]), _utc(backfills[0]["to_date"])) == (missing[0], missing[-1])
    runs = api.wait_states("collect_vk", dict.fromkeys(missing, "success"))
    by_start = {_utc(r["logical_date"]): r for r in runs}
    assert sorted(by_start) == [day(k, today) for k in (5, 4, 3, 2, 1)], "no other window was run"
    assert all(by_start[s]["run_type"] == "backfill" for s in missing)
    mails = _gap_mails(stack)
    assert len(mails) == 1, [str(m["Subject"]) for m in mails]
    assert "collect_ok" in str(mails[0]["Subject"])
    assert day(1, today).strftime("%Y-%m-%d") in mails[0].get_body().get_content()

    # the next run sees the windows caught up, and alerts nothing again
    _coverage_run(stack, api)
    vk = _actions(stack.engine, "collect_vk")
    assert sorted(w for a, w, _ in vk if a == "backfill_requested") == missing
    assert {b for a, _, b in vk if a == "backfill_requested"} == {backfills[0]["id"]}
    assert sorted(w for a, w, _ in vk if a == "caught_up") == missing
    assert len(_gap_mails(stack)) == 1, "one alert per gap, not one per run"
    ok = _actions(stack.engine, "collect_ok")
    assert [a for a, _, _ in ok].count("alerted") == 1
    assert [a for a, _, _ in ok].count("backfill_requested") == 1

    # the stored posts of D-5 … D-1 are the sandbox's ground truth
    start, end = day(5, today), today
    truth = {
        t["external_id"]
        for t in ground_truth(start, end, now=stack.sandbox.now(), rate_per_source_per_day=RATE)
        if t["network"] == "vk"
    }
    with stack.engine.connect() as conn:
        stored = {
            r[0]
            for r in conn.execute(
                text(
                    "SELECT p.external_id FROM posts p JOIN batches b ON b.id = p.batch_id "
                    "WHERE p.network = 'vk' AND b.window_start >= :s AND b.window_end <= :e"
                ),
                {"s": start, "e": end},
            )
        }
    assert truth, "the sandbox generated posts for the period"
    assert stored == truth, f"missing {sorted(truth - stored)[:5]}, extra {sorted(stored - truth)[:5]}"


# ---------------------------------------------------------------------------- the browser


def _chromium() -> str:
    if not Path(CHROMIUM).exists():
        message = f"{CHROMIUM} is missing (Debian package chromium; .ci/run installs it)"
        if IN_CI:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return CHROMIUM


def _db_figures(engine: Engine, start: datetime) -> dict[str, dict[str, int]]:
    """Per network, straight from the tables: what the view must show for windows from ``start``."""
    queries = {
        "windows": "SELECT network, count(*) FROM batches b WHERE b.window_start >= :s GROUP BY network",
        "posts": "SELECT b.network, count(*) FROM posts p JOIN batches b ON b.id = p.batch_id "
        "WHERE b.window_start >= :s AND p.kind <> 'comment' GROUP BY b.network",
        "comments": "SELECT b.network, count(*) FROM posts p JOIN batches b ON b.id = p.batch_id "
        "WHERE b.window_start >= :s AND p.kind = 'comment' GROUP BY b.network",
        "incidents": "SELECT b.network, count(*) FROM posts p JOIN batches b ON b.id = p.batch_id "
        "WHERE b.window_start >= :s AND p.is_incident = true GROUP BY b.network",
        "hazards": "SELECT b.network, count(*) FROM posts p JOIN batches b ON b.id = p.batch_id "
        "WHERE b.window_start >= :s AND p.hazard = true GROUP BY b.network",
        "quarantined": "SELECT b.network, count(*) FROM quarantine q JOIN batches b ON b.id = q.batch_id "
        "WHERE b.window_start >= :s GROUP BY b.network",
        "cases": "SELECT b.network, count(*) FROM case_posts cp JOIN posts p ON p.id = cp.post_id "
        "JOIN batches b ON b.id = p.batch_id WHERE b.window_start >= :s AND cp.link = 'origin' "
        "GROUP BY b.network",
    }
    out: dict[str, dict[str, int]] = {}
    with engine.connect() as conn:
        for metric, sql in queries.items():
            for network, n in conn.execute(text(sql), {"s": start}):
                out.setdefault(network, {})[metric] = int(n)
    return out


def test_health_view_in_a_real_browser_shows_the_database_figures(
    stack: Stack, collected: dict, tmp_path: Path
) -> None:
    executable = _chromium()
    from playwright.sync_api import sync_playwright

    # the view needs Airflow's login: no session, no figures
    anonymous = requests.get(f"{stack.airflow.url}/incidents-health/health.json", timeout=30)
    assert anonymous.status_code == 401
    redirected = requests.get(
        f"{stack.airflow.url}/incidents-health/",
        headers={"Accept": "text/html"},
        allow_redirects=False,
        timeout=30,
    )
    assert redirected.status_code == 303 and "/auth/login" in redirected.headers["location"]

    # collection settled (processing, triggered by its assets, may still be at work: see below)
    deadline = time.monotonic() + 240
    while not all(
        r["state"] in ("success", "failed")
        for d in ("collect_vk", "collect_ok")
        for r in stack.airflow.runs(d)
    ):
        assert time.monotonic() < deadline, "collection did not settle"
        time.sleep(2)

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=executable,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.goto(f"{stack.airflow.url}/", wait_until="networkidle")
            page.locator("input[type=password]").wait_for(timeout=30_000)
            page.screenshot(path=str(tmp_path / "01-login.png"))
            page.locator("input:not([type=password])").first.fill("admin")
            page.locator("input[type=password]").fill("admin")
            page.locator("button[type=submit]").click()
            nav = page.get_by_role("link", name="Incidents pipeline health").or_(
                page.get_by_role("button", name="Incidents pipeline health")
            )
            nav.first.wait_for(timeout=60_000)
            page.screenshot(path=str(tmp_path / "02-airflow-home.png"))
            nav.first.click()
            frame = page.frame_locator("iframe")
            frame.locator("[data-testid=networks]").wait_for(timeout=60_000)
            page.wait_for_timeout(500)
            page.screenshot(path=str(tmp_path / "03-health-view.png"), full_page=True)
            shown_period = frame.locator("[data-testid=period]").inner_text()

            def cell(testid: str) -> str:
                return frame.locator(f"[data-testid={testid}]").inner_text().strip()

            metrics = ("windows", "posts", "comments", "incidents", "hazards", "quarantined", "cases")
            networks = ("vk", "ok", "twitter", "facebook", "instagram")
            # processing (asset-triggered) may change incidents while we look: the page and the
            # database are read moments apart, so compare again after a reload until they agree
            for _attempt in range(10):
                shown = {(n, m): cell(f"net-{n}-{m}") for n in networks for m in metrics}
                start = (datetime.now(UTC) - timedelta(days=7)).replace(
                    hour=0, minute=0, second=0, microsecond=0
                )
                want = _db_figures(stack.engine, start)
                expected = {(n, m): str(want.get(n, {}).get(m, 0)) for n in networks for m in metrics}
                if shown == expected:
                    break
                page.wait_for_timeout(3000)
                page.reload()
                frame.locator("[data-testid=networks]").wait_for(timeout=60_000)
            assert want.get("vk", {}).get("posts"), f"the database has vk posts to show: {want}"
            diff = {k: (shown[k], expected[k]) for k in expected if shown[k] != expected[k]}
            assert not diff, f"shown vs database ({shown_period}): {diff}"
            total = sum(f.get("posts", 0) + f.get("comments", 0) for f in want.values())
            assert cell("total-collected") == str(total)
            # ok's refused token left a failed window: shown as a gap; the charts are there
            assert cell("net-ok-gaps").startswith("1")
            for chart in ("chart-collected", "chart-quarantine", "chart-incidents", "chart-lag"):
                assert frame.locator(f"#{chart}").count() == 1
            assert "not measured" in cell("classifier-quality") or ":" in cell("classifier-quality")
            # the view's links lead to the DAG runs in Airflow
            link = frame.locator("a[href*='/dags/collect_vk/runs']").first
            assert link.count() == 1
            # the whole view on its own (the same session), for the record
            page.goto(f"{stack.airflow.url}/incidents-health/", wait_until="load")
            page.locator("[data-testid=networks]").wait_for(timeout=60_000)
            page.screenshot(path=str(tmp_path / "04-health-view-full.png"), full_page=True)
        finally:
            browser.close()
    keep = os.environ.get("INCIDENTS_SCREENSHOT_DIR")
    if keep:
        for shot in tmp_path.glob("*.png"):
            shutil.copy(shot, Path(keep) / shot.name)
