"""The life of a case: statuses, assignment, merging, with an audit trail of events.

Statuses and the allowed transitions (:data:`TRANSITIONS`)::

    new ──► assigned ──► in_progress ──► resolved
     │          │             │
     └──────────┴─────────────┴────────► rejected (reason: not_confirmed | not_our_competence | duplicate)
    resolved / rejected ──► in_progress   (reopen: event "reopened")

Anything else raises :class:`InvalidTransition`. ``first_response_at`` is set on the first
transition to ``in_progress`` (or by :func:`respond`); ``resolved_at`` on ``resolved``.
Every change writes a :class:`~incidents.db.models.CaseEvent` with the actor and the time,
and sets ``operator_touched`` when the actor is a person (not the pipeline, see
:func:`incidents.cases.actors.is_operator`): reprocessing then never overwrites the case.

The functions work in the caller's :class:`~sqlalchemy.orm.Session` and flush, but do
not commit: the caller owns the transaction (the CLI commits once per command).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from incidents.cases.actors import is_operator
from incidents.cases.deadlines import as_utc
from incidents.cases.errors import CaseError, InvalidTransition
from incidents.db.models import Case, CaseEvent, CasePost, Executor

log = logging.getLogger(__name__)

__all__ = [
    "OPEN",
    "REJECTION_REASONS",
    "STATUSES",
    "TRANSITIONS",
    "CaseError",
    "InvalidTransition",
    "assign",
    "get_case",
    "merge_cases",
    "respond",
    "transition",
]

STATUSES = ("new", "assigned", "in_progress", "resolved", "rejected")
OPEN = frozenset({"new", "assigned", "in_progress"})
REJECTION_REASONS = ("not_confirmed", "not_our_competence", "duplicate")
TRANSITIONS: dict[str, frozenset[str]] = {
    "new": frozenset({"assigned", "in_progress", "rejected"}),
    "assigned": frozenset({"in_progress", "rejected"}),
    "in_progress": frozenset({"resolved", "rejected"}),
    "resolved": frozenset({"in_progress"}),
    "rejected": frozenset({"in_progress"}),
}


def _now(at: datetime | None) -> datetime:
    return as_utc(at or datetime.now(UTC))


def get_case(session: Session, case_id: int, *, lock: bool = True) -> Case:
    """The case, locked for update on PostgreSQL; :class:`CaseError` when it does not exist."""
    query = select(Case).where(Case.id == case_id)
    if lock and session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    case = session.execute(query).scalar_one_or_none()
    if case is None:
        raise CaseError(f"case {case_id} does not exist")
    return case


def _event(session: Session, case: Case, kind: str, actor: str, at: datetime, **fields: Any) -> CaseEvent:
    event = CaseEvent(case_id=case.id, kind=kind, actor=actor, at=at, **fields)
    session.add(event)
    case.updated_at = at
    if is_operator(actor):
        case.operator_touched = True
    return event


def _not_before_opening(case: Case, at: datetime) -> None:
    """An action on a case cannot predate the post that reported the problem."""
    if at < as_utc(case.opened_at):
        raise CaseError(
            f"case {case.id}: {at.isoformat()} lies before the case was reported "
            f"({as_utc(case.opened_at).isoformat()})"
        )


def transition(
    session: Session,
    case_id: int,
    to_status: str,
    actor: str,
    reason: str | None = None,
    at: datetime | None = None,
) -> Case:
    """Move a case to ``to_status``; ``reason`` is required for (and only for) ``rejected``."""
    at = _now(at)
    if to_status not in STATUSES:
        raise InvalidTransition(f"unknown status {to_status!r}; expected one of {', '.join(STATUSES)}")
    case = get_case(session, case_id)
    _not_before_opening(case, at)
    current = case.status
    if to_status not in TRANSITIONS.get(current, frozenset()):
        allowed = ", ".join(sorted(TRANSITIONS.get(current, ()))) or "none"
        raise InvalidTransition(
            f"case {case_id}: {current} → {to_status} is not allowed (from {current}: {allowed})"
        )
    if to_status == "rejected":
        if reason not in REJECTION_REASONS:
            raise InvalidTransition(
                f"rejecting case {case_id} needs a reason: one of {', '.join(REJECTION_REASONS)} (got {reason!r})"
            )
        case.rejection_reason = reason
    elif reason is not None:
        raise InvalidTransition(f"a reason is only given when rejecting (got {reason!r} for {to_status})")
    reopening = current in ("resolved", "rejected")
    case.status = to_status
    if to_status == "in_progress":
        if case.first_response_at is None:
            case.first_response_at = at
        if reopening:
            case.resolved_at = None
            case.rejection_reason = None
    if to_status == "resolved":
        case.resolved_at = at
    _event(
        session,
        case,
        "reopened" if reopening else "status",
        actor,
        at,
        from_status=current,
        to_status=to_status,
        details={"reason": reason} if reason else None,
    )
    session.flush()
    log.info("case %s: %s → %s by %s", case_id, current, to_status, actor)
    return case


def respond(session: Session, case_id: int, actor: str, at: datetime | None = None) -> Case:
    """Record the executor's first response without changing the status (idempotent)."""
    at = _now(at)
    case = get_case(session, case_id)
    if case.first_response_at is None:
        case.first_response_at = at
        _event(session, case, "responded", actor, at, details=None)
        session.flush()
    return case


