"""The health view: the plugin's registration, the page's figures and charts (no server needed)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, insert, select

from incidents.db.models import Batch, Case, CasePost, Executor, Post
from incidents.health.queries import pipeline_health

T0 = datetime(2026, 10, 5, tzinfo=UTC)


def test_the_plugin_registers_the_app_and_a_top_level_view() -> None:
    from airflow.api_fastapi.app import RESERVED_URL_PREFIXES
    from airflow.api_fastapi.core_api.datamodels.plugins import ExternalViewResponse

    from incidents_provider.plugins.incidents_health import IncidentsHealthPlugin
    from incidents_provider.ui.health_app import app

    (mounted,) = IncidentsHealthPlugin.fastapi_apps
    assert mounted["app"] is app
    assert not any(mounted["url_prefix"].startswith(p) for p in RESERVED_URL_PREFIXES)
    (view,) = IncidentsHealthPlugin.external_views
    parsed = ExternalViewResponse.model_validate(view)
    assert parsed.destination == "nav" and parsed.nav_top_level and parsed.url_route
    assert parsed.href == f"{mounted['url_prefix']}/"
    routes = {r.path for r in app.routes}
    assert {"/", "/health.json", "/icon.svg"} <= routes


def _cell(html: str, testid: str) -> str:
    match = re.search(rf"data-testid=['\"]{re.escape(testid)}['\"]>([^<]*)<", html)
    assert match, testid
    return match.group(1)


def test_the_page_shows_the_figures_charts_gaps_and_links(engine: Engine) -> None:
    from incidents_provider.ui.page import DagCoverage, render

    with engine.begin() as conn:
        executor = conn.execute(select(Executor.code).limit(1)).scalar_one()
        batch = conn.execute(
            insert(Batch)
            .values(
                network="vk",
                window_start=T0,
                window_end=T0 + timedelta(hours=1),
                run_id="scheduled__2026-10-05T00:00:00+00:00",
                status="analysed",
                skipped_sources=[{"source_id": "club9", "reason": "deleted"}],
            )
            .returning(Batch.id)
        ).scalar_one()
        ids = []
        for i, (incident, hazard) in enumerate([(True, True), (True, False), (False, False)]):
            ids.append(
                conn.execute(
                    insert(Post)
                    .values(
                        network="vk",
                        external_id=str(i),
                        source_id="club1",
                        author_pseudonym="a",
                        published_at=T0,
                        collected_at=T0,
                        text="t",
                        batch_id=batch,
                        is_incident=incident,
                        hazard=hazard,
                        classifier_version="rules-x",
                    )
                    .returning(Post.id)
                ).scalar_one()
            )
        case = conn.execute(
            insert(Case)
            .values(
                category="roads",
                executor_code=executor,
                opened_at=T0,
                registered_at=T0 + timedelta(hours=2),
                summary="s",
            )
            .returning(Case.id)
        ).scalar_one()
        conn.execute(insert(CasePost).values(case_id=case, post_id=ids[0], link="origin", linked_at=T0))

    report = pipeline_health(engine, T0, T0 + timedelta(days=1), granularity="hour")
    gap = {"window_start": T0 - timedelta(hours=2), "window_end": T0 - timedelta(hours=1), "kind": "failed"}
    html = render(
        report=report,
        coverage=[
            DagCoverage(
                "collect_vk", "vk", paused=False, cron="0 * * * *", gaps=[{**gap, "run_ids": ["manual__x"]}]
            ),
            DagCoverage("collect_ok", "ok", error="could not read the runs of collect_ok: 403"),
        ],
        open_gaps=[
            {
                "dag_id": "collect_vk",
                "window_start": gap["window_start"],
                "attempts": 1,
                "backfill_ids": [7],
                "alerted_at": T0,
                "paused": False,
            }
        ],
        actions=[
            {
                "at": T0,
                "dag_id": "collect_vk",
                "window_start": gap["window_start"],
                "window_end": gap["window_end"],
                "action": "alerted",
                "gap_kind": "failed",
                "backfill_id": None,
                "run_id": "scheduled__c",
            }
        ],
        quality={},
        base_url="http://airflow.example",
        self_url="http://airflow.example/incidents-health/",
        days=1,
    )
    assert _cell(html, "net-vk-posts") == "3" and _cell(html, "net-vk-incidents") == "2"
    assert _cell(html, "net-vk-hazards") == "1" and _cell(html, "net-vk-cases") == "1"
    assert _cell(html, "net-vk-incident-share") == "66.7%"
    assert _cell(html, "net-vk-lag-median") == "2.0 h" and _cell(html, "net-vk-lag-p90") == "2.0 h"
    assert _cell(html, "net-vk-gaps") == "1" and _cell(html, "net-ok-posts") == "0"
    assert _cell(html, "total-collected") == "3" and _cell(html, "total-gaps") == "1"
    assert _cell(html, "classifier-quality") == "not measured"
    assert "rules-x (3)" in _cell(html, "classifier-versions")
    for chart in ("chart-collected", "chart-quarantine", "chart-incidents", "chart-lag"):
        assert f'id="{chart}"' in html
    assert "<script" not in html and "http" not in html.split("<body>")[0].replace("http-equiv", "")
    assert "http://airflow.example/dags/collect_vk/runs/manual__x" in html
    assert "http://airflow.example/dags/collect_vk/runs/scheduled__2026-10-05T00%3A00%3A00%2B00%3A00" in html
    assert "club9" in html and "deleted" in html
    assert "1 backfill(s) [7]; alerted" in html
    assert "could not read the runs of collect_ok: 403" in html


def test_charts_cope_with_empty_and_missing_values() -> None:
    from incidents_provider.ui.charts import lag_bars, share_lines, stacked_bars

    assert "<svg" in stacked_bars("x", [], {})
    svg = share_lines("q", ["a", "b", "c"], {"vk": [0.1, None, 0.3]})
    assert svg.count("<circle") == 2 and "10.0%" in svg
    assert "no cases" in lag_bars("lag", [("vk", None, None)])


def test_airflow_finds_the_plugin_in_the_plugins_folder_and_imports_nothing_else() -> None:
    """The plugins manager loads .py files of the folder as modules; .airflowignore keeps it to
    incidents_provider/plugins/."""
    from pathlib import Path

    from airflow._shared.plugins_manager.plugins_manager import _load_plugins_from_plugin_directory

    folder = Path(__file__).resolve().parents[2] / "plugins"
    plugins, errors = _load_plugins_from_plugin_directory(str(folder))
    assert errors == {}
    assert [p.name for p in plugins] == ["incidents_health"]
    assert {Path(p.source.path).name for p in plugins} == {"incidents_health.py"}
