"""The e-mail alert of collection gaps that survived their catch-up (``coverage`` DAG)."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

from airflow.providers.smtp.notifications.smtp import SmtpNotifier

from incidents.config import settings
from incidents.coverage.windows import Gap


def gap_alert_subject(dag_id: str, gaps: Sequence[Gap]) -> str:
    first, last = gaps[0].window, gaps[-1].window
    span = (
        first.label() if len(gaps) == 1 else f"{first.start:%Y-%m-%d %H:%M} – {last.end:%Y-%m-%d %H:%M} UTC"
    )
    return f"[incidents] {dag_id}: {len(gaps)} collection window(s) still missing after catch-up ({span})"


def gap_alert_body(dag_id: str, gaps: Sequence[Gap], *, attempts: int, ui_url: str | None = None) -> str:
    """HTML listing each gap (window, kind, failed runs) and what to do."""
    rows = "".join(
        "<tr><td>{}</td><td>{}</td><td>{}</td></tr>".format(
            html.escape(g.window.label()), html.escape(g.kind), html.escape(", ".join(g.run_ids) or "no run")
        )
        for g in gaps
    )
    link = f'<p><a href="{html.escape(ui_url)}">{html.escape(ui_url)}</a></p>' if ui_url else ""
    return (
        f"<p>The <b>coverage</b> DAG could not catch up these windows of <b>{html.escape(dag_id)}</b> "
        f"after {attempts} backfill attempt(s). Each gap is alerted once; the pipeline keeps no posts "
        "of these windows until they are collected.</p>"
        "<table border='1' cellpadding='4' cellspacing='0'><tr><th>window</th><th>gap</th>"
        f"<th>runs</th></tr>{rows}</table>"
        "<p>Look at the failed runs' task logs (a refused token needs the network's connection to be "
        "fixed), then rerun the windows: <code>airflow backfill create --dag-id "
        f"{html.escape(dag_id)} --from-date … --to-date … --reprocess-behavior failed</code>.</p>{link}"
    )


def send_gap_alert(
    dag_id: str,
    gaps: Sequence[Gap],
    context: Any,
    *,
    attempts: int,
    ui_url: str | None = None,
    smtp_conn_id: str = "smtp_default",
) -> None:
    """Send one alert e-mail about ``gaps`` to ``INCIDENTS_ALERT_EMAILS`` (raises on failure)."""
    current = settings()
    # SmtpNotifier renders Jinja templates: the texts are ours, but keep braces literal anyway
    body = gap_alert_body(dag_id, gaps, attempts=attempts, ui_url=ui_url)
    SmtpNotifier(
        to=list(current.alert_emails),
        from_email=current.mail_from,
        subject="{% raw %}" + gap_alert_subject(dag_id, gaps) + "{% endraw %}",
        html_content="{% raw %}" + body + "{% endraw %}",
        smtp_conn_id=smtp_conn_id,
        custom_headers={
            "X-Incidents-Coverage-Gaps": ",".join(f"{dag_id}@{g.window.start.isoformat()}" for g in gaps)
        },
    ).notify(context)
