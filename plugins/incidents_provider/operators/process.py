"""Processing and cases: validate → analyse → route, escalate, deliver notifications."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset, BaseOperator, Context, ObjectStoragePath

from incidents.config import settings
from incidents_provider.hooks.case_db import CaseDbHook

if TYPE_CHECKING:
    from sqlalchemy import Engine

log = logging.getLogger(__name__)

ANALYSED_ASSET = Asset(name="analysed_posts", uri="incidents://posts/analysed", group="incidents")
CASES_ASSET = Asset(name="cases", uri="incidents://cases", group="incidents")


class _CaseDbOperator(BaseOperator):
    def __init__(self, *, case_db_conn_id: str = "case_db", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.case_db_conn_id = case_db_conn_id

    def engine(self) -> Engine:
        return CaseDbHook(self.case_db_conn_id).get_conn()


class ProcessBatchesOperator(_CaseDbOperator):
    """Validate (Great Expectations) and analyse every collected batch not analysed yet.

    Failing records go to quarantine with the failing expectation; a batch whose failing
    share passes ``INCIDENTS_MAX_FAILED_SHARE`` fails the task with a summary. Validation
    results are written next to the batch's landing folder and linked in the log.
    """

    ui_color = "#fef3c7"

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("outlets", [ANALYSED_ASSET])
        super().__init__(**kwargs)

    def execute(self, context: Context) -> dict[str, Any]:
        from incidents.stages import process_pending

        docs_root = ObjectStoragePath(settings().landing_uri) / "validation"
        summary = process_pending(
            self.engine(),
            run_id=context["run_id"],
            docs_root=str(docs_root.path if docs_root.protocol == "file" else docs_root),
            max_failed_share=settings().max_failed_share,
        )
        for item in summary.get("validation_docs", []):
            log.info("validation results: %s", item)
        return summary


class RouteIncidentsOperator(_CaseDbOperator):
    """Open or join cases for every analysed incident post not linked to a case yet.

    Cases from windows that ended longer ago than ``INCIDENTS_LIVE_HORIZON_HOURS`` (72 by
    default) are registered as historical: never notified or escalated automatically.
    """

    ui_color = "#fee2e2"

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("outlets", [CASES_ASSET])
        super().__init__(**kwargs)

    def execute(self, context: Context) -> dict[str, Any]:
        from incidents.stages import route

        # registered now: deadlines run from the real clock; each post's window end comes from its
        # batch, so a backfilled window's cases are historical and a live window's are not
        return route(self.engine(), run_id=context["run_id"], live_horizon=settings().live_horizon)


class EscalateCasesOperator(_CaseDbOperator):
    """Escalate hazard and overdue cases one ladder level at a time, exactly once per level."""

    ui_color = "#fecaca"

    def execute(self, context: Context) -> dict[str, Any]:
        from incidents.stages import escalate

        # deadlines run in real time: escalate against the clock, not the run's logical date
        return escalate(self.engine(), now=datetime.now(UTC))


class DeliverNotificationsOperator(_CaseDbOperator):
    """Deliver the notification outbox by e-mail through an Airflow notifier.

    A failed delivery stays in the outbox with its error and is retried by the next run,
    until it is given up after the configured attempts (recorded as a case event).
    """

    ui_color = "#e9d5ff"

    def __init__(self, *, smtp_conn_id: str = "smtp_default", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.smtp_conn_id = smtp_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        from incidents.stages import deliver
        from incidents_provider.notifiers.case_email import CaseEmailNotifier

        notifier = CaseEmailNotifier(smtp_conn_id=self.smtp_conn_id, from_email=settings().mail_from)
        summary = deliver(self.engine(), send=lambda n: notifier.send(n, context))
        if summary.get("failed_now"):
            log.warning("%s notifications failed this run and stay queued", summary["failed_now"])
        return summary
