"""Reprocessing: cases whose origin post was relabelled by another classifier version.

Cases no operator touched are relabelled (event ``relabelled``), touched cases only get a
``suggestion`` (event ``suggestion``); see :func:`apply_reclassification`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import ColumnElement, Engine, Row, and_, or_, select, update

from incidents.cases.create import LABEL_FIELDS, POST_COLUMNS, event_row
from incidents.cases.deadlines import as_utc
from incidents.cases.errors import RoutingError
from incidents.cases.reference import RoutingReference
from incidents.cases.sql import ROUTING_LOCK, begin_write, insert_ignore
from incidents.cases.validate import case_fields
from incidents.db.models import Case, CaseEvent, CasePost, Post, table_of

log = logging.getLogger(__name__)


def post_filters(
    post_ids: Sequence[int] | None, batch_id: int | None, since: datetime | None
) -> list[ColumnElement[bool]]:
    """WHERE clauses on ``posts`` for a selection by ids, batch and publication time."""
    where: list[ColumnElement[bool]] = []
    if batch_id is not None:
        where.append(Post.batch_id == batch_id)
    if since is not None:
        where.append(Post.published_at >= as_utc(since))
    if post_ids is not None:
        where.append(Post.id.in_(list(post_ids)))
    return where


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


class _PostView(SimpleNamespace):
    """Attribute access to a post's columns read under prefixed labels."""

    def __init__(self, values: dict[str, Any]) -> None:
        super().__init__(**values)


def apply_reclassification(
    engine: Engine,
    post_ids: Sequence[int] | None = None,
    *,
    batch_id: int | None = None,
    since: datetime | None = None,
    now: datetime | None = None,
    actor: str = "reprocessing",
    reference: RoutingReference | None = None,
) -> tuple[int, int]:
    """Reconcile cases whose origin post has labels of another classifier version.

    A case no operator touched takes the new labels (executor, priority, deadlines
    recomputed from ``registered_at``; event ``relabelled`` with old and new values; a post that
    is no longer an incident rejects the case as ``not_confirmed``). A case an operator
    touched is never overwritten: the new labels go to ``case.suggestion`` with an event
    ``suggestion``. Either way ``case.classifier_version`` records the version reconciled
    with, so a rerun does nothing. Returns ``(relabelled, suggestions)``.
    """
    now = as_utc(now or datetime.now(UTC))
    ref = reference or RoutingReference.load(engine)
    relabelled = suggestions = 0
    with engine.connect() as conn, conn.begin():
        begin_write(conn, ROUTING_LOCK)
        query = (
            select(
                Case.__table__,
                *[c.label(f"p_{c.key}") for c in POST_COLUMNS],
                Post.is_incident.label("p_is_incident"),
            )
            .join(CasePost, and_(CasePost.case_id == Case.id, CasePost.link == "origin"))
            .join(Post, Post.id == CasePost.post_id)
            .where(
                Post.classifier_version.is_not(None),
                or_(Case.classifier_version.is_(None), Case.classifier_version != Post.classifier_version),
                *post_filters(None, batch_id, since),
            )
        )
        parts: list[Sequence[int] | None] = (
            [list(post_ids[i : i + 5000]) for i in range(0, len(post_ids), 5000)]
            if post_ids is not None
            else [None]
        )
        rows: list[Row[Any]] = []
        for part in parts:
            q = query if part is None else query.where(Post.id.in_(part))
            rows.extend(conn.execute(q).all())
        events: list[dict[str, Any]] = []
        for row in rows:
            m = row._mapping
            post = _PostView({k[2:]: v for k, v in m.items() if isinstance(k, str) and k.startswith("p_")})
            version = post.classifier_version
            old = {f: m[f] for f in LABEL_FIELDS}
            if not post.is_incident:
                new: dict[str, Any] = {"is_incident": False}
            else:
                try:
                    new = case_fields(post, ref, as_utc(m["registered_at"] or m["opened_at"]))
                    new.pop("opened_at")
                    new.pop("registered_at")
                except RoutingError as exc:
                    log.warning("case %s: new labels of post %s cannot be routed: %s", m["id"], post.id, exc)
                    new = {"error": str(exc)}
            details = {
                "post_id": post.id,
                "classifier_version": version,
                "old": {k: _jsonable(v) for k, v in old.items()},
                "new": {k: _jsonable(v) for k, v in new.items()},
            }
            if m["operator_touched"] or "error" in new:
                conn.execute(
                    update(Case)
                    .where(Case.id == m["id"])
                    .values(
                        suggestion=details["new"] | {"classifier_version": version, "at": now.isoformat()},
                        classifier_version=version,
                        updated_at=now,
                    )
                )
                events.append(
                    event_row(m["id"], "suggestion", actor, now, details, f"suggest:{m['id']}:{version}")
                )
                suggestions += 1
                continue
            values: dict[str, Any] = {"classifier_version": version, "updated_at": now}
            if new.get("is_incident") is False:
                if m["status"] not in ("resolved", "rejected"):
                    values.update(status="rejected", rejection_reason="not_confirmed")
            else:
                values.update(new)
            conn.execute(update(Case).where(Case.id == m["id"]).values(**values))
            events.append(
                event_row(m["id"], "relabelled", actor, now, details, f"relabel:{m['id']}:{version}")
            )
            relabelled += 1
        insert_ignore(conn, table_of(CaseEvent), events)
    if relabelled or suggestions:
        log.info(
            "reprocessing: %d case(s) relabelled, %d suggestion(s) for operators", relabelled, suggestions
        )
    return relabelled, suggestions
