"""Monthly statistics DAG: calendar months in the region's time zone."""

from airflow.sdk import DAG, CronDataIntervalTimetable

from incidents_provider.defaults import START_DATE, default_args
from incidents_provider.operators.process import DeliverNotificationsOperator
from incidents_provider.operators.stats import MonthlyStatsOperator

with DAG(
    dag_id="monthly_stats",
    description="Monthly statistics per municipality, category and network; the monthly report",
    schedule=CronDataIntervalTimetable("0 0 1 * *", timezone="Europe/Kirov"),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=3,
    default_args=default_args(),
    tags=["incidents", "statistics", "report"],
    doc_md="""
### Monthly statistics and report

Data interval = one calendar month in Europe/Kirov (UTC+3), e.g. `[2026-10-01 00:00+03:00,
2026-11-01 00:00+03:00)`.

1. **compute_and_report** — replaces the month's figures (posts, incidents, cases opened /
   resolved / rejected / overdue, response and resolution times, hazards by type, top topics and
   sources, change against the previous month, executor rating), writes the report (HTML with
   charts, CSV, XLSX) and the Open311 GeoReport v2 export under `INCIDENTS_REPORTS_URI/<YYYY-MM>/`,
   and queues the announcement e-mail to `INCIDENTS_REPORT_RECIPIENTS`. Rerunning a month replaces
   its figures and files. Updates the Asset `incidents://stats/monthly`.
2. **announce** — delivers the queued announcement over SMTP.

Backfill a year: `airflow backfill create --dag-id monthly_stats --from-date 2025-01-01 --to-date 2025-12-31`.
""",
):
    stats = MonthlyStatsOperator(task_id="compute_and_report")
    announce = DeliverNotificationsOperator(task_id="announce")
    stats >> announce
