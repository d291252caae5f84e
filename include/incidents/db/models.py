"""SQLAlchemy 2.0 models of the case database.

One schema serves SQLite (the embedded default) and PostgreSQL (production); the
Alembic migrations in ``incidents/db/migrations`` create exactly these tables. Every
table that a pipeline stage writes has a natural unique key so that retries, reruns and
overlapping runs upsert instead of duplicating:

* ``posts``: (network, external_id)
* ``quarantine``: (stage, record_key)
* ``batches``: (network, window_start, window_end)
* ``case_posts``: (post_id): a post belongs to at most one case
* ``case_events``: idempotency_key (e.g. ``escalate:<case>:<level>``)
* ``notifications``: idempotency_key
* ``monthly_stats``: (month, municipality_code, category, network, metric)

Wildcards in reference and statistics keys are the string ``"*"`` rather than NULL,
because NULLs never collide in a unique constraint.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

WILDCARD = "*"

# BIGINT autoincrement on PostgreSQL, INTEGER PRIMARY KEY (rowid) on SQLite.
BigId = BigInteger().with_variant(Integer(), "sqlite")
UtcDateTime = DateTime(timezone=True)


class Base(DeclarativeBase):
    """Declarative base with a constraint naming convention (stable names for migrations)."""

    metadata = MetaData(naming_convention=NAMING)


# --------------------------------------------------------------------------- reference data


class Municipality(Base):
    """A municipal unit of the region (45) or an administrative district of the city of Kirov (4)."""

    __tablename__ = "municipalities"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    """OKTMO prefix (``33602``) for the 45 units; ``33701-<slug>`` for Kirov's city districts."""
    oktmo: Mapped[str] = mapped_column(String(11))
    name: Mapped[str] = mapped_column(String(200))
    short_name: Mapped[str] = mapped_column(String(200))
    adjective: Mapped[str | None] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(40))
    """``municipal_district``, ``urban_okrug`` or ``city_district_of_kirov``."""
    admin_centre: Mapped[str | None] = mapped_column(String(200))
    parent_code: Mapped[str | None] = mapped_column(ForeignKey("municipalities.code"))


class Settlement(Base):
    """A settlement of the OKTMO gazetteer."""

    __tablename__ = "settlements"

    oktmo: Mapped[str] = mapped_column(String(11), primary_key=True)
    type_abbr: Mapped[str] = mapped_column(String(20))
    type: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200), index=True)
    poselenie: Mapped[str | None] = mapped_column(String(200))
    municipality_code: Mapped[str] = mapped_column(ForeignKey("municipalities.code"), index=True)


class Executor(Base):
    """Who acts on a case: a ministry, a municipal administration, the duty officer, the government."""

    __tablename__ = "executors"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(40))
    """``ministry``, ``municipal_administration``, ``duty_officer`` or ``government``."""
    municipality_code: Mapped[str | None] = mapped_column(ForeignKey("municipalities.code"))
    email: Mapped[str] = mapped_column(String(200))
    head_title: Mapped[str | None] = mapped_column(String(300))
    head_email: Mapped[str | None] = mapped_column(String(200))
    """Second escalation level: head of the municipality or the minister."""


class Category(Base):
    """Top level of the rubricator (the fixed slugs in ``incidents.CATEGORIES``)."""

    __tablename__ = "categories"

    slug: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))


class Topic(Base):
    """Second level of the rubricator."""

    __tablename__ = "topics"

    slug: Mapped[str] = mapped_column(String(80), primary_key=True)
    category_slug: Mapped[str] = mapped_column(ForeignKey("categories.slug"), index=True)
    name: Mapped[str] = mapped_column(String(300))
    priority: Mapped[bool] = mapped_column(Boolean, default=False)
    hazard: Mapped[bool] = mapped_column(Boolean, default=False)
    hazard_type: Mapped[str | None] = mapped_column(String(40))
    source_topics: Mapped[list[Any] | None] = mapped_column(JSON)
    """The real rubricator's topics this one was informed by (★ kept)."""


