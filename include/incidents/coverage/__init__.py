"""Collection coverage: which windows of the collection DAGs are missing or failed, what the
``coverage`` DAG did about them (catch-up backfills, alerts), free of Airflow.

* :mod:`incidents.coverage.windows`: expected windows of a cron timetable, gaps, decisions;
* :mod:`incidents.coverage.store`: the ``coverage_actions`` audit trail (idempotent).
"""
