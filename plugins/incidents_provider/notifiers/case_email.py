"""E-mail notifiers built on the SMTP provider's ``SmtpNotifier``."""

from __future__ import annotations

import html
from typing import Any

from airflow.providers.smtp.notifications.smtp import SmtpNotifier

from incidents.config import settings


class CaseEmailNotifier:
    """Send the case database's outbox rows through ``SmtpNotifier`` (connection ``smtp_default``).

    Rows are sent as they are (no Jinja rendering: residents' texts may contain braces).
    """

    def __init__(self, *, smtp_conn_id: str = "smtp_default", from_email: str) -> None:
        self.smtp_conn_id = smtp_conn_id
        self.from_email = from_email

    def send(self, notification: Any, context: Any) -> None:
        """Deliver one ``Notification`` row; raises on failure so the outbox records it."""
        if notification.channel != "email":
            raise ValueError(f"channel {notification.channel!r} is not configured")
        body = notification.body
        if not body.lstrip().startswith("<"):  # plain text (case notifications): keep its lines
            body = f'<pre style="font-family: sans-serif; white-space: pre-wrap">{html.escape(body)}</pre>'
        SmtpNotifier(
            to=notification.recipient,
            from_email=self.from_email,
            subject=notification.subject,
            html_content=body,
            smtp_conn_id=self.smtp_conn_id,
            custom_headers={"X-Incidents-Notification": notification.idempotency_key},
        ).notify(context)


def failure_notifier() -> SmtpNotifier:
    """Task-failure alert for the data engineers (recipients from ``INCIDENTS_ALERT_EMAILS``)."""
    current = settings()
    return SmtpNotifier(
        to=list(current.alert_emails),
        from_email=current.mail_from,
        subject="[incidents] {{ ti.dag_id }}.{{ ti.task_id }} failed ({{ ti.run_id }})",
        html_content=(
            "<p>Task <b>{{ ti.task_id }}</b> of <b>{{ ti.dag_id }}</b> failed, try {{ ti.try_number }}.</p>"
            "<p>Run: {{ ti.run_id }}; data interval: {{ dag_run.data_interval_start }} – "
            "{{ dag_run.data_interval_end }}</p>"
            "<p>Exception: {{ exception }}</p>"
        ),
        smtp_conn_id="smtp_default",
    )
