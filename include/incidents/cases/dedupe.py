"""Duplicate detection: the same problem in several posts and networks joins one case.

A post that is not linked to a case yet is compared with the open cases (status
``new``, ``assigned`` or ``in_progress``) in this order; the first match wins:

1. **comment**: a comment whose parent post belongs to a case joins that case
   (link ``comment``, score 100).
2. **exact**: the fingerprint (SHA-256 of the normalised text, see :func:`fingerprint`)
   equals the fingerprint of a post of a case opened within ``exact_window`` (7 days)
   in the same category and municipality: reposts and copy-paste (link ``exact``, score
   100). The municipality must match too: short template texts («Нет света!») from two
   villages are two incidents.
3. **near duplicate**: same municipality and category, case opened within
   ``near_window`` (7 days) and a similarity of at least :data:`NEAR_THRESHOLD` (85)
   with one of the case's texts (link ``near_duplicate``); never when both settlements are
   known and differ («нет света в Пашино» and «нет света в Бахте» are two outages).
4. **same place**: same municipality, category, settlement (known) and topic, within
   ``place_window`` (3 days) and a similarity of at least :data:`PLACE_THRESHOLD` (60)
   (link ``near_duplicate``; the event says ``method: same_place``).
5. **same place key**: same municipality, category and topic within ``place_window`` and the
   same *place key* (:meth:`incidents.analysis.places.PlaceResolver.place_key`: a village's
   OKTMO, or a curated Kirov street, microdistrict or landmark id), whatever the wording
   («на коминтерне сухое дерево вот-вот упадёт» and «в Коминтерне упала ветка»); hazards only
   with the same ``hazard_type``. Towns and the city as a whole have no key (too coarse).
   Two posts with known, different place keys are never near duplicates either («нет света
   на Урицкого» and «нет света на Ленина»).

Similarity (0–100) is rapidfuzz's ``token_set_ratio`` over *stems*: the normalised words
(:func:`incidents.analysis.normalize.clean`, lower case, ``ё`` → ``е``) cut to their first
:data:`STEM_LEN` letters, a cheap stand-in for lemmas that makes «яму»/«яма»/«ямы» equal and
costs nothing per post. ``token_set_ratio`` scores 100 when one text's words are a subset of
the other's, which over-merges short texts, so when the shorter text has fewer than
:data:`MIN_SET_TOKENS` stems the stricter ``token_sort_ratio`` is used instead.

**Undoing a merge.** :func:`incidents.cases.create.split` moves a post out of its case into a new case (link
``operator``) and writes a ``split`` event on both cases whose details hold
``{"post_id", "fingerprint", "from_case_id", "to_case_id"}``. Routing only ever attaches
*unlinked* posts and never merges two existing cases by itself, so the split post stays
where the operator put it; moreover :class:`CandidateIndex` loads the split events of its
candidate cases and never attaches a post whose fingerprint was split off a case to that
case again (a repost of the split post goes to the new case, not back to the old one).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from rapidfuzz import fuzz, process

from incidents.analysis.normalize import clean

log = logging.getLogger(__name__)

NEAR_THRESHOLD = 85.0
PLACE_THRESHOLD = 60.0
STEM_LEN = 6
MIN_SET_TOKENS = 4
MAX_TEXTS_PER_CASE = 8
"""Texts of a case kept for comparison (the origin and the first members)."""
OPEN_STATUSES = ("new", "assigned", "in_progress")

_WORD = re.compile(r"[а-яёa-z0-9]+", re.IGNORECASE)


def normalise_text(text: str) -> str:
    """Lower-case words of the cleaned text (links, emoji, markup removed), space-separated."""
    return " ".join(_WORD.findall(clean(text or "").lower().replace("ё", "е")))


def fingerprint(text: str) -> str:
    """Exact-duplicate key: SHA-256 (hex) of the normalised text."""
    return fingerprint_of_normalised(normalise_text(text))


def fingerprint_of_normalised(normalised: str) -> str:
    """SHA-256 (hex) of an already normalised text."""
    return hashlib.sha256(normalised.encode("utf-8")).hexdigest()


def stems(normalised: str) -> str:
    """Words cut to :data:`STEM_LEN` letters (a cheap lemma substitute), space-separated."""
    return " ".join(w[:STEM_LEN] for w in normalised.split())


def similarity(a_stems: str, b_stems: str, score_cutoff: float = 0.0) -> float:
    """0–100 similarity of two stem strings (see the module docstring); 0 below ``score_cutoff``."""
    if not a_stems or not b_stems:
        return 0.0
    shorter = min(a_stems.count(" "), b_stems.count(" ")) + 1
    if shorter < MIN_SET_TOKENS:
        return float(fuzz.token_sort_ratio(a_stems, b_stems, score_cutoff=score_cutoff))
    return float(fuzz.token_set_ratio(a_stems, b_stems, score_cutoff=score_cutoff))


def text_similarity(a: str, b: str) -> float:
    """Similarity of two raw texts (normalised and stemmed first)."""
    return similarity(stems(normalise_text(a)), stems(normalise_text(b)))


@dataclass
class DedupeConfig:
    """Windows and thresholds of the matcher."""

    exact_window: timedelta = timedelta(days=7)
    near_window: timedelta = timedelta(days=7)
    place_window: timedelta = timedelta(days=3)
    near_threshold: float = NEAR_THRESHOLD
    place_threshold: float = PLACE_THRESHOLD


@dataclass
class CaseCandidate:
    """What the matcher knows of a case: its keys and a few of its texts."""

    key: int | str
    """The case id, or a temporary key of a case opened in the current chunk."""
    category: str
    topic: str | None
    municipality_code: str | None
    settlement_oktmo: str | None
    opened_at: datetime
    fingerprints: set[str] = field(default_factory=set)
    texts: list[str] = field(default_factory=list)
    """Stem strings."""
    blocked: set[str] = field(default_factory=set)
    """Fingerprints split off this case by an operator: never attach them again."""
    place_keys: set[str] = field(default_factory=set)
    """Place keys of the case's posts (see rule 5 of the module docstring)."""
    hazard_type: str | None = None

    def add_text(self, fp: str, stem_text: str) -> bool:
        """Add a post's fingerprint and stems; True when the stems were kept for comparison."""
        self.fingerprints.add(fp)
        if len(self.texts) < MAX_TEXTS_PER_CASE and stem_text not in self.texts:
            self.texts.append(stem_text)
            return True
        return False


