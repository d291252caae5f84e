"""Routing of incident posts into cases: executors, hazards, duplicates, reruns, reprocessing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from cases_helpers import BASE_TIME, add_posts, clear, post_row, run_concurrently
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from incidents import CATEGORIES
from incidents.cases.create import split
from incidents.cases.deadlines import as_utc
from incidents.cases.lifecycle import transition
from incidents.cases.routing import route_posts
from incidents.db.models import (
    Case,
    CaseEvent,
    CasePost,
    Municipality,
    Notification,
    Post,
    Quarantine,
    RoutingRule,
)
from incidents.reference import administration_code


def case_of(engine: Engine, post_id: int) -> Case:
    with Session(engine) as s:
        return s.execute(
            select(Case).join(CasePost, CasePost.case_id == Case.id).where(CasePost.post_id == post_id)
        ).scalar_one()


def count(engine: Engine, model) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(model)).scalar_one()


def test_every_category_in_every_municipality_gets_an_executor(engine: Engine) -> None:
    with engine.connect() as conn:
        municipalities = list(conn.execute(select(Municipality.code)).scalars())
        defaults = dict(
            conn.execute(
                select(RoutingRule.category_slug, RoutingRule.executor_code).where(
                    RoutingRule.topic_slug == "*", RoutingRule.municipality_code == "*"
                )
            ).all()
        )
    assert len(municipalities) == 49
    rows, expected = [], []
    for m in municipalities:
        for c in CATEGORIES:
            rows.append(
                post_row(category=c, municipality_code=m, text=f"Обращение {c} {m}: проблема {len(rows)}")
            )
            local = c in ("improvement", "waste")
            expected.append(administration_code(m) if local else defaults[c])
    ids = add_posts(engine, rows)
    summary = route_posts(engine, now=BASE_TIME)
    assert summary.opened == len(rows) == 49 * 12 and summary.joined == 0 and summary.quarantined == 0
    with engine.connect() as conn:
        got = dict(
            conn.execute(
                select(CasePost.post_id, Case.executor_code).join(Case, Case.id == CasePost.case_id)
            ).all()
        )
    assert [got[i] for i in ids] == expected
    # a rerun finds nothing left
    again = route_posts(engine, now=BASE_TIME)
    assert again.selected == 0 and count(engine, Case) == 49 * 12


def test_rule_precedence_topic_beats_municipality_default(engine: Engine, make_posts) -> None:
    fees, lighting, pothole = make_posts(
        {
            "category": "waste",
            "topic": "waste_fees",
            "municipality_code": "33602",
            "text": "Платёж за вывоз мусора",
        },
        {
            "category": "roads",
            "topic": "roads_lighting",
            "municipality_code": "33602",
            "text": "Не горят фонари",
        },
        {"category": "roads", "topic": None, "municipality_code": None, "text": "Ямы на трассе"},
    )
    route_posts(engine, now=BASE_TIME)
    assert case_of(engine, fees).executor_code == "min_ecology"  # (waste, fees, *) over (waste, *, 33602)
    assert case_of(engine, lighting).executor_code == "adm_33602"  # (roads, lighting, 33602)
    c = case_of(engine, pothole)
    assert c.executor_code == "min_transport" and c.municipality_code is None


def test_hazard_opens_special_control_case_and_notifies(engine: Engine, make_posts) -> None:
    text = "Открытый люк во дворе дома 5 на улице Ленина, дети рядом! " + "подробности " * 40
    (pid,) = make_posts(
        {
            "category": "improvement",
            "topic": "improvement_open_manhole",
            "hazard": True,
            "hazard_type": "open_manhole",
            "municipality_code": "33602",
            "text": text,
        }
    )
    summary = route_posts(engine, now=BASE_TIME + timedelta(minutes=5))
    assert summary.opened == 1 and summary.notifications == 2
    case = case_of(engine, pid)
    assert case.priority == "critical" and case.special_control and case.hazard_type == "open_manhole"
    assert case.status == "assigned" and case.executor_code == "adm_33602"
    assert case.summary == text.strip()[:300] and len(case.summary) == 300
    assert case.first_response_due is not None and case.resolution_due is not None
    # hazards run on calendar hours
    opened = case.opened_at if case.opened_at.tzinfo else case.opened_at.replace(tzinfo=BASE_TIME.tzinfo)
    assert opened == BASE_TIME
    with Session(engine) as s:
        notes = s.execute(select(Notification).order_by(Notification.recipient)).scalars().all()
        events = s.execute(select(CaseEvent.kind, CaseEvent.idempotency_key, CaseEvent.actor)).all()
    assert {n.idempotency_key for n in notes} == {
        f"notify:{case.id}:opened:adm_33602",
        f"notify:{case.id}:opened:duty_officer",
    }
    assert {n.recipient for n in notes} >= {"duty@kirov-region.example.org"}
    subject = notes[0].subject
    assert (
        subject.startswith("[ОСОБЫЙ КОНТРОЛЬ]") and f"случай #{case.id}" in subject and "Арбажский" in subject
    )
    assert "https://vk.com/wall" in notes[0].body and "(Киров)" in notes[0].body
    assert sorted((k, key) for k, key, _a in events) == [
        ("assigned", f"assign:{pid}"),
        ("opened", f"open:{pid}"),
    ]
    assert all(actor == "pipeline" for *_x, actor in events)
    # an ordinary priority topic is "high", not special
    (p2,) = make_posts(
        {"category": "roads", "topic": "roads_snow_clearing", "text": "Не чистят снег на дороге"}
    )
    route_posts(engine, now=BASE_TIME)
    c2 = case_of(engine, p2)
    assert c2.priority == "high" and not c2.special_control and count(engine, Notification) == 2


def test_a_hazard_filed_under_an_ordinary_topic_keeps_its_types_hours(engine: Engine, make_posts) -> None:
    """A pit in a yard filed under improvement (the body that must fix it) is still a hazard: special
    control and the deadlines of its type (roads_pit: 2 and 24 calendar hours), not the topic's
    working days; the same post without the hazard gets the topic's."""
    base = dict(category="improvement", topic="improvement_yard_potholes", municipality_code="33602")
    hazard, ordinary = make_posts(
        {**base, "hazard": True, "hazard_type": "pit", "text": "Во дворе дома 7 провал, дети бегают рядом"},
        {**base, "hazard": False, "network": "ok", "text": "Во дворе дома 12 яма, ездить неудобно"},
    )
    route_posts(engine, now=BASE_TIME + timedelta(minutes=5))
    case = case_of(engine, hazard)
    assert case.special_control and case.hazard_type == "pit" and case.topic == "improvement_yard_potholes"
    opened = as_utc(case.registered_at)
    assert as_utc(case.first_response_due) == opened + timedelta(hours=2)
    assert as_utc(case.resolution_due) == opened + timedelta(hours=24)
    plain = case_of(engine, ordinary)
    assert not plain.special_control and as_utc(plain.resolution_due) > opened + timedelta(days=7)


