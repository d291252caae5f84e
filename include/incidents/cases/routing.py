"""Routing: analysed incident posts open cases or join existing ones.

:func:`route_posts` takes the incident posts (``posts.is_incident`` true) that are not
linked to a case yet, in chunks of :data:`CHUNK_SIZE` ordered by publication time, and
for each chunk, in one transaction and with a constant number of bulk queries:

1. re-reads the chunk's still-unlinked posts under a lock (PostgreSQL: a transaction-scoped
   advisory lock :data:`incidents.cases.sql.ROUTING_LOCK`; SQLite: ``BEGIN IMMEDIATE``), so two
   overlapping routing runs never route one post twice nor open twin cases for one incident;
   ``case_posts.post_id`` is unique as a last line of defence (a violation rolls the chunk back
   and it is routed again);
2. validates the labels (unknown category, topic, municipality or a missing routing rule send
   the post to quarantine, stage ``route``, with the reason);
3. loads the candidate cases of the chunk (open cases of the same municipalities and
   categories in the time window, cases with the same fingerprints, cases of the parent posts
   of comments) into a :class:`incidents.cases.dedupe.CandidateIndex` and matches every post
   in memory: it joins a case (links ``exact``, ``near_duplicate``, ``comment``; a ``merged``
   event with the score and method) or opens one (link ``origin``);
4. inserts cases, links, events and, for hazards, outbox notifications in bulk.

**Executor precedence** (first rule found wins; rules are cached in memory per run):
``(category, topic, municipality)`` → ``(category, topic, *)`` → ``(category, *, municipality)``
→ ``(category, *, *)``. A topic-specific regional rule thus beats a municipality's default for
the category, and a municipality-specific topic rule beats everything.

**Case fields.** Priority ``critical`` for hazards (the post's ``hazard`` label or a hazard
topic; then ``special_control`` is set and ``hazard_type`` copied), ``high`` for priority (★)
topics, ``normal`` otherwise. Deadlines from the topic's deadline rule, else the category's
(``*``), counted from the origin post's publication time on the production calendar
(:mod:`incidents.cases.deadlines`), so reruns and backfills compute the same values. A routed
case is opened in status ``assigned`` (the executor is assigned by the rules): events
``opened`` (→ ``new``) and ``assigned`` (→ ``assigned``) with idempotency keys
``open:<post_id>`` and ``assign:<post_id>``. Hazard cases enqueue e-mails to the executor and
the regional duty officer (keys ``notify:<case>:opened:<executor code>``). A hazard post that
joins an ordinary case raises it to special control (event ``relabelled``, key
``hazard:<case>:<post>``, and the same notifications), unless an operator touched the case:
then only a ``suggestion`` event is written.

**Reprocessing.** After routing, :func:`apply_reclassification` reconciles cases whose origin
post now carries labels of another classifier version: cases no operator touched are
relabelled (event ``relabelled``), touched cases only get ``suggestion`` (event ``suggestion``).
"""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, and_, exists, func, or_, select, true, update
from sqlalchemy.exc import IntegrityError

from incidents import CATEGORIES
from incidents.analysis.places import post_place_key
from incidents.cases.deadlines import WorkCalendar, as_utc
from incidents.cases.dedupe import (
    MAX_TEXTS_PER_CASE,
    OPEN_STATUSES,
    CandidateIndex,
    CaseCandidate,
    DedupeConfig,
    Match,
    fingerprint_of_normalised,
    normalise_text,
    stems,
)
from incidents.cases.notify import compose, load_case_contexts, notification_row
from incidents.cases.sql import ROUTING_LOCK, begin_write, insert_ignore
from incidents.db.models import (
    WILDCARD,
    Case,
    CaseEvent,
    CasePost,
    DeadlineRule,
    Executor,
    Municipality,
    Post,
    Quarantine,
    RoutingRule,
    Topic,
)

log = logging.getLogger(__name__)


