"""Routing, step 2 of 3 (match): every valid post of a chunk joins a case or opens one, in memory.

The candidate cases of the chunk (open cases of the same municipalities and categories in the
time window, cases with the same fingerprints, cases of the parent posts of comments) are loaded
with a constant number of bulk queries into a :class:`incidents.cases.dedupe.CandidateIndex`;
every post is then matched in memory: a comment whose parent post is in a case joins it (link
``comment``), otherwise the index decides (``exact``, ``near_duplicate``; see
:mod:`incidents.cases.dedupe`), otherwise the post opens a case (link ``origin``). Nothing is
written here: the result (:class:`ChunkPlan`) goes to the write step
(:mod:`incidents.cases.create` and :func:`incidents.cases.routing.write_plan`).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, func, or_, select

from incidents.analysis.places import post_place_key
from incidents.cases.deadlines import as_utc
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
from incidents.db.models import Case, CaseEvent, CasePost, Post


def stored_place_key(
    stored: str | None, text: str, municipality_code: str | None, settlement_oktmo: str | None
) -> str | None:
    """A post's place key: the one the analysis stored (``""`` = none), else derived from the text."""
    if stored is not None:
        return stored or None
    return post_place_key(text, municipality_code, settlement_oktmo)


@dataclass
class RunCache:
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


@dataclass
class NewCase:
    """A case the chunk opens: its temporary key, fields, origin post and fingerprint."""

    key: str
    fields: dict[str, Any]
    origin: Any
    fp: str


@dataclass
class ChunkPlan:
    """What the match step decided for a chunk; written by the write step."""

    new_cases: dict[str, NewCase] = field(default_factory=dict)
    links: list[tuple[int | str, Any, Match | None]] = field(default_factory=list)
    """(case id or temporary key, post, match — None for the origin of a new case)."""
    hazard_joins: dict[int, tuple[Any, dict[str, Any]]] = field(default_factory=dict)
    """Existing case id -> the first hazard post joining it in this chunk."""
    live_joins: dict[int, Any] = field(default_factory=dict)
    """Existing case id -> the first post of a live window joining it (a historical case turns live)."""
    texts: dict[int, tuple[str, str]] = field(default_factory=dict)
    """Post id -> (fingerprint, stems)."""
    keys: dict[int, str | None] = field(default_factory=dict)
    """Post id -> place key."""


def load_candidates(
    conn: Connection,
    index: CandidateIndex,
    posts: list[Any],
    fps: dict[int, str],
    cache: RunCache,
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
        _load_texts(conn, missing[i : i + 1000], found, cache)
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


def _load_texts(conn: Connection, part: list[int], found: dict[int, Any], cache: RunCache) -> None:
    """The first texts, place keys and split blocks of the cases in ``part`` into the run's cache."""
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
        select(ranked.c.case_id, ranked.c.text, ranked.c.place_key).where(ranked.c.rn <= MAX_TEXTS_PER_CASE)
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


def parent_cases(conn: Connection, posts: list[Any]) -> dict[tuple[str, str], int]:
    """(network, external id) of the parent posts of the chunk's comments -> their case."""
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


def raise_to_hazard(fields: dict[str, Any], hazard: dict[str, Any]) -> None:
    """A hazard post joined a case opened in the same chunk: the case goes under special control."""
    if fields["special_control"]:
        return
    fields.update(special_control=True, priority="critical", hazard_type=hazard["hazard_type"])
    fields.update(sooner_deadlines(fields, hazard))


def sooner_deadlines(case: Any, hazard: dict[str, Any]) -> dict[str, Any]:
    """The hazard post's deadlines that are sooner than the case's (``case`` a fields dict or a
    row with ``first_response_due`` and ``resolution_due``)."""
    out = {}
    for due in ("first_response_due", "resolution_due"):
        current = case[due] if isinstance(case, dict) else getattr(case, due)
        if hazard[due] is not None and (current is None or as_utc(hazard[due]) < as_utc(current)):
            out[due] = hazard[due]
    return out


def match_posts(
    conn: Connection,
    valid: list[Any],
    fields_by_post: dict[int, dict[str, Any]],
    config: DedupeConfig,
    cache: RunCache,
) -> ChunkPlan:
    """Step 2: decide where every valid post of the chunk goes (reads candidates, writes nothing)."""
    plan = ChunkPlan()
    for p in valid:
        norm = normalise_text(p.text)
        plan.texts[p.id] = (fingerprint_of_normalised(norm), stems(norm))
        f = fields_by_post[p.id]
        plan.keys[p.id] = stored_place_key(p.place_key, p.text, f["municipality_code"], f["settlement_oktmo"])
    index = CandidateIndex(config)
    load_candidates(conn, index, valid, {p.id: plan.texts[p.id][0] for p in valid}, cache)
    # comments' parents join the chunk's new cases (temporary str keys) as they are opened
    parents: dict[tuple[str, str], int | str] = dict(parent_cases(conn, valid))
    for post in valid:
        _match_one(post, fields_by_post[post.id], plan, index, parents)
    return plan


def _open(post: Any, f: dict[str, Any], plan: ChunkPlan, index: CandidateIndex) -> None:
    """The post opens a case (known to the index at once, so later posts of the chunk can join it)."""
    fp, st = plan.texts[post.id]
    key = f"new:{post.id}"
    plan.new_cases[key] = NewCase(key, f, post, fp)
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
    plan.links.append((key, post, None))


def _match_one(
    post: Any,
    f: dict[str, Any],
    plan: ChunkPlan,
    index: CandidateIndex,
    parents: dict[tuple[str, str], int | str],
) -> None:
    fp, st = plan.texts[post.id]
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
            place_key=plan.keys[post.id],
            hazard_type=f["hazard_type"],
        )
    if match is None:
        _open(post, f, plan, index)
    else:
        if match.key in index.cases:
            index.add_text(match.key, fp, st)
            if f["hazard_type"] and not index.cases[match.key].hazard_type:
                index.cases[match.key].hazard_type = f["hazard_type"]
        plan.links.append((match.key, post, match))
        if isinstance(match.key, str):
            opened = plan.new_cases[match.key].fields
            if not f["historical"]:
                opened["historical"] = False  # a live post makes the chunk's new case live
            if f["special_control"]:
                raise_to_hazard(opened, f)
        else:
            if f["special_control"]:
                plan.hazard_joins.setdefault(match.key, (post, f))
            if not f["historical"]:
                plan.live_joins.setdefault(match.key, post)
    key_of_case = plan.links[-1][0]
    place_key = plan.keys[post.id]
    if place_key and key_of_case in index.cases:
        index.add_place_key(key_of_case, place_key)
    parents[(post.network, post.external_id)] = key_of_case