def test_same_incident_from_three_networks_is_one_case(engine: Engine, make_posts) -> None:
    base = dict(
        category="roads", topic="roads_pit", municipality_code="33602", settlement_oktmo="33602151051"
    )
    ids = make_posts(
        {
            **base,
            "network": "vk",
            "published_at": BASE_TIME,
            "text": "Огромная яма на улице Советской возле школы, машины бьют колёса!",
        },
        {
            **base,
            "network": "ok",
            "published_at": BASE_TIME + timedelta(hours=2),
            "text": "огромная яма на ул. Советской возле школы, машины бьют колеса",
        },
        {
            **base,
            "network": "twitter",
            "published_at": BASE_TIME + timedelta(hours=5),
            "text": "Огромная яма на Советской возле школы — машины бьют колёса #Арбаж https://t.co/x",
        },
        {
            **base,
            "network": "facebook",
            "published_at": BASE_TIME + timedelta(hours=6),
            "text": "Огромная яма на улице Советской возле школы, машины бьют колёса!",
        },
        # the same place but a different problem, a different category: a case of its own
        {
            **base,
            "category": "transport",
            "topic": None,
            "network": "vk",
            "published_at": BASE_TIME + timedelta(hours=1),
            "text": "Автобус номер 3 не ходит уже неделю",
        },
    )
    summary = route_posts(engine, now=BASE_TIME + timedelta(hours=7))
    assert summary.opened == 2 and summary.joined == 3
    cases = {case_of(engine, i).id for i in ids[:4]}
    assert len(cases) == 1 and case_of(engine, ids[4]).id not in cases
    with Session(engine) as s:
        links = dict(s.execute(select(CasePost.post_id, CasePost.link)).all())
        merged = s.execute(select(CaseEvent).where(CaseEvent.kind == "merged")).scalars().all()
    assert links[ids[0]] == "origin" and links[ids[3]] == "exact"
    assert links[ids[1]] in ("exact", "near_duplicate") and links[ids[2]] == "near_duplicate"
    assert len(merged) == 3 and all(e.details["score"] >= 60 and e.details["method"] for e in merged)


