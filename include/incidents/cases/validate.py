"""Routing, step 1 of 3 (validate): a post's labels become the fields of its case, or a quarantine row.

Unknown category, topic or municipality, a topic of another category or a missing routing
rule raise :class:`~incidents.cases.errors.RoutingError`; routing sends the post to quarantine
(stage ``route``) with that reason.

**Case fields.** Priority ``critical`` for hazards (the post's ``hazard`` label or a hazard
topic; then ``special_control`` is set and ``hazard_type`` copied), ``high`` for priority (★)
topics, ``normal`` otherwise. ``opened_at`` is the post's publication time (statistics and lag
run from it). Deadlines come from the topic's deadline rule, else the category's (``*``), and
run on the production calendar from ``registered_at``, the moment the pipeline registers the
case (:mod:`incidents.cases.deadlines`) — so a case built from a backfilled window is not
overdue the moment it exists.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from typing import Any

from incidents import CATEGORIES
from incidents.cases.deadlines import as_utc
from incidents.cases.errors import RoutingError
from incidents.cases.reference import RoutingReference

log = logging.getLogger(__name__)

DEFAULT_LIVE_HORIZON = timedelta(hours=72)
"""Default of ``INCIDENTS_LIVE_HORIZON_HOURS``."""


def is_historical(window_end: datetime, registered_at: datetime, horizon: timedelta) -> bool:
    """True when the window ended longer than ``horizon`` before the case is registered."""
    return as_utc(registered_at) - as_utc(window_end) > horizon


def case_fields(post: Any, ref: RoutingReference, registered_at: datetime | None = None) -> dict[str, Any]:
    """The labels of a post turned into the fields of its case; raises :class:`RoutingError`.

    Deadlines run from ``registered_at`` (default: the post's publication time).
    """
    category = post.category
    if category not in CATEGORIES:
        raise RoutingError(f"unknown category {category!r}")
    topic = post.topic or None
    info = None
    if topic is not None:
        info = ref.topics.get(topic)
        if info is None:
            raise RoutingError(f"unknown topic {topic!r}")
        if info.category != category:
            raise RoutingError(f"topic {topic!r} belongs to category {info.category!r}, not {category!r}")
    municipality = post.municipality_code or None
    if municipality is not None and municipality not in ref.municipalities:
        raise RoutingError(f"unknown municipality {municipality!r}")
    executor = ref.executor_for(category, topic, municipality)
    if executor is None or executor not in ref.executors:
        raise RoutingError(f"no routing rule for {category}/{topic or '*'}/{municipality or '*'}")
    hazard = bool(post.hazard) or bool(info and info.hazard)
    priority = "critical" if hazard else ("high" if info and info.priority else "normal")
    hazard_type = (post.hazard_type or (info.hazard_type if info else None)) if hazard else None
    opened_at = as_utc(post.published_at)
    registered = as_utc(registered_at) if registered_at is not None else opened_at
    if ref.deadline_for(category, topic, hazard_type) is None:
        log.warning("no deadline rule for %s/%s", category, topic)
    first_due, resolution_due = ref.due(category, topic, registered, hazard_type)
    return {
        "category": category,
        "topic": topic,
        "municipality_code": municipality,
        "settlement_oktmo": post.settlement_oktmo or None,
        "executor_code": executor,
        "priority": priority,
        "hazard_type": hazard_type,
        "special_control": hazard,
        "opened_at": opened_at,
        "registered_at": registered,
        "first_response_due": first_due,
        "resolution_due": resolution_due,
    }


def quarantine_row(post: Any, reason: str, now: datetime) -> dict[str, Any]:
    """The quarantine row (stage ``route``) of a post whose labels cannot be routed."""
    labels = {
        "category": post.category,
        "topic": post.topic,
        "municipality_code": post.municipality_code,
        "settlement_oktmo": post.settlement_oktmo,
        "hazard": post.hazard,
        "classifier_version": post.classifier_version,
    }
    return {
        "stage": "route",
        "record_key": f"{post.network}:{post.external_id}"[:200],
        "network": post.network,
        "external_id": post.external_id,
        "reason": reason,
        "expectation": None,
        "raw": json.dumps({"post_id": post.id, "labels": labels}, ensure_ascii=False),
        "run_id": None,
        "batch_id": post.batch_id,
        "created_at": now,
    }


def validate_posts(
    posts: list[Any],
    ref: RoutingReference,
    *,
    registered_at: datetime,
    horizon: timedelta,
    window_end: datetime | None = None,
) -> tuple[list[Any], dict[int, dict[str, Any]], list[dict[str, Any]]]:
    """Step 1: ``(valid posts, case fields by post id, quarantine rows)``.

    Each post's fields carry ``historical``: its window — ``window_end`` when given, else its
    batch's ``window_end`` (column ``window_end`` of the row), else its publication time — ended
    longer than ``horizon`` before ``registered_at``.
    """
    fields_by_post: dict[int, dict[str, Any]] = {}
    valid: list[Any] = []
    quarantine: list[dict[str, Any]] = []
    for post in posts:
        try:
            fields = case_fields(post, ref, registered_at)
        except RoutingError as exc:
            quarantine.append(quarantine_row(post, str(exc), registered_at))
            continue
        end = window_end or getattr(post, "window_end", None) or post.published_at
        fields["historical"] = is_historical(end, registered_at, horizon)
        fields_by_post[post.id] = fields
        valid.append(post)
    return valid, fields_by_post, quarantine
