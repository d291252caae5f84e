"""Collection: land a window's raw responses, then upsert its posts into the case database."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from airflow.sdk import Asset, BaseOperator, Context, ObjectStoragePath

from incidents.config import settings
from incidents_provider.hooks.case_db import CaseDbHook
from incidents_provider.hooks.networks import hook_for

log = logging.getLogger(__name__)


def posts_asset(network: str) -> Asset:
    """The Asset a network's collection updates; the processing DAG is scheduled on them."""
    return Asset(name=f"posts_{network}", uri=f"incidents://posts/{network}", group="incidents")


def _window(context: Context) -> tuple[datetime, datetime]:
    start, end = context["data_interval_start"], context["data_interval_end"]
    if start is None or end is None or start >= end:
        raise ValueError(f"collection needs a real data interval, got [{start}, {end})")
    return start.astimezone(UTC), end.astimezone(UTC)


class CollectPostsOperator(BaseOperator):
    """Fetch one network's posts of the run's data interval ``[start, end)`` into the landing area.

    Raw pages land first (one file per page, rewritten identically on a rerun), then the
    normalised posts as ``posts.jsonl``. Returns the landing folder and the counts (shown as the
    task's XCom in the UI). A source the API says is gone (deleted, banned, blocked) is a
    recorded skip (``skipped_sources`` in the XCom and, once loaded, in the batch row); a window
    in which every source was skipped fails. A refused token, a missing permission (both name the
    connection), a window the API cannot serve and a captcha/manual action fail at once without
    retries; exhausted retries, a daily limit and paging that stopped advancing (the window is
    incomplete) fail the try, and the task retries with backoff.
    """

    template_fields: Sequence[str] = ("network", "conn_id")
    ui_color = "#dbeafe"

    def __init__(self, *, network: str, conn_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.network = network
        self.conn_id = conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowFailException

        from incidents.collect.errors import (
            AllSourcesSkipped,
            AuthError,
            ManualActionRequired,
            WindowNotAvailable,
        )
        from incidents.collect.pipeline import LandingArea, collect_window
        from incidents.sources import load_sources

        start, end = _window(context)
        hook = hook_for(self.network, self.conn_id)
        landing = LandingArea(ObjectStoragePath(settings().landing_uri))
        try:
            result = collect_window(
                self.network,
                start,
                end,
                conn=hook.connection_info(),
                sources=load_sources(self.network),
                landing=landing,
                run_id=context["run_id"],
            )
        except (AuthError, WindowNotAvailable, ManualActionRequired, AllSourcesSkipped) as exc:
            # Retrying cannot help: fail at once, with the reason, and leave no posts behind.
            raise AirflowFailException(
                f"{self.network} ({hook.conn_id}): {type(exc).__name__}: {exc}"
            ) from exc
        skipped = result.skipped_sources
        for entry in skipped:
            log.warning("%s: source %s skipped: %s", self.network, entry["source_id"], entry["reason"])
        if not result.complete:
            raise RuntimeError(
                f"{self.network}: {result.stopped}; sources not collected: {result.remaining}. "
                "The task retries with backoff; the window stays incomplete (and is not loaded) until it succeeds."
            )
        per_source = {sid: c["posts"] + c["comments"] for sid, c in result.counts.items()}
        summary = {
            "network": self.network,
            "window": [start.isoformat(), end.isoformat()],
            "posts": result.total_posts,
            "per_source": per_source,
            "skipped_sources": skipped,
            "rejected_items": len(result.rejects),
            "landing": result.landing_uri,
        }
        log.info("%s [%s, %s): %d posts and comments", self.network, start, end, result.total_posts)
        return summary


class LoadPostsOperator(BaseOperator):
    """Upsert a landed window's posts into the case database (idempotent by network + id).

    Registers the window as a ``Batch`` and emits the network's Asset with the batch id.
    """

    template_fields: Sequence[str] = ("network",)
    ui_color = "#dcfce7"

    def __init__(self, *, network: str, case_db_conn_id: str = "case_db", **kwargs: Any) -> None:
        kwargs.setdefault("outlets", [posts_asset(network)])
        super().__init__(**kwargs)
        self.network = network
        self.case_db_conn_id = case_db_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        from incidents.collect.pipeline import LandingArea
        from incidents.stages import load_window

        start, end = _window(context)
        engine = CaseDbHook(self.case_db_conn_id).get_conn()
        landing = LandingArea(ObjectStoragePath(settings().landing_uri))
        stats = load_window(engine, self.network, start, end, landing=landing, run_id=context["run_id"])
        summary = stats if isinstance(stats, dict) else dict(stats.__dict__)
        log.info("%s [%s, %s) loaded: %s", self.network, start.isoformat(), end.isoformat(), summary)
        context["outlet_events"][posts_asset(self.network)].extra = {
            "network": self.network,
            "window_start": start.isoformat(),
            "window_end": end.isoformat(),
            **{k: v for k, v in summary.items() if isinstance(v, (int, float, str))},
        }
        return summary
