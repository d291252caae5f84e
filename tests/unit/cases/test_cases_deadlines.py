"""Working-time arithmetic on the production calendar (pure, plus the seeded table)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from incidents.cases.deadlines import TZ, WorkCalendar, add_hours, compute_due
from incidents.reference import load_calendar


@pytest.fixture(scope="module")
def cal() -> WorkCalendar:
    return WorkCalendar.from_reference()


def local(y: int, mo: int, d: int, h: int = 12, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=TZ)


def in_kirov(value: datetime) -> datetime:
    assert value.tzinfo is not None and value.utcoffset() == timedelta(0)
    return value.astimezone(TZ)


class Rule:
    def __init__(self, first: int, resolution: int, unit: str) -> None:
        self.first_response, self.resolution, self.unit = first, resolution, unit


def test_new_year_holidays_2026(cal: WorkCalendar) -> None:
    # 2025-12-31 is a day off moved from 5 January; 1-11 January 2026 are the holidays
    due = in_kirov(cal.add_working_days(local(2025, 12, 30, 15), 1))
    assert due == local(2026, 1, 12, 18)
    assert in_kirov(cal.add_working_days(local(2025, 12, 30, 15), 2)) == local(2026, 1, 13, 18)


def test_russia_day_12_june(cal: WorkCalendar) -> None:
    # 2025-06-12 is a Thursday holiday; Friday 13 June 2025 is a working day
    assert not cal.is_working_day(date(2025, 6, 12))
    assert cal.is_working_day(date(2025, 6, 13))
    assert in_kirov(cal.add_working_days(local(2025, 6, 11, 10), 1)) == local(2025, 6, 13, 18)
    assert in_kirov(cal.add_working_days(local(2025, 6, 11, 10), 2)) == local(2025, 6, 16, 18)
    # 2026-06-12 is a Friday
    assert in_kirov(cal.add_working_days(local(2026, 6, 11, 10), 1)) == local(2026, 6, 15, 18)


@pytest.mark.parametrize("day", [date(2024, 4, 27), date(2024, 11, 2), date(2024, 12, 28)])
def test_moved_working_saturdays(cal: WorkCalendar, day: date) -> None:
    assert day.weekday() == 5 and cal.is_working_day(day)
    friday = day - timedelta(days=1)
    assert in_kirov(cal.add_working_days(local(friday.year, friday.month, friday.day, 11), 1)) == local(
        day.year, day.month, day.day, 18
    )
    # working hours run on the working Saturday too
    assert in_kirov(cal.add_working_hours(local(friday.year, friday.month, friday.day, 17), 2)) == local(
        day.year, day.month, day.day, 10
    )


def test_friday_evening_case(cal: WorkCalendar) -> None:
    # Friday 2025-03-14 20:00 local: nothing counts until Monday 09:00
    start = local(2025, 3, 14, 20)
    assert in_kirov(cal.add_working_hours(start, 2)) == local(2025, 3, 17, 11)
    assert in_kirov(cal.add_working_days(start, 1)) == local(2025, 3, 17, 18)
    # Friday 17:00 + 2 working hours = Monday 10:00
    assert in_kirov(cal.add_working_hours(local(2025, 3, 14, 17), 2)) == local(2025, 3, 17, 10)
    # calendar hours do not wait for Monday
    assert in_kirov(add_hours(start, 2)) == local(2025, 3, 14, 22)


def test_working_hours_span_several_days_and_holidays(cal: WorkCalendar) -> None:
    # 2025-05-08 (Thu) 16:00 + 12 working hours: 2 h left on Thursday, 9-11 May holidays/weekend,
    # 9 h on Monday 12 May, 1 h on Tuesday
    assert in_kirov(cal.add_working_hours(local(2025, 5, 8, 16), 12)) == local(2025, 5, 13, 10)
    # before opening hours the count starts at 09:00
    assert in_kirov(cal.add_working_hours(local(2025, 3, 12, 6), 1)) == local(2025, 3, 12, 10)
    assert in_kirov(cal.add_working_hours(local(2025, 3, 12, 10), 0)) == local(2025, 3, 12, 10)


def test_time_zone_boundaries(cal: WorkCalendar) -> None:
    # Friday 22:30 UTC is already Saturday 01:30 in Kirov: the next working day is Monday
    start = datetime(2025, 3, 14, 22, 30, tzinfo=UTC)
    assert in_kirov(cal.add_working_days(start, 1)) == local(2025, 3, 17, 18)
    # Monday 20:59 UTC is Monday 23:59 local; 1 working day -> Tuesday 18:00 local = 15:00 UTC
    due = cal.add_working_days(datetime(2025, 3, 17, 20, 59, tzinfo=UTC), 1)
    assert due == datetime(2025, 3, 18, 15, 0, tzinfo=UTC)
    # a naive value is taken as UTC (SQLite gives naive datetimes back)
    assert cal.add_working_days(datetime(2025, 3, 17, 20, 59), 1) == due
    # n == 0: the end of the same working day, or of the next one after hours
    assert in_kirov(cal.add_working_days(local(2025, 3, 17, 10), 0)) == local(2025, 3, 17, 18)
    assert in_kirov(cal.add_working_days(local(2025, 3, 17, 19), 0)) == local(2025, 3, 18, 18)


def test_compute_due_units(cal: WorkCalendar) -> None:
    opened = local(2025, 12, 30, 15)
    first, resolution = cal.compute_due(opened, Rule(1, 10, "working_days"))
    assert in_kirov(first) == local(2026, 1, 12, 18)
    assert in_kirov(resolution) == local(2026, 1, 23, 18)
    first, resolution = compute_due(opened, Rule(2, 24, "hours"), cal)
    assert first == opened.astimezone(UTC) + timedelta(hours=2)
    assert resolution == opened.astimezone(UTC) + timedelta(hours=24)
    first, _ = cal.compute_due(opened, Rule(4, 8, "working_hours"))
    assert in_kirov(first) == local(2026, 1, 12, 10)  # 3 h on 30 Dec, then 1 h on 12 Jan
    with pytest.raises(ValueError, match="unknown deadline unit"):
        cal.compute_due(opened, Rule(1, 2, "fortnights"))
    with pytest.raises(ValueError):
        cal.add_working_days(opened, -1)


def test_pure_calendar_from_exceptions() -> None:
    cal = WorkCalendar({date(2030, 1, 7): False, date(2030, 1, 12): True})
    assert not cal.is_working_day(date(2030, 1, 7))  # a listed weekday holiday
    assert cal.is_working_day(date(2030, 1, 12))  # a listed working Saturday
    assert not cal.is_working_day(date(2030, 1, 13))  # an ordinary Sunday
    assert cal.next_working_day(date(2030, 1, 4)) == date(2030, 1, 8)
    with pytest.raises(TypeError):
        WorkCalendar({datetime(2030, 1, 1): False})


def test_calendar_from_database_matches_reference(engine) -> None:
    from_db = WorkCalendar.from_engine(engine)
    reference = load_calendar()
    for day in list(reference.exceptions)[:: max(1, len(reference.exceptions) // 40)]:
        assert from_db.is_working_day(day) == reference.is_working_day(day)
    assert in_kirov(from_db.add_working_days(local(2025, 12, 30, 15), 1)) == local(2026, 1, 12, 18)
