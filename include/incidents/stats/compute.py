"""Monthly statistics of the case database: compute, store (idempotently) and read back.

Definitions (all times are stored in UTC; months are calendar months in Europe/Kirov):

* **Month**: ``[first day 00:00 Kirov, first day of the next month 00:00 Kirov)``, converted to UTC
  (Kirov is UTC+3, so January 2019 is ``[2018-12-31 21:00Z, 2019-01-31 21:00Z)``).
* **Dimensions**: municipality × category × network, each either a value or ``"*"`` (all); every
  figure is rolled up over all 8 combinations, the region total is ``("*", "*", "*")``. A post or case
  whose municipality (or category) is unknown counts only in the ``"*"`` rows of that dimension.
* **posts_collected**: posts published in the month; **incidents_found**: those labelled as incidents.
  Dimensions come from the posts' labels and network.
* A **case's network** is the network of its origin post (the ``origin`` link, else the first linked
  post by ``linked_at``); a case without posts counts only in ``network="*"`` rows.
* **cases_opened**: ``opened_at`` in the month. **cases_resolved**: status ``resolved`` with
  ``resolved_at`` in the month. **cases_rejected**: status ``rejected`` closed in the month (closing
  time = ``resolved_at``, else ``updated_at``).
* **cases_overdue** = cases still open at the month's end (or at ``now`` when computing the current
  month) whose ``resolution_due`` has passed by then, plus cases resolved in the month after their
  ``resolution_due`` (``cases_resolved_late``; the open ones are also given as ``cases_open_overdue``).
* **first_response_median_h / _p90_h**: hours from opening to first response, over the cases whose
  first response falls in the month. **resolution_median_h / _p90_h**: hours from opening to
  resolution over the cases resolved in the month. Percentiles interpolate linearly (as PostgreSQL's
  ``percentile_cont``), computed in Python so SQLite and PostgreSQL agree.
* **share_resolved_on_time**: cases resolved in the month by their ``resolution_due`` (or without a
  due date) / cases resolved in the month.
* **hazards_found[:<type>]**: hazard cases (``hazard_type`` set) opened in the month, in total and by
  type; **hazards_removed[:<type>]**: hazard cases resolved in the month. Cases, not posts, so ten
  posts about one open manhole are one hazard.
* **top_topic:<slug>**: incident posts of the month per topic, the 10 largest per scope, for scopes
  with ``network="*"`` (region, municipality, category, municipality × category).
* **top_source:<network>:<source_id>**: incident posts of the month per monitored source, the 10
  largest for the region, per municipality and per network.
* **<count>_change_pct**: change of a main count against the previous month in percent, for the
  region and for each municipality; omitted when the previous month's value is 0.
* **Executor rating** (``executor_monthly_stats``): per executor with any activity in the month:
  ``cases`` opened, ``resolved``, ``resolved_on_time``, ``overdue`` (as above),
  ``median_first_response_h``, ``timeliness = resolved_on_time / (resolved_on_time + overdue)`` (the
  share of the month's due or closed work done on time) and ``rank`` (1 = best: higher timeliness,
  then faster median first response, then more resolved cases; executors without a timeliness last).

Posts (the big table) are aggregated in SQL with the month filter on ``published_at`` (indexed) and
GROUP BY; only the grouped rows reach Python, where the roll-ups are additive sums. The month's cases
(about 2.5 % of the posts) are read row by row for the time percentiles and the overdue test.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, TypeGuard, overload
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    ScalarSelect,
    and_,
    case,
    delete,
    func,
    insert,
    or_,
    select,
    true,
)
from sqlalchemy.orm import InstrumentedAttribute

from incidents import REGION_TZ
from incidents.db.models import (
    WILDCARD,
    Case,
    CasePost,
    Category,
    Executor,
    ExecutorMonthlyStat,
    MonthlyStat,
    Municipality,
    Post,
    Topic,
)

log = logging.getLogger(__name__)

TZ = ZoneInfo(REGION_TZ)
TOP_N = 10
STATS_LOCK_BASE = 727_000_000
"""PostgreSQL advisory lock key of a month's statistics: base + YYYYMM."""
CLOSED_STATUSES = ("resolved", "rejected")

