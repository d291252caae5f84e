"""Deadlines in working time, on the Russian production calendar of the region.

Rules of the arithmetic (all local times are Europe/Kirov, UTC+3, no DST):

* A **working day** is Monday–Friday unless the production calendar lists it as a
  non-working day (a holiday or a day off moved by a government decree); a Saturday or
  Sunday listed as working (a moved working Saturday such as 2024-04-27) is a working day.
* **Working hours** are 09:00–18:00 local time on working days (:data:`WORK_START`,
  :data:`WORK_END`; the statutory lunch break is not deducted).
* ``add_working_days(start, n)``: the end of the working day (18:00) of the ``n``-th
  working day *after* the local day of ``start`` (the period starts on the next day, as
  in Russian law). ``n == 0`` means the end of the same day when it is a working day and
  ``start`` is before 18:00, else the end of the next working day. A case opened on
  Tuesday 2025-12-30 with one working day is due on 2026-01-12 18:00 (the New Year
  holidays of the 2026 decree, Decree No. 1466 of 24.09.2025).
* ``add_working_hours(start, n)``: ``n`` hours of working time counted from ``start``;
  time outside working hours does not count (Friday 17:00 + 2 h = Monday 10:00).
* ``add_hours(start, n)``: calendar hours (hazards do not wait for Monday).

All functions take aware datetimes (naive ones are taken as UTC) and return aware UTC
datetimes. A :class:`WorkCalendar` is built once (from the database, the reference files
or a plain mapping) and answers "is this a working day" with one dict look-up.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, select

from incidents import REGION_TZ

log = logging.getLogger(__name__)

TZ = ZoneInfo(REGION_TZ)
WORK_START = time(9, 0)
WORK_END = time(18, 0)
WORKDAY_HOURS = 9
UNITS = ("working_days", "working_hours", "hours")

_MAX_SCAN_DAYS = 366 * 3
"""Safety limit: no calendar has this many consecutive days off."""


class DeadlineRuleLike(Protocol):
    """Anything with the fields of a deadline rule (the ORM row or the reference dataclass);
    read-only members, so a frozen dataclass qualifies."""

    @property
    def first_response(self) -> int: ...
    @property
    def resolution(self) -> int: ...
    @property
    def unit(self) -> str: ...


def as_utc(value: datetime) -> datetime:
    """An aware UTC datetime (naive values are taken as UTC, as SQLite returns them)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


