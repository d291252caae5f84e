"""Which collection windows are missing or failed, and what to do about each (no Airflow here).

A collection DAG's timetable tiles time into windows ``[start, end)`` between consecutive cron
fire times. A window is *covered* when a run of that exact data interval succeeded or is still
queued or running; it is a *gap* when it has no run at all (``missing``: the DAG was paused, the
scheduler was down, catch-up was off) or only runs that failed past their retries (``failed``).
Only windows that ended more than a grace period ago count: the newest window is normally
being collected right now.

:func:`plan_actions` turns the gaps and what was already done about them (the
``coverage_actions`` history) into decisions: request a catch-up backfill, wait for one, or
alert, so that each gap is backfilled at most ``max_attempts`` times and alerted at most once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import overload

COVERED_STATES = frozenset({"success", "running", "queued"})
"""Run states of a window that needs no catch-up (a running or queued run may still succeed)."""


@overload
def utc(value: datetime | str) -> datetime: ...
@overload
def utc(value: None) -> None: ...
@overload
def utc(value: datetime | str | None) -> datetime | None: ...
def utc(value: datetime | str | None) -> datetime | None:
    """An aware UTC datetime (naive values, as SQLite returns them, are taken as UTC)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


@dataclass(frozen=True, order=True)
class Window:
    """A data interval ``[start, end)`` in UTC."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", utc(self.start))
        object.__setattr__(self, "end", utc(self.end))
        if self.start >= self.end:
            raise ValueError(f"a window needs start < end, got [{self.start}, {self.end})")

    def label(self) -> str:
        return f"[{self.start:%Y-%m-%d %H:%M}, {self.end:%Y-%m-%d %H:%M}) UTC"


@dataclass(frozen=True)
class RunInfo:
    """One DAG run as the REST API reports it (only what gap detection needs)."""

    run_id: str
    state: str
    window: Window
    run_type: str = "scheduled"


@dataclass(frozen=True)
class Gap:
    """A window with no successful, queued or running run."""

    window: Window
    kind: str
    """``missing`` or ``failed``."""
    run_ids: tuple[str, ...] = ()
    """The failed runs of the window (empty for a missing one)."""


def expected_windows(cron: str, start: datetime, end: datetime) -> list[Window]:
    """The windows of the cron data-interval timetable (UTC) lying inside ``[start, end]``.

    Each window runs from one fire time to the next; the first starts at the first fire time at
    or after ``start``, the last ends at or before ``end``.
    """
    from croniter import croniter

    start, end = utc(start), utc(end)
    if not croniter.is_valid(cron):
        raise ValueError(f"not a cron expression: {cron!r}")
    # croniter returns the first fire time strictly after its start: begin a microsecond earlier
    it = croniter(cron, start - timedelta(microseconds=1))
    current = utc(it.get_next(datetime))
    windows: list[Window] = []
    while True:
        following = utc(it.get_next(datetime))
        if following > end:
            return windows
        windows.append(Window(current, following))
        current = following


def horizon(runs: Iterable[RunInfo], now: datetime, lookback: timedelta) -> datetime | None:
    """Where gap detection starts: ``lookback`` before ``now``, but never before the DAG's first
    run (history before the collection was first switched on is not a gap). None without runs."""
    starts = [r.window.start for r in runs]
    if not starts:
        return None
    return max(utc(now) - lookback, min(starts))


def detect_gaps(
    cron: str,
    runs: Sequence[RunInfo],
    *,
    since: datetime,
    now: datetime,
    grace: timedelta,
    earlier_run: bool,
) -> tuple[datetime | None, list[Window], list[Gap]]:
    """Where detection starts, the expected windows from there to ``now`` and the gaps.

    :param since: the start of the period looked at (``now`` minus the lookback).
    :param earlier_run: the DAG has a run before ``since``: the period starts at ``since``;
        otherwise at the DAG's first run in ``runs`` (nothing to detect without runs).
    """
    since = utc(since)
    start = since if earlier_run else horizon(runs, now, utc(now) - since)
    if start is None:
        return None, [], []
    windows = expected_windows(cron, start, now)
    return start, windows, find_gaps(windows, runs, now=now, grace=grace)


def succeeded_starts(runs: Iterable[RunInfo]) -> set[datetime]:
    """Starts of the windows with a successful run."""
    return {r.window.start for r in runs if r.state == "success"}


def find_gaps(
    windows: Iterable[Window], runs: Iterable[RunInfo], *, now: datetime, grace: timedelta
) -> list[Gap]:
    """The windows that ended more than ``grace`` before ``now`` and are not covered by a run.

    A window's runs are matched by their exact data interval. Several runs of one window (a
    scheduled run, then a backfill) cover it when any of them succeeded or is still active.
    """
    by_window: dict[Window, list[RunInfo]] = {}
    for run in runs:
        by_window.setdefault(run.window, []).append(run)
    cutoff = utc(now) - grace
    gaps: list[Gap] = []
    for window in sorted(set(windows)):
        if window.end > cutoff:
            continue
        window_runs = by_window.get(window, [])
        if any(r.state in COVERED_STATES for r in window_runs):
            continue
        failed = tuple(sorted(r.run_id for r in window_runs if r.state == "failed"))
        gaps.append(Gap(window, "failed" if failed else "missing", failed))
    return gaps


@dataclass
class GapHistory:
    """What coverage runs already did about one window (from ``coverage_actions``)."""

    window: Window
    attempts: int = 0
    """Catch-up backfills requested."""
    alerted: bool = False
    open: bool = False
    """Detected and not caught up since."""
    backfill_ids: list[int] = field(default_factory=list)
    cycle: int = 0
    """How often the window was caught up before: a window that becomes a gap again (a rerun
    failed) starts a new cycle with its own attempts and alert."""

    def key(self, extra: str = "") -> str:
        """The idempotency-key suffix of an action in the current cycle."""
        parts = ([f"c{self.cycle}"] if self.cycle else []) + ([extra] if extra else [])
        return ".".join(parts)


@dataclass
class Plan:
    """The decisions of one coverage run for one DAG."""

    backfill: list[Gap] = field(default_factory=list)
    """Gaps to catch up now (one backfill over their range, reprocessing failed runs only)."""
    waiting: list[Gap] = field(default_factory=list)
    """Gaps with a catch-up under way (or blocked by another active backfill of the DAG)."""
    alert: list[Gap] = field(default_factory=list)
    """Gaps that survived their catch-up and were not alerted yet."""
    alerted: list[Gap] = field(default_factory=list)
    """Gaps that survived and were alerted by an earlier run (no second alert)."""
    paused: list[Gap] = field(default_factory=list)
    """Gaps of a paused DAG: a backfill of a paused DAG never starts, so none is requested."""
    caught_up: list[Window] = field(default_factory=list)
    """Windows that were open gaps and are covered now."""

    @property
    def gaps(self) -> list[Gap]:
        return sorted(
            self.backfill + self.waiting + self.alert + self.alerted + self.paused, key=lambda g: g.window
        )


def plan_actions(
    gaps: Sequence[Gap],
    history: Mapping[datetime, GapHistory],
    *,
    succeeded: Iterable[datetime] = (),
    paused: bool,
    backfill_active: bool,
    max_attempts: int = 1,
) -> Plan:
    """Decide, per gap, whether to backfill, wait or alert.

    :param history: what was done so far, by window start.
    :param succeeded: starts of the windows whose run succeeded: an open gap among them is caught up.
    :param paused: the DAG is paused (its backfills would never start).
    :param backfill_active: a backfill of the DAG has not completed yet (Airflow runs one backfill
        per DAG at a time): its gaps wait for it.
    :param max_attempts: catch-up backfills per gap before the gap is alerted.
    """
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    plan = Plan()
    done = {utc(s) for s in succeeded}
    for gap in gaps:
        seen = history.get(gap.window.start) or GapHistory(gap.window)
        if seen.alerted:
            plan.alerted.append(gap)
        elif seen.attempts >= max_attempts:
            (plan.waiting if backfill_active else plan.alert).append(gap)
        elif paused:
            plan.paused.append(gap)
        elif backfill_active:
            plan.waiting.append(gap)
        else:
            plan.backfill.append(gap)
    for start, seen in history.items():
        if seen.open and start in done:
            plan.caught_up.append(seen.window)
    plan.caught_up.sort()
    return plan


def backfill_range(gaps: Sequence[Gap]) -> tuple[datetime, datetime] | None:
    """``(from_date, to_date)`` of one backfill over the gaps: the logical dates (window starts)
    of the first and the last gap. With ``reprocess_behavior="failed"`` such a backfill creates
    runs for the missing windows, reruns the failed ones and leaves every covered window alone."""
    if not gaps:
        return None
    starts = sorted(g.window.start for g in gaps)
    return starts[0], starts[-1]
