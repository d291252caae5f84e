"""The reference data routing, escalation and case creation read once per run.

**Executor precedence** (first rule found wins): ``(category, topic, municipality)`` →
``(category, topic, *)`` → ``(category, *, municipality)`` → ``(category, *, *)``. A
topic-specific regional rule thus beats a municipality's default for the category, and a
municipality-specific topic rule beats everything.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select

from incidents.cases.deadlines import WorkCalendar
from incidents.cases.errors import RoutingError
from incidents.db.models import WILDCARD, DeadlineRule, Executor, Municipality, RoutingRule, Topic


@dataclass(frozen=True)
class TopicInfo:
    category: str
    name: str
    priority: bool
    hazard: bool
    hazard_type: str | None


@dataclass(frozen=True)
class ExecutorInfo:
    code: str
    name: str
    kind: str
    email: str
    head_email: str | None
    head_title: str | None


@dataclass(frozen=True)
class DeadlineInfo:
    first_response: int
    resolution: int
    unit: str


@dataclass
class RoutingReference:
    """Reference data of routing held in memory for a run (read once, looked up per post)."""

    rules: dict[tuple[str, str, str], str]
    deadlines: dict[tuple[str, str], DeadlineInfo]
    topics: dict[str, TopicInfo]
    executors: dict[str, ExecutorInfo]
    municipalities: set[str]
    calendar: WorkCalendar

    @classmethod
    def load(cls, engine: Engine) -> RoutingReference:
        with engine.connect() as conn:
            rules = {
                (r.category_slug, r.topic_slug, r.municipality_code): r.executor_code
                for r in conn.execute(select(RoutingRule.__table__))
            }
            deadlines = {
                (r.category_slug, r.topic_slug): DeadlineInfo(r.first_response, r.resolution, r.unit)
                for r in conn.execute(select(DeadlineRule.__table__))
            }
            topics = {
                r.slug: TopicInfo(r.category_slug, r.name, bool(r.priority), bool(r.hazard), r.hazard_type)
                for r in conn.execute(select(Topic.__table__))
            }
            executors = {
                r.code: ExecutorInfo(r.code, r.name, r.kind, r.email, r.head_email, r.head_title)
                for r in conn.execute(select(Executor.__table__))
            }
            municipalities = set(conn.execute(select(Municipality.code)).scalars())
        if not rules:
            raise RoutingError(
                "routing_rules is empty: load the reference data (python -m incidents db seed)"
            )
        return cls(rules, deadlines, topics, executors, municipalities, WorkCalendar.from_engine(engine))

    def executor_for(self, category: str, topic: str | None, municipality: str | None) -> str | None:
        """The executor by the documented precedence, or None when no rule applies."""
        t = topic or WILDCARD
        m = municipality or WILDCARD
        for key in ((category, t, m), (category, t, WILDCARD), (category, WILDCARD, m)):
            found = self.rules.get(key)
            if found is not None:
                return found
        return self.rules.get((category, WILDCARD, WILDCARD))

    def deadline_for(
        self, category: str, topic: str | None, hazard_type: str | None = None
    ) -> DeadlineInfo | None:
        """The deadline rule of a case: a hazard's is its type's (the rule of the rubricator's topic
        of that type, in calendar hours) whatever topic the case is filed under (a pit in a yard
        filed under improvement), else the topic's rule, else the category's."""
        if hazard_type is not None:
            rule = self.hazard_deadline(hazard_type)
            if rule is not None:
                return rule
        return self.deadlines.get((category, topic or WILDCARD)) or self.deadlines.get((category, WILDCARD))

    def hazard_deadline(self, hazard_type: str) -> DeadlineInfo | None:
        """The deadline rule of the hazard topic of ``hazard_type``, or None."""
        return self._hazard_deadlines.get(hazard_type)

    def __post_init__(self) -> None:
        self._hazard_deadlines: dict[str, DeadlineInfo] = {}
        for slug, info in self.topics.items():
            rule = self.deadlines.get((info.category, slug))
            if info.hazard and info.hazard_type and rule is not None:
                self._hazard_deadlines.setdefault(info.hazard_type, rule)

    def due(
        self, category: str, topic: str | None, registered_at: datetime, hazard_type: str | None = None
    ) -> tuple[datetime | None, datetime | None]:
        """``(first_response_due, resolution_due)`` counted from ``registered_at`` (see
        :meth:`deadline_for`); Nones without a rule."""
        rule = self.deadline_for(category, topic, hazard_type)
        if rule is None:
            return None, None
        return self.calendar.compute_due(registered_at, rule)

    def executor_of_kind(self, kind: str) -> ExecutorInfo | None:
        for info in self.executors.values():
            if info.kind == kind:
                return info
        return None
