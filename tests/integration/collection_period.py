"""The period the collection backfill test backfills, as a pure function of an explicit clock.

No Airflow here: ``tests/integration/test_collection_period.py`` checks, for many clocks, that
the period and the sandbox's ground truth agree (the sandbox serves every item of the period),
and the Airflow test uses the same function with the clock it hands the sandbox.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

FIRE_DAYS = (1, 11, 21)
"""Collection windows start on the 1st, 11th and 21st of each month: a month's backfill is 3 runs
per network (hourly and daily windows tile the same way, tests/dags/test_timetables.py)."""
CRON = f"0 0 {','.join(map(str, FIRE_DAYS))} * *"
WINDOWS_PER_MONTH = len(FIRE_DAYS)
CLOCK_ENV = "INCIDENTS_TEST_NOW"
"""Set to an ISO 8601 instant to run the collection backfill test with that clock (the sandbox's
``now`` and the period); unset: the wall clock, read once."""


def fires_before(moment: datetime, n: int) -> list[datetime]:
    """The last ``n`` fire times of CRON at or before ``moment`` (UTC midnights), oldest first."""
    fires: list[datetime] = []
    day = moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    while len(fires) < n:
        if day.day in FIRE_DAYS:
            fires.append(day)
        day -= timedelta(days=1)
    return fires[::-1]


def collection_period(now: datetime) -> tuple[datetime, datetime]:
    """The latest calendar month of 30 or 31 days that ends before the latest complete window at
    ``now``.

    Unpausing a DAG makes the scheduler run its latest complete window (catchup is off); the
    period stays clear of it so that the backfill alone covers the period.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    latest_complete_start = fires_before(now, 2)[0]
    end = latest_complete_start.replace(day=1)
    start = (end - timedelta(days=1)).replace(day=1)
    if end - start < timedelta(days=30):  # February: take January (at least 30 days)
        end, start = start, (start - timedelta(days=1)).replace(day=1)
    return start, end


def run_clock() -> datetime:
    """The clock of a test run: ``INCIDENTS_TEST_NOW`` when set, else the wall clock (whole seconds)."""
    raw = os.environ.get(CLOCK_ENV)
    if raw:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
    return datetime.now(UTC).replace(microsecond=0)