def test_posts_routed_in_separate_runs_join_existing_case(engine: Engine, make_posts) -> None:
    base = dict(category="power", municipality_code="33603")
    (first,) = make_posts({**base, "text": "В селе Пашино нет света со вчерашнего вечера, оборван провод"})
    route_posts(engine, now=BASE_TIME)
    (second,) = make_posts(
        {
            **base,
            "network": "ok",
            "published_at": BASE_TIME + timedelta(days=1),
            "text": "В селе Пашино нет света со вчерашнего вечера! Оборван провод",
        }
    )
    (late,) = make_posts(
        {
            **base,
            "network": "ok",
            "published_at": BASE_TIME + timedelta(days=9),
            "text": "В селе Пашино нет света со вчерашнего вечера, оборван провод",
        }
    )
    summary = route_posts(engine, now=BASE_TIME + timedelta(days=9))
    assert case_of(engine, second).id == case_of(engine, first).id  # near duplicate within 7 days
    assert case_of(engine, late).id != case_of(engine, first).id  # outside the window: a new case
    assert summary.joined == 1 and summary.opened == 1


def test_comment_joins_the_case_of_its_post(engine: Engine, make_posts) -> None:
    parent, comment, orphan = make_posts(
        {"external_id": "-5_100", "text": "Мусор не вывозят две недели", "category": "waste"},
        {
            "external_id": "-5_100_7",
            "kind": "comment",
            "parent_external_id": "-5_100",
            "category": "housing",
            "text": "У нас во дворе то же самое, и подъезд не убирают",
        },
        {
            "external_id": "-5_200_1",
            "kind": "comment",
            "parent_external_id": "-5_200",
            "category": "housing",
            "text": "Протекает крыша в доме",
        },
    )
    route_posts(engine, now=BASE_TIME)
    assert case_of(engine, comment).id == case_of(engine, parent).id
    assert case_of(engine, orphan).id != case_of(engine, parent).id
    with engine.connect() as conn:
        assert (
            conn.execute(select(CasePost.link).where(CasePost.post_id == comment)).scalar_one() == "comment"
        )


def test_bad_labels_go_to_quarantine(engine: Engine, make_posts) -> None:
    bad_cat, bad_topic, wrong_pair, bad_mun, fine = make_posts(
        {"category": "weather"},
        {"topic": "no_such_topic"},
        {"category": "roads", "topic": "housing_gas_smell"},
        {"municipality_code": "99999"},
        {},
    )
    summary = route_posts(engine, now=BASE_TIME)
    assert summary.quarantined == 4 and summary.opened == 1
    with engine.connect() as conn:
        reasons = dict(conn.execute(select(Quarantine.external_id, Quarantine.reason)).all())
        ext = dict(conn.execute(select(Post.id, Post.external_id)).all())
    assert "unknown category 'weather'" in reasons[ext[bad_cat]]
    assert "unknown topic" in reasons[ext[bad_topic]]
    assert "belongs to category 'housing'" in reasons[ext[wrong_pair]]
    assert "unknown municipality" in reasons[ext[bad_mun]]
    # rerun: nothing duplicated in quarantine
    route_posts(engine, now=BASE_TIME)
    assert count(engine, Quarantine) == 4 and count(engine, Case) == 1


