"""Monthly statistics, the monthly report and the Open311 GeoReport v2 export.

* :func:`compute_month` / :func:`load_month` (``compute.py``): figures per municipality × category ×
  network with roll-ups, the executor rating; stored idempotently per month.
* :func:`render_report` / :func:`report_email` (``report.py``): HTML with charts, CSV, XLSX, JSON.
* :func:`export_open311` (``open311.py``): services and requests of a month, schema-validated.
* ``python -m incidents stats`` (``cli.py``).
"""

from incidents.stats.compute import MonthSummary, StatsError, compute_month, load_month, month_bounds
from incidents.stats.open311 import Open311Files, export_open311
from incidents.stats.report import ReportFiles, render_report, report_email

__all__ = [
    "MonthSummary",
    "Open311Files",
    "ReportFiles",
    "StatsError",
    "compute_month",
    "export_open311",
    "load_month",
    "month_bounds",
    "render_report",
    "report_email",
]