def stored_place_key(
    stored: str | None, text: str, municipality_code: str | None, settlement_oktmo: str | None
) -> str | None:
    """A post's place key: the one the analysis stored (``""`` = none), else derived from the text."""
    if stored is not None:
        return stored or None
    return post_place_key(text, municipality_code, settlement_oktmo)


CHUNK_SIZE = 2000
SUMMARY_CHARS = 300
PIPELINE_ACTORS = frozenset({"pipeline", "routing", "escalation", "delivery", "reprocessing"})


def is_operator(actor: str) -> bool:
    """True for a person (any actor that is not one of the pipeline's own names)."""
    return actor not in PIPELINE_ACTORS and not actor.startswith("pipeline")


class RoutingError(ValueError):
    """A post's labels cannot be routed (the reason goes to quarantine)."""


# ---------------------------------------------------------------------------- reference cache


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

    def deadline_for(self, category: str, topic: str | None) -> DeadlineInfo | None:
        return self.deadlines.get((category, topic or WILDCARD)) or self.deadlines.get((category, WILDCARD))

    def executor_of_kind(self, kind: str) -> ExecutorInfo | None:
        for info in self.executors.values():
            if info.kind == kind:
                return info
        return None


def case_fields(post: Any, ref: RoutingReference) -> dict[str, Any]:
    """The labels of a post turned into the fields of its case; raises :class:`RoutingError`."""
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
    rule = ref.deadline_for(category, topic)
    opened_at = as_utc(post.published_at)
    first_due = resolution_due = None
    if rule is not None:
        first_due, resolution_due = ref.calendar.compute_due(opened_at, rule)
    else:
        log.warning("no deadline rule for %s/%s", category, topic)
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
        "first_response_due": first_due,
        "resolution_due": resolution_due,
    }


# ---------------------------------------------------------------------------- summary


@dataclass
class RoutingSummary:
    """What one :func:`route_posts` run did."""

    selected: int = 0
    opened: int = 0
    joined: int = 0
    by_method: dict[str, int] = field(default_factory=dict)
    quarantined: int = 0
    skipped: int = 0
    """Posts linked meanwhile by an overlapping run (or no longer incidents)."""
    notifications: int = 0
    relabelled: int = 0
    suggestions: int = 0
    retries: int = 0
    seconds: float = 0.0

    @property
    def posts_per_second(self) -> float:
        return (self.opened + self.joined) / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["posts_per_second"] = round(self.posts_per_second, 1)
        return data


# ---------------------------------------------------------------------------- selection

