"""Airflow glue of the incidents pipeline, laid out like one of Airflow's own providers.

* ``hooks``: turn Airflow Connections into the domain package's clients and engines;
* ``operators``: thin operators that call the domain package;
* ``notifiers``: e-mail notifications of cases and of failed tasks;
* ``listeners``: run-level bookkeeping visible to data engineers;
* ``timetables``: the data-interval timetables the DAGs use.

The domain logic lives in ``include/incidents`` and never imports Airflow.
"""
