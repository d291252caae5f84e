"""Escalation along the ladder: exactly once per level, across reruns and overlapping runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial

import pytest
from cases_helpers import BASE_TIME, add_posts, clear, post_row, run_concurrently
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from incidents.cases.escalation import escalate
from incidents.cases.lifecycle import transition
from incidents.cases.routing import route_posts
from incidents.db.models import Case, CaseEvent, Notification


def events(engine: Engine, case_id: int) -> list[tuple[int, str]]:
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                select(CaseEvent.level, CaseEvent.idempotency_key)
                .where(CaseEvent.case_id == case_id, CaseEvent.kind == "escalated")
                .order_by(CaseEvent.level)
            )
        ]


def recipients(engine: Engine, case_id: int) -> list[str]:
    with engine.connect() as conn:
        return sorted(
            conn.execute(select(Notification.recipient).where(Notification.case_id == case_id)).scalars()
        )


def only_case(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(Case.id)).scalar_one()


def test_overdue_case_climbs_once_per_level(engine: Engine, make_posts) -> None:
    # opened Wednesday 2025-03-12 11:00 Kirov; first response due Thursday 18:00 Kirov (15:00 UTC)
    make_posts({"category": "roads", "text": "Разбитая дорога на улице Гагарина"})
    route_posts(engine, now=BASE_TIME)
    case_id = only_case(engine)
    assert escalate(engine, now=BASE_TIME + timedelta(hours=1)).escalated == 0
    thursday = datetime(2025, 3, 13, 16, 0, tzinfo=UTC)
    first = escalate(engine, now=thursday)
    assert first.escalated == 1 and first.by_level == {1: 1}
    for _ in range(3):  # reruns at the same and later moments do not repeat level 1
        assert escalate(engine, now=thursday).escalated == 0
    assert escalate(engine, now=thursday + timedelta(hours=2)).escalated == 0
    friday = datetime(2025, 3, 14, 16, 0, tzinfo=UTC)  # 1 working day after the level-1 step
    assert escalate(engine, now=friday).by_level == {2: 1}
    assert escalate(engine, now=friday).escalated == 0
    monday = datetime(2025, 3, 17, 16, 0, tzinfo=UTC)
    assert escalate(engine, now=monday).escalated == 0  # level 3 waits 2 more working days
    tuesday = datetime(2025, 3, 18, 16, 0, tzinfo=UTC)
    assert escalate(engine, now=tuesday).by_level == {3: 1}
    assert escalate(engine, now=tuesday + timedelta(days=30)).escalated == 0  # the top of the ladder
    assert events(engine, case_id) == [(lvl, f"escalate:{case_id}:{lvl}") for lvl in (1, 2, 3)]
    assert recipients(engine, case_id) == sorted(
        [
            "min-transport@kirov-region.example.org",
            "min-transport-head@kirov-region.example.org",
            "deputy-chairman@kirov-region.example.org",
        ]
    )
    with Session(engine) as s:
        assert s.get(Case, case_id).escalation_level == 3
        subjects = s.execute(select(Notification.subject)).scalars().all()
    assert any("[ЭСКАЛАЦИЯ, уровень 3]" in x for x in subjects)


def test_hazard_escalates_at_once_and_every_two_hours_until_response(engine: Engine, make_posts) -> None:
    make_posts(
        {
            "category": "housing",
            "topic": "housing_gas_smell",
            "hazard": True,
            "municipality_code": "33603",
            "text": "Сильно пахнет газом в подъезде",
        }
    )
    route_posts(engine, now=BASE_TIME)
    case_id = only_case(engine)
    with engine.begin() as conn:  # the opening notifications are not part of this test
        conn.execute(Notification.__table__.delete())
    s1 = escalate(engine, now=BASE_TIME + timedelta(minutes=1))
    assert s1.by_level == {1: 1}
    assert recipients(engine, case_id) == [
        "duty@kirov-region.example.org",
        "min-housing@kirov-region.example.org",
    ]
    assert escalate(engine, now=BASE_TIME + timedelta(hours=1)).escalated == 0
    assert escalate(engine, now=BASE_TIME + timedelta(hours=2, minutes=2)).by_level == {2: 1}
    with Session(engine) as s:
        transition(s, case_id, "in_progress", actor="executor:min_housing", at=BASE_TIME + timedelta(hours=3))
        s.commit()
    # responded and not overdue: the hazard stops climbing
    assert escalate(engine, now=BASE_TIME + timedelta(hours=5)).escalated == 0
    assert [lvl for lvl, _k in events(engine, case_id)] == [1, 2]


def test_closed_and_on_time_cases_do_not_escalate(engine: Engine, make_posts) -> None:
    make_posts({"text": "Яма у остановки"}, {"text": "Яма у школы", "municipality_code": "33603"})
    route_posts(engine, now=BASE_TIME)
    with Session(engine) as s:
        ids = s.execute(select(Case.id).order_by(Case.id)).scalars().all()
        transition(s, ids[0], "rejected", actor="op", reason="not_confirmed")
        s.commit()
    result = escalate(engine, now=BASE_TIME + timedelta(days=60))
    assert result.escalated == 1 and events(engine, ids[0]) == []


@pytest.mark.postgres
def test_overlapping_escalation_runs_write_one_event_per_level(pg_engine: Engine) -> None:
    clear(pg_engine)
    try:
        add_posts(
            pg_engine,
            [
                post_row(category=c, municipality_code=m, text=f"Жалоба: {c} в районе {m}")
                for m in ("33602", "33603", "33605", "33606")
                for c in ("roads", "housing", "transport", "healthcare", "social")
            ],
        )
        route_posts(pg_engine, now=BASE_TIME)
        moments = [
            datetime(2025, 3, 13, 16, tzinfo=UTC),
            datetime(2025, 3, 14, 16, tzinfo=UTC),
            datetime(2025, 3, 18, 16, tzinfo=UTC),
        ]
        totals = []
        for now in moments:
            results = run_concurrently(3, partial(escalate, pg_engine, now=now))
            totals.append(sum(r.escalated for r in results))
        assert totals == [20, 20, 20]
        with pg_engine.connect() as conn:
            per_level = conn.execute(
                select(CaseEvent.level, func.count())
                .where(CaseEvent.kind == "escalated")
                .group_by(CaseEvent.level)
                .order_by(CaseEvent.level)
            ).all()
            notes = conn.execute(select(func.count()).select_from(Notification)).scalar_one()
        assert [tuple(r) for r in per_level] == [(1, 20), (2, 20), (3, 20)]
        assert notes == 60
    finally:
        clear(pg_engine)
