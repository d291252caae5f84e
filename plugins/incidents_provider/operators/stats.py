"""Monthly statistics and the monthly report."""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from airflow.sdk import Asset, BaseOperator, Context

from incidents.config import settings
from incidents_provider.hooks.case_db import CaseDbHook

log = logging.getLogger(__name__)

MONTHLY_STATS_ASSET = Asset(name="monthly_stats", uri="incidents://stats/monthly", group="incidents")


def month_of(context: Context) -> date:
    """The calendar month (in Europe/Kirov) of the run's data interval."""
    import pendulum

    from incidents import REGION_TZ

    interval_start, interval_end = context.get("data_interval_start"), context.get("data_interval_end")
    if interval_start is None or interval_end is None:
        raise ValueError("monthly statistics need a run with a data interval (a scheduled or backfill run)")
    start = pendulum.instance(interval_start).in_timezone(REGION_TZ)
    end = pendulum.instance(interval_end).in_timezone(REGION_TZ)
    if (start.day, start.hour, start.minute) != (1, 0, 0) or end != start.add(months=1):
        raise ValueError(
            f"monthly statistics need a calendar-month interval in {REGION_TZ}: [{start}, {end})"
        )
    return start.date()


class MonthlyStatsOperator(BaseOperator):
    """Compute (and replace) one month's statistics, then render the report files."""

    ui_color = "#cffafe"

    def __init__(self, *, case_db_conn_id: str = "case_db", **kwargs: Any) -> None:
        kwargs.setdefault("outlets", [MONTHLY_STATS_ASSET])
        super().__init__(**kwargs)
        self.case_db_conn_id = case_db_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        from incidents.stages import monthly_report

        month = month_of(context)
        engine = CaseDbHook(self.case_db_conn_id).get_conn()
        current = settings()
        result = monthly_report(
            engine,
            month,
            out_uri=current.reports_uri,
            recipients=current.report_recipients,
            run_id=context["run_id"],
        )
        context["outlet_events"][MONTHLY_STATS_ASSET].extra = {"month": month.isoformat(), **result["files"]}
        log.info("report of %s: %s", month, result["files"])
        return result
