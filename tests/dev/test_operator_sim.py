"""The demo's simulated operator works cases through the ``case`` command, deterministically, so
the month's report and executor rating show real figures."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import Engine, insert, select

from incidents.cases.escalation import escalate
from incidents.cases.routing import route_posts
from incidents.db import migrate
from incidents.db.engine import make_engine
from incidents.db.models import Batch, Case, CaseEvent, Post
from incidents.reference.seed import load_reference
from incidents.stats.compute import compute_month
from incidents_dev.operator_sim import ACTOR, simulate

MONTH = date(2025, 3, 1)
NOW = datetime(2025, 4, 2, 9, 0, tzinfo=UTC)
"""The demo's moment: the month is over, the backfill registers its cases now."""
TOPICS = (
    ("roads", None, False, None),
    ("housing", None, False, None),
    ("waste", None, False, None),
    ("roads", "roads_snow_clearing", False, None),
    ("improvement", "improvement_open_manhole", True, "open_manhole"),
)
MUNICIPALITIES = ("33602", "33603", "33605", "33606")


def _load(engine: Engine) -> None:
    """A month of backfilled posts (daily windows, historical) and a live day before NOW."""
    rows = []
    with engine.begin() as conn:
        for day in range(32):
            end = datetime(2025, 3, 2, tzinfo=UTC) + timedelta(days=day)
            if end > NOW:
                break
            batch = conn.execute(
                insert(Batch)
                .values(network="vk", window_start=end - timedelta(days=1), window_end=end, status="analysed")
                .returning(Batch.id)
            ).scalar_one()
            for i in range(6):
                category, topic, hazard, hazard_type = TOPICS[(day + i) % len(TOPICS)]
                n = len(rows)
                rows.append(
                    {
                        "network": "vk",
                        "external_id": f"-7_{n}",
                        "kind": "post",
                        "source_id": "vk:-7",
                        "author_pseudonym": f"a{n}",
                        "published_at": end - timedelta(hours=3 + 3 * i),
                        "collected_at": end,
                        "text": f"Жалоба номер {n}: {category} в районе {MUNICIPALITIES[i % 4]}, дом {n}",
                        "url": f"https://vk.com/wall-7_{n}",
                        "batch_id": batch,
                        "is_incident": True,
                        "category": category,
                        "topic": topic,
                        "hazard": hazard,
                        "hazard_type": hazard_type,
                        "municipality_code": MUNICIPALITIES[i % 4],
                        "classifier_version": "v1",
                        "analysed_at": end,
                        "place_key": "",
                    }
                )
        conn.execute(insert(Post), rows)
    route_posts(engine, now=NOW)


def _fresh(tmp_path, name: str) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / name}")
    migrate.upgrade(engine)
    load_reference(engine)
    return engine


def _states(engine: Engine) -> list[tuple]:
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                select(
                    Case.id, Case.status, Case.first_response_at, Case.resolved_at, Case.historical
                ).order_by(Case.id)
            )
        ]


def test_the_operator_answers_and_resolves_part_of_the_cases(engine: Engine) -> None:
    _load(engine)
    url = engine.url.render_as_string(hide_password=False)
    summary = simulate(url, seed=7, now=NOW)
    assert summary.refused == 0
    assert summary.cases > 40 and summary.answered > summary.cases // 2
    assert summary.resolved > summary.rejected > 0
    assert summary.answered < summary.cases, "only part of the cases"
    with engine.connect() as conn:
        cases = conn.execute(select(Case.__table__)).mappings().all()
        actors = set(conn.execute(select(CaseEvent.actor).where(CaseEvent.kind == "status")).scalars())
    assert actors == {ACTOR}

    def utc(value: datetime | None) -> datetime | None:
        return value if value is None or value.tzinfo else value.replace(tzinfo=UTC)

    for c in cases:
        if c["first_response_at"] is not None:
            answered = utc(c["first_response_at"])
            base = utc(c["opened_at"]) if c["historical"] else utc(c["registered_at"])
            assert base <= answered <= NOW
        if c["status"] == "resolved":
            assert utc(c["first_response_at"]) <= utc(c["resolved_at"]) <= NOW
    # one historical hazard nobody answered was reopened as live: it escalates now
    assert summary.reopened == 1
    assert (
        sum(1 for c in cases if c["special_control"] and not c["historical"] and c["operator_touched"]) >= 1
    )
    assert escalate(engine, now=NOW + timedelta(minutes=1)).escalated >= 1

    figures = compute_month(engine, MONTH, now=NOW)
    assert figures.value("cases_resolved") and figures.value("cases_resolved") > 0
    assert figures.value("first_response_median_h") and figures.value("first_response_median_h") > 0
    rating = figures.executors
    assert (
        len(rating) > 1 and rating["resolved"].sum() > 0 and rating["median_first_response_h"].notna().any()
    )


@pytest.mark.parametrize("seed", [0, 3])
def test_the_simulation_is_deterministic_for_a_seed(tmp_path, seed: int) -> None:
    first, second = _fresh(tmp_path, "a.sqlite"), _fresh(tmp_path, "b.sqlite")
    try:
        for engine in (first, second):
            _load(engine)
        a = simulate(first.url.render_as_string(hide_password=False), seed=seed, now=NOW)
        b = simulate(second.url.render_as_string(hide_password=False), seed=seed, now=NOW)
        assert a == b and _states(first) == _states(second)
    finally:
        first.dispose()
        second.dispose()