def test_split_moves_post_and_repost_never_rejoins(engine: Engine, make_posts) -> None:
    base = dict(category="roads", municipality_code="33602")
    a, b = make_posts(
        {**base, "text": "Яма на улице Мира напротив магазина, глубокая и опасная"},
        {
            **base,
            "network": "ok",
            "published_at": BASE_TIME + timedelta(hours=1),
            "text": "Яма на улице Мира напротив магазина глубокая и опасная",
        },
    )
    route_posts(engine, now=BASE_TIME)
    old = case_of(engine, a).id
    assert case_of(engine, b).id == old
    new = split(engine, old, b, actor="operator:ivanova")
    assert case_of(engine, b).id == new != old
    with Session(engine) as s:
        assert s.get(Case, old).operator_touched and s.get(Case, new).operator_touched
        kinds = s.execute(select(CaseEvent.case_id, CaseEvent.kind).where(CaseEvent.kind == "split")).all()
    assert sorted(kinds) == sorted([(old, "split"), (new, "split")])
    # a repost of the split text in another network goes to the new case, not back to the old one
    (repost,) = make_posts(
        {
            **base,
            "network": "instagram",
            "published_at": BASE_TIME + timedelta(hours=2),
            "text": "Яма на улице Мира напротив магазина глубокая и опасная",
        }
    )
    route_posts(engine, now=BASE_TIME)
    assert case_of(engine, repost).id == new
    with pytest.raises(ValueError, match="only post"):
        split(engine, old, a, actor="operator:ivanova")


def test_operator_status_survives_reprocessing(engine: Engine, make_posts) -> None:
    touched_post, untouched_post = make_posts(
        {"category": "roads", "text": "Разбита дорога на Ленина"},
        {"category": "roads", "municipality_code": "33603", "text": "Нет освещения на остановке"},
    )
    route_posts(engine, now=BASE_TIME)
    touched, untouched = case_of(engine, touched_post).id, case_of(engine, untouched_post).id
    with Session(engine) as s:
        transition(s, touched, "in_progress", actor="operator:petrov")
        s.commit()
    # a backfill with a newer classifier relabels both posts
    with engine.begin() as conn:
        conn.execute(
            Post.__table__.update().values(classifier_version="v2", category="improvement", topic=None)
        )
    summary = route_posts(engine, now=BASE_TIME + timedelta(days=1))
    assert summary.relabelled == 1 and summary.suggestions == 1
    with Session(engine) as s:
        t, u = s.get(Case, touched), s.get(Case, untouched)
        assert t.status == "in_progress" and t.category == "roads" and t.executor_code == "min_transport"
        assert t.suggestion["category"] == "improvement" and t.suggestion["classifier_version"] == "v2"
        assert u.category == "improvement" and u.executor_code == "adm_33603" and u.classifier_version == "v2"
        kinds = dict(
            s.execute(
                select(CaseEvent.case_id, CaseEvent.kind).where(
                    CaseEvent.kind.in_(("suggestion", "relabelled"))
                )
            ).all()
        )
    assert kinds == {touched: "suggestion", untouched: "relabelled"}
    again = route_posts(engine, now=BASE_TIME + timedelta(days=2))
    assert again.relabelled == 0 and again.suggestions == 0


def test_concurrent_routing_runs_open_one_case_per_post(engine: Engine) -> None:
    """Two routing runs at once (PostgreSQL: advisory lock; SQLite: BEGIN IMMEDIATE)."""
    pg_engine = engine  # the name of the database under test below
    try:
        rows = [
            post_row(category=c, municipality_code=m, text=f"Проблема {c} {m} {i}")
            for i, (c, m) in enumerate((c, m) for c in CATEGORIES for m in ("33602", "33603", "33605"))
        ]
        rows += [
            post_row(
                category="roads", municipality_code="33606", text="Яма у школы на Садовой улице", network=n
            )
            for n in ("vk", "ok", "twitter")
        ]
        ids = add_posts(pg_engine, rows)
        results = run_concurrently(2, lambda: route_posts(pg_engine, now=BASE_TIME, chunk_size=7))
        with pg_engine.connect() as conn:
            linked = conn.execute(select(func.count(CasePost.post_id.distinct()))).scalar_one()
            links = conn.execute(select(func.count()).select_from(CasePost)).scalar_one()
            cases = conn.execute(select(func.count()).select_from(Case)).scalar_one()
            opened = conn.execute(
                select(func.count()).select_from(CaseEvent).where(CaseEvent.kind == "opened")
            ).scalar_one()
        assert linked == links == len(ids)
        assert cases == len(ids) - 2 == opened
        assert sum(r.opened for r in results) == cases and sum(r.joined for r in results) == 2
    finally:
        clear(pg_engine)


