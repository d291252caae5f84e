"""The one place that creates cases — and turns historical cases live.

* :func:`insert_cases` — routing's new cases (status ``assigned``: the executor is assigned by
  the rules), with the events ``opened`` (→ ``new``) and ``assigned`` (→ ``assigned``) under the
  idempotency keys ``open:<post_id>`` and ``assign:<post_id>``;
* :func:`split_post` — an operator moves a post out of its case into a new case;
* :func:`enqueue_opened` — the e-mails of a hazard case that is (or just became) live: to the
  executor and the regional duty officer (keys ``notify:<case>:opened:<executor code>``);
* :func:`make_live` — a historical case becomes live: deadlines from now, escalation on (event
  ``live``); used when an operator reopens one (``case reopen``) and when a post of a live
  window joins one.

**Historical cases.** A case registered from a window that ended longer ago than the live
horizon (``INCIDENTS_LIVE_HORIZON_HOURS``, default 72) has ``historical`` set: it is counted in
the statistics and listed for operators (``case list --historical``) but never notified nor
escalated automatically, so backfilling history never floods anyone with e-mails. Deadlines of
every case run from ``registered_at`` (when the pipeline registered it); ``opened_at`` stays the
post's time, for statistics and lag.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, select, update

from incidents.cases.deadlines import as_utc
from incidents.cases.dedupe import fingerprint_of_normalised, normalise_text
from incidents.cases.errors import CaseError, RoutingError
from incidents.cases.notify import compose, load_case_contexts, notification_row
from incidents.cases.reference import RoutingReference
from incidents.cases.sql import ROUTING_LOCK, begin_write, insert_ignore
from incidents.cases.validate import case_fields
from incidents.db.models import Case, CaseEvent, CasePost, Notification, Post, table_of

log = logging.getLogger(__name__)

SUMMARY_CHARS = 300
LABEL_FIELDS = (
    "category",
    "topic",
    "municipality_code",
    "settlement_oktmo",
    "executor_code",
    "priority",
    "hazard_type",
    "special_control",
    "first_response_due",
    "resolution_due",
)
"""The case fields that come from a post's labels (and the routing and deadline rules)."""

POST_COLUMNS = (
    Post.id,
    Post.network,
    Post.external_id,
    Post.kind,
    Post.parent_external_id,
    Post.published_at,
    Post.text,
    Post.url,
    Post.batch_id,
    Post.category,
    Post.topic,
    Post.hazard,
    Post.hazard_type,
    Post.municipality_code,
    Post.settlement_oktmo,
    Post.classifier_version,
    Post.place_key,
)
"""The post columns routing reads."""


def event_row(
    case_id: int, kind: str, actor: str, at: datetime, details: dict[str, Any] | None, key: str | None
) -> dict[str, Any]:
    """A ``case_events`` row without a status change."""
    return {
        "case_id": case_id,
        "kind": kind,
        "from_status": None,
        "to_status": None,
        "actor": actor,
        "at": at,
        "details": details,
        "idempotency_key": key[:200] if key else None,
    }


def case_row(
    fields: dict[str, Any], origin: Any, fp: str, now: datetime, *, operator_touched: bool = False
) -> dict[str, Any]:
    """A ``cases`` row opened in status ``assigned`` from its fields and origin post."""
    return {
        **fields,
        "historical": bool(fields.get("historical", False)),
        "status": "assigned",
        "summary": (origin.text or "").strip()[:SUMMARY_CHARS],
        "fingerprint": fp,
        "escalation_level": 0,
        "operator_touched": operator_touched,
        "classifier_version": origin.classifier_version,
        "updated_at": now,
    }


def opening_events(
    case_id: int, post: Any, executor_code: str, actor: str, now: datetime, *, historical: bool
) -> list[dict[str, Any]]:
    """``opened`` and ``assigned`` of a routed case (keys ``open:<post>``, ``assign:<post>``)."""
    opened = event_row(
        case_id,
        "opened",
        actor,
        now,
        {"post_id": post.id, "network": post.network, "url": post.url}
        | ({"historical": True} if historical else {}),
        f"open:{post.id}",
    )
    assigned = event_row(
        case_id,
        "assigned",
        actor,
        now,
        {"executor_code": executor_code, "by": "routing_rules"},
        f"assign:{post.id}",
    )
    return [opened | {"to_status": "new"}, assigned | {"from_status": "new", "to_status": "assigned"}]


