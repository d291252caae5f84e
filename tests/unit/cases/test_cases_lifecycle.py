"""Case lifecycle: transitions, assignment, merges, the audit trail."""

from __future__ import annotations

from datetime import timedelta

import pytest
from cases_helpers import BASE_TIME
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from incidents.cases.lifecycle import (
    CaseError,
    InvalidTransition,
    assign,
    merge_cases,
    respond,
    transition,
)
from incidents.cases.routing import route_posts
from incidents.db.models import Case, CaseEvent, CasePost


def _route(engine: Engine, make_posts, *rows) -> list[int]:
    ids = make_posts(*rows)
    route_posts(engine, now=BASE_TIME)
    with engine.connect() as conn:
        links = dict(conn.execute(select(CasePost.post_id, CasePost.case_id)).all())
    return [links[i] for i in ids]


def test_full_lifecycle_with_audit_trail(engine: Engine, make_posts) -> None:
    (case_id,) = _route(engine, make_posts, {"text": "Яма на Ленина"})
    t1, t2, t3 = (BASE_TIME + timedelta(hours=h) for h in (1, 2, 3))
    with Session(engine, expire_on_commit=False) as s:
        case = transition(s, case_id, "in_progress", actor="operator:ivanova", at=t1)
        assert case.first_response_at == t1 and case.operator_touched
        case = transition(s, case_id, "resolved", actor="executor:adm", at=t2)
        assert case.resolved_at == t2
        case = transition(s, case_id, "in_progress", actor="operator:ivanova", at=t3)  # reopen
        assert case.resolved_at is None and case.first_response_at == t1
        s.commit()
        events = s.execute(
            select(CaseEvent.kind, CaseEvent.from_status, CaseEvent.to_status, CaseEvent.actor)
            .where(CaseEvent.case_id == case_id)
            .order_by(CaseEvent.id)
        ).all()
    assert [tuple(e) for e in events[-3:]] == [
        ("status", "assigned", "in_progress", "operator:ivanova"),
        ("status", "in_progress", "resolved", "executor:adm"),
        ("reopened", "resolved", "in_progress", "operator:ivanova"),
    ]


def test_invalid_transitions_raise_clear_errors(engine: Engine, make_posts) -> None:
    (case_id,) = _route(engine, make_posts, {"text": "Яма на Мира"})
    with Session(engine) as s:
        with pytest.raises(InvalidTransition, match="assigned → resolved is not allowed"):
            transition(s, case_id, "resolved", actor="op")
        with pytest.raises(InvalidTransition, match="needs a reason"):
            transition(s, case_id, "rejected", actor="op")
        with pytest.raises(InvalidTransition, match="unknown status"):
            transition(s, case_id, "done", actor="op")
        with pytest.raises(CaseError, match="does not exist"):
            transition(s, 987654, "in_progress", actor="op")
        case = transition(s, case_id, "rejected", actor="op", reason="not_our_competence")
        assert case.rejection_reason == "not_our_competence"
        with pytest.raises(InvalidTransition):
            transition(s, case_id, "resolved", actor="op")


def test_pipeline_actor_does_not_mark_touched_and_respond(engine: Engine, make_posts) -> None:
    (case_id,) = _route(engine, make_posts, {"text": "Не вывозят мусор"})
    with Session(engine) as s:
        case = respond(s, case_id, actor="pipeline", at=BASE_TIME)
        assert case.first_response_at == BASE_TIME and not case.operator_touched
        respond(s, case_id, actor="pipeline", at=BASE_TIME + timedelta(hours=1))
        assert case.first_response_at == BASE_TIME
        s.commit()


def test_assign_and_merge(engine: Engine, make_posts) -> None:
    target, source = _route(
        engine,
        make_posts,
        {"text": "Не горят фонари на улице Кирова", "category": "roads"},
        {
            "text": "Сломан светофор на перекрёстке",
            "category": "roads",
            "municipality_code": "33603",
            "topic": "roads_pit",
            "hazard": True,
        },
    )
    with Session(engine) as s:
        with pytest.raises(CaseError, match="executor 'nobody'"):
            assign(s, target, "nobody", actor="op")
        case = assign(s, target, "min_housing", actor="operator:ivanova")
        assert case.executor_code == "min_housing" and case.operator_touched
        merged = merge_cases(s, target, source, actor="operator:ivanova")
        assert merged.special_control and merged.priority == "critical"
        s.commit()
        src = s.get(Case, source)
        assert src.status == "rejected" and src.rejection_reason == "duplicate"
        posts = s.execute(select(CasePost.case_id, CasePost.link)).all()
        assert {c for c, _l in posts} == {target}
        with pytest.raises(CaseError, match="into itself"):
            merge_cases(s, target, target, actor="op")
        with pytest.raises(InvalidTransition, match="only open cases"):
            merge_cases(s, target, source, actor="op")
