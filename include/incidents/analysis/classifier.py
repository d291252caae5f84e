"""Hybrid analysis of a post: incident or not, category/topic, hazard, place, address.

Two parts decide together. The trained model (:mod:`incidents.analysis.model`: linear heads
over lemma, character n-gram and navec features, built by ``python -m incidents train``)
gives calibrated probabilities for incident, hazard, category, topic and hazard type. The
rules stay as high-precision evidence and as the human-readable explanation: a hazard is
flagged when the model (at the recall-first threshold chosen by cross-validation on the
training data) *or* a hazard rule says so, and a hazard is always an incident. A post whose
decision rests on a low probability is marked ``needs_review`` for the operators.

Places stay with the gazetteer matcher (:mod:`incidents.analysis.places`). slovnet's NER (in the
natasha wheel) was measured as a gate for place matches on 500 hand-written training posts:
municipality accuracy fell from 0.74 to 0.56 (it misses lower-case and abbreviated village
names) at about 20 ms per post, a hundred times the whole analysis budget, so it is not used.

Rules (``rules/rules.yaml``) are weighted lemma conjunctions matched against the set of
every lemma of every word of the post (all pymorphy3 parses, so «ямы» reaches «яма») plus
negation features («не работает» → ``не+работать``). Topics and categories come from the
rubricator (``include/incidents/reference/rubricator.yaml``); places from
:mod:`incidents.analysis.places`. Build one :class:`Analyzer` per process and share it:
it holds only immutable compiled rules and the gazetteer, so it is safe to call from
several threads.

Measured on the development set's held-out split by :mod:`incidents.analysis.evaluate`.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from incidents import CATEGORIES
from incidents.analysis import morph
from incidents.analysis.model import (
    HAZARD_MIN_INCIDENT,
    HAZARD_TOPIC_BONUS_FORCED,
    RULE_HAZARD_MIN_INCIDENT,
    RULE_HAZARD_OVERRULED_BELOW,
    Scores,
    TextModel,
    artifact_version,
)
from incidents.analysis.normalize import MAX_ANALYSED_CHARS, Token, clean, tokenize, truncate
from incidents.analysis.places import Gazetteer, PlaceResolver, PlaceResult, default_gazetteer

log = logging.getLogger(__name__)

RULES_VERSION = "rules-2026.12.1"
"""The rule engine alone (``Analyzer(model=False)``); bump when rules or the gazetteer change."""
CLASSIFIER_VERSION = artifact_version()
"""The project's analyser: ``hybrid-<artifact SHA-256 prefix>``; it changes with every retraining.
The artifact records the hash of the rules it was trained with (a rules change means retraining:
tests/unit/analysis check that the committed artifact matches the rules)."""
MIN_MODEL_WORDS = 4
"""Fewer words than this («А где это?», «Фото бы приложили», «+1») carry too little evidence for
the model to call a post an incident or a hazard on its own: its score there is mostly its prior.
Such a post is decided by the rules (a hazard or complaint rule still fires on a short text)."""
CATEGORY_HEAD_WEIGHT = 0.3
"""Weight of the category head against the topic head's categories (see
:meth:`Analyzer.category_probabilities`). Out of fold, in five folds that keep each of 19 writers'
files whole, on their 13,294 complaints that are no hazard: category accuracy 0.9026 at 0.3
against 0.8988 at 0.5, better on 13 files and worse on 4; 0.8975 with the topic head alone, 0.856
with the category head alone. On four later writers' files a model trained without them scored
one complaint fewer right at 0.3 than at 0.5 (of 3,485).

Measured again with 51 writers' files (``hybrid-8f90747a4340``'s five writer-whole folds; the
category the decision gives the 49,700 true incidents, whether called incidents or not; rows
weighted as in training): this weight with :data:`RULE_TOPIC_BONUS` 0.3 and hazard topic bonus 0.1
gives 0.9370; weights 0.2 to 0.4, rules' bonuses 0.2 to 0.4 and hazard bonuses 0.1 or 0.2 all
give 0.9328 to 0.9376; a learned combination (multinomial logistic regression on both heads'
log-probabilities, the rules' topic and the hazard type's category, fitted in five writer-whole
folds of its own) 0.9366, and 0.9325 with the 117 topics' log-probabilities as well. The category
errors are in what the heads see, not in how they are mixed. By writer the files score 0.856 to
0.980 out of fold (median 0.935, 16 of 51 below 0.92; missed incidents counted as wrong)."""
RULE_TOPIC_BONUS = 0.3
"""Added to the category of the rules' topic (when they name one, not the fallback) before the
likeliest category of an incident that is no hazard is taken (:meth:`Analyzer.category_scores`);
the category's confidence stays the model's probability. The rules' topic tables were written
before any of the writers' files. Out of fold, in five folds that keep each training file whole,
category accuracy over the 28,600 true incidents (a missed one counting as wrong, rows weighted as
in training) 0.8842 → 0.8917 (0.8895 at 0.2, 0.8935 at 0.4, 0.8929 at 0.5); on the 22,700 of the hand-written files alone 0.8901 → 0.8929 (the same
at 0.4), better on 18 files and worse on 5 (by 0.1 to 0.6 points); the template set 0.835 → 0.872."""
RULE_VETO = 3.0
"""Weight of the rules' non-complaint cues (advert, announcement…) that vetoes an unsure model."""
REVIEW_BELOW = 0.7
"""An incident or a model-only hazard whose calibrated probability is below this needs review."""
REVIEW_NEGATIVE_ABOVE = 0.3
"""A post called no incident although the incident probability reaches this needs review."""
REVIEW_HAZARD_NEAR = 0.5
"""A post not called a hazard whose hazard probability reaches this share of the threshold."""
REVIEW_CATEGORY_BELOW = 0.4
SCORE_BLOCK = 128
"""Posts :meth:`Analyzer.analyse_many` has the model score together. On the sandbox generator's
texts the model's share of a post went from about 45 µs (one by one) to 22 µs in blocks of 100
(15 in blocks of 50, 20 in blocks of 500 or 2,000, where the blocks outgrow the CPU caches)."""

