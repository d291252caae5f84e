"""The pipeline's stages as plain functions: what an Airflow task or a CLI command runs.

Each stage takes an engine of the case database and returns a small JSON-ready summary (the
task's XCom). They are idempotent: a rerun, a retry or an overlapping run converges on the
same rows.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select, update

from incidents.db.engine import session_scope
from incidents.db.models import Batch

log = logging.getLogger(__name__)


class IncompleteWindow(RuntimeError):
    """The window's collection did not finish (a daily limit); it must be collected again."""


def load_window(
    engine: Engine, network: str, start: datetime, end: datetime, *, landing: Any, run_id: str
) -> dict[str, Any]:
    """Upsert a landed window's posts and collection rejects; register the window as a batch.

    The batch is (re)set to ``collected`` so that processing validates it again; posts whose
    text did not change keep their labels, so re-analysis of a rerun window is cheap.
    """
    from incidents.collect.pipeline import read_posts, skipped_sources_of
    from incidents.collect.store import get_or_create_batch, quarantine, upsert_posts

    folder = landing.window_dir(network, start, end)
    manifest_path = folder / "collect.json"
    if not manifest_path.exists():
        raise FileNotFoundError(
            f"{network}: window {start.isoformat()} – {end.isoformat()} was not collected"
        )
    with manifest_path.open("r") as fh:
        manifest = json.load(fh)
    if not manifest.get("complete", False):
        raise IncompleteWindow(
            f"{network}: collection of the window stopped early: {manifest.get('stopped')}"
        )
    now = datetime.now(UTC)
    with session_scope(engine) as session:
        batch = get_or_create_batch(
            session, network, start, end, run_id, skipped_sources=skipped_sources_of(manifest)
        )
        batch.landing_uri = manifest.get("landing_uri")
        stats = upsert_posts(
            session, read_posts(folder / "posts.jsonl"), batch_id=batch.id, run_id=run_id, collected_at=now
        )
        rejects_path = folder / "rejects.jsonl"
        rejected = 0
        if rejects_path.exists():
            rejected = quarantine(
                session,
                "collect",
                (
                    {**r, "network": network, "raw": r.get("raw", r)}
                    for r in (json.loads(line) for line in rejects_path.open("r") if line.strip())
                ),
                run_id=run_id,
                batch_id=batch.id,
            )
        batch.status = "collected"
        batch.updated_at = now
        counts = {
            "posts_in_window": stats.total,
            "inserted": stats.inserted,
            "updated": stats.updated,
            "unchanged": stats.unchanged,
            "quarantined_at_collection": rejected,
            "skipped_sources": len(manifest.get("skipped") or {}),
        }
        batch.counts = {**(batch.counts or {}), **counts}
        batch_id = batch.id
    return {"network": network, "batch_id": batch_id, **counts}


