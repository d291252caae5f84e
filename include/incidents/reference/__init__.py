"""Reference data of the Kirov region, readable without a database.

The files next to this module (see ``README.md``) are the single source of truth; the
readers below parse and validate them once per process (``lru_cache``) and return frozen
dataclasses, so classification, routing and deadline computation can consult them at high
speed. :mod:`incidents.reference.seed` loads the same data into the case database.

Every reader takes an optional ``directory`` (default: this package's folder, or
``INCIDENTS_REFERENCE_DIR``) so a deployment or a test can supply its own copy.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from incidents import (
    CATEGORIES,
    HAZARD_TYPES,
)
from incidents.config import settings

log = logging.getLogger(__name__)

WILDCARD = "*"
EACH_MUNICIPALITY = "@each"
OWN_ADMINISTRATION = "@administration"


MUNICIPALITY_KINDS = ("municipal_district", "urban_okrug", "city_district_of_kirov")
EXECUTOR_KINDS = ("ministry", "municipal_administration", "duty_officer", "government")
DEADLINE_UNITS = ("working_days", "working_hours", "hours")


class ReferenceError(ValueError):
    """A reference file is missing, malformed or inconsistent with the others."""


# --------------------------------------------------------------------------- dataclasses


@dataclass(frozen=True)
class MunicipalityRef:
    """A municipal unit (45) or a city district of Kirov (4); fields as in ``models.Municipality``."""

    code: str
    oktmo: str
    name: str
    short_name: str
    adjective: str | None
    kind: str
    admin_centre: str | None
    parent_code: str | None


@dataclass(frozen=True)
class SettlementRef:
    """A settlement of the OKTMO gazetteer; fields as in ``models.Settlement``."""

    oktmo: str
    type_abbr: str
    type: str
    name: str
    poselenie: str | None
    municipality_code: str


@dataclass(frozen=True)
class ExecutorRef:
    """Who acts on a case; fields as in ``models.Executor``."""

    code: str
    name: str
    kind: str
    municipality_code: str | None
    email: str
    head_title: str | None
    head_email: str | None


@dataclass(frozen=True)
class TopicRef:
    """Second level of the rubricator."""

    slug: str
    category_slug: str
    name: str
    priority: bool = False
    hazard: bool = False
    hazard_type: str | None = None
    source_topics: tuple[str, ...] = ()


@dataclass(frozen=True)
class CategoryRef:
    """Top level of the rubricator with its topics in file order."""

    slug: str
    name: str
    topics: tuple[TopicRef, ...]


@dataclass(frozen=True)
class Rubricator:
    """The two-level rubricator."""

    categories: tuple[CategoryRef, ...]
    hazard_types: dict[str, str] = field(hash=False)
    """Hazard type slug → Russian description."""

    topics: dict[str, TopicRef] = field(init=False, hash=False, compare=False, repr=False)
    """All topics by slug (computed once)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "topics", {t.slug: t for c in self.categories for t in c.topics})

    def category(self, slug: str) -> CategoryRef:
        """The category ``slug`` (``KeyError`` when unknown)."""
        for cat in self.categories:
            if cat.slug == slug:
                return cat
        raise KeyError(slug)

    def hazard_topics(self) -> list[TopicRef]:
        """Topics flagged as hazards."""
        return [t for c in self.categories for t in c.topics if t.hazard]


@dataclass(frozen=True)
class RoutingRuleRef:
    """One expanded routing rule (placeholders resolved); fields as in ``models.RoutingRule``."""

    category_slug: str
    topic_slug: str
    municipality_code: str
    executor_code: str


@dataclass(frozen=True)
class DeadlineRuleRef:
    """One deadline rule; fields as in ``models.DeadlineRule``."""

    category_slug: str
    topic_slug: str
    first_response: int
    resolution: int
    unit: str


