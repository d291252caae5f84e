"""Collection under the real scheduler: a month's ``airflow backfill create`` against the sandbox.

* every network ends with exactly the sandbox's ground-truth posts of the period, although 20 %
  of the API requests fail transiently;
* rerunning the backfill changes nothing;
* the backfill's runs tile the period with no gap and no overlap;
* an expired token fails the run at once with a clear message and leaves no partial state.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from incidents import NETWORKS
from incidents.collect.pipeline import LandingArea
from incidents.db.models import Batch, Post, Quarantine
from incidents_dev.sandbox.faults import FaultConfig
from incidents_dev.sandbox.generator import ground_truth

from .collection_period import CRON, WINDOWS_PER_MONTH, collection_period, fires_before, run_clock
from .stack import Stack

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

COLLECT_DAGS = [f"collect_{n}" for n in NETWORKS]
RATE = 1.5  # sandbox items per source per day: small, so the test stays quick


@pytest.fixture(scope="module")
def clock() -> datetime:
    """The test's clock, an explicit input: the period, the sandbox's ``now`` and the ground truth
    all use it (``INCIDENTS_TEST_NOW`` sets it; default: the wall clock when the module starts)."""
    return run_clock()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, pg_admin_url: str, clock: datetime):
    """Airflow with its metadata in PostgreSQL (as in production), the case database too; the
    sandbox's clock fixed at ``clock``."""
    stack = Stack(
        home=tmp_path_factory.mktemp("collect_stack"),
        pg_url=pg_admin_url,
        collect_cron=CRON,
        rate_per_source_per_day=RATE,
    )
    try:
        stack.start()
        stack.sandbox.set_now(clock)
        yield stack
    finally:
        stack.stop()


def _posts(stack: Stack, start: datetime, end: datetime) -> dict[tuple[str, str], tuple]:
    """Posts collected by the windows of [start, end) (the scheduler also ran the latest window)."""
    with stack.engine.connect() as conn:
        rows = conn.execute(
            select(
                Post.network,
                Post.external_id,
                Post.parent_external_id,
                Post.kind,
                Post.published_at,
                Post.content_hash,
                Post.batch_id,
            )
            .join(Batch, Batch.id == Post.batch_id)
            .where(Batch.window_start >= start, Batch.window_end <= end)
        ).all()
    return {(r[0], r[1]): tuple(r[2:]) for r in rows}


def _quarantined(stack: Stack, start: datetime, end: datetime) -> list[tuple]:
    """Quarantined records of the windows of [start, end) (the scheduler's own run of the latest
    window may quarantine records of its window at any time)."""
    with stack.engine.connect() as conn:
        rows = conn.execute(
            select(Quarantine.stage, Quarantine.record_key)
            .join(Batch, Batch.id == Quarantine.batch_id)
            .where(Batch.window_start >= start, Batch.window_end <= end)
        ).all()
    return sorted(tuple(r) for r in rows)


def _backfill(stack: Stack, start: datetime, end: datetime, reprocess: str = "none") -> list[dict]:
    """Backfill every collection DAG over [start, end) and wait for the runs."""
    started = datetime.now(UTC)
    runs_expected = WINDOWS_PER_MONTH
    for dag_id in COLLECT_DAGS:
        # runs whose logical date (= window start) lies in [from, to]: the last window starts on the 21st
        stack.airflow.backfill(
            dag_id, start.isoformat(), (end - timedelta(seconds=1)).isoformat(), reprocess=reprocess
        )
    finished = []
    for dag_id in COLLECT_DAGS:
        runs = stack.airflow.wait_runs(
            dag_id, count=runs_expected, run_type="backfill", finished_after=started, timeout=900
        )
        failed = [r for r in runs if r["state"] != "success"]
        assert not failed, f"{dag_id}: {failed}\n{stack.failed_task_logs(dag_id)}"
        finished.extend({**r, "dag_id": dag_id} for r in runs)
    return finished