_POST_COLUMNS = (
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

_unlinked = ~exists().where(CasePost.post_id == Post.id)


def _filters(post_ids: Sequence[int] | None, batch_id: int | None, since: datetime | None) -> list:
    where = []
    if batch_id is not None:
        where.append(Post.batch_id == batch_id)
    if since is not None:
        where.append(Post.published_at >= as_utc(since))
    if post_ids is not None:
        where.append(Post.id.in_(list(post_ids)))
    return where


def _select_ids(
    engine: Engine, post_ids: Sequence[int] | None, batch_id: int | None, since: datetime | None
) -> list[int]:
    ids: list[int] = []
    with engine.connect() as conn:
        id_parts: Iterable[Sequence[int] | None] = (
            [post_ids[i : i + 10000] for i in range(0, len(post_ids), 10000)]
            if post_ids is not None
            else [None]
        )
        rows: list[tuple[datetime, int]] = []
        for part in id_parts:
            query = select(Post.published_at, Post.id).where(
                Post.is_incident == true(), _unlinked, *_filters(part, batch_id, since)
            )
            rows.extend((as_utc(p), i) for p, i in conn.execute(query))
        rows.sort()
        ids = [i for _p, i in rows]
    return ids


# ---------------------------------------------------------------------------- one chunk


@dataclass
class _NewCase:
    key: str
    fields: dict[str, Any]
    origin: Any
    fp: str


@dataclass
class _RunCache:
    """What one routing run remembers across its chunks: the comparison texts of cases.

    Texts of a case are read (and normalised) once per run; cases opened or joined by the
    run are added as it goes. Entries of cases opened before the current chunk's window are
    dropped, so memory stays bounded by the window, not by the run.
    """

    texts: dict[int, list[tuple[str, str]]] = field(default_factory=dict)
    """case id -> [(fingerprint, stems)], at most MAX_TEXTS_PER_CASE."""
    blocked: dict[int, set[str]] = field(default_factory=dict)
    opened: dict[int, datetime] = field(default_factory=dict)
    places: dict[int, set[str]] = field(default_factory=dict)
    """case id -> place keys of its posts."""

    def add(self, case_id: int, opened_at: datetime, fp: str, st: str, key: str | None = None) -> None:
        self.opened.setdefault(case_id, opened_at)
        texts = self.texts.setdefault(case_id, [])
        self.blocked.setdefault(case_id, set())
        places = self.places.setdefault(case_id, set())
        if key:
            places.add(key)
        if len(texts) < MAX_TEXTS_PER_CASE and (fp, st) not in texts:
            texts.append((fp, st))

    def evict_before(self, limit: datetime) -> None:
        for case_id in [c for c, at in self.opened.items() if at < limit]:
            self.places.pop(case_id, None)
            self.texts.pop(case_id, None)
            self.blocked.pop(case_id, None)
            self.opened.pop(case_id, None)


def _load_candidates(
    conn: Connection,
    index: CandidateIndex,
    posts: list[Any],
    fps: dict[int, str],
    cache: _RunCache,
) -> None:
    """Open cases the chunk's posts may join, with a few texts each, and the split blocks."""
    cfg = index.config
    window = max(cfg.near_window, cfg.place_window, cfg.exact_window)
    times = [as_utc(p.published_at) for p in posts]
    lo, hi = min(times) - window, max(times) + window
    cache.evict_before(lo)
    places = {(p.municipality_code or None, p.category) for p in posts}
    muns = {m for m, _c in places if m is not None}
    cats = {c for _m, c in places}
    case_cols = (
        Case.id,
        Case.category,
        Case.topic,
        Case.municipality_code,
        Case.settlement_oktmo,
        Case.opened_at,
        Case.fingerprint,
        Case.hazard_type,
    )
    mun_cond = []
    if muns:
        mun_cond.append(Case.municipality_code.in_(muns))
    if any(m is None for m, _c in places):
        mun_cond.append(Case.municipality_code.is_(None))
    base = and_(Case.status.in_(OPEN_STATUSES), Case.opened_at >= lo, Case.opened_at <= hi)
    found: dict[int, Any] = {}
    for row in conn.execute(select(*case_cols).where(base, Case.category.in_(cats), or_(*mun_cond))):
        if (row.municipality_code, row.category) in places:
            found[row.id] = row
    fp_list = sorted(set(fps.values()))
    for i in range(0, len(fp_list), 1000):
        for row in conn.execute(select(*case_cols).where(base, Case.fingerprint.in_(fp_list[i : i + 1000]))):
            found[row.id] = row
    if not found:
        return
    missing = sorted(i for i in found if i not in cache.texts)
    for i in range(0, len(missing), 1000):
        part = missing[i : i + 1000]
        for case_id in part:
            cache.texts[case_id] = []
            cache.blocked[case_id] = set()
            cache.opened[case_id] = as_utc(found[case_id].opened_at)
            cache.places[case_id] = set()
        ranked = (
            select(
                CasePost.case_id,
                Post.text,
                Post.place_key,
                func.row_number().over(partition_by=CasePost.case_id, order_by=CasePost.id).label("rn"),
            )
            .join(Post, Post.id == CasePost.post_id)
            .where(CasePost.case_id.in_(part))
            .subquery()
        )
        for case_id, text, stored in conn.execute(
            select(ranked.c.case_id, ranked.c.text, ranked.c.place_key).where(
                ranked.c.rn <= MAX_TEXTS_PER_CASE
            )
        ):
            norm = normalise_text(text)
            row = found[case_id]
            key = stored_place_key(stored, text, row.municipality_code, row.settlement_oktmo)
            cache.add(case_id, cache.opened[case_id], fingerprint_of_normalised(norm), stems(norm), key)
        for case_id, details in conn.execute(
            select(CaseEvent.case_id, CaseEvent.details).where(
                CaseEvent.case_id.in_(part), CaseEvent.kind == "split"
            )
        ):
            details = details if isinstance(details, dict) else json.loads(details or "{}")
            if details.get("from_case_id") == case_id and details.get("fingerprint"):
                cache.blocked[case_id].add(details["fingerprint"])
    for row in found.values():
        candidate = index.add(
            CaseCandidate(
                key=row.id,
                category=row.category,
                topic=row.topic,
                municipality_code=row.municipality_code,
                settlement_oktmo=row.settlement_oktmo,
                opened_at=as_utc(row.opened_at),
                fingerprints={row.fingerprint} if row.fingerprint else set(),
                place_keys=set(cache.places.get(row.id, ())),
                hazard_type=row.hazard_type,
            )
        )
        for fp, st in cache.texts.get(row.id, ()):
            index.add_text(row.id, fp, st)
        candidate.blocked.update(cache.blocked.get(row.id, ()))


def _parent_cases(conn: Connection, posts: list[Any]) -> dict[tuple[str, str], int]:
    wanted: dict[str, set[str]] = defaultdict(set)
    for p in posts:
        if p.kind == "comment" and p.parent_external_id:
            wanted[p.network].add(p.parent_external_id)
    out: dict[tuple[str, str], int] = {}
    for network, ext_ids in wanted.items():
        ext = sorted(ext_ids)
        for i in range(0, len(ext), 1000):
            rows = conn.execute(
                select(Post.external_id, CasePost.case_id)
                .join(CasePost, CasePost.post_id == Post.id)
                .where(Post.network == network, Post.external_id.in_(ext[i : i + 1000]))
            )
            for ext_id, case_id in rows:
                out[(network, ext_id)] = case_id
    return out


def _quarantine_row(post: Any, reason: str, now: datetime) -> dict[str, Any]:
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


def _route_chunk_tx(
    engine: Engine,
    ids: Sequence[int],
    ref: RoutingReference,
    config: DedupeConfig,
    now: datetime,
    actor: str,
    summary: RoutingSummary,
    cache: _RunCache,
    pending: list[tuple[int, datetime, str, str, str | None]],
) -> None:
    """Route one chunk in one transaction; ``pending`` collects cache updates for after the commit."""
    with engine.connect() as conn, conn.begin():
        begin_write(conn, ROUTING_LOCK)
        posts = conn.execute(
            select(*_POST_COLUMNS).where(Post.id.in_(list(ids)), Post.is_incident == true(), _unlinked)
        ).all()
        summary.skipped += len(ids) - len(posts)
        if not posts:
            return
        posts.sort(key=lambda p: (as_utc(p.published_at), p.id))

        fields_by_post: dict[int, dict[str, Any]] = {}
        valid: list[Any] = []
        quarantine: list[dict[str, Any]] = []
        for post in posts:
            try:
                fields_by_post[post.id] = case_fields(post, ref)
                valid.append(post)
            except RoutingError as exc:
                quarantine.append(_quarantine_row(post, str(exc), now))
        if quarantine:
            insert_ignore(conn, Quarantine.__table__, quarantine)
            summary.quarantined += len(quarantine)
            log.warning("routing: %d post(s) quarantined, e.g. %s", len(quarantine), quarantine[0]["reason"])
        if not valid:
            return

        text_cache: dict[int, tuple[str, str]] = {}
        keys: dict[int, str | None] = {}
        for p in valid:
            norm = normalise_text(p.text)
            text_cache[p.id] = (fingerprint_of_normalised(norm), stems(norm))
            f = fields_by_post[p.id]
            keys[p.id] = stored_place_key(p.place_key, p.text, f["municipality_code"], f["settlement_oktmo"])
        fps = {p.id: text_cache[p.id][0] for p in valid}
        index = CandidateIndex(config)
        _load_candidates(conn, index, valid, fps, cache)
        parents = _parent_cases(conn, valid)

        new_cases: dict[str, _NewCase] = {}
        links: list[tuple[int | str, Any, Match | None]] = []
        hazard_joins: dict[int, tuple[Any, dict[str, Any]]] = {}
        """existing case id -> the first hazard post joining it in this chunk"""
        for post in valid:
            f = fields_by_post[post.id]
            fp, st = text_cache[post.id]
            match: Match | None = None
            if post.kind == "comment" and post.parent_external_id:
                parent_case = parents.get((post.network, post.parent_external_id))
                if parent_case is not None:
                    match = Match(parent_case, "comment", "comment", 100.0)
            if match is None:
                match = index.match(
                    fp=fp,
                    stem_text=st,
                    category=f["category"],
                    topic=f["topic"],
                    municipality_code=f["municipality_code"],
                    settlement_oktmo=f["settlement_oktmo"],
                    published_at=f["opened_at"],
                    place_key=keys[post.id],
                    hazard_type=f["hazard_type"],
                )
            if match is None:
                key = f"new:{post.id}"
                new_cases[key] = _NewCase(key, f, post, fp)
                index.add(
                    CaseCandidate(
                        key=key,
                        category=f["category"],
                        topic=f["topic"],
                        municipality_code=f["municipality_code"],
                        settlement_oktmo=f["settlement_oktmo"],
                        opened_at=f["opened_at"],
                        hazard_type=f["hazard_type"],
                    )
                )
                index.add_text(key, fp, st)
                links.append((key, post, None))
            else:
                if match.key in index.cases:
                    index.add_text(match.key, fp, st)
                    if f["hazard_type"] and not index.cases[match.key].hazard_type:
                        index.cases[match.key].hazard_type = f["hazard_type"]
                links.append((match.key, post, match))
                if f["special_control"]:
                    if isinstance(match.key, str):
                        _raise_to_hazard(new_cases[match.key].fields, f)
                    else:
                        hazard_joins.setdefault(match.key, (post, f))
            if keys[post.id] and links[-1][0] in index.cases:
                index.add_place_key(links[-1][0], keys[post.id])  # type: ignore[arg-type]
            parents[(post.network, post.external_id)] = links[-1][0]  # type: ignore[assignment]

        # ---- write: cases, links, events, notifications
        key_to_id: dict[int | str, int] = {}
        if new_cases:
            rows = []
            for nc in new_cases.values():
                rows.append(
                    {
                        **nc.fields,
                        "status": "assigned",
                        "summary": (nc.origin.text or "").strip()[:SUMMARY_CHARS],
                        "fingerprint": nc.fp,
                        "escalation_level": 0,
                        "operator_touched": False,
                        "classifier_version": nc.origin.classifier_version,
                        "updated_at": now,
                    }
                )
            result = conn.execute(
                Case.__table__.insert().returning(Case.__table__.c.id, sort_by_parameter_order=True), rows
            )
            for nc, new_id in zip(new_cases.values(), result.scalars().all(), strict=True):
                key_to_id[nc.key] = new_id

        link_rows: list[dict[str, Any]] = []
        events: list[dict[str, Any]] = []
        joined_cases: set[int] = set()
        for key, post, match in links:
            case_id = key_to_id.get(key) if isinstance(key, str) else key
            assert case_id is not None
            case_opened = new_cases[key].fields["opened_at"] if isinstance(key, str) else None
            pending.append(
                (
                    case_id,
                    case_opened or fields_by_post[post.id]["opened_at"],
                    *text_cache[post.id],
                    keys[post.id],
                )
            )
            if match is None:
                link_rows.append(
                    {
                        "case_id": case_id,
                        "post_id": post.id,
                        "link": "origin",
                        "score": None,
                        "linked_at": now,
                    }
                )
                events.append(
                    {
                        "case_id": case_id,
                        "kind": "opened",
                        "from_status": None,
                        "to_status": "new",
                        "actor": actor,
                        "at": now,
                        "details": {"post_id": post.id, "network": post.network, "url": post.url},
                        "idempotency_key": f"open:{post.id}",
                    }
                )
                events.append(
                    {
                        "case_id": case_id,
                        "kind": "assigned",
                        "from_status": "new",
                        "to_status": "assigned",
                        "actor": actor,
                        "at": now,
                        "details": {
                            "executor_code": fields_by_post[post.id]["executor_code"],
                            "by": "routing_rules",
                        },
                        "idempotency_key": f"assign:{post.id}",
                    }
                )
                summary.opened += 1
            else:
                link_rows.append(
                    {
                        "case_id": case_id,
                        "post_id": post.id,
                        "link": match.link,
                        "score": match.score,
                        "linked_at": now,
                    }
                )
                events.append(
                    {
                        "case_id": case_id,
                        "kind": "merged",
                        "from_status": None,
                        "to_status": None,
                        "actor": actor,
                        "at": now,
                        "details": {
                            "post_id": post.id,
                            "network": post.network,
                            "score": match.score,
                            "method": match.method,
                            "link": match.link,
                        },
                        "idempotency_key": f"merge:{post.id}",
                    }
                )
                if not isinstance(key, str):
                    joined_cases.add(case_id)
                summary.joined += 1
                summary.by_method[match.method] = summary.by_method.get(match.method, 0) + 1
        for i in range(0, len(link_rows), 1000):
            conn.execute(CasePost.__table__.insert(), link_rows[i : i + 1000])
        insert_ignore(conn, CaseEvent.__table__, events)
        if joined_cases:
            ids_joined = sorted(joined_cases)
            for i in range(0, len(ids_joined), 1000):
                conn.execute(update(Case).where(Case.id.in_(ids_joined[i : i + 1000])).values(updated_at=now))

        hazard_ids = [key_to_id[nc.key] for nc in new_cases.values() if nc.fields["special_control"]]
        if hazard_joins:
            hazard_ids += _hazard_joined(conn, hazard_joins, actor, now)
        if hazard_ids:
            summary.notifications += _enqueue_opened(conn, hazard_ids, ref, now)


def _raise_to_hazard(fields: dict[str, Any], hazard: dict[str, Any]) -> None:
    """A hazard post joined a case opened in the same chunk: the case goes under special control."""
    if fields["special_control"]:
        return
    fields.update(special_control=True, priority="critical", hazard_type=hazard["hazard_type"])
    for due in ("first_response_due", "resolution_due"):
        if hazard[due] is not None and (fields[due] is None or hazard[due] < fields[due]):
            fields[due] = hazard[due]


def _hazard_joined(
    conn: Connection, joins: dict[int, tuple[Any, dict[str, Any]]], actor: str, now: datetime
) -> list[int]:
    """Existing ordinary cases joined by a hazard post go under special control.

    Only cases no operator touched are changed (an operator's decision stands; the hazard is
    then recorded as a ``suggestion`` event). Returns the ids of the cases raised.
    """
    ids = sorted(joins)
    state = {
        r.id: r
        for r in conn.execute(
            select(Case.id, Case.special_control, Case.operator_touched).where(Case.id.in_(ids))
        )
    }
    raised: list[int] = []
    events = []
    for case_id in ids:
        row = state.get(case_id)
        if row is None or row.special_control:
            continue
        post, f = joins[case_id]
        details = {"post_id": post.id, "reason": "hazard post joined", "hazard_type": f["hazard_type"]}
        if row.operator_touched:
            events.append(_event(case_id, "suggestion", actor, now, details, f"hazard:{case_id}:{post.id}"))
            continue
        conn.execute(
            update(Case)
            .where(Case.id == case_id)
            .values(special_control=True, priority="critical", hazard_type=f["hazard_type"], updated_at=now)
        )
        events.append(_event(case_id, "relabelled", actor, now, details, f"hazard:{case_id}:{post.id}"))
        raised.append(case_id)
    insert_ignore(conn, CaseEvent.__table__, events)
    return raised


def _route_chunk(
    engine: Engine,
    ids: Sequence[int],
    ref: RoutingReference,
    config: DedupeConfig,
    now: datetime,
    actor: str,
    total: RoutingSummary,
    cache: _RunCache,
) -> None:
    """Route one chunk; counts and cached texts are taken over only once its transaction committed."""
    summary = RoutingSummary()
    pending: list[tuple[int, datetime, str, str, str | None]] = []
    _route_chunk_tx(engine, ids, ref, config, now, actor, summary, cache, pending)
    for name in ("opened", "joined", "quarantined", "skipped", "notifications"):
        setattr(total, name, getattr(total, name) + getattr(summary, name))
    for method, n in summary.by_method.items():
        total.by_method[method] = total.by_method.get(method, 0) + n
    for case_id, opened_at, fp, st, key in pending:
        if case_id in cache.texts or opened_at is not None:
            cache.add(case_id, cache.opened.get(case_id, opened_at), fp, st, key)


def _enqueue_opened(conn: Connection, case_ids: list[int], ref: RoutingReference, now: datetime) -> int:
    """Outbox rows for new hazard cases: the executor and the regional duty officer."""
    contexts = load_case_contexts(conn, case_ids)
    duty = ref.executor_of_kind("duty_officer")
    if duty is None:
        log.warning("no duty officer among executors: hazard cases notify their executor only")
    rows = []
    for case_id, ctx in contexts.items():
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
    insert_ignore(conn, notification_table(), rows)
    return len(rows)


def notification_table():
    from incidents.db.models import Notification

    return Notification.__table__


# ---------------------------------------------------------------------------- entry point


def route_posts(
    engine: Engine,
    *,
    post_ids: list[int] | None = None,
    batch_id: int | None = None,
    since: datetime | None = None,
    now: datetime | None = None,
    actor: str = "pipeline",
    chunk_size: int = CHUNK_SIZE,
    config: DedupeConfig | None = None,
    reference: RoutingReference | None = None,
    reclassify: bool = True,
) -> RoutingSummary:
    """Route every analysed, unlinked incident post of the selection into cases.

    Selection: ``post_ids``, ``batch_id`` and ``since`` (publication time) narrow it down
    (all given filters apply); none given means every unlinked incident post. ``now`` is the
    time written on links and events (default: the current time). With ``reclassify``, cases
    whose origin post was relabelled by a newer classifier are reconciled afterwards
    (:func:`apply_reclassification`). Idempotent: a rerun finds nothing left to route.
    """
    started = time.perf_counter()
    now = as_utc(now or datetime.now(UTC))
    ref = reference or RoutingReference.load(engine)
    config = config or DedupeConfig()
    summary = RoutingSummary()
    ids = _select_ids(engine, post_ids, batch_id, since)
    summary.selected = len(ids)
    cache = _RunCache()
    for i in range(0, len(ids), chunk_size):
        part = ids[i : i + chunk_size]
        for attempt in range(1, 4):
            try:
                _route_chunk(engine, part, ref, config, now, actor, summary, cache)
                break
            except IntegrityError as exc:
                # an overlapping run linked some of these posts first: route the rest again
                summary.retries += 1
                if attempt == 3:
                    raise
                log.warning(
                    "routing chunk conflicted with another run (%s); retrying", str(exc).splitlines()[0]
                )
    if reclassify:
        relabelled, suggestions = apply_reclassification(
            engine, post_ids, batch_id=batch_id, since=since, now=now, reference=ref
        )
        summary.relabelled, summary.suggestions = relabelled, suggestions
    summary.seconds = round(time.perf_counter() - started, 3)
    log.info(
        "routing: %d selected, %d opened, %d joined %s, %d quarantined, %d skipped in %.1fs",
        summary.selected,
        summary.opened,
        summary.joined,
        summary.by_method,
        summary.quarantined,
        summary.skipped,
        summary.seconds,
    )
    return summary


# ---------------------------------------------------------------------------- reprocessing

_LABEL_FIELDS = (
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


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


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
    recomputed from ``opened_at``; event ``relabelled`` with old and new values; a post that
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
                *[c.label(f"p_{c.key}") for c in _POST_COLUMNS],
                Post.is_incident.label("p_is_incident"),
            )
            .join(CasePost, and_(CasePost.case_id == Case.id, CasePost.link == "origin"))
            .join(Post, Post.id == CasePost.post_id)
            .where(
                Post.classifier_version.is_not(None),
                or_(Case.classifier_version.is_(None), Case.classifier_version != Post.classifier_version),
                *_filters(None, batch_id, since),
            )
        )
        parts: list[Sequence[int] | None] = (
            [list(post_ids[i : i + 5000]) for i in range(0, len(post_ids), 5000)]
            if post_ids is not None
            else [None]
        )
        rows = []
        for part in parts:
            q = query if part is None else query.where(Post.id.in_(part))
            rows.extend(conn.execute(q).all())
        events: list[dict[str, Any]] = []
        for row in rows:
            m = row._mapping
            post = _PostView({k[2:]: v for k, v in m.items() if isinstance(k, str) and k.startswith("p_")})
            version = post.classifier_version
            old = {f: m[f] for f in _LABEL_FIELDS}
            if not post.is_incident:
                new: dict[str, Any] = {"is_incident": False}
            else:
                try:
                    new = case_fields(post, ref)
                    new.pop("opened_at")
                    new["first_response_due"], new["resolution_due"] = (
                        ref.calendar.compute_due(
                            as_utc(m["opened_at"]), ref.deadline_for(new["category"], new["topic"])
                        )
                        if ref.deadline_for(new["category"], new["topic"])
                        else (None, None)
                    )
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
                    _event(m["id"], "suggestion", actor, now, details, f"suggest:{m['id']}:{version}")
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
            events.append(_event(m["id"], "relabelled", actor, now, details, f"relabel:{m['id']}:{version}"))
            relabelled += 1
        insert_ignore(conn, CaseEvent.__table__, events)
    if relabelled or suggestions:
        log.info(
            "reprocessing: %d case(s) relabelled, %d suggestion(s) for operators", relabelled, suggestions
        )
    return relabelled, suggestions


