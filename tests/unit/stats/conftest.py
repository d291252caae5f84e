"""A small fixed set of posts and cases around January 2019 (Kirov = UTC+3), for hand-computed figures.

January 2019 in Kirov is [2018-12-31 21:00Z, 2019-01-31 21:00Z).

Posts (network, municipality, category, topic, incident?, published UTC → Kirov month, source):
  P1 vk        33602 roads       roads_potholes            yes 2019-01-10 10:00 → Jan  vk:src1
  P2 vk        33602 roads       roads_potholes            yes 2019-01-31 20:59 → Jan  vk:src1
  P3 ok        33603 housing     housing_heating           yes 2019-01-31 22:30 → Feb  ok:src2
  P4 ok        33603 housing     housing_heating           yes 2018-12-31 21:30 → Jan  ok:src2
  P5 twitter   -     -           -                         no  2019-01-15 12:00 → Jan  twitter:src3
  P6 vk        33603 -           -                         no  2019-01-20 00:00 → Jan  vk:src1
  P7 vk        33602 roads       roads_potholes            yes 2018-12-31 20:59 → Dec  vk:src1
  P8 facebook  33602 improvement improvement_open_manhole  yes 2019-01-05 00:00 → Jan  facebook:src4
  P9 ok        33602 roads       roads_snow_clearing       yes 2019-02-10 00:00 → Feb  ok:src2

Cases (origin post, municipality, category, executor, status; times UTC):
  C1 P1 33602 roads       adm_33602   resolved    opened 01-10 11:00, 1st resp 01-10 15:00 (4 h),
                                                  resolved 01-12 11:00 (48 h), due 01-20 → on time
  C2 P2 33602 roads       adm_33602   resolved    opened 01-31 20:59:30 (Jan), 1st resp 02-01 10:00 (Feb),
                                                  resolved 02-05 (Feb), due 02-10
  C3 P4 33603 housing     adm_33603   in_progress opened 2018-12-31 22:00 (Jan), 1st resp 01-01 08:00 (10 h),
                                                  due 01-15 → open and overdue at the end of January
  C4 P8 33602 improvement min_housing resolved    hazard open_manhole, opened 01-05 01:00, 1st resp 03:00 (2 h),
                                                  resolved 01-06 01:00 (24 h), due 01-05 13:00 → late
  C5 P7 33602 roads       adm_33602   resolved    opened 2018-12-31 20:30 (Dec), 1st resp 21:30 (Jan, 1 h),
                                                  resolved 01-20 20:30 (Jan, 480 h), due 01-25 → on time
  C6 P6 33603 housing     adm_33603   rejected    opened 01-20 01:00, 1st resp 07:00 (6 h), updated 01-21
  C7 -  33603 housing     adm_33603   assigned    opened 2018-11-10, due 2018-12-01, no posts → open overdue
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, insert

from incidents.db.models import Case, CasePost, Post


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


POSTS = [
    # id, network, municipality, category, topic, incident, published_at, source
    (1, "vk", "33602", "roads", "roads_potholes", True, utc(2019, 1, 10, 10), "src1"),
    (2, "vk", "33602", "roads", "roads_potholes", True, utc(2019, 1, 31, 20, 59), "src1"),
    (3, "ok", "33603", "housing", "housing_heating", True, utc(2019, 1, 31, 22, 30), "src2"),
    (4, "ok", "33603", "housing", "housing_heating", True, utc(2018, 12, 31, 21, 30), "src2"),
    (5, "twitter", None, None, None, False, utc(2019, 1, 15, 12), "src3"),
    (6, "vk", "33603", None, None, False, utc(2019, 1, 20), "src1"),
    (7, "vk", "33602", "roads", "roads_potholes", True, utc(2018, 12, 31, 20, 59), "src1"),
    (8, "facebook", "33602", "improvement", "improvement_open_manhole", True, utc(2019, 1, 5), "src4"),
    (9, "ok", "33602", "roads", "roads_snow_clearing", True, utc(2019, 2, 10), "src2"),
]

CASES = [
    dict(
        id=1,
        category="roads",
        topic="roads_potholes",
        municipality_code="33602",
        settlement_oktmo="33602151051",
        executor_code="adm_33602",
        status="resolved",
        opened_at=utc(2019, 1, 10, 11),
        first_response_at=utc(2019, 1, 10, 15),
        resolved_at=utc(2019, 1, 12, 11),
        resolution_due=utc(2019, 1, 20),
        summary="Яма на дороге",
    ),
    dict(
        id=2,
        category="roads",
        topic="roads_potholes",
        municipality_code="33602",
        executor_code="adm_33602",
        status="resolved",
        opened_at=utc(2019, 1, 31, 20, 59, 30),
        first_response_at=utc(2019, 2, 1, 10),
        resolved_at=utc(2019, 2, 5),
        resolution_due=utc(2019, 2, 10),
        summary="Ещё яма",
    ),
    dict(
        id=3,
        category="housing",
        topic="housing_heating",
        municipality_code="33603",
        settlement_oktmo=None,
        executor_code="adm_33603",
        status="in_progress",
        opened_at=utc(2018, 12, 31, 22),
        first_response_at=utc(2019, 1, 1, 8),
        resolution_due=utc(2019, 1, 15),
        summary="Холодные батареи",
    ),
    dict(
        id=4,
        category="improvement",
        topic="improvement_open_manhole",
        municipality_code="33602",
        executor_code="min_housing",
        status="resolved",
        priority="critical",
        hazard_type="open_manhole",
        special_control=True,
        opened_at=utc(2019, 1, 5, 1),
        first_response_at=utc(2019, 1, 5, 3),
        resolved_at=utc(2019, 1, 6, 1),
        resolution_due=utc(2019, 1, 5, 13),
        summary="Открытый люк у школы",
    ),
    dict(
        id=5,
        category="roads",
        topic="roads_potholes",
        municipality_code="33602",
        executor_code="adm_33602",
        status="resolved",
        opened_at=utc(2018, 12, 31, 20, 30),
        first_response_at=utc(2018, 12, 31, 21, 30),
        resolved_at=utc(2019, 1, 20, 20, 30),
        resolution_due=utc(2019, 1, 25),
        summary="Разбитая дорога",
    ),
    dict(
        id=6,
        category="housing",
        topic=None,
        municipality_code="33603",
        executor_code="adm_33603",
        status="rejected",
        rejection_reason="not_incident",
        opened_at=utc(2019, 1, 20, 1),
        first_response_at=utc(2019, 1, 20, 7),
        updated_at=utc(2019, 1, 21),
        resolution_due=utc(2019, 2, 20),
        summary="Не инцидент",
    ),
    dict(
        id=7,
        category="housing",
        topic="housing_heating",
        municipality_code="33603",
        executor_code="adm_33603",
        status="assigned",
        opened_at=utc(2018, 11, 10),
        resolution_due=utc(2018, 12, 1),
        summary="Старая просрочка",
    ),
]

LINKS = [(1, 1), (2, 2), (3, 4), (4, 8), (5, 7), (6, 6)]
"""(case id, post id) origin links."""


def insert_dataset(engine: Engine) -> None:
    """Insert the posts, cases and links above."""
    posts = [
        {
            "id": pid,
            "network": net,
            "external_id": f"{net}-{pid}",
            "source_id": source,
            "author_pseudonym": f"a{pid}",
            "published_at": published,
            "collected_at": published,
            "text": f"post {pid}",
            "url": f"https://example.org/{net}/{pid}",
            "geo_lat": 58.6 if pid == 8 else None,
            "geo_lon": 49.6 if pid == 8 else None,
            "is_incident": incident,
            "category": category,
            "topic": topic,
            "hazard": pid == 8,
            "hazard_type": "open_manhole" if pid == 8 else None,
            "municipality_code": mun,
        }
        for pid, net, mun, category, topic, incident, published, source in POSTS
    ]
    cases = [{"updated_at": None, **c} for c in CASES]
    links = [{"case_id": c, "post_id": p, "link": "origin", "linked_at": utc(2019, 1, 1)} for c, p in LINKS]
    with engine.begin() as conn:
        conn.execute(insert(Post), posts)
        for c in cases:
            conn.execute(insert(Case).values(**c))
        conn.execute(insert(CasePost), links)
    if engine.dialect.name == "postgresql":  # explicit ids: move the sequences past them
        with engine.begin() as conn:
            for table in ("posts", "cases", "case_posts"):
                conn.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT MAX(id) FROM {table}))"
                )


@pytest.fixture
def dataset(engine: Engine) -> Engine:
    """The engine with the fixed dataset inserted."""
    insert_dataset(engine)
    return engine
