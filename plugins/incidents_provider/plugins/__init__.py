"""Airflow plugins of the project (the api-server loads them from the plugins folder)."""