class RoutingRule(Base):
    """Category/topic × municipality → executor; ``*`` is a wildcard (the default per category)."""

    __tablename__ = "routing_rules"
    __table_args__ = (UniqueConstraint("category_slug", "topic_slug", "municipality_code"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    category_slug: Mapped[str] = mapped_column(ForeignKey("categories.slug"))
    topic_slug: Mapped[str] = mapped_column(String(80), default=WILDCARD)
    municipality_code: Mapped[str] = mapped_column(String(32), default=WILDCARD)
    executor_code: Mapped[str] = mapped_column(ForeignKey("executors.code"))


class DeadlineRule(Base):
    """How long an executor has, per topic (``*`` = the category's default)."""

    __tablename__ = "deadline_rules"
    __table_args__ = (UniqueConstraint("category_slug", "topic_slug"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    category_slug: Mapped[str] = mapped_column(ForeignKey("categories.slug"))
    topic_slug: Mapped[str] = mapped_column(String(80), default=WILDCARD)
    first_response: Mapped[int] = mapped_column(Integer)
    resolution: Mapped[int] = mapped_column(Integer)
    unit: Mapped[str] = mapped_column(String(20))
    """``working_days``, ``working_hours`` or ``hours`` (calendar hours, for hazards)."""


class CalendarDay(Base):
    """An exception to the Monday–Friday rule in the Russian production calendar."""

    __tablename__ = "production_calendar"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    is_working: Mapped[bool] = mapped_column(Boolean)
    """False: a weekday holiday or a moved day off; True: a moved working Saturday/Sunday."""
    note: Mapped[str | None] = mapped_column(String(200))


# --------------------------------------------------------------------------- collection


class Batch(Base):
    """One collection window of one network: what was collected, validated and analysed."""

    __tablename__ = "batches"
    __table_args__ = (UniqueConstraint("network", "window_start", "window_end"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    network: Mapped[str] = mapped_column(String(16))
    window_start: Mapped[datetime] = mapped_column(UtcDateTime)
    window_end: Mapped[datetime] = mapped_column(UtcDateTime)
    run_id: Mapped[str | None] = mapped_column(String(250))
    landing_uri: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="collected")
    """``collected``, ``validated``, ``analysed``, ``routed``."""
    counts: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    skipped_sources: Mapped[list[Any] | None] = mapped_column(JSON)
    """Sources the window skipped, each ``{"source_id", "reason"}`` (gone, banned, private)."""
    updated_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class Post(Base):
    """A normalised post or comment, with the labels of the text analysis."""

    __tablename__ = "posts"
    __table_args__ = (
        UniqueConstraint("network", "external_id"),
        Index("ix_posts_published", "published_at"),
        Index("ix_posts_network_published", "network", "published_at"),
        Index("ix_posts_incident", "is_incident", "published_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    network: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16), default="post")
    """``post`` or ``comment``."""
    parent_external_id: Mapped[str | None] = mapped_column(String(128))
    source_id: Mapped[str] = mapped_column(String(128), index=True)
    author_pseudonym: Mapped[str] = mapped_column(String(64))
    published_at: Mapped[datetime] = mapped_column(UtcDateTime)
    collected_at: Mapped[datetime] = mapped_column(UtcDateTime)
    text: Mapped[str] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(Text)
    geo_lat: Mapped[float | None] = mapped_column(Float)
    geo_lon: Mapped[float | None] = mapped_column(Float)
    content_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    collect_run_id: Mapped[str | None] = mapped_column(String(250))
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("batches.id"), index=True)
    raw: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # labels of the text analysis (issue: analysis); NULL until analysed
    is_incident: Mapped[bool | None] = mapped_column(Boolean)
    category: Mapped[str | None] = mapped_column(String(32))
    topic: Mapped[str | None] = mapped_column(String(80))
    hazard: Mapped[bool | None] = mapped_column(Boolean)
    hazard_type: Mapped[str | None] = mapped_column(String(40))
    municipality_code: Mapped[str | None] = mapped_column(String(32))
    settlement_oktmo: Mapped[str | None] = mapped_column(String(11))
    confidence: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    explanation: Mapped[str | None] = mapped_column(Text)
    classifier_version: Mapped[str | None] = mapped_column(String(64))
    analysed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    analysed_hash: Mapped[str | None] = mapped_column(String(64))
    """``content_hash`` (or the text's SHA-256) the labels were computed from: a change re-labels."""
    place_key: Mapped[str | None] = mapped_column(String(64))
    """The most specific place the text names, for duplicate detection
    (:attr:`incidents.analysis.places.PlaceResult.key`): ``""`` when it names none precise
    enough, NULL when not computed (routing then derives it from the text)."""
    address: Mapped[str | None] = mapped_column(String(200))
    """Street, house number or landmark the text names (never a settlement)."""
    needs_review: Mapped[bool | None] = mapped_column(Boolean)
    """A low-confidence incident or hazard: an operator should confirm the labels."""


class Quarantine(Base):
    """A record that failed collection parsing, validation or analysis, kept with its reason."""

    __tablename__ = "quarantine"
    __table_args__ = (UniqueConstraint("stage", "record_key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    stage: Mapped[str] = mapped_column(String(20))
    """``collect``, ``validate``, ``analyse`` or ``route``."""
    record_key: Mapped[str] = mapped_column(String(200))
    """``<network>:<external_id>`` when known, else a hash of the raw record."""
    network: Mapped[str | None] = mapped_column(String(16))
    external_id: Mapped[str | None] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(Text)
    expectation: Mapped[str | None] = mapped_column(String(200))
    raw: Mapped[str] = mapped_column(Text)
    run_id: Mapped[str | None] = mapped_column(String(250))
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("batches.id"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


# --------------------------------------------------------------------------- cases


class Case(Base):
    """A problem that an executor must act on, opened from one or more incident posts."""

    __tablename__ = "cases"
    __table_args__ = (
        Index("ix_cases_status_deadline", "status", "resolution_due"),
        Index("ix_cases_match", "municipality_code", "category", "opened_at"),
        Index("ix_cases_special", "special_control", "status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    category: Mapped[str] = mapped_column(ForeignKey("categories.slug"))
    topic: Mapped[str | None] = mapped_column(String(80))
    municipality_code: Mapped[str | None] = mapped_column(ForeignKey("municipalities.code"))
    settlement_oktmo: Mapped[str | None] = mapped_column(String(11))
    executor_code: Mapped[str] = mapped_column(ForeignKey("executors.code"))
    priority: Mapped[str] = mapped_column(String(16), default="normal")
    """``normal``, ``high`` (a ★ topic) or ``critical`` (a hazard)."""
    hazard_type: Mapped[str | None] = mapped_column(String(40))
    special_control: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(20), default="new")
    """``new``, ``assigned``, ``in_progress``, ``resolved``, ``rejected``."""
    rejection_reason: Mapped[str | None] = mapped_column(String(40))
    opened_at: Mapped[datetime] = mapped_column(UtcDateTime)
    """When the problem was reported (the origin post's time): statistics and lag run from it."""
    registered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    """When the pipeline registered the case: deadlines run from it."""
    historical: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """Registered from a window older than the live horizon: never notified or escalated automatically."""
    first_response_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    first_response_due: Mapped[datetime | None] = mapped_column(UtcDateTime)
    resolution_due: Mapped[datetime | None] = mapped_column(UtcDateTime)
    """The deadline."""
    summary: Mapped[str] = mapped_column(Text)
    fingerprint: Mapped[str | None] = mapped_column(String(64), index=True)
    """Exact-duplicate key: hash of the normalised text of the origin post."""
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    operator_touched: Mapped[bool] = mapped_column(Boolean, default=False)
    """Set by any operator action; reprocessing then only records suggestions."""
    suggestion: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    classifier_version: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    posts: Mapped[list[CasePost]] = relationship(back_populates="case", cascade="all, delete-orphan")
    events: Mapped[list[CaseEvent]] = relationship(back_populates="case", cascade="all, delete-orphan")


class CasePost(Base):
    """Link of a post to its case, with how it got there (undoable merges keep their score)."""

    __tablename__ = "case_posts"
    __table_args__ = (UniqueConstraint("post_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id"))
    link: Mapped[str] = mapped_column(String(20))
    """``origin``, ``exact``, ``near_duplicate``, ``comment``, ``operator``."""
    score: Mapped[float | None] = mapped_column(Float)
    linked_at: Mapped[datetime] = mapped_column(UtcDateTime)

    case: Mapped[Case] = relationship(back_populates="posts")


class CaseEvent(Base):
    """The audit trail: every status change, assignment, merge, escalation and notification."""

    __tablename__ = "case_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(30))
    """``opened``, ``assigned``, ``status``, ``merged``, ``unmerged``, ``split``, ``escalated``,
    ``notified``, ``notification_failed``, ``suggestion``, ``reopened``."""
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str | None] = mapped_column(String(20))
    level: Mapped[int | None] = mapped_column(Integer)
    actor: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)

    case: Mapped[Case] = relationship(back_populates="events")


class Notification(Base):
    """Outbox of notifications: written in the same transaction as the event, delivered after."""

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id", ondelete="SET NULL"), index=True)
    channel: Mapped[str] = mapped_column(String(20))
    """``email`` or ``telegram``."""
    recipient: Mapped[str] = mapped_column(String(300))
    subject: Mapped[str] = mapped_column(String(500))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    """``pending``, ``sent`` or ``failed`` (gave up after the configured attempts)."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    """Earliest time of the next delivery attempt after a failure (backoff); NULL = at once."""


# --------------------------------------------------------------------------- coverage


class CoverageAction(Base):
    """What the ``coverage`` DAG found and did about one collection window (a gap's audit trail).

    A gap is a window of a ``collect_<network>`` DAG with no successful run, past the grace
    period. Each action happens once per key (``<action>:<dag_id>:<window_start>[:<n>]``), so
    overlapping or repeated coverage runs never backfill or alert twice.
    """

    __tablename__ = "coverage_actions"
    __table_args__ = (Index("ix_coverage_actions_window", "dag_id", "window_start"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    dag_id: Mapped[str] = mapped_column(String(250))
    network: Mapped[str | None] = mapped_column(String(16))
    window_start: Mapped[datetime] = mapped_column(UtcDateTime)
    window_end: Mapped[datetime] = mapped_column(UtcDateTime)
    action: Mapped[str] = mapped_column(String(30))
    """``detected``, ``backfill_requested``, ``caught_up``, ``alerted``, ``skipped_paused``."""
    gap_kind: Mapped[str | None] = mapped_column(String(20))
    """``missing`` (no run) or ``failed`` (the run failed past its retries)."""
    backfill_id: Mapped[int | None] = mapped_column(BigInteger)
    run_id: Mapped[str | None] = mapped_column(String(250))
    """The coverage run that acted."""
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    idempotency_key: Mapped[str] = mapped_column(String(300), unique=True)


# --------------------------------------------------------------------------- statistics


class MonthlyStat(Base):
    """One figure of one month; ``*`` in a dimension means all of it (the region total is ``*,*,*``)."""

    __tablename__ = "monthly_stats"
    __table_args__ = (UniqueConstraint("month", "municipality_code", "category", "network", "metric"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    month: Mapped[date] = mapped_column(Date, index=True)
    """First day of the month (in the region's time zone)."""
    municipality_code: Mapped[str] = mapped_column(String(32), default=WILDCARD)
    category: Mapped[str] = mapped_column(String(32), default=WILDCARD)
    network: Mapped[str] = mapped_column(String(16), default=WILDCARD)
    metric: Mapped[str] = mapped_column(String(120))
    value: Mapped[float | None] = mapped_column(Float)


class ExecutorMonthlyStat(Base):
    """The executor rating of one month."""

    __tablename__ = "executor_monthly_stats"
    __table_args__ = (UniqueConstraint("month", "executor_code"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    month: Mapped[date] = mapped_column(Date, index=True)
    executor_code: Mapped[str] = mapped_column(ForeignKey("executors.code"))
    cases: Mapped[int] = mapped_column(Integer, default=0)
    resolved: Mapped[int] = mapped_column(Integer, default=0)
    resolved_on_time: Mapped[int] = mapped_column(Integer, default=0)
    overdue: Mapped[int] = mapped_column(Integer, default=0)
    median_first_response_h: Mapped[float | None] = mapped_column(Float)
    timeliness: Mapped[float | None] = mapped_column(Float)
    rank: Mapped[int | None] = mapped_column(Integer)


class MonthlyReport(Base):
    """Where a month's report was written, and when."""

    __tablename__ = "monthly_reports"

    month: Mapped[date] = mapped_column(Date, primary_key=True)
    generated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    run_id: Mapped[str | None] = mapped_column(String(250))
    html_uri: Mapped[str | None] = mapped_column(Text)
    csv_uri: Mapped[str | None] = mapped_column(Text)
    xlsx_uri: Mapped[str | None] = mapped_column(Text)
    open311_uri: Mapped[str | None] = mapped_column(Text)


LABEL_COLUMNS: tuple[str, ...] = (
    "is_incident",
    "category",
    "topic",
    "hazard",
    "hazard_type",
    "municipality_code",
    "settlement_oktmo",
    "confidence",
    "explanation",
    "classifier_version",
    "analysed_at",
    "analysed_hash",
    "place_key",
    "address",
    "needs_review",
)
"""The columns of ``posts`` written by the text analysis (cleared when a post's text changes)."""


def table_of(model: type[Base]) -> Table:
    """The :class:`~sqlalchemy.Table` of a mapped class (``__table__``, typed as a Table)."""
    table = model.__table__
    assert isinstance(table, Table), model
    return table