def insert_cases(conn: Connection, rows: list[dict[str, Any]]) -> list[int]:
    """Insert case rows in one statement; their ids in order."""
    if not rows:
        return []
    case_table = table_of(Case)
    result = conn.execute(case_table.insert().returning(case_table.c.id, sort_by_parameter_order=True), rows)
    return list(result.scalars().all())


def enqueue_opened(conn: Connection, case_ids: Iterable[int], ref: RoutingReference, now: datetime) -> int:
    """Outbox rows for live hazard cases: the executor and the regional duty officer."""
    contexts = load_case_contexts(conn, case_ids)
    duty = ref.executor_of_kind("duty_officer")
    if duty is None and contexts:
        log.warning("no duty officer among executors: hazard cases notify their executor only")
    rows = []
    for case_id, ctx in contexts.items():
        if ctx.get("historical"):
            continue  # never e-mail about history
        subject, body = compose(ctx, reason="opened")
        recipients = [ref.executors[ctx["executor_code"]]]
        if duty is not None and duty.code != ctx["executor_code"]:
            recipients.append(duty)
        for rec in recipients:
            rows.append(
                notification_row(
                    case_id=case_id,
                    recipient=rec.email,
                    subject=subject,
                    body=body,
                    key=f"notify:{case_id}:opened:{rec.code}",
                    now=now,
                )
            )
    insert_ignore(conn, table_of(Notification), rows)
    return len(rows)


def make_live(
    conn: Connection,
    case_ids: Iterable[int],
    ref: RoutingReference,
    *,
    now: datetime,
    actor: str,
    reason: str,
    post_ids: dict[int, int] | None = None,
    operator: bool = False,
) -> list[int]:
    """Historical, open cases among ``case_ids`` become live: registered now, deadlines from now.

    The escalation ladder starts again from level 0 (the escalation run picks the case up), and
    a hazard case is e-mailed at once like any live hazard. Writes an event ``live`` (key
    ``live:<case>:<registered_at>``). Returns the ids of the cases changed.
    """
    ids = sorted(set(case_ids))
    if not ids:
        return []
    rows = conn.execute(
        select(
            Case.id,
            Case.category,
            Case.topic,
            Case.historical,
            Case.status,
            Case.special_control,
            Case.hazard_type,
        ).where(Case.id.in_(ids))
    ).all()
    changed: list[int] = []
    events: list[dict[str, Any]] = []
    for row in rows:
        if not row.historical or row.status not in ("new", "assigned", "in_progress"):
            continue
        hazard_type = row.hazard_type if row.special_control else None
        first_due, resolution_due = ref.due(row.category, row.topic, now, hazard_type)
        values: dict[str, Any] = {
            "historical": False,
            "registered_at": now,
            "first_response_due": first_due,
            "resolution_due": resolution_due,
            "escalation_level": 0,
            "updated_at": now,
        }
        if operator:
            values["operator_touched"] = True
        conn.execute(update(Case).where(Case.id == row.id).values(**values))
        details: dict[str, Any] = {"reason": reason}
        if post_ids and row.id in post_ids:
            details["post_id"] = post_ids[row.id]
        events.append(event_row(row.id, "live", actor, now, details, f"live:{row.id}:{now.isoformat()}"))
        changed.append(row.id)
    insert_ignore(conn, table_of(CaseEvent), events)
    hazards = [r.id for r in rows if r.id in changed and r.special_control]
    if hazards:
        enqueue_opened(conn, hazards, ref, now)
    return changed


def reopen_historical(engine: Engine, case_id: int, actor: str, *, at: datetime | None = None) -> int:
    """An operator makes a historical case live (``case reopen``); :class:`CaseError` otherwise."""
    at = as_utc(at or datetime.now(UTC))
    ref = RoutingReference.load(engine)
    with engine.connect() as conn, conn.begin():
        begin_write(conn, ROUTING_LOCK)
        row = conn.execute(select(Case.historical, Case.status).where(Case.id == case_id)).first()
        if row is None:
            raise CaseError(f"case {case_id} does not exist")
        if not row.historical:
            raise CaseError(f"case {case_id} is already live")
        if row.status not in ("new", "assigned", "in_progress"):
            raise CaseError(
                f"case {case_id} is {row.status}: reopen its status first (case status {case_id} in_progress)"
            )
        make_live(conn, [case_id], ref, now=at, actor=actor, reason="reopened by an operator", operator=True)
    log.info("%s made historical case %s live", actor, case_id)
    return case_id


