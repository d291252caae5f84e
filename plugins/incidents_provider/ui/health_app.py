"""The FastAPI app of the "Incidents pipeline health" view, mounted in Airflow's api-server.

Behind Airflow's own login: every page needs the user's Airflow session (the ``_token`` cookie the
UI sets, or a bearer token) and read access to DAG runs, checked by the configured auth manager.
A browser without a session is sent to Airflow's login page and comes back afterwards.

Figures come from the case database (connection ``case_db``); the collection DAGs' runs, for the
missing and failed windows, from Airflow's REST API, called with the user's own token.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

URL_PREFIX = "/incidents-health"

ICON = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" fill="none" stroke="#2563eb" '
    'stroke-width="2" stroke-linecap="round" stroke-linejoin="round"><path d="M3 12h4l3 8 4-16 3 8h4"/></svg>'
)


def _requires_run_access() -> Any:
    """Airflow's own check: an authenticated user allowed to read DAG runs (any DAG)."""
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
    from airflow.api_fastapi.core_api.security import requires_access_dag

    return Depends(requires_access_dag(method="GET", access_entity=DagAccessEntity.RUN))


app = FastAPI(title="Incidents pipeline health", docs_url=None, redoc_url=None, openapi_url=None)


@app.exception_handler(StarletteHTTPException)
async def _login_redirect(request: Request, exc: StarletteHTTPException) -> Response:
    """A browser without an Airflow session goes to Airflow's login page, then comes back."""
    if exc.status_code == 401 and "text/html" in request.headers.get("accept", ""):
        from airflow.api_fastapi.app import get_auth_manager

        return RedirectResponse(get_auth_manager().get_url_login(next_url=str(request.url)), status_code=303)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)


@app.get("/icon.svg", include_in_schema=False)
def icon() -> Response:
    """The navigation icon (no data: served without login)."""
    return Response(ICON, media_type="image/svg+xml")


def _period(days: float, granularity: str, end: datetime | None) -> tuple[datetime, datetime]:
    from incidents.health.queries import bucket_start

    end = (end or datetime.now(UTC)).astimezone(UTC)
    start = bucket_start(end - timedelta(days=days), granularity)
    return start, end


def case_db_url() -> str:
    """The case database of connection ``case_db`` (``INCIDENTS_CASE_DB_URL`` when undefined)."""
    from airflow.models.connection import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    from incidents.config import settings, sqlalchemy_url_from_connection
    from incidents_provider.hooks.case_db import connection_info

    try:
        conn = Connection.get_connection_from_secrets("case_db")
    except AirflowNotFoundException:
        explicit = settings().case_db_url
        if explicit:
            return explicit
        raise
    return sqlalchemy_url_from_connection(connection_info(conn))


def _user_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:]
    return request.cookies.get("_token")


def _coverage(request: Request, start: datetime, now: datetime) -> list[Any]:
    """Each collection DAG's gaps in the period, from the REST API with the user's token."""
    from incidents import NETWORKS
    from incidents.config import settings
    from incidents.coverage.windows import RunInfo, Window, detect_gaps
    from incidents_provider.hooks.airflow_api import AirflowApiHook
    from incidents_provider.ui.page import DagCoverage

    api = AirflowApiHook(token=_user_token(request) or "", timeout=10, attempts=2)
    grace = timedelta(minutes=settings().coverage_grace_minutes)
    out = []
    for network in NETWORKS:
        dag_id = f"collect_{network}"
        item = DagCoverage(dag_id=dag_id, network=network)
        try:
            details = api.dag_details(dag_id)
            item.paused, item.cron = bool(details.get("is_paused")), details.get("timetable_summary") or ""
            runs = [
                RunInfo(r["dag_run_id"], r["state"], Window(r["data_interval_start"], r["data_interval_end"]))
                for r in api.dag_runs(dag_id, logical_date_gte=start - timedelta(days=1))
                if r.get("data_interval_start")
                and r.get("data_interval_end")
                and r["data_interval_start"] != r["data_interval_end"]
            ]
            earlier = any(True for _ in api.dag_runs(dag_id, logical_date_lte=start, limit=1))
            _, _, gaps = detect_gaps(item.cron, runs, since=start, now=now, grace=grace, earlier_run=earlier)
            item.gaps = [
                {
                    "window_start": g.window.start,
                    "window_end": g.window.end,
                    "kind": g.kind,
                    "run_ids": list(g.run_ids),
                }
                for g in gaps
            ]
        except Exception as exc:  # one DAG's state must not hide the others
            log.warning("%s: could not read its runs: %s", dag_id, exc)
            item.error = f"could not read the runs of {dag_id}: {exc}"
        out.append(item)
    return out