def assign(
    session: Session, case_id: int, executor_code: str, actor: str, at: datetime | None = None
) -> Case:
    """Give the case to ``executor_code``; a ``new`` case becomes ``assigned``."""
    at = _now(at)
    if session.get(Executor, executor_code) is None:
        raise CaseError(f"executor {executor_code!r} does not exist")
    case = get_case(session, case_id)
    if case.status not in OPEN:
        raise InvalidTransition(f"case {case_id} is {case.status}: reopen it before assigning")
    previous, status = case.executor_code, case.status
    case.executor_code = executor_code
    if status == "new":
        case.status = "assigned"
    _event(
        session,
        case,
        "assigned",
        actor,
        at,
        from_status=status,
        to_status=case.status,
        details={"executor_code": executor_code, "previous_executor_code": previous},
    )
    session.flush()
    return case


def merge_cases(
    session: Session, target_id: int, source_id: int, actor: str, at: datetime | None = None
) -> Case:
    """Move every post of ``source_id`` into ``target_id``; the source is rejected as a duplicate."""
    at = _now(at)
    if target_id == source_id:
        raise CaseError("a case cannot be merged into itself")
    target = get_case(session, target_id)
    source = get_case(session, source_id)
    if target.status not in OPEN:
        raise InvalidTransition(f"target case {target_id} is {target.status}: reopen it first")
    if source.status not in OPEN:
        raise InvalidTransition(f"source case {source_id} is {source.status}: only open cases can be merged")
    post_ids = list(session.execute(select(CasePost.post_id).where(CasePost.case_id == source_id)).scalars())
    session.execute(
        update(CasePost)
        .where(CasePost.case_id == source_id)
        .values(case_id=target_id, link="operator", linked_at=at)
        .execution_options(synchronize_session=False)
    )
    _event(
        session,
        target,
        "merged",
        actor,
        at,
        details={"source_case_id": source_id, "post_ids": post_ids, "method": "operator"},
    )
    previous = source.status
    source.status = "rejected"
    source.rejection_reason = "duplicate"
    _event(
        session,
        source,
        "merged",
        actor,
        at,
        from_status=previous,
        to_status="rejected",
        details={"target_case_id": target_id, "post_ids": post_ids, "reason": "duplicate"},
    )
    if source.special_control and not target.special_control:
        target.special_control = True
        target.priority = "critical"
        target.hazard_type = target.hazard_type or source.hazard_type
    session.flush()
    log.info("case %s merged into %s by %s (%d posts)", source_id, target_id, actor, len(post_ids))
    return target