@dataclass(frozen=True)
class Match:
    """Where a post goes: an existing (or just opened) case, how, and how sure."""

    key: int | str
    link: str
    method: str
    score: float


def _is_short(stem_text: str) -> bool:
    return stem_text.count(" ") + 1 < MIN_SET_TOKENS


@dataclass
class _Pool:
    """The texts of the candidates of one (municipality, category), for one scorer call per post."""

    short: list[str] = field(default_factory=list)
    short_owner: list[CaseCandidate] = field(default_factory=list)
    long: list[str] = field(default_factory=list)
    long_owner: list[CaseCandidate] = field(default_factory=list)

    def add(self, candidate: CaseCandidate, stem_text: str) -> None:
        if _is_short(stem_text):
            self.short.append(stem_text)
            self.short_owner.append(candidate)
        else:
            self.long.append(stem_text)
            self.long_owner.append(candidate)


@dataclass(frozen=True)
class _Query:
    """The fields of the post being matched."""

    fp: str
    stem_text: str
    category: str
    topic: str | None
    municipality_code: str | None
    settlement_oktmo: str | None
    published_at: datetime
    place_key: str | None
    hazard_type: str | None

    def conflicts(self, cand: CaseCandidate, window: timedelta) -> bool:
        """Rules that keep the post out of a case whatever the texts say."""
        return (
            self.fp in cand.blocked
            or abs(self.published_at - cand.opened_at) > window
            # two known, different settlements: two places, two incidents
            or bool(
                self.settlement_oktmo
                and cand.settlement_oktmo
                and self.settlement_oktmo != cand.settlement_oktmo
            )
            # two known, different streets or microdistricts
            or bool(self.place_key and cand.place_keys and self.place_key not in cand.place_keys)
            # two different hazards are never one case
            or bool(self.hazard_type and cand.hazard_type and self.hazard_type != cand.hazard_type)
        )


