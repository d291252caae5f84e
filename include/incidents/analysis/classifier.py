"""Rule-based analysis of a post: incident or not, category/topic, hazard, place.

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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from incidents import CATEGORIES
from incidents.analysis import morph
from incidents.analysis.normalize import MAX_ANALYSED_CHARS, Token, clean, tokenize, truncate
from incidents.analysis.places import Gazetteer, PlaceResolver, PlaceResult

log = logging.getLogger(__name__)

CLASSIFIER_VERSION = "rules-2026.11.2"
"""Bump whenever rules, lexicons or the gazetteer matcher change."""

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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def municipality_code(self) -> str | None:
        return self.municipality["code"] if self.municipality else None

    @property
    def settlement_oktmo(self) -> str | None:
        return self.settlement["oktmo"] if self.settlement else None


def with_fallback(
    result: AnalysisResult, municipality_code: str | None, gazetteer: Gazetteer | None = None
) -> AnalysisResult:
    """Fill a missing (or weak) municipality with the source's one, marked "source fallback".

    The result is modified in place and returned. Nothing changes when the text named a
    place or when ``municipality_code`` is empty.
    """
    if not municipality_code or (result.municipality is not None and not result.place_weak):
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
    result.confidence["municipality"] = 0.5
    result.explanation = (result.explanation + "; " if result.explanation else "") + "place: source fallback"
    return result


Spec = tuple[str, ...]


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
        # the intersection runs in C; most features start no rule
        for feat in features & by_first.keys():
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


class Analyzer:
    """Build once; :meth:`analyse` is pure and thread-safe."""

    def __init__(
        self,
        *,
        rules_path: Path | str | None = None,
        rubricator_path: Path | str | None = None,
        gazetteer: Gazetteer | None = None,
        max_chars: int = MAX_ANALYSED_CHARS,
    ) -> None:
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
        self.gazetteer = gazetteer or Gazetteer.load()
        self.places = PlaceResolver(self.gazetteer)
        self.max_chars = max_chars

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
            lem = morph.lemmas(tok.low)
            if "-" in tok.low:
                # «врача-педиатра» is also «врач» and «педиатр»
                lem = lem.union(*(morph.lemmas(part) for part in tok.low.split("-") if len(part) > 2))
            feats.update(lem)
            flags = morph.pos_flags(tok.low)
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
    def analyse(self, text: str, *, source_municipality: str | None = None) -> AnalysisResult:
        """Analyse one post. ``source_municipality`` only breaks ties between same-named places."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a string, not {type(text).__name__}")
        text, truncated = truncate(text, self.max_chars)
        tokens = tokenize(clean(text, morph.is_known))
        feats, negated_only = self._features(tokens, text)

        problem_hits = self.problem.match(feats)
        # a negated word is no sign of news: «не отремонтировали» is not «отремонтировали»
        non_hits = self.nonincident.match(feats - negated_only if negated_only else feats)
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
        if hazard is not None:
            is_incident = True

        explanation: list[str] = []
        confidence: dict[str, float] = {
            "incident": round(min(0.99, 0.5 + abs(incident_score - self.threshold) / 8), 2),
        }
        category = topic = None
        if is_incident:
            if hazard is not None:
                topic = hazard.topic
                if hazard.housing_topic and hazard.housing_context & feats:
                    topic = hazard.housing_topic
                confidence["topic"] = confidence["category"] = 0.9
            else:
                topic = best_topic if best_score >= 1.0 else _FALLBACK_TOPIC
                cat_scores: dict[str, float] = defaultdict(float)
                for t, s in topic_scores.items():
                    cat_scores[self.topics[t]["category"]] = max(cat_scores[self.topics[t]["category"]], s)
                second = sorted(cat_scores.values(), reverse=True)[1] if len(cat_scores) > 1 else 0.0
                confidence["category"] = round(
                    min(0.95, 0.4 + (best_score - second) / 6 + best_score / 20), 2
                )
                t_second = sorted(topic_scores.values(), reverse=True)[1] if len(topic_scores) > 1 else 0.0
                confidence["topic"] = round(
                    min(0.95, 0.35 + (best_score - t_second) / 6 + best_score / 20), 2
                )
            category = self.topics[topic]["category"]
            top = [w for _, w in sorted(problem_hits, reverse=True)[:3]]
            explanation.append("incident: " + ", ".join(top or ["topic words"]))
            if topic in topic_words:
                explanation.append(f"{topic}: " + ", ".join(topic_words[topic][:4]))
        else:
            top = [w for _, w in sorted(non_hits, reverse=True)[:3]]
            explanation.append("not an incident" + (": " + ", ".join(top) if top else ": no complaint words"))
        confidence["hazard"] = 0.9 if hazard is not None else round(0.9 if not is_incident else 0.8, 2)
        if hazard is not None:
            explanation.append(f"hazard {hazard.name}: " + ", ".join(hazard_words))

        place: PlaceResult = self.places.resolve(tokens, source_municipality)
        confidence["municipality"] = place.confidence
        if place.municipality is not None:
            explanation.append(
                "place: " + ", ".join(place.words) + (f" ({place.note})" if place.note else "")
            )
        if truncated:
            explanation.append(f"text truncated to {self.max_chars} characters")
        return AnalysisResult(
            is_incident=is_incident,
            category=category,
            topic=topic,
            hazard=hazard is not None,
            hazard_type=hazard.name if hazard is not None else None,
            municipality=place.municipality.as_dict() if place.municipality else None,
            settlement=place.settlement.as_dict() if place.settlement else None,
            confidence=confidence,
            explanation="; ".join(explanation),
            truncated=truncated,
            place_weak=place.weak,
        )

    def analyse_many(
        self, texts: Iterable[str], *, source_municipalities: Iterable[str | None] | None = None
    ) -> list[AnalysisResult]:
        """Analyse several posts (in order)."""
        sources = iter(source_municipalities) if source_municipalities is not None else None
        return [self.analyse(t, source_municipality=next(sources, None) if sources else None) for t in texts]

    def _hazard(self, feats: set[str], non: float) -> tuple[_Hazard | None, list[str]]:
        """The strongest hazard whose trigger and danger context occur; ``non`` is the net
        weight of non-complaint cues (an advert or an announcement vetoes a hazard)."""
        if non >= 3.0:
            return None, []
        best: tuple[float, _Hazard, list[str]] | None = None
        triggered: dict[int, list[tuple[float, str]]] = defaultdict(list)
        for weight, label in self.hazard_index.match(feats):
            index, _, words = label.partition("|")
            triggered[int(index)].append((weight, words))
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


def default_analyzer() -> Analyzer:
    """The process-wide analyser with the project's rules, rubricator and gazetteer."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = Analyzer()
    return _default
