"""Backfill semantics: deadlines from registration, historical cases from old windows, reopening."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from cases_helpers import BASE_TIME
from sqlalchemy import Engine, func, insert, select
from sqlalchemy.orm import Session

from incidents.cases.create import reopen_historical
from incidents.cases.errors import CaseError
from incidents.cases.escalation import escalate
from incidents.cases.routing import route_posts
from incidents.cli import main
from incidents.config import Settings
from incidents.db.models import Batch, Case, CaseEvent, CasePost, Notification

HAZARD = {
    "category": "improvement",
    "topic": "improvement_open_manhole",
    "hazard": True,
    "hazard_type": "open_manhole",
    "municipality_code": "33603",
}
NOW = BASE_TIME + timedelta(days=40)
"""The registration time of these tests: 40 days after BASE_TIME (a Wednesday, 2025-04-23)."""


def batch(engine: Engine, end: datetime, network: str = "vk") -> int:
    """A collected window of one day ending at ``end``."""
    with engine.begin() as conn:
        return conn.execute(
            insert(Batch)
            .values(network=network, window_start=end - timedelta(days=1), window_end=end, status="analysed")
            .returning(Batch.id)
        ).scalar_one()


def case_of(engine: Engine, post_id: int) -> Case:
    with Session(engine) as s:
        return s.execute(
            select(Case).join(CasePost, CasePost.case_id == Case.id).where(CasePost.post_id == post_id)
        ).scalar_one()


def utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def notifications(engine: Engine, case_id: int | None = None) -> int:
    query = select(func.count()).select_from(Notification)
    if case_id is not None:
        query = query.where(Notification.case_id == case_id)
    with engine.connect() as conn:
        return conn.execute(query).scalar_one()


def test_backfilled_window_registers_historical_cases_and_a_live_hazard_escalates(
    engine: Engine, make_posts
) -> None:
    old = batch(engine, BASE_TIME + timedelta(days=1))  # ended 39 days before registration
    live = batch(engine, NOW - timedelta(hours=1))
    old_hazard, old_road = make_posts(
        {**HAZARD, "batch_id": old, "text": "Открытый люк у школы на Советской"},
        {"batch_id": old, "text": "Разбитая дорога на улице Гагарина", "municipality_code": "33602"},
    )
    (live_hazard,) = make_posts(
        {
            **HAZARD,
            "batch_id": live,
            "municipality_code": "33602",
            "published_at": NOW - timedelta(hours=2),
            "text": "Открытый люк во дворе дома 7 на Ленина",
        }
    )
    summary = route_posts(engine, now=NOW)
    assert summary.opened == 3 and summary.historical == 2 and summary.notifications == 2

    past, road, current = (case_of(engine, i) for i in (old_hazard, old_road, live_hazard))
    assert past.historical and road.historical and not current.historical
    assert past.special_control, "a historical hazard is still a hazard, counted as one"
    # the post time stays for statistics; deadlines run from the registration
    assert utc(road.opened_at) == BASE_TIME and utc(road.registered_at) == NOW
    assert utc(road.resolution_due) > NOW and utc(road.first_response_due) > NOW
    assert notifications(engine, past.id) == 0 and notifications(engine, current.id) == 2

    first = escalate(engine, now=NOW + timedelta(minutes=15))
    assert first.escalated == 1 and first.by_level == {1: 1}
    # a month later: the live hazard climbs to the top, history stays silent
    for step in range(1, 40):
        escalate(engine, now=NOW + timedelta(hours=step * 3))
    with engine.connect() as conn:
        levels = dict(conn.execute(select(Case.id, Case.escalation_level)).all())
        escalated = set(
            conn.execute(select(CaseEvent.case_id).where(CaseEvent.kind == "escalated")).scalars()
        )
    assert levels == {past.id: 0, road.id: 0, current.id: 3} and escalated == {current.id}
    assert notifications(engine, past.id) == notifications(engine, road.id) == 0
    # a rerun of the backfilled window changes nothing
    assert route_posts(engine, now=NOW + timedelta(days=1)).selected == 0


def test_horizon_window_end_and_publication_time_decide(engine: Engine, make_posts) -> None:
    edge = batch(engine, NOW - timedelta(hours=71))
    a, b, c, d = make_posts(
        {"batch_id": edge, "text": "Нет воды в доме 1 на Мира", "category": "housing"},
        {
            "batch_id": None,
            "text": "Нет воды в доме 9 на Лесной",
            "category": "housing",
            "published_at": NOW - timedelta(hours=80),
        },
        {
            "batch_id": None,
            "text": "Нет воды в доме 4 на Луговой",
            "category": "housing",
            "published_at": NOW - timedelta(hours=5),
        },
        {
            "batch_id": None,
            "text": "Нет воды в доме 2 на Полевой",
            "category": "housing",
            "municipality_code": "33603",
            "published_at": NOW - timedelta(hours=5),
        },
    )
    route_posts(engine, post_ids=[a, b, c], now=NOW)
    # a batch's window end 71 h ago is live; a post outside any batch counts from its time
    assert [case_of(engine, i).historical for i in (a, b, c)] == [False, True, False]
    # an explicit window end (the command's --window-end) and horizon win
    route_posts(
        engine, post_ids=[d], now=NOW, window_end=NOW - timedelta(hours=3), live_horizon=timedelta(hours=2)
    )
    assert case_of(engine, d).historical


def test_a_live_post_joining_a_historical_case_makes_it_live(engine: Engine, make_posts) -> None:
    old = batch(engine, NOW - timedelta(days=5))
    base = dict(category="power", municipality_code="33603")
    (first,) = make_posts(
        {
            **base,
            "batch_id": old,
            "published_at": NOW - timedelta(days=5, hours=3),
            "text": "В селе Пашино нет света со вчерашнего вечера, оборван провод",
        }
    )
    route_posts(engine, now=NOW)
    assert case_of(engine, first).historical
    live = batch(engine, NOW + timedelta(hours=1))
    (again,) = make_posts(
        {
            **base,
            "batch_id": live,
            "network": "ok",
            "published_at": NOW + timedelta(minutes=30),
            "text": "В селе Пашино нет света со вчерашнего вечера! Оборван провод",
        }
    )
    later = NOW + timedelta(hours=2)
    summary = route_posts(engine, now=later)
    case = case_of(engine, again)
    assert summary.joined == 1 and summary.made_live == 1 and case.id == case_of(engine, first).id
    assert not case.historical and utc(case.registered_at) == later and utc(case.first_response_due) > later
    with engine.connect() as conn:
        kinds = list(conn.execute(select(CaseEvent.kind).where(CaseEvent.case_id == case.id)).scalars())
    assert kinds.count("live") == 1


def test_operator_reopens_a_historical_case(engine: Engine, make_posts, capsys) -> None:
    url = engine.url.render_as_string(hide_password=False)
    old = batch(engine, BASE_TIME + timedelta(days=1))
    hazard, road = make_posts(
        {**HAZARD, "batch_id": old, "text": "Открытый люк у остановки на Кирова"},
        {"batch_id": old, "text": "Яма на дороге у моста"},
    )
    code = main(["route", "--url", url, "--now", NOW.isoformat(), "--json"])
    assert code == 0 and json.loads(capsys.readouterr().out)["historical"] == 2
    code = main(["case", "list", "--url", url, "--historical", "--json"])
    listed = json.loads(capsys.readouterr().out)
    assert code == 0 and {r["id"] for r in listed} == {case_of(engine, hazard).id, case_of(engine, road).id}
    assert main(["case", "list", "--url", url, "--live", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []

    hazard_case = case_of(engine, hazard).id
    assert escalate(engine, now=NOW + timedelta(days=3)).escalated == 0
    reopened_at = NOW + timedelta(days=3, hours=1)
    reopen_historical(engine, hazard_case, "operator:ivanova", at=reopened_at)
    case = case_of(engine, hazard)
    assert not case.historical and case.operator_touched and utc(case.registered_at) == reopened_at
    assert utc(case.first_response_due) > reopened_at
    assert notifications(engine, hazard_case) == 2, "a live hazard is e-mailed at once"
    assert escalate(engine, now=reopened_at + timedelta(minutes=5)).by_level == {1: 1}
    with pytest.raises(CaseError, match="already live"):
        reopen_historical(engine, hazard_case, "operator:ivanova", at=reopened_at)
    # the command: a historical road case becomes live; deadlines from now
    road_case = case_of(engine, road).id
    code = main(["case", "reopen", str(road_case), "--url", url, "--actor", "op:k", "--json"])
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and result["historical"] is False and result["id"] == road_case
    code = main(["case", "reopen", str(road_case), "--url", url])
    assert code == 1 and "already live" in capsys.readouterr().err


def test_route_command_window_end_option(engine: Engine, make_posts, capsys) -> None:
    url = engine.url.render_as_string(hide_password=False)
    make_posts({"text": "Не горят фонари на Садовой", "published_at": NOW - timedelta(hours=1)})
    argv = ["route", "--url", url, "--now", NOW.isoformat(), "--json"]
    code = main([*argv, "--window-end", (NOW - timedelta(days=10)).isoformat()])
    assert code == 0 and json.loads(capsys.readouterr().out)["historical"] == 1
    assert main([*argv, "--live-horizon-hours", "-1"]) == 1


def test_live_horizon_setting() -> None:
    assert Settings.from_env({}).live_horizon == timedelta(hours=72)
    assert Settings.from_env({"INCIDENTS_LIVE_HORIZON_HOURS": "12.5"}).live_horizon == timedelta(hours=12.5)
    with pytest.raises(ValueError, match="INCIDENTS_LIVE_HORIZON_HOURS"):
        Settings.from_env({"INCIDENTS_LIVE_HORIZON_HOURS": "three days"})
    with pytest.raises(ValueError, match="negative"):
        Settings.from_env({"INCIDENTS_LIVE_HORIZON_HOURS": "-1"})


def test_status_at_records_an_answer_given_outside_the_system(engine: Engine, make_posts, capsys) -> None:
    url = engine.url.render_as_string(hide_password=False)
    (pid,) = make_posts({"text": "Нет освещения во дворе на Труда"})
    route_posts(engine, now=NOW)
    case_id = str(case_of(engine, pid).id)
    answered = BASE_TIME + timedelta(hours=5)
    code = main(
        ["case", "status", case_id, "in_progress", "--url", url, "--at", answered.isoformat(), "--json"]
    )
    assert code == 0 and json.loads(capsys.readouterr().out)["status"] == "in_progress"
    assert utc(case_of(engine, pid).first_response_at) == answered
    # never before the report, never in the future
    code = main(
        ["case", "status", case_id, "resolved", "--url", url, "--at", BASE_TIME.replace(hour=1).isoformat()]
    )
    assert code == 1 and "before the case was reported" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["case", "status", case_id, "resolved", "--url", url, "--at", "2999-01-01T00:00:00Z"])
    assert "lies in the future" in capsys.readouterr().err