def pending_batches(engine: Engine) -> list[int]:
    """Batches collected but not analysed yet, oldest window first."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(Batch.id).where(Batch.status == "collected").order_by(Batch.window_start, Batch.network)
        )
        return [r[0] for r in rows]


def process_pending(
    engine: Engine, *, run_id: str | None, docs_root: str | Path | None, max_failed_share: float = 0.05
) -> dict[str, Any]:
    """Validate and analyse every pending batch; fail (after all others) if any batch failed its gate."""
    from incidents.analysis.classifier import default_analyzer
    from incidents.processing import process_batch
    from incidents.validation.gate import ValidationFailed

    analyzer = default_analyzer()
    totals: dict[str, int] = {}
    failed: list[str] = []
    docs: list[str] = []
    batches = pending_batches(engine)
    for batch_id in batches:
        with engine.connect() as conn:
            batch = conn.execute(select(Batch).where(Batch.id == batch_id)).one()
        docs_dir = None
        if docs_root is not None:
            docs_dir = Path(docs_root) / batch.network / f"{batch.window_start:%Y%m%dT%H%M%S}_{batch_id}"
        try:
            result = process_batch(
                engine,
                batch_id,
                analyzer=analyzer,
                run_id=run_id,
                max_failed_share=max_failed_share,
                docs_dir=docs_dir,
            )
        except ValidationFailed as exc:
            failed.append(f"batch {batch_id} ({batch.network} {batch.window_start:%Y-%m-%d %H:%M}): {exc}")
            continue
        if result.docs_path:
            docs.append(str(result.docs_path))
        for key, value in (result.counts or {}).items():
            if isinstance(value, int) and not isinstance(value, bool):
                totals[key] = totals.get(key, 0) + value
    summary = {
        "batches": len(batches),
        "failed_batches": len(failed),
        **totals,
        "validation_docs": docs[-20:],
    }
    log.info("processed %s", summary)
    if failed:
        details = "\n".join(failed)
        raise ValidationFailed(f"validation failed for {len(failed)} batch(es):\n{details}")
    return summary


def route(
    engine: Engine,
    *,
    run_id: str | None = None,
    now: datetime | None = None,
    window_end: datetime | None = None,
    live_horizon: timedelta | None = None,
) -> dict[str, Any]:
    """Open or join cases for every analysed incident post not yet linked to a case.

    ``now`` is the registration time (deadlines run from it); a post whose window — ``window_end``,
    else its batch's — ended more than ``live_horizon`` before it opens a historical case (see
    :mod:`incidents.cases.routing`).
    """
    from incidents.cases.routing import route_posts

    summary = route_posts(engine, now=now, actor="pipeline", window_end=window_end, live_horizon=live_horizon)
    result = summary.as_dict()
    log.info("routing: %s", result)
    return result


def escalate(engine: Engine, *, now: datetime | None = None) -> dict[str, Any]:
    """Climb the ladder for hazard and overdue cases (exactly once per level)."""
    from incidents.cases.escalation import escalate as run_escalation

    result = run_escalation(engine, now=now).as_dict()
    log.info("escalation: %s", result)
    return result


def deliver(engine: Engine, *, send: Callable[[Any], None], rounds: int = 50) -> dict[str, Any]:
    """Deliver the notification outbox until nothing due is left (bounded by ``rounds``)."""
    from incidents.cases.notify import deliver_pending

    totals = {"sent": 0, "failed_now": 0, "gave_up": 0}
    errors: list[str] = []
    for _ in range(rounds):
        summary = deliver_pending(engine, send)
        totals["sent"] += summary.sent
        totals["failed_now"] += summary.failed_now
        totals["gave_up"] += summary.gave_up
        errors.extend(summary.errors)
        if summary.sent == 0 and summary.failed_now == 0:
            break
    log.info("delivery: %s", totals)
    for error in errors[:20]:
        log.warning("delivery failed: %s", error)
    return {**totals, "errors": errors[:20]}


def monthly_report(
    engine: Engine,
    month: date,
    *,
    out_uri: str,
    recipients: Sequence[str],
    run_id: str | None = None,
) -> dict[str, Any]:
    """Replace a month's figures, write its report and Open311 export, queue the announcement."""
    from incidents.stats.compute import compute_month
    from incidents.stats.open311 import export_open311
    from incidents.stats.report import render_report, report_email

    out_dir = out_uri[len("file://") :] if out_uri.startswith("file://") else out_uri
    summary = compute_month(engine, month)
    files = render_report(summary, out_dir, engine=engine, run_id=run_id)
    open311 = export_open311(engine, month, out_dir, run_id=run_id)
    subject, body = report_email(summary, files)
    queued = queue_announcement(engine, month, subject, body, list(recipients))
    return {
        "month": month.isoformat(),
        "files": {**files.as_dict(), "open311": open311.requests},
        "announcements_queued": queued,
    }


def queue_announcement(engine: Engine, month: date, subject: str, body: str, recipients: list[str]) -> int:
    """Queue the report announcement once per month and recipient (a rerun does not resend)."""
    from incidents.cases.sql import insert_ignore
    from incidents.db.models import Notification, table_of

    now = datetime.now(UTC)
    rows = [
        {
            "case_id": None,
            "channel": "email",
            "recipient": recipient,
            "subject": subject,
            "body": body,
            "status": "pending",
            "attempts": 0,
            "idempotency_key": f"report:{month:%Y-%m}:{recipient}"[:200],
            "created_at": now,
        }
        for recipient in recipients
    ]
    with engine.begin() as conn:
        return len(insert_ignore(conn, table_of(Notification), rows, returning="id"))


def reset_batches(engine: Engine, network: str | None = None) -> int:
    """Mark analysed batches as collected again (reprocessing after a classifier upgrade)."""
    stmt = update(Batch).values(status="collected")
    if network:
        stmt = stmt.where(Batch.network == network)
    with engine.begin() as conn:
        return conn.execute(stmt).rowcount
