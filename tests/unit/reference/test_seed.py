"""Loading the reference data into the case database (SQLite and PostgreSQL): idempotent upserts."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
import yaml
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from incidents import CATEGORIES
from incidents.config import REFERENCE_DIR
from incidents.db import models
from incidents.reference import (
    administration_code,
    load_calendar,
    load_executors,
    load_municipalities,
    load_routing_rules,
    load_rubricator,
    load_settlements,
)
from incidents.reference.seed import load_reference

REFERENCE_TABLES = (
    "municipalities",
    "settlements",
    "executors",
    "categories",
    "topics",
    "routing_rules",
    "deadline_rules",
    "production_calendar",
)


def dump(engine_or_session: Engine | Session) -> dict[str, list[tuple]]:
    """Every row of every reference table, sorted, for exact comparisons."""
    out = {}
    for name in REFERENCE_TABLES:
        table = models.Base.metadata.tables[name]
        stmt = select(table).order_by(*table.primary_key.columns)
        if isinstance(engine_or_session, Session):
            rows = engine_or_session.execute(stmt).all()
        else:
            with engine_or_session.connect() as conn:
                rows = conn.execute(stmt).all()
        out[name] = [tuple(r) for r in rows]
    return out


def count(session: Session, model) -> int:
    return session.execute(select(func.count()).select_from(model)).scalar_one()


def test_seeded_tables_match_the_files(session: Session) -> None:
    assert count(session, models.Municipality) == len(load_municipalities()) == 49
    assert count(session, models.Settlement) == len(load_settlements()) == 4288
    assert count(session, models.Executor) == len(load_executors())
    assert count(session, models.Category) == len(CATEGORIES)
    assert count(session, models.Topic) == len(load_rubricator().topics)
    assert count(session, models.RoutingRule) == len(load_routing_rules())
    assert count(session, models.CalendarDay) == len(load_calendar().exceptions)
    gas = session.get(models.Topic, "housing_gas_smell")
    assert gas.hazard is True and gas.hazard_type == "gas_smell" and gas.category_slug == "housing"
    manhole = session.get(models.Topic, "improvement_open_manhole")
    assert manhole.source_topics == ["★ Открытые канализационные люки"] and manhole.priority is True
    donaurovo = session.get(models.Settlement, "33641480101")
    assert donaurovo.municipality_code == "33617"
    leninsky = session.get(models.Municipality, "33701-leninsky")
    assert leninsky.parent_code == "33701" and leninsky.kind == "city_district_of_kirov"


def test_loading_twice_changes_nothing(engine: Engine) -> None:
    before = dump(engine)
    counts = load_reference(engine)
    assert counts == dict.fromkeys(REFERENCE_TABLES, 0)
    assert dump(engine) == before


def test_every_municipality_resolves_every_category_through_the_table(session: Session) -> None:
    """Resolve with the database rules only: topic → category × municipality → category default."""
    rules = {
        (r.category_slug, r.topic_slug, r.municipality_code): r.executor_code
        for r in session.scalars(select(models.RoutingRule))
    }
    executors = {e.code: e for e in session.scalars(select(models.Executor))}
    municipalities = session.scalars(select(models.Municipality.code)).all()
    topics = session.scalars(select(models.Topic)).all()
    assert len(municipalities) == 49

    def resolve(category: str, topic: str, mun: str) -> str | None:
        for key in (
            (category, topic, mun),
            (category, topic, "*"),
            (category, "*", mun),
            (category, "*", "*"),
        ):
            if key in rules:
                return rules[key]
        return None

    for mun in municipalities:
        for category in CATEGORIES:
            code = resolve(category, "*", mun)
            assert code in executors, (category, mun)
        for topic in topics:
            assert resolve(topic.category_slug, topic.slug, mun) in executors
        assert resolve("improvement", "*", mun) == administration_code(mun)


def _copy(tmp_path: Path) -> Path:
    target = tmp_path / "reference"
    shutil.copytree(REFERENCE_DIR, target, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    return target


def test_changed_files_update_and_remove_rows(engine: Engine, tmp_path: Path) -> None:
    ref = _copy(tmp_path)
    # routing: drop every rule of one local topic, re-point a category default
    routing = yaml.safe_load((ref / "routing.yaml").read_text(encoding="utf-8"))
    routing["rules"] = [r for r in routing["rules"] if r.get("topic") != "other_funeral"]
    for rule in routing["rules"]:
        if rule == {
            "category": "other",
            "topic": "*",
            "municipality": "*",
            "executor": "min_internal_policy",
        }:
            rule["executor"] = "min_property"
    (ref / "routing.yaml").write_text(yaml.safe_dump(routing, allow_unicode=True), encoding="utf-8")
    # deadlines: one changed, one override removed
    deadlines = yaml.safe_load((ref / "deadlines.yaml").read_text(encoding="utf-8"))
    deadlines["categories"]["roads"]["resolution"] = 25
    del deadlines["topics"]["transport_route_cancelled"]
    (ref / "deadlines.yaml").write_text(yaml.safe_dump(deadlines, allow_unicode=True), encoding="utf-8")
    # a settlement renamed, a calendar day dropped
    with (ref / "settlements.csv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    rows[0]["name"] = "Арбаж-Новый"
    with (ref / "settlements.csv").open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    cal = (ref / "production_calendar.csv").read_text(encoding="utf-8").splitlines()
    (ref / "production_calendar.csv").write_text(
        "\n".join(line for line in cal if not line.startswith("2027-05-03")) + "\n", encoding="utf-8"
    )

    with Session(engine) as session:
        counts = load_reference(session, ref)
        assert counts["routing_rules"] == 49 + 1  # 49 funeral rules removed, one default re-pointed
        assert counts["deadline_rules"] == 2
        assert counts["settlements"] == 1
        assert counts["production_calendar"] == 1
        assert counts["municipalities"] == counts["executors"] == counts["topics"] == 0
        session.flush()
        funeral = session.scalar(
            select(func.count())
            .select_from(models.RoutingRule)
            .where(models.RoutingRule.topic_slug == "other_funeral")
        )
        assert funeral == 0
        default = session.scalar(
            select(models.RoutingRule.executor_code).where(
                models.RoutingRule.category_slug == "other",
                models.RoutingRule.topic_slug == "*",
                models.RoutingRule.municipality_code == "*",
            )
        )
        assert default == "min_property"
        roads = session.scalar(
            select(models.DeadlineRule.resolution).where(
                models.DeadlineRule.category_slug == "roads", models.DeadlineRule.topic_slug == "*"
            )
        )
        assert roads == 25
        assert session.get(models.Settlement, rows[0]["oktmo"]).name == "Арбаж-Новый"
        # the changed copy is now stable too
        assert load_reference(session, ref) == dict.fromkeys(REFERENCE_TABLES, 0)
        session.rollback()
    # the shared database is untouched
    assert load_reference(engine) == dict.fromkeys(REFERENCE_TABLES, 0)


def test_bad_reference_files_write_nothing(engine: Engine, tmp_path: Path) -> None:
    from incidents.reference import ReferenceError

    ref = _copy(tmp_path)
    (ref / "executors.yaml").write_text(
        "executors:\n  - {code: x, name: X, kind: oracle, email: x@example.org}\n"
    )
    before = dump(engine)
    with pytest.raises(ReferenceError, match="unknown kind 'oracle'"):
        load_reference(engine, ref)
    assert dump(engine) == before


def test_session_load_joins_the_callers_transaction(engine: Engine) -> None:
    with Session(engine) as session:
        session.execute(text("DELETE FROM production_calendar"))
        counts = load_reference(session)
        assert counts["production_calendar"] == len(load_calendar().exceptions)
        session.rollback()
    assert load_reference(engine) == dict.fromkeys(REFERENCE_TABLES, 0)
