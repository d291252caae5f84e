"""Consecutive runs tile time: every window starts where the previous one ended, no gap, no overlap."""

from __future__ import annotations

import importlib.util
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pendulum
import pytest

DAGS = Path(__file__).resolve().parents[2] / "dags"


def _dags(filename: str, monkeypatch=None, **env):
    """Execute a DAG file and return the DAGs it defined (the scheduler's view comes from them)."""
    from airflow.sdk.definitions.dag import DAG

    spec = importlib.util.spec_from_file_location(f"dagfile_{filename[:-3]}", DAGS / filename)
    module = importlib.util.module_from_spec(spec)
    if monkeypatch:
        for key, value in env.items():
            monkeypatch.setenv(key, value)
    collected: list[DAG] = []
    original_exit = DAG.__exit__

    def _exit(self, *exc):
        collected.append(self)
        return original_exit(self, *exc)

    DAG.__exit__ = _exit
    try:
        spec.loader.exec_module(module)
    finally:
        DAG.__exit__ = original_exit
    return {d.dag_id: d for d in collected}


def _intervals(dag, start: datetime, count: int) -> list[tuple[datetime, datetime]]:
    """The first ``count`` scheduled data intervals from ``start``, as the scheduler computes them."""
    from airflow.serialization.encoders import coerce_to_core_timetable
    from airflow.timetables.base import TimeRestriction

    timetable = coerce_to_core_timetable(dag.timetable)
    restriction = TimeRestriction(earliest=pendulum.instance(start), latest=None, catchup=True)
    out: list[tuple[datetime, datetime]] = []
    last = None
    for _ in range(count):
        info = timetable.next_dagrun_info(last_automated_data_interval=last, restriction=restriction)
        assert info is not None
        out.append((info.data_interval.start, info.data_interval.end))
        last = info.data_interval
    return out


def _assert_tiles(intervals: list[tuple[datetime, datetime]]) -> None:
    for (s1, e1), (s2, e2) in zip(intervals, intervals[1:], strict=False):
        assert s1 < e1, "a real window, not a zero-length trigger"
        assert e1 == s2, f"gap or overlap between [{s1}, {e1}) and [{s2}, {e2})"


@pytest.mark.parametrize(
    "cron, length", [("0 * * * *", timedelta(hours=1)), ("0 0 * * *", timedelta(days=1))]
)
def test_collection_windows_tile(monkeypatch: pytest.MonkeyPatch, cron: str, length: timedelta) -> None:
    dags = _dags("collect_posts.py", monkeypatch, INCIDENTS_COLLECT_CRON=cron)
    assert len(dags) == 5
    for dag in dags.values():
        intervals = _intervals(dag, datetime(2026, 3, 28, tzinfo=UTC), 80)
        _assert_tiles(intervals)
        assert all(e - s == length for s, e in intervals)


def test_monthly_windows_are_calendar_months_in_kirov() -> None:
    dag = _dags("monthly_stats.py")["monthly_stats"]
    intervals = _intervals(dag, datetime(2025, 1, 1, tzinfo=UTC), 26)
    _assert_tiles(intervals)
    for start, end in intervals:
        local_start = pendulum.instance(start).in_timezone("Europe/Kirov")
        local_end = pendulum.instance(end).in_timezone("Europe/Kirov")
        assert (local_start.day, local_start.hour, local_start.minute) == (1, 0, 0)
        assert local_end == local_start.add(months=1)
        assert start.utcoffset() is not None
    # Kirov is UTC+3 all year: a month starts at 21:00 UTC on the last day of the previous month
    assert pendulum.instance(intervals[0][0]).in_timezone("UTC").hour == 21


def test_escalation_runs_every_15_minutes() -> None:
    dag = _dags("escalate_cases.py")["escalate_cases"]
    intervals = _intervals(dag, datetime(2026, 11, 1, tzinfo=UTC), 10)
    _assert_tiles(intervals)
    assert all(e - s == timedelta(minutes=15) for s, e in intervals)