class _PostView:
    """Attribute access to a post's columns read under prefixed labels."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)


def _event(
    case_id: int, kind: str, actor: str, at: datetime, details: dict[str, Any], key: str | None
) -> dict[str, Any]:
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


# ---------------------------------------------------------------------------- split


def split_post(engine: Engine, case_id: int, post_id: int, actor: str, *, at: datetime | None = None) -> int:
    """Implementation of :func:`incidents.cases.dedupe.split`; returns the new case's id."""
    from incidents.cases.lifecycle import CaseError

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
        post = conn.execute(select(*_POST_COLUMNS).where(Post.id == post_id)).one()
        old = conn.execute(select(Case.__table__).where(Case.id == case_id)).one()
        try:
            f = case_fields(post, ref)
        except RoutingError:
            f = {k: old._mapping[k] for k in _LABEL_FIELDS} | {"opened_at": as_utc(post.published_at)}
        norm = normalise_text(post.text)
        fp = fingerprint_of_normalised(norm)
        new_id = conn.execute(
            Case.__table__.insert()
            .values(
                **f,
                status="assigned",
                summary=(post.text or "").strip()[:SUMMARY_CHARS],
                fingerprint=fp,
                escalation_level=0,
                operator_touched=True,
                classifier_version=post.classifier_version,
                updated_at=at,
            )
            .returning(Case.__table__.c.id)
        ).scalar_one()
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
            _event(case_id, "split", actor, at, details, None),
            _event(new_id, "split", actor, at, details, None),
            _event(new_id, "opened", actor, at, {"post_id": post_id, "split_from": case_id}, None)
            | {"to_status": "new"},
            _event(new_id, "assigned", actor, at, {"executor_code": f["executor_code"]}, None)
            | {"from_status": "new", "to_status": "assigned"},
        ]
        conn.execute(CaseEvent.__table__.insert(), rows)
    log.info("%s split post %s out of case %s into case %s", actor, post_id, case_id, new_id)
    return new_id
