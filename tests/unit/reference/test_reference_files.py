"""The reference files, read without a database: completeness, consistency, known facts."""

from __future__ import annotations

import json
import re
import shutil
from datetime import date
from pathlib import Path

import pytest
import yaml

from incidents import CATEGORIES
from incidents.config import REFERENCE_DIR, REPO_ROOT
from incidents.reference import (
    HAZARD_TYPES,
    ReferenceError,
    administration_code,
    executor_index,
    load_calendar,
    load_deadline_rules,
    load_executors,
    load_municipalities,
    load_routing_rules,
    load_rubricator,
    load_settlements,
    resolve_deadline,
    resolve_executor,
)

SHARED_RUBRICATOR = REPO_ROOT.parent / "shared" / "data" / "regional_centre_rubricator_topics.json"
LOCAL = ("improvement", "waste")


def test_rubricator_top_level_is_the_fixed_categories() -> None:
    rub = load_rubricator()
    assert tuple(c.slug for c in rub.categories) == CATEGORIES
    names = {c.slug: c.name for c in rub.categories}
    assert names["improvement"] == "Благоустройство"
    assert names["waste"] == "Мусор/ТКО"
    assert names["communications"] == "Связь и интернет"
    assert names["other"] == "Прочее"


def test_rubricator_topics_shape() -> None:
    rub = load_rubricator()
    slugs = [t.slug for c in rub.categories for t in c.topics]
    assert len(slugs) == len(set(slugs))
    for cat in rub.categories:
        assert 4 <= len(cat.topics) <= 18, cat.slug
        assert f"{cat.slug}_other" in {t.slug for t in cat.topics}
        for topic in cat.topics:
            assert re.fullmatch(r"[a-z][a-z0-9_]*", topic.slug), topic.slug
            assert topic.slug.startswith(cat.slug + "_"), topic.slug
            assert topic.category_slug == cat.slug
            # priority exactly when informed by a ★ topic of the real rubricator
            assert topic.priority == any(s.startswith("★") for s in topic.source_topics), topic.slug


def test_every_hazard_type_has_a_topic() -> None:
    rub = load_rubricator()
    covered = {t.hazard_type for t in rub.hazard_topics()}
    assert covered == set(HAZARD_TYPES)
    assert set(rub.hazard_types) == set(HAZARD_TYPES)
    assert all(t.hazard_type is None for t in rub.topics.values() if not t.hazard)


def test_rural_topics_present() -> None:
    topics = load_rubricator().topics
    for slug in (
        "communications_no_mobile_signal",
        "communications_no_internet",
        "power_outage",
        "power_low_voltage",
        "housing_cold_water",
        "housing_heating",
        "roads_snow_clearing",
        "transport_route_cancelled",
        "healthcare_fap_closed",
        "education_school_transport",
        "waste_landfills",
    ):
        assert slug in topics


@pytest.mark.skipif(not SHARED_RUBRICATOR.is_file(), reason="shared data folder not present")
def test_source_topics_are_verbatim_topics_of_the_real_rubricator() -> None:
    real = set(json.loads(SHARED_RUBRICATOR.read_text(encoding="utf-8")))
    cited = {s for t in load_rubricator().topics.values() for s in t.source_topics}
    assert cited <= real, cited - real
    assert len(cited) >= 150


def test_municipalities() -> None:
    munis = load_municipalities()
    assert len(munis) == 49
    kinds = [m.kind for m in munis]
    assert kinds.count("municipal_district") == 39
    assert kinds.count("urban_okrug") == 6
    assert kinds.count("city_district_of_kirov") == 4
    by_code = {m.code: m for m in munis}
    assert by_code["33602"].name == "Арбажский муниципальный район"
    assert by_code["33787"].name == "ЗАТО Первомайский"
    assert {c for c in by_code if c.startswith("33701-")} == {
        "33701-leninsky",
        "33701-oktyabrsky",
        "33701-pervomaysky",
        "33701-novovyatsky",
    }
    for m in munis:
        if m.kind == "city_district_of_kirov":
            assert m.parent_code == "33701"
        else:
            assert m.parent_code is None and m.oktmo.startswith(m.code) and len(m.code) == 5


def test_settlements_map_to_their_oktmo_prefix_except_donaurovo() -> None:
    settlements = load_settlements()
    assert len(settlements) == 4288
    assert len({s.oktmo for s in settlements}) == 4288
    exceptions = [s for s in settlements if s.municipality_code != s.oktmo[:5]]
    assert [(s.name, s.oktmo, s.municipality_code) for s in exceptions] == [
        ("Донаурово", "33641480101", "33617")
    ]
    kirov = [s for s in settlements if s.name == "Киров" and s.type_abbr == "г"]
    assert kirov and kirov[0].municipality_code == "33701"


