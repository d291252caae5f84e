"""Shared DAG settings: owner, retries with exponential backoff, failure alerts, start date."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

START_DATE = datetime(2026, 1, 1, tzinfo=UTC)
"""Static start date of every DAG (history before it is reached by backfills)."""

OWNER = "data-engineering"


def default_args(**overrides: Any) -> dict[str, Any]:
    """Task defaults: 3 retries, exponential backoff from 30 s up to 30 min, e-mail on failure."""
    from incidents_provider.notifiers.case_email import failure_notifier

    args: dict[str, Any] = {
        "owner": OWNER,
        "retries": 3,
        "retry_delay": timedelta(seconds=30),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=30),
        "execution_timeout": timedelta(hours=2),
        "on_failure_callback": [failure_notifier()],
    }
    args.update(overrides)
    return args
