"""Airflow plugin: the "Incidents pipeline health" view in Airflow's navigation.

The FastAPI app is mounted by the api-server under ``/incidents-health``; the external view puts it
in the navigation (top level), rendered inside Airflow's UI (``url_route``), behind Airflow's login.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from incidents_provider.ui.health_app import URL_PREFIX, app


class IncidentsHealthPlugin(AirflowPlugin):
    """Registers the health app and its navigation entry."""

    name = "incidents_health"
    fastapi_apps = [{"app": app, "url_prefix": URL_PREFIX, "name": "Incidents pipeline health"}]
    external_views = [
        {
            "name": "Incidents pipeline health",
            "href": f"{URL_PREFIX}/",
            "icon": f"{URL_PREFIX}/icon.svg",
            "destination": "nav",
            "url_route": "incidents-health",
            "nav_top_level": True,
        }
    ]