def test_executors() -> None:
    executors = load_executors()
    kinds = [e.kind for e in executors]
    assert kinds.count("duty_officer") == 1
    assert kinds.count("government") == 1
    assert kinds.count("ministry") >= 10
    index = executor_index()
    for m in load_municipalities():
        adm = index[administration_code(m.code)]
        assert adm.kind == "municipal_administration" and adm.municipality_code == m.code
    for e in executors:
        assert e.email.endswith("@kirov-region.example.org"), e.email
        assert e.head_email and e.head_email.endswith("@kirov-region.example.org")
    names = {e.name for e in executors}
    assert "Министерство здравоохранения Кировской области" in names
    assert "Министерство образования Кировской области" in names


def test_every_municipality_has_an_executor_for_every_category_and_topic() -> None:
    executors = executor_index()
    topics = load_rubricator().topics
    for m in load_municipalities():
        for category in CATEGORIES:
            code = resolve_executor(category, None, m.code)
            assert code in executors
            if category in LOCAL:
                assert code == administration_code(m.code)
            else:
                assert executors[code].kind == "ministry"
        for topic in topics.values():
            code = resolve_executor(topic.category_slug, topic.slug, m.code)
            assert code in executors
            # hazards keep the routing executor; the duty officer is notified by escalation
            assert executors[code].kind in ("ministry", "municipal_administration")


def test_routing_examples() -> None:
    assert resolve_executor("roads", "roads_potholes", "33602") == "min_transport"
    assert resolve_executor("roads", "roads_yard_driveways", "33602") == "adm_33602"
    assert resolve_executor("roads", "roads_yard_driveways", "33701-leninsky") == "adm_33701-leninsky"
    assert resolve_executor("waste", "waste_fees", "33602") == "min_ecology"
    assert resolve_executor("waste", "waste_collection", "33701") == "adm_33701"
    assert resolve_executor("healthcare", "healthcare_fap_closed", "33650") == "min_health"
    # no place known: the category's default
    assert resolve_executor("improvement", None, None) == "min_housing"
    with pytest.raises(KeyError):
        resolve_executor("nonsense", None, "33602")
    rules = load_routing_rules()
    assert len({(r.category_slug, r.topic_slug, r.municipality_code) for r in rules}) == len(rules)


def test_deadlines() -> None:
    topics = load_rubricator().topics
    for topic in topics.values():
        rule = resolve_deadline(topic.category_slug, topic.slug)
        assert rule.first_response <= rule.resolution
        if topic.hazard:
            assert rule.unit == "hours" and rule.resolution <= 72, topic.slug
        else:
            assert rule.unit == "working_days" and rule.first_response == 1, topic.slug
            assert 2 <= rule.resolution <= 30
    gas = resolve_deadline("housing", "housing_gas_smell")
    manhole = resolve_deadline("improvement", "improvement_open_manhole")
    assert gas.resolution < manhole.resolution
    assert resolve_deadline("roads", None).topic_slug == "*"
    assert {r.category_slug for r in load_deadline_rules() if r.topic_slug == "*"} == set(CATEGORIES)


OFFICIAL_WORKING_DAYS = {
    2018: 247,
    2019: 247,
    2020: 248,
    2021: 247,
    2022: 247,
    2023: 247,
    2024: 248,
    2025: 247,
}


@pytest.mark.parametrize(("year", "expected"), sorted(OFFICIAL_WORKING_DAYS.items()))
def test_calendar_yearly_totals(year: int, expected: int) -> None:
    cal = load_calendar()
    assert cal.working_days(date(year, 1, 1), date(year, 12, 31)) == expected


@pytest.mark.parametrize(
    ("day", "working"),
    [
        (date(2024, 4, 27), True),
        (date(2024, 11, 2), True),
        (date(2024, 12, 28), True),
        (date(2024, 6, 12), False),
        (date(2024, 12, 31), False),
        (date(2025, 1, 8), False),
        (date(2025, 11, 1), True),
        (date(2025, 11, 3), False),
        (date(2025, 5, 8), True),
        (date(2018, 4, 28), True),
        (date(2018, 6, 9), True),
        (date(2018, 12, 29), True),
        (date(2021, 2, 20), True),
        (date(2021, 2, 22), False),
        (date(2022, 3, 5), True),
        (date(2023, 11, 6), False),
        (date(2026, 1, 9), False),
        (date(2026, 1, 12), True),
        (date(2027, 5, 3), False),
        (date(2024, 6, 13), True),
        (date(2024, 6, 15), False),
    ],
)
def test_calendar_days(day: date, working: bool) -> None:
    assert load_calendar().is_working_day(day) is working


