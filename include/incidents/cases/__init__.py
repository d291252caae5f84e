"""Cases: routing incident posts into cases, duplicates, lifecycle, deadlines, escalation, notifications.

Entry points the pipeline calls (all take an SQLAlchemy engine of the case database):

* :func:`route_posts` — open or join cases for analysed incident posts; reconciles relabelled posts
* :func:`escalate` — climb hazard and overdue cases up the ladder, exactly once per level
* :func:`deliver_pending` — deliver the notification outbox with a pluggable ``send``
  (:func:`smtp_sender` for plain SMTP)

Operators' functions (in a session): :func:`transition`, :func:`assign`, :func:`respond`,
:func:`merge_cases`; :func:`split`, :func:`reopen_historical` (engine). Deadlines: :class:`WorkCalendar`,
:func:`compute_due`.
"""

from incidents.cases.create import reopen_historical, split
from incidents.cases.deadlines import (
    WorkCalendar,
    add_hours,
    add_working_days,
    add_working_hours,
    compute_due,
)
from incidents.cases.dedupe import DedupeConfig
from incidents.cases.errors import CaseError, InvalidTransition, RoutingError
from incidents.cases.escalation import EscalationPolicy, EscalationSummary, escalate
from incidents.cases.lifecycle import (
    assign,
    merge_cases,
    respond,
    transition,
)
from incidents.cases.notify import DeliverySummary, deliver_pending, smtp_sender
from incidents.cases.routing import RoutingSummary, apply_reclassification, route_posts

__all__ = [
    "CaseError",
    "DedupeConfig",
    "DeliverySummary",
    "EscalationPolicy",
    "EscalationSummary",
    "InvalidTransition",
    "RoutingError",
    "RoutingSummary",
    "WorkCalendar",
    "add_hours",
    "add_working_days",
    "add_working_hours",
    "apply_reclassification",
    "assign",
    "compute_due",
    "deliver_pending",
    "escalate",
    "merge_cases",
    "reopen_historical",
    "respond",
    "route_posts",
    "smtp_sender",
    "split",
    "transition",
]