class CandidateIndex:
    """In-memory index of candidate cases for one chunk of posts (no queries per post).

    Candidates are grouped by (municipality, category); each group keeps its texts in flat
    lists so that a post is scored against all of them in one rapidfuzz call (C loops), and
    only the texts that reach a threshold are checked against the rules in Python.
    """

    def __init__(self, config: DedupeConfig | None = None) -> None:
        self.config = config or DedupeConfig()
        self.cases: dict[int | str, CaseCandidate] = {}
        self._by_fp: dict[str, list[CaseCandidate]] = defaultdict(list)
        self._pools: dict[tuple[str | None, str], _Pool] = defaultdict(_Pool)
        self._by_key: dict[tuple[str | None, str, str], list[CaseCandidate]] = defaultdict(list)
        self._order: dict[int, int] = {}
        """id(candidate) -> insertion order (ties go to the earlier candidate)."""

    def add(self, candidate: CaseCandidate) -> CaseCandidate:
        self.cases[candidate.key] = candidate
        self._order[id(candidate)] = len(self._order)
        group = (candidate.municipality_code, candidate.category)
        pool = self._pools[group]
        for t in candidate.texts:
            pool.add(candidate, t)
        for fp in candidate.fingerprints:
            self._by_fp[fp].append(candidate)
        for place_key in candidate.place_keys:
            self._by_key[(*group, place_key)].append(candidate)
        return candidate

    def add_text(self, key: int | str, fp: str, stem_text: str) -> None:
        candidate = self.cases[key]
        if fp not in candidate.fingerprints:
            self._by_fp[fp].append(candidate)
        if candidate.add_text(fp, stem_text):
            self._pools[(candidate.municipality_code, candidate.category)].add(candidate, stem_text)

    def add_place_key(self, key: int | str, place_key: str) -> None:
        """Record that a post with ``place_key`` joined (or opened) case ``key``."""
        candidate = self.cases[key]
        if place_key not in candidate.place_keys:
            candidate.place_keys.add(place_key)
            self._by_key[(candidate.municipality_code, candidate.category, place_key)].append(candidate)

    def block(self, key: int, fp: str) -> None:
        if key in self.cases:
            self.cases[key].blocked.add(fp)

    def match(
        self,
        *,
        fp: str,
        stem_text: str,
        category: str,
        topic: str | None,
        municipality_code: str | None,
        settlement_oktmo: str | None,
        published_at: datetime,
        place_key: str | None = None,
        hazard_type: str | None = None,
    ) -> Match | None:
        """The best case for a post, or None (open a new case)."""
        q = _Query(
            fp=fp,
            stem_text=stem_text,
            category=category,
            topic=topic,
            municipality_code=municipality_code,
            settlement_oktmo=settlement_oktmo,
            published_at=published_at,
            place_key=place_key,
            hazard_type=hazard_type,
        )
        exact = self._match_exact(q)
        if exact is not None:
            return exact
        keyed = self._same_place_key(q)
        if not stem_text:
            if not keyed:
                return None
            first = min(keyed.values(), key=lambda c: self._order[id(c)])
            return Match(first.key, "near_duplicate", "same_place", 0.0)
        scores, owners = self._scores(q, keyed)
        return self._best(q, keyed, scores, owners)

    def _match_exact(self, q: _Query) -> Match | None:
        """Rule 2: the same fingerprint in the same category and municipality."""
        cfg = self.config
        for cand in self._by_fp.get(q.fp, ()):
            if (
                cand.category == q.category
                and cand.municipality_code == q.municipality_code
                and not (
                    q.settlement_oktmo
                    and cand.settlement_oktmo
                    and q.settlement_oktmo != cand.settlement_oktmo
                )
                and q.fp not in cand.blocked
                and abs(q.published_at - cand.opened_at) <= cfg.exact_window
            ):
                return Match(cand.key, "exact", "exact", 100.0)
        return None

    def _same_place_key(self, q: _Query) -> dict[int, CaseCandidate]:
        """Rule 5: the candidates with the same place key (no text threshold), by ``id()``."""
        keyed: dict[int, CaseCandidate] = {}
        if q.place_key is None:
            return keyed
        for cand in self._by_key.get((q.municipality_code, q.category, q.place_key), ()):
            if (
                cand.topic == q.topic
                and (q.hazard_type or None) == (cand.hazard_type or None)
                and not q.conflicts(cand, self.config.place_window)
            ):
                keyed[id(cand)] = cand
        return keyed

    def _scores(
        self, q: _Query, keyed: dict[int, CaseCandidate]
    ) -> tuple[dict[int, float], dict[int, CaseCandidate]]:
        """Rules 3 and 4: one scorer call per pool; the best score of each candidate that scored
        enough, and of every same-key candidate (scored exactly when below the pool's cutoff)."""
        cfg = self.config
        pool = self._pools.get((q.municipality_code, q.category))
        scores: dict[int, float] = {}
        owners: dict[int, CaseCandidate] = {}
        if pool is not None:
            cutoff = (
                min(cfg.place_threshold, cfg.near_threshold)
                if q.settlement_oktmo is not None
                else cfg.near_threshold
            )
            short_query = _is_short(q.stem_text)
            batches = [(pool.short, pool.short_owner, fuzz.token_sort_ratio)]
            batches.append(
                (pool.long, pool.long_owner, fuzz.token_sort_ratio if short_query else fuzz.token_set_ratio)
            )
            for texts, text_owners, scorer in batches:
                if not texts:
                    continue
                for _choice, score, idx in process.extract(
                    q.stem_text, texts, scorer=scorer, score_cutoff=cutoff, limit=None
                ):
                    cand = text_owners[idx]
                    if float(score) > scores.get(id(cand), -1.0):
                        scores[id(cand)] = float(score)
                        owners[id(cand)] = cand
        for cand in keyed.values():
            if id(cand) not in scores:  # below the pool's cutoff: score it exactly
                owners[id(cand)] = cand
                scores[id(cand)] = max((similarity(q.stem_text, t) for t in cand.texts), default=0.0)
        return scores, owners

    def _bar(self, q: _Query, cand: CaseCandidate) -> tuple[float, bool] | None:
        """The score a candidate without the post's place key must reach and whether the near
        window holds; None when a rule keeps the post out of it."""
        cfg = self.config
        if q.conflicts(cand, max(cfg.near_window, cfg.place_window)):
            return None
        same_place = (
            q.settlement_oktmo is not None
            and cand.settlement_oktmo == q.settlement_oktmo
            and cand.topic == q.topic
            and abs(q.published_at - cand.opened_at) <= cfg.place_window
        )
        near_ok = abs(q.published_at - cand.opened_at) <= cfg.near_window
        if not (same_place or near_ok):
            return None
        return (cfg.place_threshold if same_place else cfg.near_threshold), near_ok

    def _best(
        self,
        q: _Query,
        keyed: dict[int, CaseCandidate],
        scores: dict[int, float],
        owners: dict[int, CaseCandidate],
    ) -> Match | None:
        """The highest-scoring candidate that passes its bar (ties: the earlier candidate)."""
        best: tuple[float, int, CaseCandidate, str] | None = None
        for ident, cand in owners.items():
            score = scores[ident]
            if ident in keyed:
                bar, near_ok = 0.0, False
            else:
                rule = self._bar(q, cand)
                if rule is None:
                    continue
                bar, near_ok = rule
            if score < bar:
                continue
            order = self._order[ident]
            if best is None or score > best[0] or (score == best[0] and order < best[1]):
                method = "near_duplicate" if score >= self.config.near_threshold and near_ok else "same_place"
                best = (score, order, cand, method)
        if best is None:
            return None
        return Match(best[2].key, "near_duplicate", best[3], round(best[0], 1))
