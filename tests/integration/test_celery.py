"""The distributed path: CeleryExecutor with PostgreSQL (metadata and case database) and Redis,
a separate Celery worker process — which is SIGKILLed in the middle of a collection task.

After the scheduler notices the dead task and retries it on a new worker, the posts are exactly the
sandbox's ground truth and the cases are exactly those of an undisturbed run of the same stages.
"""

from __future__ import annotations

import random
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from sqlalchemy import select

from incidents import stages
from incidents.collect.pipeline import LandingArea, collect_window
from incidents.config import parse_connection
from incidents.db import migrate
from incidents.db.engine import make_engine
from incidents.db.models import Batch, Case, CasePost, Post
from incidents.reference.seed import load_reference
from incidents.sources import load_sources
from incidents_dev.sandbox.generator import ground_truth

from .stack import Stack

pytestmark = [pytest.mark.airflow, pytest.mark.slow, pytest.mark.postgres]

RATE = 4.0


@pytest.fixture
def broker_url(redis_base_url: str):
    """A Redis database of its own for the Celery broker."""
    db = random.randint(8, 15)
    client = redis.Redis.from_url(f"{redis_base_url}/{db}")
    client.flushdb()
    yield f"{redis_base_url}/{db}"
    client.flushdb()


def _window() -> tuple[datetime, datetime]:
    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=5)
    return end - timedelta(days=1), end


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise TimeoutError(what)


def _cases_by_posts(engine, window_start: datetime) -> set[frozenset[tuple[str, str]]]:
    """The cases as sets of (network, external_id) of their posts of one window: comparable across
    databases (the scheduler also collected the latest window when the DAG was unpaused)."""
    groups: dict[int, set[tuple[str, str]]] = defaultdict(set)
    with engine.connect() as conn:
        for case_id, network, external_id in conn.execute(
            select(CasePost.case_id, Post.network, Post.external_id)
            .join(Post, Post.id == CasePost.post_id)
            .join(Batch, Batch.id == Post.batch_id)
            .where(Batch.window_start == window_start)
        ):
            groups[case_id].add((network, external_id))
    return {frozenset(v) for v in groups.values()}


def test_celery_worker_sigkilled_mid_collection(tmp_path: Path, pg_admin_url: str, broker_url: str) -> None:
    start, end = _window()
    stack = Stack(
        home=tmp_path,
        pg_url=pg_admin_url,
        executor="CeleryExecutor",
        broker_url=broker_url,
        collect_cron="0 0 * * *",
        rate_per_source_per_day=RATE,
        components=("api-server", "scheduler", "dag-processor", "celery-worker"),
        env_overrides={
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "3",
        },
    )
    try:
        stack.start()
        airflow = stack.airflow
        # a slow API, so that the collection task is surely caught in the middle of its work
        stack.sandbox.faults.update({"latency_seconds": 0.4})
        airflow.unpause("collect_vk", "process_posts")
        started = datetime.now(UTC)
        airflow.backfill("collect_vk", start.isoformat(), (end - timedelta(seconds=1)).isoformat())

        landing = LandingArea(tmp_path / "landing")
        window_dir = Path(landing.window_dir("vk", start, end))

        def collecting() -> bool:
            states = [
                t
                for t in airflow.task_states("collect_vk")
                if t["task_id"] == "collect" and t["run_id"].startswith("backfill")
            ]
            pages = list(window_dir.rglob("[0-9][0-9][0-9][0-9][0-9].json"))
            return any(t["state"] == "running" for t in states) and len(pages) >= 3

        _wait(collecting, 300, "the collection task never got going")
        airflow.kill("celery-worker")  # SIGKILL: the worker and the task process die mid-window
        assert not (window_dir / "posts.jsonl").exists(), "killed before the window was complete"
        time.sleep(2)
        stack.sandbox.faults.update({"latency_seconds": 0.0})
        airflow.start(["celery-worker"])

        runs = airflow.wait_runs(
            "collect_vk", count=1, run_type="backfill", finished_after=started, timeout=600
        )
        assert runs[0]["state"] == "success", stack.failed_task_logs("collect_vk")
        tries = [
            t
            for t in airflow.task_states("collect_vk")
            if t["task_id"] == "collect" and t["run_id"] == runs[0]["run_id"]
        ]
        assert tries[0]["try_number"] >= 2, "the killed try was retried"

        def processed() -> bool:
            with stack.engine.connect() as conn:
                status = conn.execute(select(Batch.status).where(Batch.network == "vk")).scalars().all()
            busy = [r for r in airflow.runs("process_posts") if r["state"] in ("queued", "running")]
            # the scheduler also collected the latest window when collect_vk was unpaused
            return (
                bool(status)
                and set(status) == {"analysed"}
                and not busy
                and bool(airflow.runs("process_posts"))
            )

        _wait(processed, 300, f"processing did not finish: {airflow.runs('process_posts')}")

        # posts: exactly the ground truth of the window
        truth = {
            t["external_id"]
            for t in ground_truth(start, end, now=stack.sandbox.now(), rate_per_source_per_day=RATE)
            if t["network"] == "vk"
        }
        with stack.engine.connect() as conn:
            got = (
                conn.execute(
                    select(Post.external_id)
                    .join(Batch, Batch.id == Post.batch_id)
                    .where(Post.network == "vk", Batch.window_start == start)
                )
                .scalars()
                .all()
            )
            assert conn.execute(select(Case.id)).first() is not None
        assert len(got) == len(set(got)) and set(got) == truth

        # cases: exactly those of an undisturbed run of the same stages on a fresh database
        reference = make_engine(f"sqlite:///{tmp_path / 'reference.sqlite'}")
        migrate.upgrade(reference)
        load_reference(reference)
        env = stack.services.env()
        conn_info = parse_connection("vk_default", env["AIRFLOW_CONN_VK_DEFAULT"])
        ref_landing = LandingArea(tmp_path / "reference-landing")
        collect_window(
            "vk", start, end, conn=conn_info, sources=load_sources("vk"), landing=ref_landing, run_id="ref"
        )
        stages.load_window(reference, "vk", start, end, landing=ref_landing, run_id="ref")
        stages.process_pending(reference, run_id="ref", docs_root=None)
        stages.route(reference)
        assert _cases_by_posts(stack.engine, start) == _cases_by_posts(reference, start)
    finally:
        stack.stop()