def test_calendar_covers_2018_to_2027_and_marks_the_projection() -> None:
    cal = load_calendar()
    assert (cal.first_year, cal.last_year) == (2018, 2027)
    for year in range(2018, 2028):
        for month, day in ((2, 23), (3, 8), (5, 1), (5, 9), (6, 12), (11, 4)):
            d = date(year, month, day)
            assert not cal.is_working_day(d)
    assert all("проекция" in note for d, note in cal.notes.items() if d.year == 2027)
    assert not any("проекция" in note for d, note in cal.notes.items() if d.year < 2027)
    assert cal.working_days(date(2026, 1, 1), date(2026, 12, 31)) == 247


# --------------------------------------------------------------------------- bad files


@pytest.fixture
def ref_copy(tmp_path: Path) -> Path:
    target = tmp_path / "reference"
    shutil.copytree(REFERENCE_DIR, target, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    return target


def _edit_yaml(path: Path, fn) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    fn(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def test_routing_to_an_unknown_executor_is_rejected(ref_copy: Path) -> None:
    _edit_yaml(ref_copy / "routing.yaml", lambda d: d["rules"][0].update(executor="min_nonexistent"))
    with pytest.raises(ReferenceError, match="unknown executor 'min_nonexistent'"):
        load_routing_rules(ref_copy)


def test_missing_category_default_is_rejected(ref_copy: Path) -> None:
    _edit_yaml(ref_copy / "routing.yaml", lambda d: d["rules"].pop(0))
    with pytest.raises(ReferenceError, match="without a default rule: \\['improvement'\\]"):
        load_routing_rules(ref_copy)


def test_topic_of_another_category_is_rejected(ref_copy: Path) -> None:
    _edit_yaml(
        ref_copy / "routing.yaml",
        lambda d: d["rules"].append(
            {"category": "roads", "topic": "waste_fees", "executor": "min_transport"}
        ),
    )
    with pytest.raises(ReferenceError, match="not a topic of 'roads'"):
        load_routing_rules(ref_copy)


def test_uncovered_hazard_type_is_rejected(ref_copy: Path) -> None:
    def drop(d: dict) -> None:
        for cat in d["categories"]:
            cat["topics"] = [t for t in cat["topics"] if t.get("hazard_type") != "thin_ice"]

    _edit_yaml(ref_copy / "rubricator.yaml", drop)
    with pytest.raises(ReferenceError, match="thin_ice"):
        load_rubricator(ref_copy)


def test_hazard_deadline_must_be_in_hours(ref_copy: Path) -> None:
    _edit_yaml(ref_copy / "deadlines.yaml", lambda d: d["topics"].pop("housing_gas_smell"))
    with pytest.raises(ReferenceError, match="housing_gas_smell needs a rule in hours"):
        load_deadline_rules(ref_copy)


def test_calendar_entry_that_is_no_exception_is_rejected(ref_copy: Path) -> None:
    path = ref_copy / "production_calendar.csv"
    path.write_text(path.read_text(encoding="utf-8") + "2024-06-13,true,обычный четверг\n", encoding="utf-8")
    with pytest.raises(ReferenceError, match="not an exception"):
        load_calendar(ref_copy)


def test_settlement_with_unknown_municipality_is_rejected(ref_copy: Path) -> None:
    path = ref_copy / "settlements.csv"
    path.write_text(
        path.read_text(encoding="utf-8") + "33999000001,д,деревня,Нигде,,33999\n", encoding="utf-8"
    )
    with pytest.raises(ReferenceError, match="unknown municipality '33999'"):
        load_settlements(ref_copy)


def test_settlement_index_and_cache_clearing(ref_copy: Path) -> None:
    from incidents.reference import clear_caches, settlement_index

    assert settlement_index()["33641480101"].name == "Донаурово"
    before = load_settlements(ref_copy)
    path = ref_copy / "settlements.csv"
    path.write_text(
        path.read_text(encoding="utf-8") + "33602999999,д,деревня,Новая,Арбажское,33602\n", encoding="utf-8"
    )
    assert load_settlements(ref_copy) is before  # cached until cleared
    clear_caches()
    assert len(load_settlements(ref_copy)) == len(before) + 1
    assert settlement_index(ref_copy)["33602999999"].municipality_code == "33602"