def test_backfill_with_faults_collects_exactly_the_ground_truth_and_reruns_change_nothing(
    stack: Stack, clock: datetime
) -> None:
    start, end = collection_period(clock)
    assert stack.sandbox.now() == clock
    stack.sandbox.faults.update(FaultConfig.transient(0.2, seed=7).to_dict(), replace=True)
    stack.airflow.unpause(*COLLECT_DAGS)
    runs = _backfill(stack, start, end)
    injected = dict(stack.sandbox.faults.injected)
    assert sum(injected.values()) > 20, f"faults were injected: {injected}"

    # windows tile the period exactly, per network
    for dag_id in COLLECT_DAGS:
        intervals = sorted(
            (r["data_interval_start"], r["data_interval_end"]) for r in runs if r["dag_id"] == dag_id
        )
        as_utc = [(_utc(a), _utc(b)) for a, b in intervals]
        assert as_utc[0][0] == start and as_utc[-1][1] == end, as_utc
        for (_s1, e1), (s2, _e2) in zip(as_utc, as_utc[1:], strict=False):
            assert e1 == s2, f"{dag_id}: gap or overlap at {e1} / {s2}"

    truth = ground_truth(start, end, now=clock, rate_per_source_per_day=RATE)
    expected = {(t["network"], t["external_id"]): t for t in truth}
    got = _posts(stack, start, end)
    for network in NETWORKS:
        want_ids = {k for k in expected if k[0] == network}
        got_ids = {k for k in got if k[0] == network}
        assert got_ids == want_ids, (
            f"{network}: missing {sorted(want_ids - got_ids)[:5]}, extra {sorted(got_ids - want_ids)[:5]}"
        )
    for key, t in expected.items():
        parent, kind, published, _hash, _batch = got[key]
        assert kind == t["kind"], key
        assert _utc(published) == datetime.fromisoformat(t["published_at"].replace("Z", "+00:00")), key
    with stack.engine.connect() as conn:
        batches = conn.execute(
            select(Batch.network, Batch.window_start).where(
                Batch.window_start >= start, Batch.window_end <= end
            )
        ).all()
    assert len(batches) == len(NETWORKS) * WINDOWS_PER_MONTH

    # rerun the whole backfill: nothing changes
    stack.sandbox.faults.update(FaultConfig().to_dict(), replace=True)
    quarantined_before = _quarantined(stack, start, end)
    _backfill(stack, start, end, reprocess="completed")
    assert _posts(stack, start, end) == got
    assert _quarantined(stack, start, end) == quarantined_before
    with stack.engine.connect() as conn:
        assert len(
            conn.execute(select(Batch.id).where(Batch.window_start >= start, Batch.window_end <= end)).all()
        ) == (len(NETWORKS) * WINDOWS_PER_MONTH)


def test_expired_token_fails_the_run_clearly_and_leaves_no_partial_state(
    stack: Stack, clock: datetime
) -> None:
    first, _ = collection_period(clock)
    start, stop = fires_before(first - timedelta(seconds=1), 1)[0], first  # a window no other test collected
    stack.sandbox.faults.update({"expired_tokens": ["vk"]}, replace=True)
    stack.airflow.unpause("collect_vk")
    started = datetime.now(UTC)
    stack.airflow.backfill("collect_vk", start.isoformat(), (stop - timedelta(seconds=1)).isoformat())
    runs = stack.airflow.wait_runs(
        "collect_vk", count=1, run_type="backfill", finished_after=started, timeout=300
    )
    assert runs[0]["state"] == "failed"
    tries = [
        t
        for t in stack.airflow.task_states("collect_vk")
        if t["run_id"] == runs[0]["run_id"] and t["task_id"] == "collect"
    ]
    assert tries and tries[0]["state"] == "failed" and tries[0]["try_number"] == 1, (
        "no retries on refused credentials"
    )
    logs = stack.failed_task_logs("collect_vk")
    assert "AuthError" in logs or "authoriz" in logs.lower(), logs[-2000:]
    assert "vk_default" in logs, "the message names the connection to fix"
    token = json.loads(stack.services.env()["AIRFLOW_CONN_VK_DEFAULT"])["password"]
    assert token and token not in logs, "the token never reaches the logs"
    # no partial state: no batch, no posts, no posts file for the window
    with stack.engine.connect() as conn:
        assert (
            conn.execute(select(Batch.id).where(Batch.network == "vk", Batch.window_start == start)).first()
            is None
        )
        assert (
            conn.execute(
                select(Post.id).where(
                    Post.network == "vk", Post.published_at >= start, Post.published_at < stop
                )
            ).first()
            is None
        )
    window = LandingArea(Path(stack.home / "landing")).window_dir("vk", start, stop)
    assert not (window / "posts.jsonl").exists()
    # the task-failure notifier told the data engineers
    alerts = [m for m in stack.services.smtp.messages() if "collect_vk.collect failed" in str(m["Subject"])]
    assert alerts, [str(m["Subject"]) for m in stack.services.smtp.messages()]
    assert token not in alerts[0].get_body().get_content()


def _utc(value) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