MAIN_COUNTS: tuple[str, ...] = (
    "posts_collected",
    "incidents_found",
    "cases_opened",
    "cases_resolved",
    "cases_rejected",
    "cases_overdue",
    "hazards_found",
    "hazards_removed",
)
"""Counts written for every scope that has data (zeros included) and compared with the previous month."""

CASE_COUNTS: tuple[str, ...] = (
    "cases_opened",
    "cases_resolved",
    "cases_resolved_on_time",
    "cases_resolved_late",
    "cases_rejected",
    "cases_open_overdue",
    "cases_overdue",
    "hazards_found",
    "hazards_removed",
)

METRIC_LABELS: dict[str, str] = {
    "posts_collected": "Собрано публикаций",
    "incidents_found": "Выявлено инцидентов",
    "cases_opened": "Открыто обращений",
    "cases_resolved": "Решено обращений",
    "cases_resolved_on_time": "Решено в срок",
    "cases_resolved_late": "Решено с нарушением срока",
    "cases_rejected": "Отклонено обращений",
    "cases_open_overdue": "Открыто с нарушением срока",
    "cases_overdue": "Просрочено обращений",
    "first_response_median_h": "Медиана времени первого ответа, ч",
    "first_response_p90_h": "90-й процентиль времени первого ответа, ч",
    "resolution_median_h": "Медиана времени решения, ч",
    "resolution_p90_h": "90-й процентиль времени решения, ч",
    "share_resolved_on_time": "Доля решённых в срок",
    "hazards_found": "Выявлено опасностей",
    "hazards_removed": "Устранено опасностей",
}
"""Russian labels of the metrics (for the report and the workbook)."""


class StatsError(ValueError):
    """A month or stored figures cannot be used (bad input, nothing stored)."""


# --------------------------------------------------------------------------- time helpers


def month_start(value: date | datetime | str) -> date:
    """The first day of the month of ``value`` (a date, a datetime or ``YYYY-MM``/``YYYY-MM-DD``)."""
    if isinstance(value, str):
        text = value.strip()
        try:
            parsed = datetime.strptime(text[:7], "%Y-%m")
        except ValueError as exc:
            raise StatsError(f"month must look like YYYY-MM, got {value!r}") from exc
        if len(text) not in (7, 10):
            raise StatsError(f"month must look like YYYY-MM, got {value!r}")
        return parsed.date()
    if isinstance(value, datetime):
        value = value.astimezone(TZ).date() if value.tzinfo else value.date()
    return value.replace(day=1)