def test_same_text_in_other_places_opens_separate_cases(engine: Engine, make_posts) -> None:
    a, b, c = make_posts(
        {"category": "power", "municipality_code": "33602", "text": "Нет света!"},
        {"category": "power", "municipality_code": "33603", "text": "Нет света!"},
        {
            "category": "power",
            "municipality_code": "33605",
            "settlement_oktmo": "33605101001",
            "text": "Нет света в Пашино с утра, когда дадут?",
        },
    )
    (d,) = make_posts(
        {
            "category": "power",
            "municipality_code": "33605",
            "settlement_oktmo": "33605101002",
            "text": "Нет света в Пашино с утра, когда дадут?",
        }
    )
    route_posts(engine, now=BASE_TIME)
    assert len({case_of(engine, i).id for i in (a, b, c, d)}) == 4


def test_hazard_post_raises_an_ordinary_case_to_special_control(engine: Engine, make_posts) -> None:
    base = dict(category="roads", municipality_code="33602", settlement_oktmo="33602151051")
    (first,) = make_posts(
        {
            **base,
            "topic": None,
            "hazard": False,
            "text": "Большая яма на дороге у моста на улице Заречной",
        }
    )
    route_posts(engine, now=BASE_TIME)
    ordinary = case_of(engine, first)
    assert not ordinary.special_control
    assert as_utc(ordinary.resolution_due) > BASE_TIME + timedelta(days=20)  # 30 working days
    (second,) = make_posts(
        {
            **base,
            "topic": "roads_pit",
            "hazard": True,
            "hazard_type": "pit",
            "published_at": BASE_TIME + timedelta(hours=3),
            "network": "ok",
            "text": "Большая яма на дороге у моста на улице Заречной, ограждения нет!",
        }
    )
    summary = route_posts(engine, now=BASE_TIME + timedelta(hours=3))
    case = case_of(engine, second)
    assert case.id == case_of(engine, first).id and summary.joined == 1
    assert case.special_control and case.priority == "critical" and case.hazard_type == "pit"
    # the hazard's deadlines (roads_pit: 2 and 24 calendar hours) from the hazard post on
    joined_at = BASE_TIME + timedelta(hours=3)
    assert as_utc(case.first_response_due) == joined_at + timedelta(hours=2)
    assert as_utc(case.resolution_due) == joined_at + timedelta(hours=24)
    assert summary.notifications == 2
    with engine.connect() as conn:
        keys = set(
            conn.execute(select(CaseEvent.idempotency_key).where(CaseEvent.kind == "relabelled")).scalars()
        )
    assert keys == {f"hazard:{case.id}:{second}"}


def test_stored_place_key_decides_without_reading_the_text_again(engine: Engine, make_posts) -> None:
    """``posts.place_key`` (written by the analysis) is what routing compares: two differently
    worded posts with one key join one case, a near duplicate with another key stays apart.
    (Posts without a stored key, NULL, get theirs from the text: every other test here.)"""
    kirov = dict(category="improvement", topic=None, municipality_code="33701-leninsky")
    ids = make_posts(
        {**kirov, "text": "Сухое дерево вот-вот упадёт на детскую площадку", "place_key": "kirov-x"},
        {
            **kirov,
            "network": "ok",
            "published_at": BASE_TIME + timedelta(hours=3),
            "text": "Во дворе упала большая ветка, никто не убирает",
            "place_key": "kirov-x",
        },
        {
            **kirov,
            "network": "twitter",
            "published_at": BASE_TIME + timedelta(hours=4),
            "text": "Во дворе упала большая ветка, никто не убирает уже неделю",
            "place_key": "kirov-y",
        },
    )
    route_posts(engine, now=BASE_TIME + timedelta(hours=6))
    first, keyed, other_key = (case_of(engine, i).id for i in ids)
    assert keyed == first, "the same stored place key joins, whatever the wording"
    assert other_key != first, "a different stored place key never joins"
