"""Coverage: find collection windows that are missing or failed, back them up, alert survivors."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator, Context

from incidents_provider.hooks.airflow_api import AirflowApiError, AirflowApiHook
from incidents_provider.hooks.case_db import CaseDbHook

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from incidents.coverage.windows import Gap, GapHistory

log = logging.getLogger(__name__)


class CoverageOperator(BaseOperator):
    """For each collection DAG: find its gaps, request one catch-up backfill over them, alert
    the gaps that survived it; every decision is logged and stored in ``coverage_actions``.

    :param dag_ids: the collection DAGs to watch (interval timetables).
    :param grace: a window counts as a gap once it ended longer ago than this
        (default: ``INCIDENTS_COVERAGE_GRACE_MINUTES``).
    :param lookback: how far back to look (default ``INCIDENTS_COVERAGE_LOOKBACK_HOURS``).
    :param max_attempts: catch-up backfills per gap before it is alerted
        (default ``INCIDENTS_COVERAGE_MAX_ATTEMPTS``).
    """

    template_fields: Sequence[str] = ("dag_ids",)
    ui_color = "#fef3c7"

    def __init__(
        self,
        *,
        dag_ids: Sequence[str],
        grace: timedelta | None = None,
        lookback: timedelta | None = None,
        max_attempts: int | None = None,
        airflow_api_conn_id: str = "airflow_api",
        case_db_conn_id: str = "case_db",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.dag_ids = list(dag_ids)
        self.grace = grace
        self.lookback = lookback
        self.max_attempts = max_attempts
        self.airflow_api_conn_id = airflow_api_conn_id
        self.case_db_conn_id = case_db_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        from incidents.config import settings

        current = settings()
        grace = self.grace if self.grace is not None else timedelta(minutes=current.coverage_grace_minutes)
        lookback = (
            self.lookback if self.lookback is not None else timedelta(hours=current.coverage_lookback_hours)
        )
        max_attempts = self.max_attempts or current.coverage_max_attempts
        api = AirflowApiHook(self.airflow_api_conn_id)
        engine = CaseDbHook(self.case_db_conn_id).get_conn()
        now = datetime.now(UTC)
        log.info(
            "coverage at %s: grace %s, lookback %s, %d catch-up attempt(s) per gap",
            now.isoformat(),
            grace,
            lookback,
            max_attempts,
        )
        summary: dict[str, Any] = {}
        errors: list[str] = []
        for dag_id in self.dag_ids:
            try:
                summary[dag_id] = self._cover(
                    dag_id,
                    api,
                    engine,
                    context,
                    now=now,
                    grace=grace,
                    lookback=lookback,
                    max_attempts=max_attempts,
                )
            except AirflowApiError as exc:
                log.error("%s: %s", dag_id, exc)
                errors.append(f"{dag_id}: {exc}")
        if errors:
            raise RuntimeError("coverage could not check every DAG:\n" + "\n".join(errors))
        return summary

    def _cover(
        self,
        dag_id: str,
        api: AirflowApiHook,
        engine: Any,
        context: Context,
        *,
        now: datetime,
        grace: timedelta,
        lookback: timedelta,
        max_attempts: int,
    ) -> dict[str, Any]:
        from incidents.coverage import store
        from incidents.coverage.store import Action
        from incidents.coverage.windows import (
            RunInfo,
            Window,
            backfill_range,
            detect_gaps,
            plan_actions,
            succeeded_starts,
        )
        from incidents_provider.notifiers.coverage import send_gap_alert

        details = api.dag_details(dag_id)
        cron = details.get("timetable_summary") or ""
        since = now - lookback
        runs = [
            RunInfo(
                r["dag_run_id"],
                r["state"],
                Window(r["data_interval_start"], r["data_interval_end"]),
                r["run_type"],
            )
            for r in api.dag_runs(dag_id, logical_date_gte=since - timedelta(days=1))
            if r.get("data_interval_start")
            and r.get("data_interval_end")
            and r["data_interval_start"] != r["data_interval_end"]
        ]
        earlier = any(True for _ in api.dag_runs(dag_id, logical_date_lte=since, limit=1))
        start, windows, gaps = detect_gaps(cron, runs, since=since, now=now, grace=grace, earlier_run=earlier)
        if start is None:
            log.info("%s: no runs yet; collection was never switched on, nothing to cover", dag_id)
            return {"gaps": 0}
        active = [b for b in api.backfills(dag_id) if b.get("completed_at") is None]
        history = store.history(engine, dag_id, since=start)
        plan = plan_actions(
            gaps,
            history,
            succeeded=succeeded_starts(runs),
            paused=bool(details.get("is_paused")),
            backfill_active=bool(active),
            max_attempts=max_attempts,
        )
        run_id = context["run_id"]
        log.info(
            "%s (%s, %s): %d windows since %s, %d gap(s): %s",
            dag_id,
            cron,
            "paused" if details.get("is_paused") else "active",
            len(windows),
            start.isoformat(),
            len(gaps),
            ", ".join(f"{g.window.label()} {g.kind}" for g in gaps) or "none",
        )
        store.record(
            engine,
            [
                Action(
                    dag_id,
                    g.window,
                    "detected",
                    key_suffix=_seen(history, g.window).key(),
                    gap_kind=g.kind,
                    details={"run_ids": list(g.run_ids)},
                )
                for g in gaps
            ],
            run_id=run_id,
        )
        for window in plan.caught_up:
            log.info("%s: window %s caught up", dag_id, window.label())
        store.record(
            engine,
            [Action(dag_id, w, "caught_up", key_suffix=_seen(history, w).key()) for w in plan.caught_up],
            run_id=run_id,
        )
        if plan.paused:
            log.warning(
                "%s is paused: %d gap(s) not backfilled (a paused DAG's backfill never starts): %s",
                dag_id,
                len(plan.paused),
                ", ".join(g.window.label() for g in plan.paused),
            )
            store.record(
                engine,
                [
                    Action(
                        dag_id,
                        g.window,
                        "skipped_paused",
                        key_suffix=_seen(history, g.window).key(),
                        gap_kind=g.kind,
                    )
                    for g in plan.paused
                ],
                run_id=run_id,
            )
        if plan.waiting:
            log.info(
                "%s: %d gap(s) wait for backfill(s) %s",
                dag_id,
                len(plan.waiting),
                [b["id"] for b in active],
            )
        backfill_id = None
        if plan.backfill:
            backfill_id = self._backfill(dag_id, api, engine, plan.backfill, history, details, run_id)
        alerted: list[Any] = []
        if plan.alert:
            won = store.claim_alert(engine, dag_id, plan.alert, run_id=run_id, history=history)
            if won:
                try:
                    send_gap_alert(dag_id, won, context, attempts=max_attempts, ui_url=_runs_url(api, dag_id))
                except Exception:
                    store.release_alert(engine, dag_id, won, history)
                    raise
                log.warning(
                    "%s: alert e-mail sent for %d gap(s) that survived their catch-up: %s",
                    dag_id,
                    len(won),
                    ", ".join(g.window.label() for g in won),
                )
            alerted = won
        if plan.alerted:
            log.info("%s: %d gap(s) alerted earlier (no second alert)", dag_id, len(plan.alerted))
        backfilled_range = backfill_range(plan.backfill)
        return {
            "cron": cron,
            "paused": bool(details.get("is_paused")),
            "gaps": len(gaps),
            "backfill_id": backfill_id,
            "backfilled": [g.window.start.isoformat() for g in plan.backfill]
            if backfill_id is not None
            else [],
            "waiting": len(plan.waiting),
            "alerted_now": [g.window.start.isoformat() for g in alerted],
            "caught_up": [w.start.isoformat() for w in plan.caught_up],
            "range": [x.isoformat() for x in backfilled_range] if backfilled_range else None,
        }

    def _backfill(
        self,
        dag_id: str,
        api: AirflowApiHook,
        engine: Engine,
        gaps: Sequence[Gap],
        history: Mapping[datetime, GapHistory],
        details: Mapping[str, Any],
        run_id: str | None,
    ) -> int | None:
        """One backfill over the gaps' range, reprocessing failed runs only; checked by a dry run
        to create runs for exactly the gap windows."""
        from incidents.coverage import store
        from incidents.coverage.store import Action
        from incidents.coverage.windows import backfill_range, utc

        gap_range = backfill_range(gaps)
        if gap_range is None:
            return None
        first, last = gap_range
        max_active = int(details.get("max_active_runs") or 1)
        dry = api.create_backfill(dag_id, first, last, max_active_runs=max_active, dry_run=True)
        planned = {utc(b["logical_date"]) for b in dry.get("backfills", []) if b.get("logical_date")}
        wanted = {g.window.start for g in gaps}
        if planned - wanted:
            log.error(
                "%s: a backfill of [%s, %s] would also run %s, which are no gaps; not created",
                dag_id,
                first.isoformat(),
                last.isoformat(),
                sorted(x.isoformat() for x in planned - wanted),
            )
            return None
        try:
            backfill = api.create_backfill(dag_id, first, last, max_active_runs=max_active)
        except AirflowApiError as exc:
            if exc.status == 409:  # another backfill of the DAG started meanwhile: next run
                log.info("%s: %s; the gaps wait for it", dag_id, exc.detail)
                return None
            raise
        backfill_id = int(backfill["id"])
        store.record(
            engine,
            [
                Action(
                    dag_id,
                    g.window,
                    "backfill_requested",
                    key_suffix=_seen(history, g.window).key(str(_seen(history, g.window).attempts + 1)),
                    gap_kind=g.kind,
                    backfill_id=backfill_id,
                    details={
                        "from_date": first.isoformat(),
                        "to_date": last.isoformat(),
                        "max_active_runs": max_active,
                    },
                )
                for g in gaps
            ],
            run_id=run_id,
        )
        log.warning(
            "%s: backfill %s created for %d window(s) [%s … %s] (reprocess failed, max_active_runs %d, "
            "pool of the DAG's tasks applies): %s",
            dag_id,
            backfill_id,
            len(gaps),
            first.isoformat(),
            last.isoformat(),
            max_active,
            ", ".join(f"{g.window.label()} {g.kind}" for g in gaps),
        )
        return backfill_id


def _seen(history: Any, window: Any) -> Any:
    """The window's history (an empty one for a window never seen)."""
    from incidents.coverage.windows import GapHistory

    return history.get(window.start) or GapHistory(window)


def _runs_url(api: AirflowApiHook, dag_id: str) -> str | None:
    try:
        return f"{api.base_url()}/dags/{dag_id}/runs"
    except Exception:  # a link is a nicety
        return None
