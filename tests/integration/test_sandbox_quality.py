"""Quality floors of place resolution and duplicate merge on the sandbox's realistic stream.

The sandbox ground truth of a few days is analysed in-process (the analyzer plus the source
fallback, exactly as processing does), written as analysed posts and routed; the result is
compared with the truth's ``incident_key`` and ``municipality``. Validation and HTTP are skipped
(they are covered by ``test_pipeline_stages``), so this runs in seconds per backend.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select

from incidents.analysis.classifier import default_analyzer, with_fallback
from incidents.cases.routing import route_posts
from incidents.db.models import CasePost, Post
from incidents.sources import source_index
from incidents_dev.sandbox.generator import ground_truth

pytestmark = pytest.mark.slow

START = datetime(2026, 10, 19, tzinfo=UTC)
END = START + timedelta(days=3)
NOW = END + timedelta(days=3)
RATE = 8.0

MERGE_FLOOR = 0.55
"""Measured 5 of 9 with the hybrid analyser, 6 of 9 with the rules before it (2026-10-19..22):
posts naming no place, or an ambiguous village, or labelled with different categories, are not
merged. Nine incidents make a coarse measure: a guard against losing merging, not a target."""
"""Share of incidents with ≥2 routed posts whose posts all end in one case (measured 5 of 6)."""
FALSE_MERGE_CEILING = 0.03  # measured 2 of 93 cases (2026-10-19..22)
"""Share of cases holding posts of more than one incident (measured 2 of 157: a comment joining
its parent post's case, two dumps in one town)."""
MUNICIPALITY_FLOOR = 0.85
"""Municipality accuracy of incident posts after the source fallback: measured 93 of 106 (0.877)
with the hybrid analyser, 0.96 with the rules before it, which were tuned on this world's
templates; the blind set (0.91) is where place quality is judged."""


def _route_truth(engine) -> tuple[list[dict], dict[int, object], dict[int, int]]:
    truth = ground_truth(START, END, now=NOW, rate_per_source_per_day=RATE)
    sources = source_index()
    analyzer = default_analyzer()
    rows, results = [], {}
    for i, t in enumerate(truth, start=1):
        src = sources.get((t["network"], t["source_id"]))
        muni = src.municipality if src else None
        result = with_fallback(analyzer.analyse(t["text"], source_municipality=muni), muni)
        results[i] = result
        rows.append(
            {
                "id": i,
                "network": t["network"],
                "external_id": t["external_id"],
                "kind": t["kind"],
                "parent_external_id": t["parent_external_id"],
                "source_id": t["source_id"],
                "author_pseudonym": "p",
                "published_at": datetime.fromisoformat(t["published_at"].replace("Z", "+00:00")),
                "collected_at": NOW,
                "text": t["text"],
                "is_incident": result.is_incident,
                "category": result.category,
                "topic": result.topic,
                "hazard": result.hazard,
                "hazard_type": result.hazard_type,
                "municipality_code": result.municipality_code,
                "settlement_oktmo": result.settlement_oktmo,
                "classifier_version": "quality-test",
                "analysed_at": NOW,
            }
        )
    with engine.begin() as conn:
        for k in range(0, len(rows), 1000):
            conn.execute(insert(Post), rows[k : k + 1000])
    route_posts(engine, now=NOW, actor="pipeline")
    with engine.connect() as conn:
        links = dict(conn.execute(select(CasePost.post_id, CasePost.case_id)).all())
    return truth, results, links


def test_sandbox_merge_and_place_quality(engine) -> None:
    truth, results, links = _route_truth(engine)

    cases_of: dict[str, set[int]] = defaultdict(set)
    routed: dict[str, int] = defaultdict(int)
    keys_of_case: dict[int, set[str]] = defaultdict(set)
    hazards_of_case: dict[int, set[str]] = defaultdict(set)
    muni_ok = muni_n = 0
    for i, t in enumerate(truth, start=1):
        if not t["is_incident"]:
            continue
        if t["municipality"]:
            muni_n += 1
            muni_ok += results[i].municipality_code == t["municipality"]
        case_id = links.get(i)
        if case_id is None or not t["incident_key"]:
            continue
        cases_of[t["incident_key"]].add(case_id)
        routed[t["incident_key"]] += 1
        keys_of_case[case_id].add(t["incident_key"])
        if t["hazard_type"]:
            hazards_of_case[case_id].add(t["hazard_type"])

    multi = [k for k, n in routed.items() if n > 1]
    assert multi, "the sandbox reports incidents more than once"
    merged = [k for k in multi if len(cases_of[k]) == 1]
    assert len(merged) / len(multi) >= MERGE_FLOOR, (len(merged), len(multi))

    false = [c for c, keys in keys_of_case.items() if len(keys) > 1]
    n_cases = len(set(links.values()))
    assert len(false) / n_cases <= FALSE_MERGE_CEILING, (len(false), n_cases)
    assert not [c for c, types in hazards_of_case.items() if len(types) > 1], "two hazards in one case"

    assert muni_ok / muni_n >= MUNICIPALITY_FLOOR, (muni_ok, muni_n)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (
            "Вчера вечером в районе Кировского цирка на реке промоины, а люди ходят по льду напрямую",
            "срочно!!! у цирка рыбаки выходят на тонкий лед, дети катаются на льду у брега",
        ),
        (
            "на коминтерне сухое дерево вот-вот упадёт на машины — третий день",
            "ОПАСНО!!! В Коминтерне после ветра упала огромная ветка на тротуар. Срочно примите меры",
        ),
    ],
)
def test_same_kirov_place_and_hazard_merge_whatever_the_wording(engine, first: str, second: str) -> None:
    """Known failures of 2026-10-19..22: a landmark and a microdistrict, two wordings, one case."""
    analyzer = default_analyzer()
    rows = []
    for i, (text, source_muni) in enumerate(((first, "33701"), (second, "33701-leninsky")), start=1):
        r = with_fallback(analyzer.analyse(text, source_municipality=source_muni), source_muni)
        assert r.is_incident and r.hazard
        rows.append(
            {
                "id": i,
                "network": "vk",
                "external_id": f"q{i}",
                "kind": "post",
                "source_id": "s",
                "author_pseudonym": "p",
                "published_at": START + timedelta(hours=i),
                "collected_at": NOW,
                "text": text,
                "is_incident": True,
                "category": r.category,
                "topic": r.topic,
                "hazard": r.hazard,
                "hazard_type": r.hazard_type,
                "municipality_code": r.municipality_code,
                "settlement_oktmo": r.settlement_oktmo,
                "classifier_version": "quality-test",
                "analysed_at": NOW,
            }
        )
    assert rows[0]["municipality_code"] == rows[1]["municipality_code"] != "33701"
    with engine.begin() as conn:
        conn.execute(insert(Post), rows)
    route_posts(engine, now=NOW, actor="pipeline")
    with engine.connect() as conn:
        cases = {c for _p, c in conn.execute(select(CasePost.post_id, CasePost.case_id))}
    assert len(cases) == 1
