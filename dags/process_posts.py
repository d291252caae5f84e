"""Processing DAG: validate → analyse → route, triggered by the collection Assets."""

from airflow.sdk import DAG

from incidents_provider.defaults import START_DATE, default_args
from incidents_provider.operators.collect import posts_asset
from incidents_provider.operators.process import ProcessBatchesOperator, RouteIncidentsOperator

with DAG(
    dag_id="process_posts",
    description="Validate collected batches (Great Expectations), classify posts, route incidents into cases",
    schedule=(
        posts_asset("vk")
        | posts_asset("ok")
        | posts_asset("twitter")
        | posts_asset("facebook")
        | posts_asset("instagram")
    ),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    tags=["incidents", "processing"],
    doc_md="""
### Process collected posts

Runs whenever any collection DAG updates its Asset (`incidents://posts/<network>`), and picks up
**every** batch not yet analysed, so nothing waits for the next event.

1. **validate_and_analyse** — per batch (network × window): a Great Expectations gate (schema and
   types, non-empty id and text, unique ids, time inside the window, plausible lengths, known
   source). Failing records go to quarantine with the failing expectation; above the configured
   failing share (`INCIDENTS_MAX_FAILED_SHARE`, default 5 %) the task fails with a summary.
   Valid posts are classified (incident, category, topic, hazard, municipality, settlement) and
   the labels are stored with the classifier version. Idempotent per batch.
2. **route** — every new incident post opens a case or joins an existing one (duplicate merge);
   hazards go under special control. Deadlines run from the registration; cases of windows that
   ended longer ago than `INCIDENTS_LIVE_HORIZON_HOURS` (72) — a backfill — are registered as
   historical: counted and listed, never notified or escalated. Updates the Asset `incidents://cases`.
""",
):
    process = ProcessBatchesOperator(task_id="validate_and_analyse")
    route = RouteIncidentsOperator(task_id="route")
    process >> route
