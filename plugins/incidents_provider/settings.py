"""Runtime locations and recipients, read when a task runs (never at DAG parse time)."""

from __future__ import annotations

import os

from incidents.config import local_home


def landing_uri() -> str:
    """Where raw API responses land (``file://`` by default; any ObjectStoragePath URI works)."""
    return os.environ.get("INCIDENTS_LANDING_URI", f"file://{local_home() / 'landing'}")


def reports_uri() -> str:
    """Where monthly reports are written."""
    return os.environ.get("INCIDENTS_REPORTS_URI", f"file://{local_home() / 'reports'}")


def report_recipients() -> list[str]:
    """Who receives the monthly report announcement."""
    value = os.environ.get("INCIDENTS_REPORT_RECIPIENTS", "monthly-report@kirov-region.example.org")
    return [v.strip() for v in value.split(",") if v.strip()]


def sender() -> str:
    return os.environ.get("INCIDENTS_MAIL_FROM", "incidents@kirov-region.example.org")


def max_failed_share() -> float:
    """Validation threshold: the share of failing records above which a batch fails."""
    return float(os.environ.get("INCIDENTS_MAX_FAILED_SHARE", "0.05"))