@dataclass(frozen=True)
class ProductionCalendar:
    """Exceptions to the Monday–Friday rule of the Russian production calendar."""

    exceptions: dict[date, bool] = field(hash=False)
    """Day → is it a working day (only days that differ from the Monday–Friday rule)."""
    notes: dict[date, str] = field(hash=False)
    first_year: int
    last_year: int

    def is_working_day(self, day: date) -> bool:
        """True on a working day; outside the covered years the Monday–Friday rule applies."""
        value = self.exceptions.get(day)
        return value if value is not None else day.weekday() < 5

    def working_days(self, start: date, end: date) -> int:
        """Number of working days in ``[start, end]`` (inclusive)."""
        n = 0
        day = start
        while day <= end:
            n += self.is_working_day(day)
            day += timedelta(days=1)
        return n


# --------------------------------------------------------------------------- readers


def reference_dir(directory: str | Path | None = None) -> Path:
    """The folder the reference files are read from."""
    if directory is not None:
        return Path(directory)
    return settings().reference_dir


def _read_csv(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        raise ReferenceError(f"reference file not found: {path}")
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ReferenceError(f"reference file not found: {path}")
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ReferenceError(f"{path}: expected a mapping at the top level")
    return data


def _none(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


def _require(row: dict[str, Any], key: str, where: str) -> str:
    value = row.get(key)
    if value is None or str(value).strip() == "":
        raise ReferenceError(f"{where}: missing {key!r}")
    return str(value).strip()


@lru_cache(maxsize=8)
def _municipalities(directory: Path) -> tuple[MunicipalityRef, ...]:
    path = directory / "municipalities.csv"
    out: list[MunicipalityRef] = []
    for i, row in enumerate(_read_csv(path), start=2):
        where = f"{path.name}:{i}"
        kind = _require(row, "kind", where)
        if kind not in MUNICIPALITY_KINDS:
            raise ReferenceError(f"{where}: unknown kind {kind!r}")
        out.append(
            MunicipalityRef(
                code=_require(row, "code", where),
                oktmo=_require(row, "oktmo", where),
                name=_require(row, "name", where),
                short_name=_require(row, "short_name", where),
                adjective=_none(row.get("adjective")),
                kind=kind,
                admin_centre=_none(row.get("admin_centre")),
                parent_code=_none(row.get("parent_code")),
            )
        )
    codes = [m.code for m in out]
    if len(set(codes)) != len(codes):
        raise ReferenceError(f"{path.name}: duplicate municipality codes")
    for m in out:
        if m.parent_code is not None and m.parent_code not in codes:
            raise ReferenceError(f"{path.name}: {m.code} has unknown parent {m.parent_code!r}")
    # parents before children, so a single bulk insert satisfies the self-referencing key
    return tuple(sorted(out, key=lambda m: m.parent_code is not None))


def load_municipalities(directory: str | Path | None = None) -> tuple[MunicipalityRef, ...]:
    """The 49 municipalities (45 units first, then Kirov's 4 city districts)."""
    return _municipalities(reference_dir(directory))


def municipality_index(directory: str | Path | None = None) -> dict[str, MunicipalityRef]:
    """Municipalities by code."""
    return {m.code: m for m in load_municipalities(directory)}


@lru_cache(maxsize=8)
def _settlements(directory: Path) -> tuple[SettlementRef, ...]:
    path = directory / "settlements.csv"
    municipalities = {m.code for m in _municipalities(directory)}
    out: list[SettlementRef] = []
    seen: set[str] = set()
    for i, row in enumerate(_read_csv(path), start=2):
        where = f"{path.name}:{i}"
        oktmo = _require(row, "oktmo", where)
        if not (oktmo.isdigit() and len(oktmo) == 11):
            raise ReferenceError(f"{where}: OKTMO {oktmo!r} is not 11 digits")
        if oktmo in seen:
            raise ReferenceError(f"{where}: duplicate OKTMO {oktmo}")
        seen.add(oktmo)
        code = _require(row, "municipality_code", where)
        if code not in municipalities:
            raise ReferenceError(f"{where}: unknown municipality {code!r}")
        out.append(
            SettlementRef(
                oktmo=oktmo,
                type_abbr=(row.get("type_abbr") or "").strip(),
                type=(row.get("type") or "").strip(),
                name=_require(row, "name", where),
                poselenie=_none(row.get("poselenie")),
                municipality_code=code,
            )
        )
    return tuple(out)


def load_settlements(directory: str | Path | None = None) -> tuple[SettlementRef, ...]:
    """The 4,288 settlements of the OKTMO gazetteer (with the 2026 Донаурово correction)."""
    return _settlements(reference_dir(directory))


@lru_cache(maxsize=8)
def _settlement_index(directory: Path) -> dict[str, SettlementRef]:
    return {s.oktmo: s for s in _settlements(directory)}


def settlement_index(directory: str | Path | None = None) -> dict[str, SettlementRef]:
    """Settlements by OKTMO (cached; do not mutate)."""
    return _settlement_index(reference_dir(directory))


@lru_cache(maxsize=8)
def _executors(directory: Path) -> tuple[ExecutorRef, ...]:
    path = directory / "executors.yaml"
    municipalities = {m.code for m in _municipalities(directory)}
    out: list[ExecutorRef] = []
    for i, item in enumerate(_read_yaml(path).get("executors") or []):
        where = f"{path.name}: executor #{i + 1}"
        kind = _require(item, "kind", where)
        if kind not in EXECUTOR_KINDS:
            raise ReferenceError(f"{where}: unknown kind {kind!r}")
        mun = item.get("municipality_code")
        mun = None if mun is None else str(mun)
        if mun is not None and mun not in municipalities:
            raise ReferenceError(f"{where}: unknown municipality {mun!r}")
        email = _require(item, "email", where)
        if "@" not in email:
            raise ReferenceError(f"{where}: invalid email {email!r}")
        out.append(
            ExecutorRef(
                code=_require(item, "code", where),
                name=_require(item, "name", where),
                kind=kind,
                municipality_code=mun,
                email=email,
                head_title=item.get("head_title"),
                head_email=item.get("head_email"),
            )
        )
    codes = [e.code for e in out]
    if len(set(codes)) != len(codes):
        raise ReferenceError(f"{path.name}: duplicate executor codes")
    return tuple(out)


def load_executors(directory: str | Path | None = None) -> tuple[ExecutorRef, ...]:
    """Ministries, the duty officer, the government and the 49 municipal administrations."""
    return _executors(reference_dir(directory))


def executor_index(directory: str | Path | None = None) -> dict[str, ExecutorRef]:
    """Executors by code."""
    return {e.code: e for e in load_executors(directory)}


def administration_code(municipality_code: str) -> str:
    """The code of a municipality's own administration."""
    return f"adm_{municipality_code}"


@lru_cache(maxsize=8)
def _rubricator(directory: Path) -> Rubricator:
    path = directory / "rubricator.yaml"
    data = _read_yaml(path)
    hazard_types = {str(k): str(v) for k, v in (data.get("hazard_types") or {}).items()}
    if set(hazard_types) != set(HAZARD_TYPES):
        raise ReferenceError(f"{path.name}: hazard_types must be exactly {sorted(HAZARD_TYPES)}")
    categories: list[CategoryRef] = []
    seen: set[str] = set()
    for cat in data.get("categories") or []:
        slug = _require(cat, "slug", path.name)
        topics: list[TopicRef] = []
        for t in cat.get("topics") or []:
            where = f"{path.name}: {slug}/{t.get('slug')}"
            tslug = _require(t, "slug", where)
            if tslug in seen:
                raise ReferenceError(f"{where}: duplicate topic slug")
            seen.add(tslug)
            hazard = bool(t.get("hazard", False))
            htype = t.get("hazard_type")
            if hazard and htype not in hazard_types:
                raise ReferenceError(f"{where}: hazard topic needs a known hazard_type, got {htype!r}")
            if not hazard and htype is not None:
                raise ReferenceError(f"{where}: hazard_type set on a non-hazard topic")
            topics.append(
                TopicRef(
                    slug=tslug,
                    category_slug=slug,
                    name=_require(t, "name", where),
                    priority=bool(t.get("priority", False)),
                    hazard=hazard,
                    hazard_type=htype,
                    source_topics=tuple(str(s) for s in (t.get("source_topics") or ())),
                )
            )
        categories.append(CategoryRef(slug=slug, name=_require(cat, "name", path.name), topics=tuple(topics)))
    if tuple(c.slug for c in categories) != CATEGORIES:
        raise ReferenceError(f"{path.name}: the categories must be exactly {CATEGORIES}, in that order")
    rub = Rubricator(categories=tuple(categories), hazard_types=hazard_types)
    covered = {t.hazard_type for t in rub.hazard_topics()}
    if covered != set(HAZARD_TYPES):
        raise ReferenceError(
            f"{path.name}: hazard types without a topic: {sorted(set(HAZARD_TYPES) - covered)}"
        )
    return rub


def load_rubricator(directory: str | Path | None = None) -> Rubricator:
    """The two-level rubricator (12 categories of ``incidents.CATEGORIES`` and their topics)."""
    return _rubricator(reference_dir(directory))


@lru_cache(maxsize=8)
def _routing_rules(directory: Path) -> tuple[RoutingRuleRef, ...]:
    path = directory / "routing.yaml"
    rub = _rubricator(directory)
    topics = rub.topics
    municipalities = [m.code for m in _municipalities(directory)]
    executors = {e.code for e in _executors(directory)}
    rules: dict[tuple[str, str, str], str] = {}
    for i, item in enumerate(_read_yaml(path).get("rules") or []):
        where = f"{path.name}: rule #{i + 1}"
        category = _require(item, "category", where)
        topic = str(item.get("topic", WILDCARD))
        municipality = str(item.get("municipality", WILDCARD))
        executor = _require(item, "executor", where)
        if category not in CATEGORIES:
            raise ReferenceError(f"{where}: unknown category {category!r}")
        if topic != WILDCARD and (topic not in topics or topics[topic].category_slug != category):
            raise ReferenceError(f"{where}: topic {topic!r} is not a topic of {category!r}")
        if municipality == EACH_MUNICIPALITY:
            targets = municipalities
        elif municipality == WILDCARD or municipality in municipalities:
            targets = [municipality]
        else:
            raise ReferenceError(f"{where}: unknown municipality {municipality!r}")
        for mun in targets:
            if executor == OWN_ADMINISTRATION:
                if mun == WILDCARD:
                    raise ReferenceError(f"{where}: {OWN_ADMINISTRATION} needs a municipality")
                code = administration_code(mun)
            else:
                code = executor
            if code not in executors:
                raise ReferenceError(f"{where}: unknown executor {code!r}")
            key = (category, topic, mun)
            if key in rules and rules[key] != code:
                raise ReferenceError(f"{where}: conflicting executors for {key}: {rules[key]} and {code}")
            rules[key] = code
    missing = [c for c in CATEGORIES if (c, WILDCARD, WILDCARD) not in rules]
    if missing:
        raise ReferenceError(f"{path.name}: categories without a default rule: {missing}")
    return tuple(RoutingRuleRef(c, t, m, e) for (c, t, m), e in rules.items())


def load_routing_rules(directory: str | Path | None = None) -> tuple[RoutingRuleRef, ...]:
    """Routing rules with ``@each``/``@administration`` expanded into one rule per municipality."""
    return _routing_rules(reference_dir(directory))


@lru_cache(maxsize=8)
def _routing_index(directory: Path) -> dict[tuple[str, str, str], str]:
    return {
        (r.category_slug, r.topic_slug, r.municipality_code): r.executor_code
        for r in _routing_rules(directory)
    }


def resolve_executor(
    category: str, topic: str | None, municipality_code: str | None, directory: str | Path | None = None
) -> str:
    """The executor code for a case: the most specific matching routing rule.

    Order: (category, topic, municipality) → (category, topic, *) → (category, *, municipality)
    → (category, *, *). Raises ``KeyError`` for an unknown category.
    """
    index = _routing_index(reference_dir(directory))
    topic = topic or WILDCARD
    mun = municipality_code or WILDCARD
    for key in ((category, topic, mun), (category, topic, WILDCARD), (category, WILDCARD, mun)):
        if key in index:
            return index[key]
    return index[(category, WILDCARD, WILDCARD)]


def _rule(category: str, topic: str, item: dict[str, Any], where: str) -> DeadlineRuleRef:
    unit = _require(item, "unit", where)
    if unit not in DEADLINE_UNITS:
        raise ReferenceError(f"{where}: unknown unit {unit!r}")
    try:
        first, resolution = int(item["first_response"]), int(item["resolution"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ReferenceError(f"{where}: first_response and resolution must be integers") from exc
    if not 0 < first <= resolution:
        raise ReferenceError(f"{where}: need 0 < first_response <= resolution")
    return DeadlineRuleRef(category, topic, first, resolution, unit)


@lru_cache(maxsize=8)
def _deadline_rules(directory: Path) -> tuple[DeadlineRuleRef, ...]:
    path = directory / "deadlines.yaml"
    data = _read_yaml(path)
    topics = _rubricator(directory).topics
    rules: list[DeadlineRuleRef] = []
    cats = data.get("categories") or {}
    if set(cats) != set(CATEGORIES):
        raise ReferenceError(f"{path.name}: need a default for every category, got {sorted(cats)}")
    for category in CATEGORIES:
        rules.append(_rule(category, WILDCARD, cats[category], f"{path.name}: {category}"))
    for slug, item in (data.get("topics") or {}).items():
        if slug not in topics:
            raise ReferenceError(f"{path.name}: unknown topic {slug!r}")
        rules.append(_rule(topics[slug].category_slug, slug, item, f"{path.name}: {slug}"))
    for topic in topics.values():
        if topic.hazard and not any(r.topic_slug == topic.slug and r.unit == "hours" for r in rules):
            raise ReferenceError(f"{path.name}: hazard topic {topic.slug} needs a rule in hours")
    return tuple(rules)


@lru_cache(maxsize=8)
def _deadline_index(directory: Path) -> dict[tuple[str, str], DeadlineRuleRef]:
    return {(r.category_slug, r.topic_slug): r for r in _deadline_rules(directory)}


def load_deadline_rules(directory: str | Path | None = None) -> tuple[DeadlineRuleRef, ...]:
    """Deadline rules: one default per category (topic ``*``) and per-topic overrides."""
    return _deadline_rules(reference_dir(directory))


def resolve_deadline(
    category: str, topic: str | None, directory: str | Path | None = None
) -> DeadlineRuleRef:
    """The deadline rule of a topic, else its category's default (``KeyError`` for an unknown category)."""
    index = _deadline_index(reference_dir(directory))
    return index.get((category, topic or WILDCARD)) or index[(category, WILDCARD)]


@lru_cache(maxsize=8)
def _calendar(directory: Path) -> ProductionCalendar:
    path = directory / "production_calendar.csv"
    exceptions: dict[date, bool] = {}
    notes: dict[date, str] = {}
    for i, row in enumerate(_read_csv(path), start=2):
        where = f"{path.name}:{i}"
        try:
            day = date.fromisoformat(_require(row, "day", where))
        except ValueError as exc:
            raise ReferenceError(f"{where}: bad date {row.get('day')!r}") from exc
        flag = _require(row, "is_working", where).lower()
        if flag not in ("true", "false"):
            raise ReferenceError(f"{where}: is_working must be true or false")
        working = flag == "true"
        if working == (day.weekday() < 5):
            raise ReferenceError(f"{where}: {day} is not an exception to the Monday–Friday rule")
        if day in exceptions:
            raise ReferenceError(f"{where}: duplicate day {day}")
        exceptions[day] = working
        notes[day] = (row.get("note") or "").strip()
    if not exceptions:
        raise ReferenceError(f"{path.name}: empty calendar")
    years = [d.year for d in exceptions]
    return ProductionCalendar(exceptions=exceptions, notes=notes, first_year=min(years), last_year=max(years))


def load_calendar(directory: str | Path | None = None) -> ProductionCalendar:
    """The production calendar (2018–2027; 2027 is a projection, see README.md)."""
    return _calendar(reference_dir(directory))


def clear_caches() -> None:
    """Forget everything read (after the files changed on disk)."""
    for fn in (
        _municipalities,
        _settlements,
        _settlement_index,
        _executors,
        _rubricator,
        _routing_rules,
        _routing_index,
        _deadline_rules,
        _deadline_index,
        _calendar,
    ):
        fn.cache_clear()
