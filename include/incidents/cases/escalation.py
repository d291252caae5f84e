"""Escalation of hazard and overdue cases along a three-level ladder, exactly once per level.

The ladder:

1. the executor (``executor.email``); for hazards also the regional duty officer;
2. the head of the municipality or the minister (``executor.head_email``);
3. the deputy chairman of the regional government (the ``government`` executor's
   ``head_email``).

When a case climbs (:class:`EscalationPolicy`):

* **hazard** (``special_control``) without a first response: level 1 at once, then one
  level per ``hazard_interval`` (2 calendar hours) after the previous step;
* **overdue** (``first_response_due`` passed without a response, or ``resolution_due``
  passed): level 1 as soon as it is overdue, level 2 ``overdue_waits[0]`` (1) working day
  after the level-1 step, level 3 ``overdue_waits[1]`` (2) more working days after the
  level-2 step (3 working days after level 1). "N working days after" is counted as in
  :meth:`incidents.cases.deadlines.WorkCalendar.add_working_days` (the end of the N-th
  following working day);
* whichever of the two comes first; resolved and rejected cases never climb;
* **historical** cases (registered from a backfilled window, see :mod:`incidents.cases.create`)
  never climb automatically; an operator who reopens one (``case reopen``) makes it live, and
  it climbs from then on. Deadlines run from ``registered_at``, not from the post's time, so a
  case is never overdue the moment it is registered.

Each step of a run climbs at most one level per case (the next one waits for its interval
after this step). **Exactly once**: a step is a ``case_events`` row ``escalated`` with the
unique idempotency key ``escalate:<case>:<level>``, inserted with
``INSERT ... ON CONFLICT DO NOTHING RETURNING``; only the rows this transaction really
inserted update ``cases.escalation_level`` and enqueue notifications (keys
``notify:<case>:escalate:<level>:<recipient>``), in the same transaction. Overlapping runs on
PostgreSQL therefore produce one event per level (the loser's insert waits for the winner's
commit and then does nothing); on SQLite the run takes the write lock first
(``BEGIN IMMEDIATE``).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, bindparam, false, or_, select, true, update

from incidents.cases.deadlines import as_utc
from incidents.cases.notify import compose, load_case_contexts, notification_row
from incidents.cases.reference import RoutingReference
from incidents.cases.sql import begin_write, insert_ignore
from incidents.db.models import Case, CaseEvent, Notification, table_of

log = logging.getLogger(__name__)

OPEN_STATUSES = ("new", "assigned", "in_progress")
MAX_LEVEL = 3


@dataclass(frozen=True)
class EscalationPolicy:
    """Intervals between ladder levels."""

    hazard_interval: timedelta = timedelta(hours=2)
    overdue_waits: tuple[int, int] = (1, 2)
    """Working days from level 1 to level 2, and from level 2 to level 3."""


@dataclass
class EscalationSummary:
    """What one :func:`escalate` run did."""

    candidates: int = 0
    escalated: int = 0
    by_level: dict[int, int] = field(default_factory=dict)
    notifications: int = 0
    lost_races: int = 0
    """Steps another overlapping run took first (nothing written by this one)."""

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["by_level"] = {str(k): v for k, v in self.by_level.items()}
        return data


@dataclass(frozen=True)
class _Step:
    case_id: int
    level: int
    reason: str
    hazard: bool


def _next_step(
    case: Any, last_step_at: datetime | None, now: datetime, ref: RoutingReference, policy: EscalationPolicy
) -> _Step | None:
    level = case.escalation_level or 0
    if level >= MAX_LEVEL:
        return None
    hazard = bool(case.special_control) and case.first_response_at is None
    overdue_reason = None
    if case.first_response_at is None and case.first_response_due and as_utc(case.first_response_due) <= now:
        overdue_reason = "first_response_overdue"
    if case.resolution_due and as_utc(case.resolution_due) <= now:
        overdue_reason = overdue_reason or "resolution_overdue"
    first_reason = "hazard" if hazard else overdue_reason
    if first_reason is None:  # neither a hazard nor overdue
        return None
    if level == 0:
        return _Step(case.id, 1, first_reason, hazard)
    previous = last_step_at or as_utc(case.registered_at or case.opened_at)
    due_times: list[tuple[datetime, str]] = []
    if hazard:
        due_times.append((previous + policy.hazard_interval * 1, "hazard"))
    if overdue_reason is not None:
        waits = (
            policy.overdue_waits[level - 1]
            if level - 1 < len(policy.overdue_waits)
            else policy.overdue_waits[-1]
        )
        due_times.append((ref.calendar.add_working_days(previous, waits), overdue_reason))
    due, reason = min(due_times)
    if now < due:
        return None
    return _Step(case.id, level + 1, reason, hazard)


def _recipients(step: _Step, executor_code: str, ref: RoutingReference) -> list[tuple[str, str]]:
    """``(recipient code, e-mail)`` pairs of a ladder step."""
    executor = ref.executors.get(executor_code)
    out: list[tuple[str, str]] = []
    if step.level == 1:
        if executor is not None:
            out.append((executor.code, executor.email))
        duty = ref.executor_of_kind("duty_officer")
        if step.hazard and duty is not None and (executor is None or duty.code != executor.code):
            out.append((duty.code, duty.email))
    elif step.level == 2:
        if executor is not None:
            out.append((f"{executor.code}.head", executor.head_email or executor.email))
    else:
        government = ref.executor_of_kind("government")
        if government is None:
            log.error("no executor of kind 'government': level 3 of case %s has no recipient", step.case_id)
        else:
            out.append((f"{government.code}.head", government.head_email or government.email))
    return out


def escalate(
    engine: Engine,
    now: datetime | None = None,
    actor: str = "escalation",
    *,
    policy: EscalationPolicy | None = None,
    reference: RoutingReference | None = None,
) -> EscalationSummary:
    """Climb every due hazard and overdue case one ladder level (see the module docstring)."""
    now = as_utc(now or datetime.now(UTC))
    policy = policy or EscalationPolicy()
    ref = reference or RoutingReference.load(engine)
    summary = EscalationSummary()
    with engine.connect() as conn, conn.begin():
        begin_write(conn)
        cases = conn.execute(
            select(
                Case.id,
                Case.executor_code,
                Case.special_control,
                Case.status,
                Case.opened_at,
                Case.registered_at,
                Case.first_response_at,
                Case.first_response_due,
                Case.resolution_due,
                Case.escalation_level,
            ).where(
                Case.status.in_(OPEN_STATUSES),
                Case.historical == false(),
                Case.escalation_level < MAX_LEVEL,
                or_(
                    Case.special_control == true(),
                    and_(Case.first_response_at.is_(None), Case.first_response_due <= now),
                    Case.resolution_due <= now,
                ),
            )
        ).all()
        summary.candidates = len(cases)
        if not cases:
            return summary
        last_at: dict[tuple[int, int | None], datetime] = {}
        ids = [c.id for c in cases]
        for i in range(0, len(ids), 1000):
            for case_id, level, at in conn.execute(
                select(CaseEvent.case_id, CaseEvent.level, CaseEvent.at).where(
                    CaseEvent.kind == "escalated", CaseEvent.case_id.in_(ids[i : i + 1000])
                )
            ):
                last_at[(case_id, level)] = as_utc(at)
        steps = []
        executors: dict[int, str] = {}
        for case in cases:
            step = _next_step(case, last_at.get((case.id, case.escalation_level)), now, ref, policy)
            if step is not None:
                steps.append(step)
                executors[case.id] = case.executor_code
        if not steps:
            return summary
        steps.sort(key=lambda s: (s.case_id, s.level))  # one lock order for overlapping runs
        rows = [
            {
                "case_id": s.case_id,
                "kind": "escalated",
                "from_status": None,
                "to_status": None,
                "level": s.level,
                "actor": actor,
                "at": now,
                "details": {
                    "reason": s.reason,
                    "recipients": [r for r, _e in _recipients(s, executors[s.case_id], ref)],
                },
                "idempotency_key": f"escalate:{s.case_id}:{s.level}",
            }
            for s in steps
        ]
        won = set(insert_ignore(conn, table_of(CaseEvent), rows, returning="idempotency_key"))
        winners = [s for s in steps if f"escalate:{s.case_id}:{s.level}" in won]
        summary.lost_races = len(steps) - len(winners)
        if not winners:
            return summary
        case_table = table_of(Case)
        conn.execute(
            update(case_table)
            .where(case_table.c.id == bindparam("cid"), case_table.c.escalation_level < bindparam("lvl"))
            .values(escalation_level=bindparam("lvl"), updated_at=now),
            [{"cid": s.case_id, "lvl": s.level} for s in winners],
        )
        contexts = load_case_contexts(conn, [s.case_id for s in winners])
        notes = []
        for s in winners:
            subject, body = compose(contexts[s.case_id], reason="escalated", level=s.level)
            for code, email in _recipients(s, executors[s.case_id], ref):
                notes.append(
                    notification_row(
                        case_id=s.case_id,
                        recipient=email,
                        subject=subject,
                        body=body,
                        key=f"notify:{s.case_id}:escalate:{s.level}:{code}",
                        now=now,
                    )
                )
            summary.by_level[s.level] = summary.by_level.get(s.level, 0) + 1
        insert_ignore(conn, table_of(Notification), notes)
        summary.escalated = len(winners)
        summary.notifications = len(notes)
    log.info(
        "escalation: %d candidate(s), %d escalated %s, %d notification(s), %d taken by another run",
        summary.candidates,
        summary.escalated,
        summary.by_level,
        summary.notifications,
        summary.lost_races,
    )
    return summary
