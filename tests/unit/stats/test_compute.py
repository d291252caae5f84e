"""Monthly figures against hand-computed values (the dataset is described in conftest.py)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import Engine, func, select, update

from incidents.db.models import Case, ExecutorMonthlyStat, MonthlyStat
from incidents.stats.compute import (
    StatsError,
    add_months,
    compute_month,
    load_month,
    month_bounds,
    month_start,
    percentile,
)

NOW = datetime(2019, 6, 1, tzinfo=UTC)
JAN = date(2019, 1, 1)


def test_month_bounds_are_kirov_calendar_months() -> None:
    start, end = month_bounds(JAN)
    assert start == datetime(2018, 12, 31, 21, tzinfo=UTC)
    assert end == datetime(2019, 1, 31, 21, tzinfo=UTC)
    assert month_start("2019-02") == date(2019, 2, 1)
    assert month_start(datetime(2019, 1, 31, 22, 30, tzinfo=UTC)) == date(2019, 2, 1)
    assert add_months(JAN, -1) == date(2018, 12, 1)
    assert add_months(date(2019, 12, 1), 1) == date(2020, 1, 1)
    with pytest.raises(StatsError):
        month_start("January")


def test_percentile_interpolates_like_percentile_cont() -> None:
    assert percentile([1, 2, 4, 6, 10], 0.5) == 4
    assert percentile([10, 6, 4, 2, 1], 0.9) == pytest.approx(8.4)  # 6 + 0.6 * (10 - 6)
    assert percentile([1, 4], 0.5) == 2.5
    assert percentile([], 0.5) is None


def test_region_figures_of_january(dataset: Engine) -> None:
    s = compute_month(dataset, JAN, now=NOW)
    r = s.region()
    # January posts: P1 P2 P4 P5 P6 P8 (P3 at 01-31 22:30Z is February in Kirov, P7 at 12-31 20:59Z December)
    assert r["posts_collected"] == 6
    assert r["incidents_found"] == 4  # P1 P2 P4 P8
    assert r["cases_opened"] == 5  # C1 C2 C3 C4 C6 (C5 opened 12-31 20:30Z = December)
    assert r["cases_resolved"] == 3  # C1 C4 C5 (C2 resolved in February)
    assert r["cases_resolved_on_time"] == 2  # C1 C5
    assert r["cases_resolved_late"] == 1  # C4
    assert r["cases_rejected"] == 1  # C6
    assert r["cases_open_overdue"] == 2  # C3 (due 01-15), C7 (due 2018-12-01)
    assert r["cases_overdue"] == 3  # C3 C7 + C4 resolved late
    assert r["share_resolved_on_time"] == pytest.approx(2 / 3)
    # first responses in January: C1 4 h, C3 10 h, C4 2 h, C5 1 h, C6 6 h -> [1, 2, 4, 6, 10]
    assert r["first_response_median_h"] == pytest.approx(4)
    assert r["first_response_p90_h"] == pytest.approx(8.4)
    # resolutions in January: C4 24 h, C1 48 h, C5 480 h
    assert r["resolution_median_h"] == pytest.approx(48)
    assert r["resolution_p90_h"] == pytest.approx(393.6)  # 48 + 0.8 * (480 - 48)
    assert r["hazards_found"] == 1 and r["hazards_found:open_manhole"] == 1
    assert r["hazards_removed"] == 1 and r["hazards_removed:open_manhole"] == 1
    # December: posts P7 (1, incident), cases opened C5 (1), overdue C7 (1), resolved 0
    assert r["posts_collected_change_pct"] == pytest.approx(500)  # (6 - 1) / 1
    assert r["incidents_found_change_pct"] == pytest.approx(300)
    assert r["cases_opened_change_pct"] == pytest.approx(400)
    assert r["cases_overdue_change_pct"] == pytest.approx(200)
    assert "cases_resolved_change_pct" not in r  # December had none: undefined


def test_dimension_figures_of_january(dataset: Engine) -> None:
    s = compute_month(dataset, JAN, now=NOW)
    assert s.value("posts_collected", "33602") == 3  # P1 P2 P8
    assert s.value("posts_collected", "33603") == 2  # P4 P6
    assert s.value("incidents_found", "33603") == 1  # P4
    assert s.value("posts_collected", category="roads") == 2  # P1 P2
    assert s.value("posts_collected", category="housing") == 1  # P4
    assert s.value("posts_collected", network="vk") == 3  # P1 P2 P6
    assert s.value("posts_collected", network="twitter") == 1  # P5: no municipality, no category
    assert s.value("posts_collected", "33602", "roads", "vk") == 2
    # cases by the network of their origin post: C1 C2 C6 vk, C5 vk (December)
    assert s.value("cases_opened", network="vk") == 3
    assert s.value("cases_resolved", network="vk") == 2  # C1 C5
    assert s.value("first_response_median_h", network="vk") == pytest.approx(4)  # [1, 4, 6]
    assert s.value("cases_opened", "33602") == 3  # C1 C2 C4
    assert s.value("cases_resolved", "33602") == 3  # C1 C4 C5
    assert s.value("cases_overdue", "33602") == 1  # C4
    assert s.value("cases_overdue", "33603") == 2  # C3 C7 (C7 has no posts: counted with network *)
    assert s.value("cases_overdue", "33603", network="ok") == 1  # C3 only
    assert s.value("first_response_median_h", "33603") == pytest.approx(8)  # [6, 10]
    assert s.value("hazards_found:open_manhole", "33602", "improvement", "facebook") == 1
    # per municipality change: 33602 December had P7 and C5
    assert s.value("posts_collected_change_pct", "33602") == pytest.approx(200)  # 3 vs 1
    assert s.value("cases_opened_change_pct", "33602") == pytest.approx(200)
    assert s.value("cases_overdue_change_pct", "33603") == pytest.approx(100)  # 2 vs C7
    assert s.value("posts_collected_change_pct", "33603") is None  # no posts in December


def test_top_lists(dataset: Engine) -> None:
    s = compute_month(dataset, JAN, now=NOW)
    assert s.prefixed("top_topic") == [
        ("roads_potholes", 2.0),
        ("housing_heating", 1.0),
        ("improvement_open_manhole", 1.0),
    ]
    assert s.prefixed("top_source") == [("vk:src1", 2.0), ("facebook:src4", 1.0), ("ok:src2", 1.0)]
    assert s.prefixed("top_source", network="ok") == [("ok:src2", 1.0)]
    assert s.prefixed("top_topic", "33603") == [("housing_heating", 1.0)]


def test_executor_rating(dataset: Engine) -> None:
    s = compute_month(dataset, JAN, now=NOW)
    rows = {r["executor_code"]: r for r in s.executors.to_dict(orient="records")}
    # adm_33602: opened C1 C2, resolved C1 C5 on time, first responses 4 h and 1 h
    assert rows["adm_33602"]["cases"] == 2 and rows["adm_33602"]["resolved"] == 2
    assert rows["adm_33602"]["resolved_on_time"] == 2 and rows["adm_33602"]["overdue"] == 0
    assert rows["adm_33602"]["median_first_response_h"] == pytest.approx(2.5)
    assert rows["adm_33602"]["timeliness"] == pytest.approx(1.0)
    # min_housing: C4 resolved late
    assert (rows["min_housing"]["resolved"], rows["min_housing"]["overdue"]) == (1, 1)
    assert rows["min_housing"]["timeliness"] == pytest.approx(0.0)
    # adm_33603: opened C3 C6, overdue C3 C7, first responses 10 h and 6 h
    assert (rows["adm_33603"]["cases"], rows["adm_33603"]["overdue"]) == (2, 2)
    assert rows["adm_33603"]["median_first_response_h"] == pytest.approx(8)
    # rank: timeliness 1.0 first; the two 0.0 ties broken by the faster median first response
    assert [rows[c]["rank"] for c in ("adm_33602", "min_housing", "adm_33603")] == [1, 2, 3]
    assert list(s.executors.executor_code) == ["adm_33602", "min_housing", "adm_33603"]


def test_february_boundaries_and_cross_month_case(dataset: Engine) -> None:
    compute_month(dataset, JAN, now=NOW)
    s = compute_month(dataset, date(2019, 2, 1), now=NOW)
    r = s.region()
    assert r["posts_collected"] == 2  # P3 (01-31 22:30Z) and P9
    assert r["cases_opened"] == 0
    assert r["cases_resolved"] == 1  # C2, opened in January
    assert r["resolution_median_h"] == pytest.approx(99.0 + 1 / 120)  # 01-31 20:59:30 -> 02-05 00:00
    assert r["first_response_median_h"] == pytest.approx(13 + 1 / 120)  # -> 02-01 10:00
    assert r["cases_overdue"] == 2  # C3 and C7 still open past due
    # the trend holds both stored months
    posts = s.trend[s.trend.metric == "posts_collected"]
    assert list(zip(posts.month, posts.value, strict=True)) == [(JAN, 6.0), (date(2019, 2, 1), 2.0)]


def test_current_month_uses_now_for_overdue(dataset: Engine) -> None:
    # on 2019-01-10 00:00Z, C3 (due 01-15) is not overdue yet; C7 is
    s = compute_month(dataset, JAN, now=datetime(2019, 1, 10, tzinfo=UTC))
    assert s.value("cases_open_overdue") == 1
    with pytest.raises(StatsError):
        compute_month(dataset, date(2019, 3, 1), now=datetime(2019, 2, 27, tzinfo=UTC))


def _counts(engine: Engine, month: date) -> tuple[int, int]:
    with engine.connect() as conn:
        stats = conn.scalar(select(func.count()).select_from(MonthlyStat).where(MonthlyStat.month == month))
        execs = conn.scalar(
            select(func.count()).select_from(ExecutorMonthlyStat).where(ExecutorMonthlyStat.month == month)
        )
    return stats, execs


def test_rerun_replaces_and_never_duplicates(dataset: Engine) -> None:
    compute_month(dataset, JAN, now=NOW)
    compute_month(dataset, date(2019, 2, 1), now=NOW)
    first = _counts(dataset, JAN)
    feb = _counts(dataset, date(2019, 2, 1))
    compute_month(dataset, JAN, now=NOW)
    assert _counts(dataset, JAN) == first
    assert _counts(dataset, date(2019, 2, 1)) == feb  # other months untouched
    # C3 gets resolved on time (before its due date): January changes on rerun
    with dataset.begin() as conn:
        conn.execute(
            update(Case)
            .where(Case.id == 3)
            .values(status="resolved", resolved_at=datetime(2019, 1, 14, tzinfo=UTC))
        )
    s = compute_month(dataset, JAN, now=NOW)
    assert s.value("cases_resolved") == 4
    assert s.value("cases_overdue") == 2  # C7 + C4
    assert s.value("share_resolved_on_time") == pytest.approx(3 / 4)
    assert len(s.stats) == _counts(dataset, JAN)[0]
    assert s.stats.duplicated(["municipality_code", "category", "network", "metric"]).sum() == 0


def test_load_month_and_json(dataset: Engine) -> None:
    with pytest.raises(StatsError):
        load_month(dataset, JAN)
    computed = compute_month(dataset, JAN, now=NOW)
    loaded = load_month(dataset, "2019-01")
    assert loaded.region() == computed.region()
    doc = json.loads(loaded.to_json())
    assert doc["month"] == "2019-01"
    assert doc["region"]["posts_collected"] == 6
    assert doc["executors"][0]["executor_code"] == "adm_33602"
    assert loaded.name("municipalities", "33602") == "Арбажский район"


def test_empty_month_has_a_region_row(engine: Engine) -> None:
    s = compute_month(engine, date(2020, 5, 1), now=NOW.replace(year=2021))
    assert s.region()["posts_collected"] == 0
    assert s.executors.empty
