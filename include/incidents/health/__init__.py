"""Pipeline health: figures per network and window read from the case database (no Airflow).

The Airflow UI plugin (``incidents_provider.ui``) renders them; :mod:`incidents.health.queries`
computes them.
"""