class WorkCalendar:
    """The production calendar: Monday–Friday plus the listed exceptions.

    ``exceptions`` maps a day to whether it is a working day; only days that differ from
    the Monday–Friday rule need to be listed (others are accepted and kept as given).
    """

    def __init__(self, exceptions: Mapping[date, bool] | Iterable[tuple[date, bool]] = ()) -> None:
        items = exceptions.items() if isinstance(exceptions, Mapping) else exceptions
        self._exceptions: dict[date, bool] = {}
        for day, is_working in items:
            if not isinstance(day, date) or isinstance(day, datetime):
                raise TypeError(f"calendar day must be a date, got {day!r}")
            self._exceptions[day] = bool(is_working)
        self._day_cache: dict[tuple[date, int, bool], datetime] = {}
        """(local day, n, after hours) -> due: deadlines of one day are computed once."""

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_engine(cls, engine: Engine) -> WorkCalendar:
        """Read the ``production_calendar`` table once."""
        from incidents.db.models import CalendarDay

        with engine.connect() as conn:
            rows = conn.execute(select(CalendarDay.day, CalendarDay.is_working)).all()
        if not rows:
            log.warning("production_calendar is empty: only the Monday-Friday rule applies")
        return cls((row.day, row.is_working) for row in rows)

    @classmethod
    def from_reference(cls) -> WorkCalendar:
        """Read the calendar from the package's reference files (no database needed)."""
        from incidents.reference import load_calendar

        return cls(load_calendar().exceptions)

    # ------------------------------------------------------------------ days

    def is_working_day(self, day: date) -> bool:
        value = self._exceptions.get(day)
        return value if value is not None else day.weekday() < 5

    def next_working_day(self, day: date) -> date:
        """The first working day strictly after ``day``."""
        for _ in range(_MAX_SCAN_DAYS):
            day += timedelta(days=1)
            if self.is_working_day(day):
                return day
        raise ValueError(f"no working day within {_MAX_SCAN_DAYS} days after {day}")

    def working_day_on_or_after(self, day: date) -> date:
        return day if self.is_working_day(day) else self.next_working_day(day)

    # ------------------------------------------------------------------ arithmetic

    @staticmethod
    def _local(day: date, at: time) -> datetime:
        return datetime.combine(day, at, tzinfo=TZ)

    def add_working_days(self, start: datetime, n: int) -> datetime:
        """End of working hours of the ``n``-th working day after the local day of ``start`` (UTC)."""
        if n < 0:
            raise ValueError(f"working days must be >= 0, got {n}")
        local = as_utc(start).astimezone(TZ)
        key = (local.date(), n, n == 0 and local.time() >= WORK_END)
        due = self._day_cache.get(key)
        if due is None:
            day = local.date()
            if n == 0:
                if not (self.is_working_day(day) and local.time() < WORK_END):
                    day = self.next_working_day(day)
            else:
                for _ in range(n):
                    day = self.next_working_day(day)
            due = self._day_cache[key] = self._local(day, WORK_END).astimezone(UTC)
        return due

    def add_working_hours(self, start: datetime, n: float) -> datetime:
        """``n`` hours of working time (09:00–18:00 local on working days) after ``start`` (UTC)."""
        if n < 0:
            raise ValueError(f"working hours must be >= 0, got {n}")
        local = as_utc(start).astimezone(TZ)
        day = local.date()
        # move to the start of the working time that follows ``start``
        if not self.is_working_day(day) or local.time() >= WORK_END:
            day = self.next_working_day(day)
            cursor = self._local(day, WORK_START)
        elif local.time() < WORK_START:
            cursor = self._local(day, WORK_START)
        else:
            cursor = local
        remaining = timedelta(hours=n)
        for _ in range(_MAX_SCAN_DAYS * 2):
            end_of_day = self._local(day, WORK_END)
            left_today = end_of_day - cursor
            if remaining <= left_today:
                return (cursor + remaining).astimezone(UTC)
            remaining -= left_today
            day = self.next_working_day(day)
            cursor = self._local(day, WORK_START)
        raise ValueError(f"{n} working hours is too long a period")

    @staticmethod
    def add_hours(start: datetime, n: float) -> datetime:
        """Calendar hours (UTC)."""
        return as_utc(start) + timedelta(hours=n)

    def add(self, start: datetime, amount: float, unit: str) -> datetime:
        """``amount`` of ``unit`` (one of :data:`UNITS`) after ``start``."""
        if unit == "working_days":
            return self.add_working_days(start, int(amount))
        if unit == "working_hours":
            return self.add_working_hours(start, amount)
        if unit == "hours":
            return self.add_hours(start, amount)
        raise ValueError(f"unknown deadline unit {unit!r}; expected one of {', '.join(UNITS)}")

    def compute_due(self, opened_at: datetime, rule: DeadlineRuleLike) -> tuple[datetime, datetime]:
        """``(first_response_due, resolution_due)`` in UTC for a case opened at ``opened_at``."""
        return (
            self.add(opened_at, rule.first_response, rule.unit),
            self.add(opened_at, rule.resolution, rule.unit),
        )


_default_calendar: WorkCalendar | None = None


def default_calendar() -> WorkCalendar:
    """The calendar of the package's reference files, built once per process."""
    global _default_calendar
    if _default_calendar is None:
        _default_calendar = WorkCalendar.from_reference()
    return _default_calendar


def add_working_days(start: datetime, n: int, calendar: WorkCalendar | None = None) -> datetime:
    """See :meth:`WorkCalendar.add_working_days` (default: the reference calendar)."""
    return (calendar or default_calendar()).add_working_days(start, n)


def add_working_hours(start: datetime, n: float, calendar: WorkCalendar | None = None) -> datetime:
    """See :meth:`WorkCalendar.add_working_hours` (default: the reference calendar)."""
    return (calendar or default_calendar()).add_working_hours(start, n)


def add_hours(start: datetime, n: float) -> datetime:
    """Calendar hours after ``start`` (UTC)."""
    return WorkCalendar.add_hours(start, n)


def compute_due(
    opened_at: datetime, rule: DeadlineRuleLike, calendar: WorkCalendar | None = None
) -> tuple[datetime, datetime]:
    """``(first_response_due, resolution_due)`` in UTC (default: the reference calendar)."""
    return (calendar or default_calendar()).compute_due(opened_at, rule)
