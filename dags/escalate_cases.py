"""Escalation DAG: every 15 minutes, hazards and overdue cases climb the ladder; e-mails go out."""

from datetime import timedelta

from airflow.sdk import DAG, DeltaDataIntervalTimetable

from incidents_provider.defaults import START_DATE, default_args
from incidents_provider.operators.process import DeliverNotificationsOperator, EscalateCasesOperator

with DAG(
    dag_id="escalate_cases",
    description="Escalate hazard and overdue cases, deliver notifications by e-mail",
    schedule=DeltaDataIntervalTimetable(timedelta(minutes=15)),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=2,
    default_args=default_args(retries=2),
    tags=["incidents", "cases", "escalation"],
    doc_md="""
### Escalate cases and deliver notifications

Every 15 minutes:

1. **escalate** — special-control (hazard) cases and cases past their first-response or
   resolution deadline climb the ladder: executor → head of the municipality or the minister →
   deputy chairman of the regional government. Each level happens exactly once per case (a unique
   case-event key), also when two runs overlap; each step is a case event and queues e-mails.
   Historical cases (from backfilled windows) never climb; `case reopen` makes one live.
2. **deliver** — sends the notification outbox over SMTP (`smtp_default`) through an Airflow
   notifier. A failed delivery stays queued with its error and is retried by the next run.
""",
):
    escalate = EscalateCasesOperator(task_id="escalate")
    deliver = DeliverNotificationsOperator(task_id="deliver")
    escalate >> deliver