def _gather(request: Request, days: float, granularity: str, end: datetime | None) -> dict[str, Any]:
    from incidents.config import PACKAGE_DIR, REPO_ROOT
    from incidents.coverage import store
    from incidents.db.engine import get_engine
    from incidents.health.queries import classifier_quality, pipeline_health

    start, stop = _period(days, granularity, end)
    engine = get_engine(case_db_url())
    notes: list[str] = []
    report = pipeline_health(engine, start, stop, granularity=granularity)
    try:
        actions = store.recent_actions(engine, since=start)
        open_gaps = store.open_gaps(engine)
    except Exception as exc:  # a case database not migrated to 0004 yet
        log.warning("coverage actions unavailable: %s", exc)
        notes.append("Coverage actions unavailable: the case database is not migrated yet (runs migrate it).")
        actions, open_gaps = [], []
    quality = classifier_quality(
        [
            PACKAGE_DIR / "analysis" / "model" / "quality.json",
            PACKAGE_DIR / "analysis" / "quality.json",
            PACKAGE_DIR / "analysis" / "data" / "blind" / "quality.json",
            REPO_ROOT / ".bench" / "results.json",
        ]
    )
    return {
        "report": report,
        "coverage": _coverage(request, start, datetime.now(UTC)),
        "actions": actions,
        "open_gaps": open_gaps,
        "quality": quality,
        "notes": notes,
    }


@app.get("/", response_class=HTMLResponse, dependencies=[_requires_run_access()])
def health_page(
    request: Request,
    days: Annotated[float, Query(gt=0, le=92, description="length of the period, in days")] = 7,
    granularity: Annotated[str, Query(pattern="^(hour|day)$")] = "day",
    end: Annotated[datetime | None, Query(description="end of the period (UTC), now by default")] = None,
) -> HTMLResponse:
    """The health view (HTML with inline SVG charts)."""
    from airflow.sdk.configuration import conf

    from incidents_provider.ui.page import render

    data = _gather(request, days, granularity, end)
    base_url = (conf.get("api", "base_url", fallback="") or "").rstrip("/")
    return HTMLResponse(
        render(
            report=data["report"],
            coverage=data["coverage"],
            open_gaps=data["open_gaps"],
            actions=data["actions"],
            quality=data["quality"],
            base_url=base_url,
            self_url=f"{base_url}{URL_PREFIX}/",
            days=days,
            notes=data["notes"],
        )
    )


@app.get("/health.json", dependencies=[_requires_run_access()])
def health_json(
    request: Request,
    days: Annotated[float, Query(gt=0, le=92)] = 7,
    granularity: Annotated[str, Query(pattern="^(hour|day)$")] = "day",
    end: Annotated[datetime | None, Query()] = None,
) -> JSONResponse:
    """The same figures as JSON (for scripts and monitoring)."""
    data = _gather(request, days, granularity, end)
    body = data["report"].as_dict()
    body["coverage"] = [
        {
            "dag_id": c.dag_id,
            "paused": c.paused,
            "cron": c.cron,
            "error": c.error,
            "gaps": [
                {
                    **g,
                    "window_start": g["window_start"].isoformat(),
                    "window_end": g["window_end"].isoformat(),
                }
                for g in c.gaps
            ],
        }
        for c in data["coverage"]
    ]
    body["coverage_actions"] = [
        {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in a.items()} for a in data["actions"]
    ]
    body["classifier_quality"] = data["quality"] or "not measured"
    return JSONResponse(body)
