"""The Airflow UI extension "Incidents pipeline health": a FastAPI app (``health_app``) rendering
figures of the domain package (``incidents.health``) as HTML with inline SVG charts (``page``,
``charts``). Registered by the plugin in ``incidents_provider.plugins``."""