RULES_PATH = Path(__file__).resolve().parent / "rules" / "rules.yaml"
RUBRICATOR_PATH = Path(__file__).resolve().parent.parent / "reference" / "rubricator.yaml"
_NEGATORS = frozenset({"не", "нет", "нету", "без", "ни"})
_FALLBACK_TOPIC = "other_other"
_TIME_RANGE = re.compile(r"\bс\s*\d{1,2}(?:[:.]\d{2})?\s*(?:до|по|-|–)\s*\d{1,2}", re.IGNORECASE)
"""A time or date range («с 9:00 до 17:00», «с 10 по 24 число»): the mark of an announced outage."""
_PREDICATE_WORDS = frozenset({"нет", "нету", "невозможно", "нельзя", "негде"})
_REQUEST_WORDS = frozenset({"просим", "прошу", "просьба", "пожалуйста"})
_QUESTION_OPENERS = frozenset(
    {"где", "когда", "как", "куда", "кто", "во", "будет", "подскажите", "подскажи", "какой", "какая", "какие"}
)


@dataclass(slots=True)
class AnalysisResult:
    """What the analyser says about one post (JSON-ready through :meth:`to_dict`)."""

    is_incident: bool
    category: str | None
    topic: str | None
    hazard: bool
    hazard_type: str | None
    municipality: dict[str, str] | None
    settlement: dict[str, str] | None
    confidence: dict[str, float] = field(default_factory=dict)
    explanation: str = ""
    truncated: bool = False
    place_weak: bool = False
    """The place rests only on weak evidence (a central Kirov street): a source municipality wins."""
    address: str | None = None
    """Street, house number or landmark named by the text (never a settlement), at most 200 chars."""
    needs_review: bool = False
    """Low-confidence incident or hazard decision: operators should look at it."""
    place_key: str | None = None
    """The most specific place for duplicate detection (see :attr:`PlaceResult.key`), final
    after :func:`with_fallback` (a source fallback clears it)."""
    other_region: bool = False
    """The text is about another region's city: it gets no Kirov place, not even a fallback."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def municipality_code(self) -> str | None:
        return self.municipality["code"] if self.municipality else None

    @property
    def settlement_oktmo(self) -> str | None:
        return self.settlement["oktmo"] if self.settlement else None


def _require_text(text: object) -> None:
    if not isinstance(text, str):
        raise TypeError(f"text must be a string, not {type(text).__name__}")


def _copy_result(result: AnalysisResult) -> AnalysisResult:
    """A copy of a result that shares nothing mutable with it (:func:`with_fallback` changes a
    result in place)."""
    return replace(
        result,
        confidence=dict(result.confidence),
        municipality=dict(result.municipality) if result.municipality is not None else None,
        settlement=dict(result.settlement) if result.settlement is not None else None,
    )


def with_fallback(
    result: AnalysisResult, municipality_code: str | None, gazetteer: Gazetteer | None = None
) -> AnalysisResult:
    """Fill a missing (or weak) municipality with the source's one, marked "source fallback".

    The result is modified in place and returned. Nothing changes when the text named a
    place or when ``municipality_code`` is empty.
    """
    if (
        not municipality_code
        or result.other_region
        or (result.municipality is not None and not result.place_weak)
    ):
        return result
    gaz = gazetteer or default_analyzer().gazetteer
    muni = gaz.municipality(municipality_code)
    result.municipality = (
        muni.as_dict()
        if muni
        else {"name": municipality_code, "oktmo": municipality_code[:5], "code": municipality_code}
    )
    result.settlement = None
    result.place_weak = False
    result.place_key = None  # the labels now say the source's municipality: no precise spot
    result.confidence["municipality"] = 0.5
    result.explanation = (result.explanation + "; " if result.explanation else "") + "place: source fallback"
    return result


Spec = tuple[str, ...]


@dataclass(slots=True)
class RuleDecision:
    """What the rules say about a post."""

    is_incident: bool
    topic: str | None
    hazard: _Hazard | None
    hazard_words: list[str]
    problem_score: float
    non_score: float
    problem_words: list[str]
    non_words: list[str]
    topic_words: dict[str, list[str]]


@dataclass(slots=True)
class _Decision:
    """The labels of a post before its place is resolved."""

    is_incident: bool
    hazard: bool
    hazard_type: str | None
    topic: str | None
    confidence: dict[str, float]
    needs_review: bool = False
    scores: Any = None
    overruled: bool = False
    """A hazard rule fired but the model overruled it (see :data:`RULE_HAZARD_OVERRULED_BELOW`,
    :data:`RULE_HAZARD_MIN_INCIDENT`)."""


@dataclass(slots=True)
class Prepared:
    """A text after truncation, cleaning, tokenisation and feature extraction (done once)."""

    text: str
    truncated: bool
    tokens: list[Token]
    feats: set[str]
    negated_only: set[str]
    rules: RuleDecision | None = None

    @property
    def words(self) -> list[str]:
        return [t.low for t in self.tokens]

    @property
    def rule_hazard_type(self) -> str | None:
        return self.rules.hazard.name if self.rules and self.rules.hazard else None


def _compile(table: dict[str, float] | Iterable[str]) -> list[tuple[Spec, float, str]]:
    items = table.items() if isinstance(table, dict) else ((k, 1.0) for k in table)
    out = []
    for key, weight in items:
        spec = tuple(str(key).lower().replace("ё", "е").split())
        if spec:
            out.append((spec, float(weight), str(key)))
    return out


class _SpecSet:
    """Weighted lemma conjunctions indexed by their first lemma."""

    def __init__(self, table: dict[str, float] | Iterable[str]) -> None:
        self.by_first: dict[str, list[tuple[Spec, float, str]]] = defaultdict(list)
        for spec, weight, label in _compile(table):
            self.by_first[spec[0]].append((spec, weight, label))

    def match(self, features: frozenset[str] | set[str]) -> list[tuple[float, str]]:
        hits: list[tuple[float, str]] = []
        by_first = self.by_first
        # the intersection runs in C; most features start no rule. Sorted, so that the rules'
        # words in the explanation come in the same order in every process (set order is not)
        for feat in sorted(features & by_first.keys()):
            for spec, weight, label in by_first[feat]:
                if len(spec) == 1 or all(k in features for k in spec[1:]):
                    hits.append((weight, label))
        return hits


@dataclass(slots=True)
class _Hazard:
    name: str
    topic: str
    trigger: _SpecSet
    context: _SpecSet
    block: _SpecSet
    requires_any: frozenset[str]
    housing_topic: str | None
    housing_context: frozenset[str]


def _trigger_table(hazard: dict[str, Any]) -> list[str]:
    return list(hazard["trigger"])


def load_rubricator(path: Path | str | None = None) -> dict[str, dict[str, Any]]:
    """Topic slug → {category, name, hazard, hazard_type} from the rubricator YAML."""
    data = yaml.safe_load(Path(path or RUBRICATOR_PATH).read_text(encoding="utf-8"))
    topics: dict[str, dict[str, Any]] = {}
    for cat in data.get("categories", []):
        for topic in cat.get("topics", []):
            topics[topic["slug"]] = {
                "category": cat["slug"],
                "name": topic.get("name", ""),
                "hazard": bool(topic.get("hazard")),
                "hazard_type": topic.get("hazard_type"),
            }
    return topics


@lru_cache(maxsize=morph.WORD_CACHE_ENTRIES)
def _word_lemmas_flags(low: str) -> tuple[frozenset[str], int]:
    """A word form's lemmas (a hyphenated word's parts' too: «врача-педиатра» is also «врач» and
    «педиатр») and its part-of-speech flags, cached per word form."""
    lem, flags = morph.analyse_word(low)
    if "-" in low:
        lem = lem.union(*(morph.lemmas(part) for part in low.split("-") if len(part) > 2))
    return lem, flags


class Analyzer:
    """Build once; :meth:`analyse` is pure and thread-safe."""

    def __init__(
        self,
        *,
        rules_path: Path | str | None = None,
        rubricator_path: Path | str | None = None,
        gazetteer: Gazetteer | None = None,
        max_chars: int = MAX_ANALYSED_CHARS,
        model: TextModel | Path | str | bool | None = None,
    ) -> None:
        """``model``: None or True loads the project's artifact, a path loads that artifact,
        a :class:`TextModel` is used as is, False runs the rules alone."""
        rules = yaml.safe_load(Path(rules_path or RULES_PATH).read_text(encoding="utf-8"))
        self.topics = load_rubricator(rubricator_path)
        unknown = [t for t in rules["topics"] if t not in self.topics]
        if unknown:
            raise ValueError(f"rules name topics missing from the rubricator: {unknown}")
        for meta in self.topics.values():
            if meta["category"] not in CATEGORIES:
                raise ValueError(
                    f"rubricator category {meta['category']!r} is not one of incidents.CATEGORIES"
                )
        self.threshold = float(rules["incident"]["threshold"])
        self.min_problem = float(rules["incident"].get("min_problem", 0.0))
        self.topic_alone = float(rules["incident"].get("topic_alone", 0.0))
        self.problem = _SpecSet(rules["incident"]["problem"])
        self.nonincident = _SpecSet(rules["incident"]["nonincident"])
        self.topic_rules = {topic: _SpecSet(table) for topic, table in rules["topics"].items()}
        self.topic_index = _SpecSet({})
        for topic, table in rules["topics"].items():
            for spec, weight, label in _compile(table):
                self.topic_index.by_first[spec[0]].append((spec, weight, f"{topic}|{label}"))
        self.hazards: list[_Hazard] = []
        for name, h in rules["hazards"].items():
            if h["topic"] not in self.topics:
                raise ValueError(f"hazard {name}: topic {h['topic']} not in the rubricator")
            self.hazards.append(
                _Hazard(
                    name=name,
                    topic=h["topic"],
                    trigger=_SpecSet(h["trigger"]),
                    context=_SpecSet(h["context"]),
                    block=_SpecSet(h.get("block", [])),
                    requires_any=frozenset(h.get("requires_any", [])),
                    housing_topic=h.get("housing_topic"),
                    housing_context=frozenset(h.get("housing_context", [])),
                )
            )
        self.hazard_index = _SpecSet({})
        for i, h in enumerate(self.hazards):
            for spec, weight, label in _compile(_trigger_table(rules["hazards"][h.name])):
                self.hazard_index.by_first[spec[0]].append((spec, weight, f"{i}|{label}"))
        self.hazard_topics: dict[str, list[str]] = defaultdict(list)
        for slug, meta in sorted(self.topics.items()):
            if meta["hazard"] and meta["hazard_type"]:
                self.hazard_topics[meta["hazard_type"]].append(slug)
        self.gazetteer = gazetteer or default_gazetteer()
        self.places = PlaceResolver(self.gazetteer)
        self.max_chars = max_chars
        if model is False:
            self.model: TextModel | None = None
            self.classifier_version = RULES_VERSION
        else:
            self.model = (
                model
                if isinstance(model, TextModel)
                else TextModel(None if model is None or model is True else model)
            )
            self.classifier_version = self.model.version
        self._topic_columns: dict[str, tuple[np.ndarray, list[str]]] = {}
        self._topic_to_category: np.ndarray | None = None

    # ------------------------------------------------------------------ features
    @staticmethod
    def features(tokens: list[Token], text: str = "") -> set[str]:
        """Every lemma of every word, ``не+LEMMA`` after a negation, and discourse marks.

        Marks (they start with ``~`` and never collide with a lemma): ``~negverb`` a negated
        verb or participle («не вывозят», «так и не заасфальтировали»); ``~negrequest`` a
        negated verb after a request («просим не оставлять»); ``~q`` a question mark;
        ``~excl`` an exclamation mark; ``~qfirst`` the text opens with a question word;
        ``~timerange`` a time or date range («с 9:00 до 17:00»); ``~clause`` some word can be
        a predicate (a finite verb, a short form, «нет»): the text says something rather than
        being a heading («Расписание автобусов на праздничные дни»).
        """
        return Analyzer._features(tokens, text)[0]

    @staticmethod
    def _features(tokens: list[Token], text: str) -> tuple[set[str], set[str]]:
        """:meth:`features` and the lemmas that occur only right after a negation."""
        feats: set[str] = set()
        negated: set[str] = set()
        plain: set[str] = set()
        prev_neg = False
        prev_request = False
        prev_low = ""
        predicate = False
        for tok in tokens:
            lem, flags = _word_lemmas_flags(tok.low)
            feats.update(lem)
            # a capitalised word inside a sentence is a name («в Оричах»), not a predicate
            predicate = predicate or bool(
                flags & morph.PREDICATE and (tok.sent_start or not tok.is_capitalized)
            )
            if prev_neg:
                negated.update(lem)
                feats.update("не+" + x for x in lem)
                if tok.low not in _NEGATORS and flags & morph.VERBAL:
                    # «просим не оставлять машины» asks the reader; «не вывозят» complains
                    feats.add("~negrequest" if prev_request else "~negverb")
            else:
                plain.update(lem)
            # a request word right before the negation («просим не …»)
            prev_request = tok.low in _NEGATORS and prev_low in _REQUEST_WORDS
            prev_neg = tok.low in _NEGATORS
            prev_low = tok.low
        if predicate or feats & _PREDICATE_WORDS:
            feats.add("~clause")
        if "?" in text:
            feats.add("~q")
        if "!" in text:
            feats.add("~excl")
        if tokens and tokens[0].low in _QUESTION_OPENERS:
            feats.add("~qfirst")
        if _TIME_RANGE.search(text):
            feats.add("~timerange")
        return feats, negated - plain

    # ------------------------------------------------------------------ analysis
    def prepare(self, text: str) -> Prepared:
        """Truncate, clean, tokenise and build the features of one text (once per post)."""
        _require_text(text)
        text, truncated = truncate(text, self.max_chars)
        tokens = tokenize(clean(text, morph.is_known))
        feats, negated_only = self._features(tokens, text)
        prepared = Prepared(text, truncated, tokens, feats, negated_only)
        rules = prepared.rules = self._rules(prepared)
        # the rules' verdicts are features of the model too (high precision where they fire)
        marks = prepared.feats
        if rules.is_incident:
            marks.add("~r:incident")
        if rules.non_score > 0:
            marks.add("~r:non" if rules.non_score < 3 else "~r:non3")
        if rules.problem_score >= 3:
            marks.add("~r:problem3")
        if rules.hazard is not None:
            marks.add("~r:hazard")
            marks.add("~r:hazard:" + rules.hazard.name)
        if rules.topic:
            marks.add("~r:topic:" + rules.topic)
        return prepared

    def _rules(self, p: Prepared) -> RuleDecision:
        """The rule engine's decision (high precision; also the human-readable explanation)."""
        feats = p.feats
        problem_hits = self.problem.match(feats)
        # a negated word is no sign of news: «не отремонтировали» is not «отремонтировали»
        non_hits = self.nonincident.match(feats - p.negated_only if p.negated_only else feats)
        problem = sum(w for w, _ in problem_hits)
        non = sum(w for w, _ in non_hits)

        topic_scores: dict[str, float] = defaultdict(float)
        topic_words: dict[str, list[str]] = defaultdict(list)
        for weight, label in self.topic_index.match(feats):
            topic, _, words = label.partition("|")
            topic_scores[topic] += weight
            topic_words[topic].append(words)
        best_topic, best_score = _FALLBACK_TOPIC, 0.0
        if topic_scores:
            best_topic, best_score = max(topic_scores.items(), key=lambda kv: (kv[1], kv[0]))
        incident_score = problem + min(best_score, 4.0) * 0.7 - non
        is_incident = (
            incident_score >= self.threshold
            and (best_score > 0 or problem >= 3)
            and (
                problem >= self.min_problem
                or (best_score >= self.topic_alone and non <= 0 and "~clause" in feats)
            )
        )
        hazard, hazard_words = self._hazard(feats, non - problem)
        chosen: str | None = None
        if hazard is not None:
            is_incident = True
            chosen = hazard.topic
            if hazard.housing_topic and hazard.housing_context & feats:
                chosen = hazard.housing_topic
        elif is_incident:
            chosen = best_topic if best_score >= 1.0 else _FALLBACK_TOPIC
        return RuleDecision(
            is_incident=is_incident,
            topic=chosen,
            hazard=hazard,
            hazard_words=hazard_words,
            problem_score=problem,
            non_score=non,
            problem_words=[w for _, w in sorted(problem_hits, reverse=True)[:3]],
            non_words=[w for _, w in sorted(non_hits, reverse=True)[:3]],
            topic_words=dict(topic_words),
        )

    def analyse(self, text: str, *, source_municipality: str | None = None) -> AnalysisResult:
        """Analyse one post. ``source_municipality`` only breaks ties between same-named places."""
        p = self.prepare(text)
        return self._result(p, self._decide(p), source_municipality)

    def analyse_many(
        self, texts: Iterable[str], *, source_municipalities: Iterable[str | None] | None = None
    ) -> list[AnalysisResult]:
        """Analyse several posts, in order, with the results :meth:`analyse` gives one by one; the
        model scores them :data:`SCORE_BLOCK` at a time (:meth:`TextModel.scores_many`).

        A text repeated with the same source municipality (the «+1», «Спасибо!» and «👍» of
        comment threads, a repost) is analysed once, since the analysis of a post depends on
        nothing else; each repetition gets a copy of the result of its own."""
        texts = list(texts)
        sources: list[str | None] = (
            [None] * len(texts) if source_municipalities is None else list(source_municipalities)
        )
        if len(sources) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(sources)} source municipalities")
        for text in texts:
            _require_text(text)  # before the texts are keys of a dict
        first: dict[tuple[str, str | None], int] = {}
        order = [first.setdefault(key, len(first)) for key in zip(texts, sources, strict=True)]
        results = self._analyse_distinct([t for t, _ in first], [m for _, m in first])
        given = [False] * len(results)
        out: list[AnalysisResult] = []
        for k in order:
            out.append(_copy_result(results[k]) if given[k] else results[k])
            given[k] = True
        return out

    def _analyse_distinct(self, texts: list[str], sources: list[str | None]) -> list[AnalysisResult]:
        """Each post's result, in order (repeated texts are not looked for here)."""
        out: list[AnalysisResult] = []
        for start in range(0, len(texts), SCORE_BLOCK):
            block = [self.prepare(t) for t in texts[start : start + SCORE_BLOCK]]
            scores: list[Any] = (
                self.model.scores_many([(p.words, p.feats) for p in block])
                if self.model is not None
                else [None] * len(block)
            )
            for p, s, source in zip(block, scores, sources[start : start + SCORE_BLOCK], strict=True):
                out.append(self._result(p, self._decide(p, s), source))
        return out

    def _result(self, p: Prepared, d: _Decision, source_municipality: str | None) -> AnalysisResult:
        """The result of a decided post: its place resolved, its explanation written."""
        explanation = self._explain(p, d)
        place: PlaceResult = self.places.resolve(p.tokens, source_municipality)
        d.confidence["municipality"] = place.confidence
        if place.municipality is not None:
            explanation.append(
                "place: " + ", ".join(place.words) + (f" ({place.note})" if place.note else "")
            )
        elif place.note:
            explanation.append("place: " + place.note)
        if p.truncated:
            explanation.append(f"text truncated to {self.max_chars} characters")
        if d.needs_review:
            explanation.append("needs review: low confidence")
        return AnalysisResult(
            is_incident=d.is_incident,
            category=self.topics[d.topic]["category"] if d.is_incident and d.topic else None,
            topic=d.topic if d.is_incident else None,
            hazard=d.hazard,
            hazard_type=d.hazard_type if d.hazard else None,
            municipality=place.municipality.as_dict() if place.municipality else None,
            settlement=place.settlement.as_dict() if place.settlement else None,
            confidence=d.confidence,
            explanation="; ".join(explanation),
            truncated=p.truncated,
            place_weak=place.weak,
            address=place.address,
            needs_review=d.needs_review,
            place_key=self.places.result_key(place),
            other_region=place.other_region,
        )

    def _decide(self, p: Prepared, scores: Scores | None = None) -> _Decision:
        """Incident, hazard, topic, confidences and needs_review from the rules and the model
        (whose ``scores`` of the post may be given)."""
        r = p.rules
        assert r is not None
        d = _Decision(
            is_incident=r.is_incident,
            hazard=r.hazard is not None,
            hazard_type=r.hazard.name if r.hazard is not None else None,
            topic=r.topic,
            confidence={"incident": 0.8, "hazard": 0.9 if r.hazard is not None else 0.8},
        )
        if self.model is None:
            return self._defaults(d)
        s = d.scores = scores if scores is not None else self.model.scores(p.words, p.feats)
        th = self.model.thresholds
        if sum(1 for t in p.tokens if len(t.low) > 1 and t.low.isalpha()) < MIN_MODEL_WORDS:
            return self._defaults(d)  # too short for the model: the rules' decision stands
        vetoed = r.non_score >= RULE_VETO and r.problem_score < 2
        # an advert, an announced outage, news, an official warning («МЧС предупреждает: выход на
        # лёд опасен»): the rules' strongest negative cues win over a model that is not sure
        # a hazard rule stands unless the model is sure there is no danger («горит дедлайн» slips
        # past a rule) or no complaint («он после смены как оголённый провод»); on posts of
        # writers left out of training no rule hazard below either line was one
        rule_hazard = (
            r.hazard is not None
            and s.hazard_head >= RULE_HAZARD_OVERRULED_BELOW
            and s.incident >= RULE_HAZARD_MIN_INCIDENT
        )
        d.overruled = r.hazard is not None and not rule_hazard
        min_incident = th.get("hazard_min_incident", HAZARD_MIN_INCIDENT)
        model_hazard = s.hazard >= th["hazard"] and s.incident >= min_incident
        d.hazard = rule_hazard or (model_hazard and not (vetoed and s.hazard < 0.9))
        # the hazard type is the model's even when a rule found the hazard: a rule names the first
        # danger it knows («щиток» in a flooded basement, a railing in an abandoned building); on
        # 667 rule hazards of four writers' files, by a model trained without them, the rule's type
        # was right 571 times, the model's 658
        d.hazard_type = self.model.labels["hazard_type"][int(s.hazard_type.argmax())] if d.hazard else None
        d.is_incident = d.hazard or s.incident >= th["incident"]
        if d.is_incident and not d.hazard and vetoed and s.incident < 0.9:
            d.is_incident = False
        p_inc = max(s.incident, 0.9) if rule_hazard else s.incident
        p_haz = max(s.hazard, 0.9) if rule_hazard else s.hazard
        d.confidence = {
            "incident": round(p_inc if d.is_incident else 1.0 - p_inc, 3),
            "hazard": round(p_haz if d.hazard else 1.0 - p_haz, 3),
        }
        d.topic = None
        if d.is_incident:
            hazard = None
            if d.hazard and d.hazard_type is not None:
                # the rule's topic when the rule found the hazard of the type the model gives it
                ruled = r.hazard is not None and r.topic is not None and r.hazard.name == d.hazard_type
                hazard = (d.hazard_type, r.topic if ruled else None)
            d.topic, d.confidence["category"], d.confidence["topic"] = self._model_topic(s, r.topic, hazard)
        d.needs_review = bool(
            d.overruled
            or (d.is_incident and d.confidence["incident"] < REVIEW_BELOW)
            or (not d.is_incident and s.incident >= REVIEW_NEGATIVE_ABOVE)
            or (d.hazard and not rule_hazard and s.hazard < REVIEW_BELOW)
            or (not d.hazard and s.hazard >= th["hazard"] * REVIEW_HAZARD_NEAR)
            or (d.is_incident and d.confidence.get("category", 1.0) < REVIEW_CATEGORY_BELOW)
        )
        return self._defaults(d)

    @staticmethod
    def _defaults(d: _Decision) -> _Decision:
        if d.is_incident:
            d.confidence.setdefault("category", 0.9 if d.hazard else 0.8)
            d.confidence.setdefault("topic", 0.9 if d.hazard else 0.7)
        return d

    def _explain(self, p: Prepared, d: _Decision) -> list[str]:
        """The human-readable explanation: the model's probability and words, the rules' words."""
        r = p.rules
        assert r is not None
        out: list[str] = []
        s = d.scores
        if s is not None and d.is_incident:
            out.append(f"model: incident p={s.incident:.2f} ({', '.join(self._top_words(d, 'incident'))})")
        if d.is_incident:
            if r.is_incident:
                out.append("rules: " + ", ".join(r.problem_words or ["topic words"]))
            if d.topic in r.topic_words:
                out.append(f"{d.topic}: " + ", ".join(r.topic_words[d.topic][:4]))
        else:
            top = r.non_words
            out.append("not an incident" + (": " + ", ".join(top) if top else ": no complaint words"))
        if d.hazard and r.hazard is not None and not d.overruled:
            if d.hazard_type == r.hazard.name:
                out.append(f"hazard {r.hazard.name} (rule): " + ", ".join(r.hazard_words))
            else:
                out.append(
                    f"hazard {d.hazard_type} (model type; rule {r.hazard.name}): " + ", ".join(r.hazard_words)
                )
        elif d.overruled and r.hazard is not None and s is not None:
            out.append(
                f"hazard rule {r.hazard.name} overruled by the model "
                f"(hazard p={s.hazard_head:.2f}, incident p={s.incident:.2f})"
            )
        elif d.hazard and s is not None:
            out.append(
                f"hazard {d.hazard_type} (model p={s.hazard:.2f}): " + ", ".join(self._top_words(d, "hazard"))
            )
        return out

    def _hazard_topic(self, hazard_type: str, category: str, rule_topic: str | None, topic_p: Any) -> str:
        """A hazard's topic in ``category``, its hazard type's: the topic of the rule that found it
        (``rule_topic``) when it is of that category, else the likeliest topic of that hazard type."""
        if rule_topic is not None and self.topics.get(rule_topic, {}).get("category") == category:
            return rule_topic
        candidates = self.hazard_topics.get(hazard_type, [])
        assert self.model is not None
        labels = self.model.labels["topic"]
        best, best_p = candidates[0] if candidates else _FALLBACK_TOPIC, -1.0
        for i, t in enumerate(labels):
            if t in candidates and topic_p[i] > best_p:
                best, best_p = t, float(topic_p[i])
        return best

    def category_scores(self, cat_p: np.ndarray, rule_topic: str | None) -> np.ndarray:
        """What the category is chosen by: the distribution ``cat_p`` of
        :meth:`category_probabilities` plus :data:`RULE_TOPIC_BONUS` at the category of the rules'
        topic (nothing for none or the fallback)."""
        assert self.model is not None
        category = rule_topic_category(rule_topic, self.topics)
        cats = self.model.labels["category"]
        if category not in cats:
            return cat_p
        scores = cat_p.copy()
        scores[cats.index(category)] += RULE_TOPIC_BONUS
        return scores

    def category_probabilities(self, s: Any) -> np.ndarray:
        """The category distribution: the category head and the topic head summed per category,
        weighted :data:`CATEGORY_HEAD_WEIGHT` to the rest. The 117-topic head draws finer lines (a
        school's heating is education, a flat's is housing), and together they measured better
        than either alone on posts of a writer left out of training (category accuracy 0.69 head,
        0.75 topics, 0.76 both)."""
        assert self.model is not None
        if self._topic_to_category is None:
            cats = self.model.labels["category"]
            matrix = np.zeros((len(self.model.labels["topic"]), len(cats)), dtype=np.float32)
            for i, t in enumerate(self.model.labels["topic"]):
                category = self.topics.get(t, {}).get("category")
                if category in cats:
                    matrix[i, cats.index(category)] = 1.0
            self._topic_to_category = matrix
        return mix_categories(s.category, s.topic, self._topic_to_category)

    def _model_topic(
        self, s: Any, rule_topic: str | None = None, hazard: tuple[str, str | None] | None = None
    ) -> tuple[str, float, float]:
        """(topic, category confidence, topic confidence) of an incident: the likeliest category
        (see :meth:`category_scores`; its confidence is the model's probability,
        :meth:`category_probabilities`), then its likeliest topic of no hazard (``<category>_other``
        when the topic head knows none of it).

        A hazard, ``(hazard type, topic of the rule that found it or None)``, adds the artifact's
        ``hazard_topic_bonus`` (:data:`~incidents.analysis.model.HAZARD_TOPIC_BONUSES`) at its
        type's category; filed there, it gets its type's topic (:meth:`_hazard_topic`)."""
        assert self.model is not None
        cats = self.model.labels["category"]
        cat_p = self.category_probabilities(s)
        scores = self.category_scores(cat_p, rule_topic)
        home = self.hazard_category(hazard[0]) if hazard is not None else None
        if home in cats:
            scores = scores.copy()  # category_scores may hand back cat_p itself
            scores[cats.index(home)] += self.model.thresholds.get(
                "hazard_topic_bonus", HAZARD_TOPIC_BONUS_FORCED
            )
        ci = int(scores.argmax())
        category = cats[ci]
        if hazard is not None and category == home:
            return (
                self._hazard_topic(hazard[0], category, hazard[1], s.topic),
                round(float(cat_p[ci]), 3),
                0.9,
            )
        columns, names = self._category_topics(category)
        best, best_p, total = f"{category}_other", -1.0, 0.0
        if len(columns):
            probs = s.topic[columns].astype(np.float64)
            k = int(probs.argmax())  # the first of equal maxima, as a strict «>» scan finds it
            best, best_p, total = names[k], float(probs[k]), float(probs.sum())
        if best not in self.topics:
            best = _FALLBACK_TOPIC
        topic_conf = best_p / total if total > 0 else 0.0
        return best, round(float(cat_p[ci]), 3), round(float(cat_p[ci]) * topic_conf, 3)

    def hazard_category(self, hazard_type: str) -> str | None:
        """The category of ``hazard_type``'s topic (the rubricator has one per type)."""
        found = self.hazard_topics.get(hazard_type)
        return str(self.topics[found[0]]["category"]) if found else None

    def _category_topics(self, category: str) -> tuple[np.ndarray, list[str]]:
        """The topic head's columns of a category's non-hazard topics, and their slugs."""
        cached = self._topic_columns.get(category)
        if cached is None:
            assert self.model is not None
            pairs = [
                (i, t)
                for i, t in enumerate(self.model.labels["topic"])
                if self.topics.get(t, {}).get("category") == category and not self.topics[t]["hazard"]
            ]
            cached = (np.array([i for i, _ in pairs], dtype=np.intp), [t for _, t in pairs])
            self._topic_columns[category] = cached
        return cached

    def _top_words(self, d: _Decision, head: str, k: int = 3) -> list[str]:
        """The lemmas that pushed ``head`` up most (the model's side of the explanation)."""
        assert self.model is not None and d.scores is not None
        return self.model.top_lemmas(d.scores.lemma_rows, head, k)

    def _hazard(self, feats: set[str], non: float) -> tuple[_Hazard | None, list[str]]:
        """The strongest hazard whose trigger and danger context occur; ``non`` is the net
        weight of non-complaint cues (an advert or an announcement vetoes a hazard)."""
        if non >= 3.0:
            return None, []
        best: tuple[float, _Hazard, list[str]] | None = None
        triggered: dict[int, list[tuple[float, str]]] = defaultdict(list)
        for weight, label in self.hazard_index.match(feats):
            position, _, words = label.partition("|")
            triggered[int(position)].append((weight, words))
        for index, trig in sorted(triggered.items()):
            h = self.hazards[index]
            ctx = h.context.match(feats)
            if not ctx or h.block.match(feats):
                continue
            if h.requires_any and not (h.requires_any & feats):
                continue
            strength = sum(w for w, _ in trig) + 0.5 * len(ctx)
            if best is None or strength > best[0]:
                best = (strength, h, [trig[0][1]] + [c for _, c in ctx[:2]])
        return (best[1], best[2]) if best else (None, [])


_default: Analyzer | None = None
_default_lock = threading.Lock()


def mix_categories(category_p: np.ndarray, topic_p: np.ndarray, topic_to_category: np.ndarray) -> np.ndarray:
    """The category distribution of :meth:`Analyzer.category_probabilities`: the category head's
    ``category_p`` and the topic head's ``topic_p`` summed per category (``topic_to_category``,
    topics × categories), weighted :data:`CATEGORY_HEAD_WEIGHT` to the rest; rows of posts too."""
    w = CATEGORY_HEAD_WEIGHT
    return np.asarray(w * category_p + (1.0 - w) * (topic_p @ topic_to_category))


def rule_topic_category(rule_topic: str | None, topics: dict[str, dict[str, Any]]) -> str | None:
    """The category :data:`RULE_TOPIC_BONUS` goes to: the rules' topic's (None for no topic, the
    fallback topic or a topic the rubricator does not know)."""
    if rule_topic is None or rule_topic == _FALLBACK_TOPIC:
        return None
    category = topics.get(rule_topic, {}).get("category")
    return str(category) if category is not None else None


def default_analyzer() -> Analyzer:
    """The process-wide analyser with the project's rules, rubricator and gazetteer."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = Analyzer()
    return _default
