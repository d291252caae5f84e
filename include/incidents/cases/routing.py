"""Routing: analysed incident posts open cases or join existing ones.

:func:`route_posts` takes the incident posts (``posts.is_incident`` true) that are not
linked to a case yet, in chunks of :data:`CHUNK_SIZE` ordered by publication time, and
routes each chunk in one transaction, with a constant number of bulk queries, in three steps:

0. re-read the chunk's still-unlinked posts under a lock (PostgreSQL: a transaction-scoped
   advisory lock :data:`incidents.cases.sql.ROUTING_LOCK`; SQLite: ``BEGIN IMMEDIATE``), so two
   overlapping routing runs never route one post twice nor open twin cases for one incident;
   ``case_posts.post_id`` is unique as a last line of defence (a violation rolls the chunk back
   and it is routed again);
1. **validate** (:mod:`incidents.cases.validate`): the labels become case fields (deadlines
   from the registration time, ``historical`` from the window's end); unknown category, topic,
   municipality or a missing routing rule send the post to quarantine, stage ``route``, with
   the reason;
2. **match** (:mod:`incidents.cases.match`): the candidate cases are loaded into a
   :class:`incidents.cases.dedupe.CandidateIndex` and every post joins a case (links
   ``exact``, ``near_duplicate``, ``comment``) or opens one (link ``origin``), in memory;
3. **write** (:func:`write_plan`, cases through :mod:`incidents.cases.create`): cases, links,
   events (``merged`` with the score and method for joins) and, for live hazards, outbox
   notifications, in bulk.

Executor precedence: see :mod:`incidents.cases.reference`. Case fields and deadlines: see
:mod:`incidents.cases.validate`. A routed case is opened in status ``assigned``: events
``opened`` and ``assigned`` with idempotency keys ``open:<post_id>`` and ``assign:<post_id>``.
Live hazard cases enqueue e-mails to the executor and the regional duty officer (keys
``notify:<case>:opened:<executor code>``). A hazard post that joins an ordinary case raises it
to special control (event ``relabelled``, key ``hazard:<case>:<post>``, and the same
notifications), unless an operator touched the case: then only a ``suggestion`` event is
written.

**Backfills.** Deadlines run from the registration time ``now``; the post's time stays in
``opened_at`` for statistics and lag. A post whose window ended longer than the live horizon
(``INCIDENTS_LIVE_HORIZON_HOURS``, default 72 hours) before ``now`` is *historical*: its case is
registered with ``historical`` set and is never notified nor escalated automatically (an
operator can reopen it: ``case reopen``). The window's end is the ``window_end`` given to
:func:`route_posts` (the command's ``--window-end``), else the post's batch's ``window_end``,
else — for a post outside any batch — its publication time. A post of a live window that joins
a historical case makes the case live (event ``live``).

**Reprocessing.** After routing, :func:`apply_reclassification`
(:mod:`incidents.cases.reclassify`) reconciles cases whose origin post now carries labels of
another classifier version.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, exists, select, true, update
from sqlalchemy.exc import IntegrityError

from incidents.cases.actors import PIPELINE_ACTORS, is_operator
from incidents.cases.create import (
    POST_COLUMNS,
    SUMMARY_CHARS,
    case_row,
    enqueue_opened,
    event_row,
    insert_cases,
    make_live,
    opening_events,
)
from incidents.cases.deadlines import as_utc
from incidents.cases.dedupe import DedupeConfig
from incidents.cases.errors import RoutingError
from incidents.cases.match import ChunkPlan, RunCache, match_posts, sooner_deadlines, stored_place_key
from incidents.cases.reclassify import apply_reclassification, post_filters
from incidents.cases.reference import RoutingReference
from incidents.cases.sql import ROUTING_LOCK, begin_write, insert_ignore
from incidents.cases.validate import DEFAULT_LIVE_HORIZON, case_fields, validate_posts
from incidents.db.models import Batch, Case, CaseEvent, CasePost, Post, Quarantine, table_of

log = logging.getLogger(__name__)

__all__ = [
    "CHUNK_SIZE",
    "PIPELINE_ACTORS",
    "SUMMARY_CHARS",
    "RoutingError",
    "RoutingReference",
    "RoutingSummary",
    "apply_reclassification",
    "case_fields",
    "is_operator",
    "route_posts",
    "stored_place_key",
    "write_plan",
]

CHUNK_SIZE = 2000
_POST_COLUMNS = POST_COLUMNS  # the name the bench uses


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
    historical: int = 0
    """Cases opened as historical (from windows older than the live horizon)."""
    made_live: int = 0
    """Historical cases a post of a live window joined (they are live now)."""
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


_COUNTS = ("opened", "joined", "quarantined", "skipped", "notifications", "historical", "made_live")
_unlinked = ~exists().where(CasePost.post_id == Post.id)


def _select_ids(
    engine: Engine, post_ids: Sequence[int] | None, batch_id: int | None, since: datetime | None
) -> list[int]:
    with engine.connect() as conn:
        id_parts: Iterable[Sequence[int] | None] = (
            [post_ids[i : i + 10000] for i in range(0, len(post_ids), 10000)]
            if post_ids is not None
            else [None]
        )
        rows: list[tuple[datetime, int]] = []
        for part in id_parts:
            query = select(Post.published_at, Post.id).where(
                Post.is_incident == true(), _unlinked, *post_filters(part, batch_id, since)
            )
            rows.extend((as_utc(p), i) for p, i in conn.execute(query))
        rows.sort()
    return [i for _p, i in rows]


@dataclass
class _Run:
    """What the chunks of one run share."""

    ref: RoutingReference
    config: DedupeConfig
    now: datetime
    actor: str
    horizon: timedelta
    window_end: datetime | None
    cache: RunCache = field(default_factory=RunCache)


def _read_chunk(conn: Connection, ids: Sequence[int]) -> list[Any]:
    """The chunk's posts still unlinked (with their batch's window end), by publication time."""
    posts = conn.execute(
        select(*POST_COLUMNS, Batch.window_end)
        .outerjoin(Batch, Batch.id == Post.batch_id)
        .where(Post.id.in_(list(ids)), Post.is_incident == true(), _unlinked)
    ).all()
    return sorted(posts, key=lambda p: (as_utc(p.published_at), p.id))


def _route_chunk(engine: Engine, ids: Sequence[int], run: _Run, total: RoutingSummary) -> None:
    """Route one chunk: validate → match → write in one transaction; counts and cached texts
    are taken over only once it committed."""
    summary = RoutingSummary()
    pending: list[tuple[int, datetime, str, str, str | None]] = []
    with engine.connect() as conn, conn.begin():
        begin_write(conn, ROUTING_LOCK)
        posts = _read_chunk(conn, ids)
        summary.skipped += len(ids) - len(posts)
        if posts:
            valid, fields_by_post, quarantine = validate_posts(
                posts, run.ref, registered_at=run.now, horizon=run.horizon, window_end=run.window_end
            )
            if quarantine:
                insert_ignore(conn, table_of(Quarantine), quarantine)
                summary.quarantined += len(quarantine)
                log.warning(
                    "routing: %d post(s) quarantined, e.g. %s", len(quarantine), quarantine[0]["reason"]
                )
            if valid:
                plan = match_posts(conn, valid, fields_by_post, run.config, run.cache)
                pending = write_plan(conn, plan, fields_by_post, run, summary)
    for name in _COUNTS:
        setattr(total, name, getattr(total, name) + getattr(summary, name))
    for method, n in summary.by_method.items():
        total.by_method[method] = total.by_method.get(method, 0) + n
    for case_id, opened_at, fp, st, key in pending:
        if case_id in run.cache.texts or opened_at is not None:
            run.cache.add(case_id, run.cache.opened.get(case_id, opened_at), fp, st, key)


def write_plan(
    conn: Connection,
    plan: ChunkPlan,
    fields_by_post: dict[int, dict[str, Any]],
    run: _Run,
    summary: RoutingSummary,
) -> list[tuple[int, datetime, str, str, str | None]]:
    """Step 3: write the chunk's cases, links, events and notifications.

    Returns ``(case id, case opened_at, fingerprint, stems, place key)`` per linked post, for the
    run's cache once the transaction committed.
    """
    now, actor = run.now, run.actor
    new = list(plan.new_cases.values())
    ids = insert_cases(conn, [case_row(nc.fields, nc.origin, nc.fp, now) for nc in new])
    key_to_id: dict[int | str, int] = {nc.key: new_id for nc, new_id in zip(new, ids, strict=True)}
    summary.historical += sum(1 for nc in new if nc.fields["historical"])

    pending: list[tuple[int, datetime, str, str, str | None]] = []
    link_rows: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    joined_cases: set[int] = set()
    for key, post, match in plan.links:
        case_id = key_to_id[key] if isinstance(key, str) else key
        f = fields_by_post[post.id]
        case_opened = plan.new_cases[key].fields["opened_at"] if isinstance(key, str) else None
        pending.append((case_id, case_opened or f["opened_at"], *plan.texts[post.id], plan.keys[post.id]))
        if match is None:
            assert isinstance(key, str)  # the origin of a case opened in this chunk (temporary key)
            link_rows.append(
                {"case_id": case_id, "post_id": post.id, "link": "origin", "score": None, "linked_at": now}
            )
            events += opening_events(
                case_id,
                post,
                f["executor_code"],
                actor,
                now,
                historical=plan.new_cases[key].fields["historical"],
            )
            summary.opened += 1
            continue
        link_rows.append(
            {
                "case_id": case_id,
                "post_id": post.id,
                "link": match.link,
                "score": match.score,
                "linked_at": now,
            }
        )
        details = {
            "post_id": post.id,
            "network": post.network,
            "score": match.score,
            "method": match.method,
            "link": match.link,
        }
        events.append(event_row(case_id, "merged", actor, now, details, f"merge:{post.id}"))
        if not isinstance(key, str):
            joined_cases.add(case_id)
        summary.joined += 1
        summary.by_method[match.method] = summary.by_method.get(match.method, 0) + 1
    for i in range(0, len(link_rows), 1000):
        conn.execute(table_of(CasePost).insert(), link_rows[i : i + 1000])
    insert_ignore(conn, table_of(CaseEvent), events)
    if joined_cases:
        ids_joined = sorted(joined_cases)
        for i in range(0, len(ids_joined), 1000):
            conn.execute(update(Case).where(Case.id.in_(ids_joined[i : i + 1000])).values(updated_at=now))

    if plan.live_joins:
        revived = make_live(
            conn,
            plan.live_joins,
            run.ref,
            now=now,
            actor=actor,
            reason="a post of a live window joined",
            post_ids={c: p.id for c, p in plan.live_joins.items()},
        )
        summary.made_live += len(revived)
    hazard_ids = [key_to_id[nc.key] for nc in new if nc.fields["special_control"]]
    if plan.hazard_joins:
        hazard_ids += _hazard_joined(conn, plan.hazard_joins, actor, now)
    if hazard_ids:
        summary.notifications += enqueue_opened(conn, hazard_ids, run.ref, now)
    return pending


def _hazard_joined(
    conn: Connection, joins: dict[int, tuple[Any, dict[str, Any]]], actor: str, now: datetime
) -> list[int]:
    """Existing ordinary cases joined by a hazard post go under special control, with the
    hazard's deadlines where they are sooner (as :func:`incidents.cases.match.raise_to_hazard`
    does for a case opened in the same chunk): an ordinary case's twenty working days do not
    stand once it is a hazard.

    Only cases no operator touched are changed (an operator's decision stands; the hazard is
    then recorded as a ``suggestion`` event). Returns the ids of the cases raised.
    """
    ids = sorted(joins)
    state = {
        r.id: r
        for r in conn.execute(
            select(
                Case.id,
                Case.special_control,
                Case.operator_touched,
                Case.first_response_due,
                Case.resolution_due,
            ).where(Case.id.in_(ids))
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
            events.append(
                event_row(case_id, "suggestion", actor, now, details, f"hazard:{case_id}:{post.id}")
            )
            continue
        conn.execute(
            update(Case)
            .where(Case.id == case_id)
            .values(
                special_control=True,
                priority="critical",
                hazard_type=f["hazard_type"],
                updated_at=now,
                **sooner_deadlines(row, f),
            )
        )
        events.append(event_row(case_id, "relabelled", actor, now, details, f"hazard:{case_id}:{post.id}"))
        raised.append(case_id)
    insert_ignore(conn, table_of(CaseEvent), events)
    return raised


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
    window_end: datetime | None = None,
    live_horizon: timedelta | None = None,
) -> RoutingSummary:
    """Route every analysed, unlinked incident post of the selection into cases.

    Selection: ``post_ids``, ``batch_id`` and ``since`` (publication time) narrow it down
    (all given filters apply); none given means every unlinked incident post. ``now`` is the
    registration time written on cases, links and events (default: the current time); deadlines
    run from it. ``window_end`` is the end of the window the selection comes from (default: each
    post's batch's ``window_end``); posts whose window ended more than ``live_horizon`` (default
    72 hours) before ``now`` open historical cases. With ``reclassify``, cases whose origin post
    was relabelled by a newer classifier are reconciled afterwards (:func:`apply_reclassification`).
    Idempotent: a rerun finds nothing left to route.
    """
    started = time.perf_counter()
    run = _Run(
        ref=reference or RoutingReference.load(engine),
        config=config or DedupeConfig(),
        now=as_utc(now or datetime.now(UTC)),
        actor=actor,
        horizon=DEFAULT_LIVE_HORIZON if live_horizon is None else live_horizon,
        window_end=as_utc(window_end) if window_end is not None else None,
    )
    summary = RoutingSummary()
    ids = _select_ids(engine, post_ids, batch_id, since)
    summary.selected = len(ids)
    for i in range(0, len(ids), chunk_size):
        part = ids[i : i + chunk_size]
        for attempt in range(1, 4):
            try:
                _route_chunk(engine, part, run, summary)
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
            engine, post_ids, batch_id=batch_id, since=since, now=run.now, reference=run.ref
        )
        summary.relabelled, summary.suggestions = relabelled, suggestions
    summary.seconds = round(time.perf_counter() - started, 3)
    log.info(
        "routing: %d selected, %d opened (%d historical), %d joined %s, %d quarantined, %d skipped in %.1fs",
        summary.selected,
        summary.opened,
        summary.historical,
        summary.joined,
        summary.by_method,
        summary.quarantined,
        summary.skipped,
        summary.seconds,
    )
    return summary