def add_months(month: date, n: int) -> date:
    """``month`` (a first day) shifted by ``n`` calendar months."""
    index = month.year * 12 + (month.month - 1) + n
    return date(index // 12, index % 12 + 1, 1)


def month_bounds(month: date) -> tuple[datetime, datetime]:
    """UTC bounds ``[start, end)`` of a calendar month in the region's time zone."""
    month = month_start(month)
    nxt = add_months(month, 1)
    start = datetime(month.year, month.month, 1, tzinfo=TZ).astimezone(UTC)
    end = datetime(nxt.year, nxt.month, 1, tzinfo=TZ).astimezone(UTC)
    return start, end


@overload
def as_utc(value: datetime) -> datetime: ...
@overload
def as_utc(value: datetime | None) -> datetime | None: ...


def as_utc(value: datetime | None) -> datetime | None:
    """An aware UTC datetime; naive values (SQLite returns them) are taken as UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def percentile(values: Iterable[float], q: float) -> float | None:
    """Linear-interpolation percentile (``q`` in [0, 1]), as ``percentile_cont``; None when empty."""
    data = sorted(values)
    if not data:
        return None
    pos = (len(data) - 1) * q
    lo = math.floor(pos)
    hi = math.ceil(pos)
    if lo == hi:
        return float(data[lo])
    return float(data[lo] + (data[hi] - data[lo]) * (pos - lo))


def _scopes(mun: str | None, cat: str | None, net: str | None) -> Iterator[tuple[str, str, str]]:
    """The 8 roll-up keys of one (municipality, category, network) group; unknown values only as ``*``."""
    for m, c, n in itertools.product((mun, WILDCARD), (cat, WILDCARD), (net, WILDCARD)):
        if m is None or c is None or n is None:
            continue
        yield (m, c, n)


# --------------------------------------------------------------------------- computation


@dataclass
class _CaseRow:
    id: int
    category: str | None
    topic: str | None
    municipality: str | None
    executor: str
    status: str
    hazard_type: str | None
    opened_at: datetime
    first_response_at: datetime | None
    resolved_at: datetime | None
    updated_at: datetime | None
    resolution_due: datetime | None
    network: str | None

    @property
    def closed_at(self) -> datetime | None:
        if self.status == "resolved":
            return self.resolved_at
        if self.status == "rejected":
            return self.resolved_at or self.updated_at
        return None


@dataclass
class _Figures:
    """The figures of one month before they are stored."""

    stats: dict[tuple[str, str, str, str], float] = field(default_factory=dict)
    executors: list[dict[str, Any]] = field(default_factory=list)


def _post_counts(
    conn: Connection, start: datetime, end: datetime
) -> dict[tuple[str, str, str], Counter[str]]:
    """posts_collected / incidents_found rolled up over the cube, from one GROUP BY in SQL."""
    in_month = and_(Post.published_at >= start, Post.published_at < end)
    incident = func.sum(case((Post.is_incident == true(), 1), else_=0))
    stmt = (
        select(Post.municipality_code, Post.category, Post.network, func.count(), incident)
        .where(in_month)
        .group_by(Post.municipality_code, Post.category, Post.network)
    )
    out: dict[tuple[str, str, str], Counter[str]] = defaultdict(Counter)
    for mun, cat, net, n, n_inc in conn.execute(stmt):
        for key in _scopes(mun, cat, net):
            out[key]["posts_collected"] += int(n)
            out[key]["incidents_found"] += int(n_inc or 0)
    return out


def _top_lists(conn: Connection, start: datetime, end: datetime) -> dict[tuple[str, str, str, str], float]:
    """top_topic and top_source figures (incident posts of the month), top ``TOP_N`` per scope."""
    in_month = and_(Post.published_at >= start, Post.published_at < end, Post.is_incident == true())
    stmt = (
        select(Post.municipality_code, Post.category, Post.topic, func.count())
        .where(in_month, Post.topic.is_not(None))
        .group_by(Post.municipality_code, Post.category, Post.topic)
    )
    topics: dict[tuple[str, str, str], Counter[str | None]] = defaultdict(Counter)  # topic IS NOT NULL in SQL
    for mun, cat, topic, n in conn.execute(stmt):
        for m, c in itertools.product((mun, WILDCARD), (cat, WILDCARD)):
            if m is not None and c is not None:
                topics[(m, c, WILDCARD)][topic] += int(n)
    stmt = (
        select(Post.municipality_code, Post.network, Post.source_id, func.count())
        .where(in_month)
        .group_by(Post.municipality_code, Post.network, Post.source_id)
    )
    sources: dict[tuple[str, str, str], Counter[str]] = defaultdict(Counter)
    for mun, net, source_id, n in conn.execute(stmt):
        name = f"{net}:{source_id}"
        sources[(WILDCARD, WILDCARD, WILDCARD)][name] += int(n)
        sources[(WILDCARD, WILDCARD, net)][name] += int(n)
        if mun is not None:
            sources[(mun, WILDCARD, WILDCARD)][name] += int(n)
    out: dict[tuple[str, str, str, str], float] = {}
    for prefix, table in (("top_topic", topics), ("top_source", sources)):
        for (m, c, net), counter in table.items():
            ranked = sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_N]
            for item, count in ranked:
                out[(m, c, net, f"{prefix}:{item}")] = float(count)
    return out


def _origin_network() -> ScalarSelect[str]:
    """Correlated subquery: the network of a case's origin (else first linked) post."""
    return (
        select(Post.network)
        .join(CasePost, CasePost.post_id == Post.id)
        .where(CasePost.case_id == Case.id)
        .order_by(case((CasePost.link == "origin", 0), else_=1), CasePost.linked_at, CasePost.id)
        .limit(1)
        .scalar_subquery()
    )


def _month_cases(conn: Connection, start: datetime, end: datetime, cutoff: datetime) -> list[_CaseRow]:
    """The cases with anything happening in the month, or open and past due at its end."""

    def within(col: InstrumentedAttribute[Any]) -> ColumnElement[bool]:
        return and_(col >= start, col < end)

    still_open = or_(
        Case.status.not_in(CLOSED_STATUSES),
        func.coalesce(Case.resolved_at, Case.updated_at) >= cutoff,
    )
    relevant = or_(
        within(Case.opened_at),
        within(Case.first_response_at),
        within(Case.resolved_at),
        within(Case.updated_at),
        and_(Case.opened_at < cutoff, Case.resolution_due < cutoff, still_open),
    )
    stmt = select(
        Case.id,
        Case.category,
        Case.topic,
        Case.municipality_code,
        Case.executor_code,
        Case.status,
        Case.hazard_type,
        Case.opened_at,
        Case.first_response_at,
        Case.resolved_at,
        Case.updated_at,
        Case.resolution_due,
        _origin_network().label("network"),
    ).where(relevant)
    rows = []
    for r in conn.execute(stmt):
        rows.append(
            _CaseRow(
                id=r.id,
                category=r.category,
                topic=r.topic,
                municipality=r.municipality_code,
                executor=r.executor_code,
                status=r.status,
                hazard_type=r.hazard_type,
                opened_at=as_utc(r.opened_at),
                first_response_at=as_utc(r.first_response_at),
                resolved_at=as_utc(r.resolved_at),
                updated_at=as_utc(r.updated_at),
                resolution_due=as_utc(r.resolution_due),
                network=r.network,
            )
        )
    return rows


@dataclass
class _CaseFacts:
    """What one case contributes to the month."""

    counts: list[str]
    first_response_h: float | None
    resolution_h: float | None


def _rating_key(e: dict[str, Any]) -> tuple[bool, float, bool, float, int, str]:
    """The executor rating's order: timeliness, then first-response speed, then volume."""
    timeliness: float | None = e["timeliness"]
    first: float | None = e["median_first_response_h"]
    return (
        timeliness is None,
        -(timeliness or 0.0),
        first is None,
        first or 0.0,
        -int(e["resolved"]),
        e["executor_code"],
    )


def _case_facts(c: _CaseRow, start: datetime, end: datetime, cutoff: datetime) -> _CaseFacts:
    def within(value: datetime | None) -> TypeGuard[datetime]:
        return value is not None and start <= value < end

    counts: list[str] = []
    if within(c.opened_at):
        counts.append("cases_opened")
        if c.hazard_type:
            counts += ["hazards_found", f"hazards_found:{c.hazard_type}"]
    resolved_at = c.resolved_at
    resolution_h = None
    if c.status == "resolved" and within(resolved_at):
        counts.append("cases_resolved")
        resolution_h = (resolved_at - c.opened_at).total_seconds() / 3600
        if c.resolution_due is not None and resolved_at > c.resolution_due:
            counts += ["cases_resolved_late", "cases_overdue"]
        else:
            counts.append("cases_resolved_on_time")
        if c.hazard_type:
            counts += ["hazards_removed", f"hazards_removed:{c.hazard_type}"]
    if c.status == "rejected" and within(c.closed_at):
        counts.append("cases_rejected")
    closed_before = c.status in CLOSED_STATUSES and (c.closed_at is None or c.closed_at < cutoff)
    if (
        c.opened_at < cutoff
        and not closed_before
        and c.resolution_due is not None
        and c.resolution_due < cutoff
    ):
        counts += ["cases_open_overdue", "cases_overdue"]
    first_h = None
    first_response_at = c.first_response_at
    if within(first_response_at) and first_response_at < cutoff:
        first_h = (first_response_at - c.opened_at).total_seconds() / 3600
    return _CaseFacts(counts, first_h, resolution_h)


def _case_figures(
    cases: list[_CaseRow], start: datetime, end: datetime, cutoff: datetime
) -> tuple[
    dict[tuple[str, str, str], Counter[str]],
    dict[tuple[str, str, str, str], float | None],
    list[dict[str, Any]],
]:
    """Case counts per scope, time percentiles per scope, and the executor rating."""
    counts: dict[tuple[str, str, str], Counter[str]] = defaultdict(Counter)
    first: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    resolution: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    per_exec: dict[str, Counter[str]] = defaultdict(Counter)
    exec_first: dict[str, list[float]] = defaultdict(list)
    for c in cases:
        facts = _case_facts(c, start, end, cutoff)
        if not facts.counts and facts.first_response_h is None:
            continue
        for key in _scopes(c.municipality, c.category, c.network):
            counts[key].update(facts.counts)
            if facts.first_response_h is not None:
                first[key].append(facts.first_response_h)
            if facts.resolution_h is not None:
                resolution[key].append(facts.resolution_h)
        per_exec[c.executor].update(facts.counts)
        per_exec[c.executor]["_active"] += 1
        if facts.first_response_h is not None:
            exec_first[c.executor].append(facts.first_response_h)

    timing: dict[tuple[str, str, str, str], float | None] = {}
    for name, table in (("first_response", first), ("resolution", resolution)):
        for key, values in table.items():
            timing[(*key, f"{name}_median_h")] = percentile(values, 0.5)
            timing[(*key, f"{name}_p90_h")] = percentile(values, 0.9)
    for key, cnt in counts.items():
        if cnt["cases_resolved"]:
            timing[(*key, "share_resolved_on_time")] = cnt["cases_resolved_on_time"] / cnt["cases_resolved"]

    executors: list[dict[str, Any]] = []
    for code, cnt in per_exec.items():
        on_time, overdue = cnt["cases_resolved_on_time"], cnt["cases_overdue"]
        executors.append(
            {
                "executor_code": code,
                "cases": cnt["cases_opened"],
                "resolved": cnt["cases_resolved"],
                "resolved_on_time": on_time,
                "overdue": overdue,
                "median_first_response_h": percentile(exec_first.get(code, []), 0.5),
                "timeliness": on_time / (on_time + overdue) if on_time + overdue else None,
            }
        )
    executors.sort(key=_rating_key)
    for rank, e in enumerate(executors, start=1):
        e["rank"] = rank
    return counts, timing, executors


def _main_counts(conn: Connection, month: date, cutoff: datetime) -> dict[tuple[str, str, str], Counter[str]]:
    """The main counts of ``month`` per scope (posts and cases)."""
    start, end = month_bounds(month)
    cutoff = min(cutoff, end)
    out = _post_counts(conn, start, end)
    case_counts, _timing, _exec = _case_figures(_month_cases(conn, start, end, cutoff), start, end, cutoff)
    for key, cnt in case_counts.items():
        out[key].update(cnt)
    return out


def _figures(conn: Connection, month: date, now: datetime) -> _Figures:
    start, end = month_bounds(month)
    cutoff = min(end, now)
    figures = _Figures()
    counts = _post_counts(conn, start, end)
    cases = _month_cases(conn, start, end, cutoff)
    case_counts, timing, executors = _case_figures(cases, start, end, cutoff)
    for key, cnt in case_counts.items():
        counts[key].update(cnt)
    counts.setdefault((WILDCARD, WILDCARD, WILDCARD), Counter())  # the region row always exists
    for key, cnt in counts.items():
        for metric in (*MAIN_COUNTS, *CASE_COUNTS):
            figures.stats[(*key, metric)] = float(cnt.get(metric, 0))
        for metric, value in cnt.items():
            if ":" in metric:  # hazards by type
                figures.stats[(*key, metric)] = float(value)
    figures.stats.update({k: v for k, v in timing.items() if v is not None})
    figures.stats.update(_top_lists(conn, start, end))

    previous = _main_counts(conn, add_months(month, -1), start)
    for key, cnt in counts.items():
        mun, cat, net = key
        if cat != WILDCARD or net != WILDCARD:
            continue
        prev = previous.get(key, Counter())
        for metric in MAIN_COUNTS:
            before = prev.get(metric, 0)
            if before:
                change = (cnt.get(metric, 0) - before) / before * 100
                figures.stats[(mun, cat, net, f"{metric}_change_pct")] = round(change, 4)
    figures.executors = executors
    return figures


def compute_month(engine: Engine, month: date | str, *, now: datetime | None = None) -> MonthSummary:
    """Compute a month's figures and replace the stored ones in one transaction; return the summary.

    ``now`` (default: the current time) bounds the "open at month end" test when computing the
    current month. Rerunning a month deletes its rows and inserts the new ones: never duplicates.
    """
    month = month_start(month)
    now = as_utc(now) if now is not None else datetime.now(UTC)
    start, _end = month_bounds(month)
    if now <= start:
        raise StatsError(f"month {month:%Y-%m} has not started yet (now={now.isoformat()})")
    with engine.begin() as conn:
        if (
            engine.dialect.name == "postgresql"
        ):  # concurrent reruns of one month queue up instead of colliding
            conn.execute(select(func.pg_advisory_xact_lock(STATS_LOCK_BASE + month.year * 100 + month.month)))
        figures = _figures(conn, month, now)
        conn.execute(delete(MonthlyStat).where(MonthlyStat.month == month))
        conn.execute(delete(ExecutorMonthlyStat).where(ExecutorMonthlyStat.month == month))
        rows = [
            {"month": month, "municipality_code": m, "category": c, "network": n, "metric": k, "value": v}
            for (m, c, n, k), v in figures.stats.items()
        ]
        if rows:
            conn.execute(insert(MonthlyStat), rows)
        if figures.executors:
            conn.execute(insert(ExecutorMonthlyStat), [{"month": month, **e} for e in figures.executors])
    log.info(
        "statistics of %s: %d figures, %d executors", f"{month:%Y-%m}", len(rows), len(figures.executors)
    )
    return load_month(engine, month)


# --------------------------------------------------------------------------- reading back


STAT_COLUMNS = ["municipality_code", "category", "network", "metric", "value"]
EXECUTOR_COLUMNS = [
    "executor_code",
    "executor_name",
    "cases",
    "resolved",
    "resolved_on_time",
    "overdue",
    "median_first_response_h",
    "timeliness",
    "rank",
]


@dataclass
class MonthSummary:
    """The stored figures of one month, shaped for the report, the CLI and the Open311 export."""

    month: date
    stats: pd.DataFrame
    """Long format: municipality_code, category, network, metric, value (``*`` = all)."""
    executors: pd.DataFrame
    """The executor rating, ordered by rank (columns: ``EXECUTOR_COLUMNS``)."""
    trend: pd.DataFrame
    """Region totals of the main counts for the 12 months up to this one: month, metric, value."""
    names: dict[str, dict[str, str]]
    """Display names: municipalities, categories, topics, executors, hazard_types."""
    engine: Engine | None = field(default=None, repr=False, compare=False)

    # ----------------------------------------------------------------- lookups
    def value(
        self, metric: str, municipality: str = WILDCARD, category: str = WILDCARD, network: str = WILDCARD
    ) -> float | None:
        """One figure (None when not stored)."""
        s = self.stats
        hit = s[
            (s.metric == metric)
            & (s.municipality_code == municipality)
            & (s.category == category)
            & (s.network == network)
        ]
        return None if hit.empty else float(hit.value.iloc[0])

    def region(self) -> dict[str, float]:
        """All region-level figures (``*, *, *``) by metric."""
        s = self.stats
        hit = s[(s.municipality_code == WILDCARD) & (s.category == WILDCARD) & (s.network == WILDCARD)]
        return dict(zip(hit.metric, hit.value.astype(float), strict=True))

    def by(self, dimension: str, metrics: Iterable[str] = MAIN_COUNTS) -> pd.DataFrame:
        """Figures per member of one dimension (the other two ``*``): index member, one column per metric."""
        dims = ["municipality_code", "category", "network"]
        if dimension not in dims:
            raise StatsError(f"dimension must be one of {dims}, got {dimension!r}")
        s = self.stats
        mask = s[dimension] != WILDCARD
        for other in dims:
            if other != dimension:
                mask &= s[other] == WILDCARD
        metrics = list(metrics)
        sub = s[mask & s.metric.isin(metrics)]
        table = sub.pivot_table(index=dimension, columns="metric", values="value", aggfunc="first")
        return table.reindex(columns=metrics).fillna(0.0).sort_index()

    def matrix(self, metric: str = "incidents_found") -> pd.DataFrame:
        """Municipalities × categories of one metric (network ``*``)."""
        s = self.stats
        sub = s[
            (s.metric == metric)
            & (s.network == WILDCARD)
            & (s.municipality_code != WILDCARD)
            & (s.category != WILDCARD)
        ]
        table = sub.pivot_table(
            index="municipality_code", columns="category", values="value", aggfunc="first"
        )
        return table.fillna(0.0).sort_index()

    def prefixed(
        self, prefix: str, municipality: str = WILDCARD, category: str = WILDCARD, network: str = WILDCARD
    ) -> list[tuple[str, float]]:
        """Figures whose metric starts with ``<prefix>:`` in one scope, largest first: (suffix, value)."""
        s = self.stats
        hit = s[
            s.metric.str.startswith(prefix + ":")
            & (s.municipality_code == municipality)
            & (s.category == category)
            & (s.network == network)
        ]
        pairs = [(m.split(":", 1)[1], float(v)) for m, v in zip(hit.metric, hit.value, strict=True)]
        return sorted(pairs, key=lambda kv: (-kv[1], kv[0]))

    def hazards(self) -> pd.DataFrame:
        """Region hazards by type: hazard_type, name, found, removed."""
        found = dict(self.prefixed("hazards_found"))
        removed = dict(self.prefixed("hazards_removed"))
        names = self.names.get("hazard_types", {})
        rows = [
            {
                "hazard_type": t,
                "name": names.get(t, t),
                "found": found.get(t, 0.0),
                "removed": removed.get(t, 0.0),
            }
            for t in sorted(set(found) | set(removed), key=lambda t: (-found.get(t, 0.0), t))
        ]
        return pd.DataFrame(rows, columns=["hazard_type", "name", "found", "removed"])

    def name(self, kind: str, code: str) -> str:
        """Display name of a municipality / category / topic / executor / hazard type (else the code)."""
        if code == WILDCARD:
            return "Все"
        return self.names.get(kind, {}).get(code, code)

    # ----------------------------------------------------------------- export
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready figures: month, region, long-format stats, executors, trend."""

        def clean(value: Any) -> Any:
            if isinstance(value, float) and math.isnan(value):
                return None
            if hasattr(value, "item"):
                return clean(value.item())
            return value

        def records(df: pd.DataFrame) -> list[dict[Hashable, Any]]:
            return [{k: clean(v) for k, v in row.items()} for row in df.to_dict(orient="records")]

        trend = self.trend.copy()
        trend["month"] = trend["month"].map(lambda d: f"{d:%Y-%m}")
        return {
            "month": f"{self.month:%Y-%m}",
            "region": {k: clean(v) for k, v in self.region().items()},
            "stats": records(self.stats),
            "executors": records(self.executors),
            "trend": records(trend),
        }

    def to_json(self, **kwargs: Any) -> str:
        """The figures as a JSON document (see :meth:`to_dict`)."""
        kwargs.setdefault("ensure_ascii", False)
        return json.dumps(self.to_dict(), **kwargs)


def reference_names(engine: Engine) -> dict[str, dict[str, str]]:
    """Display names from the reference tables (and the rubricator's hazard types)."""
    from incidents.reference import load_rubricator

    with engine.connect() as conn:
        names = {
            "municipalities": dict(conn.execute(select(Municipality.code, Municipality.short_name)).all()),
            "categories": dict(conn.execute(select(Category.slug, Category.name)).all()),
            "topics": dict(conn.execute(select(Topic.slug, Topic.name)).all()),
            "executors": dict(conn.execute(select(Executor.code, Executor.name)).all()),
        }
    try:
        names["hazard_types"] = dict(load_rubricator().hazard_types)
    except Exception as exc:  # names are cosmetic; the figures stand without them
        log.warning("hazard type names unavailable: %s", exc)
        names["hazard_types"] = {}
    return names


def stored_months(engine: Engine) -> list[date]:
    """Months that have stored figures, oldest first."""
    with engine.connect() as conn:
        return [
            _as_date(m)
            for m in conn.execute(select(MonthlyStat.month).distinct().order_by(MonthlyStat.month))
        ]


def _as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, str):
        return date.fromisoformat(value[:10])
    return value


def load_month(engine: Engine, month: date | str) -> MonthSummary:
    """Read a month's stored figures back (``StatsError`` when the month was never computed)."""
    month = month_start(month)
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                MonthlyStat.municipality_code,
                MonthlyStat.category,
                MonthlyStat.network,
                MonthlyStat.metric,
                MonthlyStat.value,
            )
            .where(MonthlyStat.month == month)
            .order_by(
                MonthlyStat.metric, MonthlyStat.municipality_code, MonthlyStat.category, MonthlyStat.network
            )
        ).all()
        if not rows:
            raise StatsError(f"no statistics stored for {month:%Y-%m}; compute them first")
        execs = conn.execute(
            select(
                ExecutorMonthlyStat.executor_code,
                Executor.name,
                ExecutorMonthlyStat.cases,
                ExecutorMonthlyStat.resolved,
                ExecutorMonthlyStat.resolved_on_time,
                ExecutorMonthlyStat.overdue,
                ExecutorMonthlyStat.median_first_response_h,
                ExecutorMonthlyStat.timeliness,
                ExecutorMonthlyStat.rank,
            )
            .join(Executor, Executor.code == ExecutorMonthlyStat.executor_code)
            .where(ExecutorMonthlyStat.month == month)
            .order_by(ExecutorMonthlyStat.rank, ExecutorMonthlyStat.executor_code)
        ).all()
        first = add_months(month, -11)
        trend_rows = conn.execute(
            select(MonthlyStat.month, MonthlyStat.metric, MonthlyStat.value)
            .where(
                MonthlyStat.month >= first,
                MonthlyStat.month <= month,
                MonthlyStat.municipality_code == WILDCARD,
                MonthlyStat.category == WILDCARD,
                MonthlyStat.network == WILDCARD,
                MonthlyStat.metric.in_(MAIN_COUNTS),
            )
            .order_by(MonthlyStat.month, MonthlyStat.metric)
        ).all()
    stats = pd.DataFrame([tuple(r) for r in rows], columns=STAT_COLUMNS)
    stats["value"] = stats["value"].astype(float)
    executors = pd.DataFrame([tuple(r) for r in execs], columns=EXECUTOR_COLUMNS)
    trend = pd.DataFrame(
        [(_as_date(m), k, float(v) if v is not None else None) for m, k, v in trend_rows],
        columns=["month", "metric", "value"],
    )
    return MonthSummary(
        month=month,
        stats=stats,
        executors=executors,
        trend=trend,
        names=reference_names(engine),
        engine=engine,
    )


__all__ = [
    "MAIN_COUNTS",
    "METRIC_LABELS",
    "MonthSummary",
    "StatsError",
    "add_months",
    "compute_month",
    "load_month",
    "month_bounds",
    "month_start",
    "percentile",
    "stored_months",
]