def split_post(engine: Engine, case_id: int, post_id: int, actor: str, *, at: datetime | None = None) -> int:
    """Move ``post_id`` out of ``case_id`` into a new case; return the new case's id.

    The new case copies the labels of the post (executor and deadlines by the routing
    rules; registered when the old case was, historical if it was), its link is ``operator``;
    a ``split`` event is written on both cases and both are marked as touched by an operator.
    If the post was the origin of its case, the earliest remaining post becomes the origin.
    Splitting the only post of a case is an error (there would be nothing left).
    """
    at = as_utc(at or datetime.now(UTC))
    ref = RoutingReference.load(engine)
    with engine.connect() as conn, conn.begin():
        begin_write(conn, ROUTING_LOCK)
        link = conn.execute(
            select(CasePost.__table__).where(CasePost.post_id == post_id, CasePost.case_id == case_id)
        ).first()
        if link is None:
            raise CaseError(f"post {post_id} is not in case {case_id}")
        remaining = conn.execute(
            select(CasePost.id, CasePost.post_id, CasePost.link)
            .join(Post, Post.id == CasePost.post_id)
            .where(CasePost.case_id == case_id, CasePost.post_id != post_id)
            .order_by(Post.published_at, CasePost.id)
        ).all()
        if not remaining:
            raise CaseError(f"post {post_id} is the only post of case {case_id}: nothing to split")
        post = conn.execute(select(*POST_COLUMNS).where(Post.id == post_id)).one()
        old = conn.execute(select(Case.__table__).where(Case.id == case_id)).one()._mapping
        registered = as_utc(old["registered_at"] or old["opened_at"])
        try:
            f = case_fields(post, ref, registered)
        except RoutingError:
            f = {k: old[k] for k in LABEL_FIELDS} | {
                "opened_at": as_utc(post.published_at),
                "registered_at": registered,
            }
        f["historical"] = bool(old["historical"])
        fp = fingerprint_of_normalised(normalise_text(post.text))
        new_id = insert_cases(conn, [case_row(f, post, fp, at, operator_touched=True)])[0]
        conn.execute(
            update(CasePost)
            .where(CasePost.id == link.id)
            .values(case_id=new_id, link="operator", score=None, linked_at=at)
        )
        old_values: dict[str, Any] = {"operator_touched": True, "updated_at": at}
        if link.link == "origin":
            promoted = remaining[0]
            conn.execute(update(CasePost).where(CasePost.id == promoted.id).values(link="origin"))
            ptext = conn.execute(select(Post.text).where(Post.id == promoted.post_id)).scalar_one()
            old_values.update(
                summary=(ptext or "").strip()[:SUMMARY_CHARS],
                fingerprint=fingerprint_of_normalised(normalise_text(ptext)),
            )
        conn.execute(update(Case).where(Case.id == case_id).values(**old_values))
        details = {
            "post_id": post_id,
            "fingerprint": fp,
            "from_case_id": case_id,
            "to_case_id": new_id,
            "previous_link": link.link,
            "previous_score": link.score,
        }
        rows = [
            event_row(case_id, "split", actor, at, details, None),
            event_row(new_id, "split", actor, at, details, None),
            event_row(new_id, "opened", actor, at, {"post_id": post_id, "split_from": case_id}, None)
            | {"to_status": "new"},
            event_row(new_id, "assigned", actor, at, {"executor_code": f["executor_code"]}, None)
            | {"from_status": "new", "to_status": "assigned"},
        ]
        conn.execute(table_of(CaseEvent).insert(), rows)
    log.info("%s split post %s out of case %s into case %s", actor, post_id, case_id, new_id)
    return new_id


def split(engine: Engine, case_id: int, post_id: int, actor: str, *, at: datetime | None = None) -> int:
    """Alias of :func:`split_post` (the operators' name, see :mod:`incidents.cases.dedupe`)."""
    return split_post(engine, case_id, post_id, actor, at=at)
