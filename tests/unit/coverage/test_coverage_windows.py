"""Gap detection without Airflow: expected windows of a cron timetable, gaps, decisions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from incidents.coverage.windows import (
    Gap,
    GapHistory,
    RunInfo,
    Window,
    backfill_range,
    expected_windows,
    find_gaps,
    horizon,
    plan_actions,
    succeeded_starts,
)

T0 = datetime(2026, 10, 5, 0, 0, tzinfo=UTC)


def h(n: float) -> datetime:
    return T0 + timedelta(hours=n)


def w(n: int, length: int = 1) -> Window:
    return Window(h(n), h(n + length))


def run(n: int, state: str, run_id: str | None = None) -> RunInfo:
    return RunInfo(run_id or f"scheduled__{h(n).isoformat()}", state, w(n))


def test_hourly_windows_tile_the_range() -> None:
    windows = expected_windows("0 * * * *", h(0), h(5))
    assert windows == [w(i) for i in range(5)]


def test_windows_start_at_the_next_fire_time_and_end_inside_the_range() -> None:
    windows = expected_windows("0 * * * *", h(0.5), h(3.5))
    assert windows == [w(1), w(2)]


def test_daily_and_irregular_crons() -> None:
    days = expected_windows("0 0 * * *", T0, T0 + timedelta(days=3))
    assert [(x.start, x.end) for x in days] == [(h(24 * i), h(24 * (i + 1))) for i in range(3)]
    odd = expected_windows(
        "0 0 1,11,21 * *", datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)
    )
    assert [x.start.day for x in odd] == [1, 11, 21]
    assert odd[-1].end == datetime(2026, 11, 1, tzinfo=UTC)
    assert (
        expected_windows(
            "0 0 1,11,21 * *", datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 10, 31, tzinfo=UTC)
        )[-1].start.day
        == 11
    )


def test_invalid_cron_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="not a cron expression"):
        expected_windows("every hour", h(0), h(2))


def test_naive_datetimes_are_utc_and_empty_windows_are_rejected() -> None:
    assert Window(datetime(2026, 10, 5), datetime(2026, 10, 5, 1)) == w(0)
    with pytest.raises(ValueError):
        Window(h(1), h(1))


def test_missing_and_failed_windows_are_gaps_covered_ones_are_not() -> None:
    windows = [w(i) for i in range(6)]
    runs = [run(0, "success"), run(1, "failed"), run(3, "running"), run(4, "queued")]
    gaps = find_gaps(windows, runs, now=h(6), grace=timedelta(0))
    assert [(g.window, g.kind) for g in gaps] == [(w(1), "failed"), (w(2), "missing"), (w(5), "missing")]
    assert gaps[0].run_ids == (runs[1].run_id,)


def test_grace_period_keeps_recent_windows_out() -> None:
    windows = [w(i) for i in range(6)]
    gaps = find_gaps(windows, [], now=h(6) + timedelta(minutes=30), grace=timedelta(hours=2))
    # windows ending at or before 04:30 count: w0..w3 (w3 ends at 04:00)
    assert [g.window for g in gaps] == [w(0), w(1), w(2), w(3)]


def test_a_run_of_another_interval_does_not_cover_a_window() -> None:
    daily_run = RunInfo("manual", "success", Window(h(0), h(24)))
    gaps = find_gaps([w(0)], [daily_run], now=h(48), grace=timedelta(0))
    assert [g.window for g in gaps] == [w(0)]


def test_horizon_never_reaches_before_the_first_run() -> None:
    runs = [run(10, "success"), run(12, "failed")]
    assert horizon(runs, now=h(20), lookback=timedelta(hours=100)) == h(10)
    assert horizon(runs, now=h(20), lookback=timedelta(hours=5)) == h(15)
    assert horizon([], now=h(20), lookback=timedelta(hours=5)) is None


def _gaps(*ns: int) -> list[Gap]:
    return [Gap(w(n), "missing") for n in ns]


def test_new_gaps_are_backfilled_over_one_range() -> None:
    plan = plan_actions(_gaps(2, 3, 7), {}, paused=False, backfill_active=False)
    assert [g.window for g in plan.backfill] == [w(2), w(3), w(7)]
    assert not plan.alert and not plan.waiting
    assert backfill_range(plan.backfill) == (h(2), h(7))
    assert backfill_range([]) is None


def test_gaps_wait_for_an_active_backfill() -> None:
    plan = plan_actions(_gaps(2), {}, paused=False, backfill_active=True)
    assert [g.window for g in plan.waiting] == [w(2)] and not plan.backfill


def test_a_paused_dag_is_never_backfilled() -> None:
    plan = plan_actions(_gaps(2), {}, paused=True, backfill_active=False)
    assert [g.window for g in plan.paused] == [w(2)] and not plan.backfill and not plan.alert


def test_a_gap_that_survives_its_catch_up_is_alerted_once() -> None:
    tried = {h(2): GapHistory(w(2), attempts=1, open=True, backfill_ids=[5])}
    # the catch-up is still running: wait
    assert [g.window for g in plan_actions(_gaps(2), tried, paused=False, backfill_active=True).waiting] == [
        w(2)
    ]
    # it completed and the window is still a gap: alert
    plan = plan_actions(_gaps(2), tried, paused=False, backfill_active=False)
    assert [g.window for g in plan.alert] == [w(2)]
    # alerted before: never again, also when paused
    alerted = {h(2): GapHistory(w(2), attempts=1, alerted=True, open=True)}
    for paused in (False, True):
        plan = plan_actions(_gaps(2), alerted, paused=paused, backfill_active=False)
        assert not plan.alert and [g.window for g in plan.alerted] == [w(2)]


def test_more_attempts_before_alerting() -> None:
    tried = {h(2): GapHistory(w(2), attempts=1, open=True)}
    plan = plan_actions(_gaps(2), tried, paused=False, backfill_active=False, max_attempts=2)
    assert [g.window for g in plan.backfill] == [w(2)]
    with pytest.raises(ValueError):
        plan_actions([], {}, paused=False, backfill_active=False, max_attempts=0)


def test_open_gaps_that_succeeded_are_caught_up() -> None:
    history = {
        h(2): GapHistory(w(2), attempts=1, open=True),
        h(3): GapHistory(w(3), attempts=1, open=True),
        h(4): GapHistory(w(4), attempts=1, open=False),
    }
    runs = [run(2, "success"), run(3, "running"), run(4, "success")]
    plan = plan_actions([], history, succeeded=succeeded_starts(runs), paused=False, backfill_active=True)
    assert plan.caught_up == [w(2)]
