"""Coverage DAG: every hour, find collection windows that are missing or failed and catch them up."""

from datetime import timedelta

from airflow.sdk import DAG, DeltaDataIntervalTimetable

from incidents import NETWORKS
from incidents.config import settings
from incidents_provider.defaults import START_DATE, default_args
from incidents_provider.operators.coverage import CoverageOperator

with DAG(
    dag_id="coverage",
    description="Find missing or failed collection windows, backfill them, alert what cannot be caught up",
    schedule=DeltaDataIntervalTimetable(timedelta(minutes=settings().coverage_every_minutes)),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=default_args(retries=2),
    tags=["incidents", "collection", "coverage"],
    doc_md="""
### Collection coverage and catch-up

Every hour (`INCIDENTS_COVERAGE_EVERY_MINUTES`), for each `collect_<network>` DAG, through Airflow's REST API (Connection
`airflow_api`: an Airflow user allowed to read DAG runs and create backfills; `host` defaults to
`[api] base_url`):

1. **find gaps** — the DAG's windows (its interval timetable) since the lookback
   (`INCIDENTS_COVERAGE_LOOKBACK_HOURS`, never before the DAG's first run) that ended more than the
   grace period ago (`INCIDENTS_COVERAGE_GRACE_MINUTES`) and have no successful, queued or running
   run: *missing* (paused, scheduler down) or *failed* past their retries.
2. **catch up** — one backfill (`POST /api/v2/backfills`, `reprocess_behavior=failed`) over the
   gaps' range, with the DAG's `max_active_runs`; a dry run first checks it creates runs for
   exactly the gap windows. The backfill's tasks use the network's pool (`<network>_api`). A
   paused DAG is not backfilled (its backfill would never start); a DAG with a backfill still
   running waits for it.
3. **alert** — a gap that is still there after its catch-up (`INCIDENTS_COVERAGE_MAX_ATTEMPTS`
   backfills, 1 by default) is e-mailed to `INCIDENTS_ALERT_EMAILS` once: one e-mail per DAG and
   run listing the new survivors, never a second one for the same gap.

Every action (detected, backfill_requested, caught_up, alerted, skipped_paused) is logged here and
stored in the case database (`coverage_actions`, unique per action), and shown in the
*Incidents pipeline health* view.
""",
):
    CoverageOperator(task_id="cover", dag_ids=[f"collect_{n}" for n in NETWORKS])
