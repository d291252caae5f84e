"""Health figures against hand-computed values, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert, select

from incidents.db.models import Batch, Case, CasePost, Executor, Post, Quarantine
from incidents.health.queries import bucket_start, classifier_quality, percentile, pipeline_health

T0 = datetime(2026, 10, 5, tzinfo=UTC)


def h(n: float) -> datetime:
    return T0 + timedelta(hours=n)


def _batch(conn, network: str, n: int, status: str = "analysed", skipped: list | None = None) -> int:
    return conn.execute(
        insert(Batch)
        .values(
            network=network,
            window_start=h(n),
            window_end=h(n + 1),
            run_id=f"scheduled__{h(n).isoformat()}",
            status=status,
            skipped_sources=skipped,
        )
        .returning(Batch.id)
    ).scalar_one()


def _post(conn, batch_id: int, network: str, ext: str, at: datetime, **labels) -> int:
    values = {
        "network": network,
        "external_id": ext,
        "kind": labels.pop("kind", "post"),
        "source_id": "src",
        "author_pseudonym": "a",
        "published_at": at,
        "collected_at": at,
        "text": "text",
        "batch_id": batch_id,
        **labels,
    }
    return conn.execute(insert(Post).values(**values).returning(Post.id)).scalar_one()


def _case(conn, executor: str, post_id: int, opened: datetime, registered: datetime) -> None:
    case_id = conn.execute(
        insert(Case)
        .values(
            category="roads",
            executor_code=executor,
            opened_at=opened,
            registered_at=registered,
            summary="s",
        )
        .returning(Case.id)
    ).scalar_one()
    conn.execute(
        insert(CasePost).values(case_id=case_id, post_id=post_id, link="origin", linked_at=registered)
    )


def _quarantine(
    conn, batch_id: int, key: str, stage: str, reason: str, expectation: str | None = None
) -> None:
    conn.execute(
        insert(Quarantine).values(
            stage=stage,
            record_key=key,
            network="vk",
            reason=reason,
            expectation=expectation,
            raw="{}",
            batch_id=batch_id,
            created_at=T0,
        )
    )


@pytest.fixture
def data(engine: Engine) -> Engine:
    with engine.begin() as conn:
        executor = conn.execute(select(Executor.code).limit(1)).scalar_one()
        b0 = _batch(conn, "vk", 0, skipped=[{"source_id": "club1", "reason": "deleted"}])
        b1 = _batch(conn, "vk", 1, status="collected", skipped=[{"source_id": "club1", "reason": "deleted"}])
        b2 = _batch(conn, "ok", 0)
        _batch(conn, "vk", 30)  # the next day: outside the first day's bucket
        # vk hour 0: 3 posts + 1 comment; 2 incidents (1 hazard); cases lag 1 h and 3 h
        p1 = _post(conn, b0, "vk", "1", h(0.1), is_incident=True, hazard=True, classifier_version="v1")
        p2 = _post(conn, b0, "vk", "2", h(0.2), is_incident=True, hazard=False, classifier_version="v1")
        _post(conn, b0, "vk", "3", h(0.3), is_incident=False, hazard=False, classifier_version="v1")
        _post(conn, b0, "vk", "3_1", h(0.4), kind="comment", is_incident=False, classifier_version="v1")
        _case(conn, executor, p1, h(0.1), h(1.1))
        _case(conn, executor, p2, h(0.2), h(3.2))
        # vk hour 1: 2 posts not analysed yet, a case with lag 5 h
        p5 = _post(conn, b1, "vk", "5", h(1.5))
        _post(conn, b1, "vk", "6", h(1.6))
        _case(conn, executor, p5, h(1.5), h(6.5))
        # ok hour 0: 1 post, analysed, no incident
        _post(conn, b2, "ok", "9", h(0.5), is_incident=False, classifier_version="v2")
        # quarantine: 2 of vk hour 0 at validation, 1 of vk hour 0 at collection
        _quarantine(conn, b0, "vk:q1", "validate", "text is empty", "expect_text_not_empty")
        _quarantine(conn, b0, "vk:q2", "validate", "text is empty", "expect_text_not_empty")
        _quarantine(conn, b0, "vk:q3", "collect", "missing field 'id'\nraw: ...")
    return engine


def test_figures_per_network_and_hour(data: Engine) -> None:
    report = pipeline_health(data, T0, T0 + timedelta(hours=24), granularity="hour")
    vk0, ok0, vk1 = report.buckets
    assert (vk0.network, vk0.start, ok0.network, vk1.start) == ("vk", h(0), "ok", h(1))
    assert (vk0.posts, vk0.comments, vk0.collected) == (3, 1, 4)
    assert vk0.quarantined == 3 and vk0.quarantine_share == pytest.approx(3 / 5)  # 4 stored + 1 rejected
    assert vk0.top_reasons() == [("validate: expect_text_not_empty", 2), ("collect: missing field 'id'", 1)]
    assert (vk0.analysed, vk0.incidents, vk0.hazards) == (4, 2, 1)
    assert vk0.incident_share == pytest.approx(0.5)
    assert vk0.cases == 2 and vk0.lag_median_h == pytest.approx(2.0) and vk0.lag_p90_h == pytest.approx(2.8)
    assert vk1.analysed == 0 and vk1.incident_share is None and vk1.lag_median_h == pytest.approx(5.0)
    assert ok0.quarantine_share == 0 and ok0.incident_share == 0
    assert vk0.runs[0]["run_id"] == f"scheduled__{h(0).isoformat()}"


def test_figures_per_network_over_the_period(data: Engine) -> None:
    report = pipeline_health(data, T0, T0 + timedelta(hours=24), granularity="day")
    vk = report.networks["vk"]
    assert vk.windows == 2 and vk.collected == 6 and vk.cases == 3
    assert vk.lag_median_h == pytest.approx(3.0) and vk.lag_p90_h == pytest.approx(4.6)
    # hour 1 is collected but not processed: the last complete window is hour 0
    assert vk.last_complete_window == (h(0), h(1))
    assert vk.skipped_by_source() == [{"source_id": "club1", "reason": "deleted", "windows": 2}]
    assert report.networks["twitter"].windows == 0 and report.networks["twitter"].quarantine_share is None
    assert report.total.collected == 7 and report.total.windows == 3
    assert report.classifier_versions == {"v1": 4, "v2": 1}
    assert [(b.network, b.start, b.windows) for b in report.buckets] == [("vk", T0, 2), ("ok", T0, 1)]
    assert json.dumps(report.as_dict())  # serialisable for the JSON endpoint


def test_windows_outside_the_period_are_left_out(data: Engine) -> None:
    report = pipeline_health(data, h(30), h(31))
    assert report.total.windows == 1 and report.total.collected == 0


def test_percentile_and_buckets() -> None:
    assert percentile([], 50) is None
    assert percentile([4.0], 90) == 4.0
    assert percentile([1, 2, 3, 4], 50) == pytest.approx(2.5)
    assert percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 90) == pytest.approx(9.1)
    with pytest.raises(ValueError):
        percentile([1], 101)
    assert bucket_start(h(5.5), "hour") == h(5)
    assert bucket_start(h(5.5), "day") == T0
    with pytest.raises(ValueError):
        bucket_start(h(1), "week")


def test_classifier_quality_not_measured_until_a_file_has_it(tmp_path: Path) -> None:
    results = tmp_path / "results.json"
    assert classifier_quality([results]) == {}
    results.write_text(json.dumps({"throughput": 1}))
    assert classifier_quality([results]) == {}
    results.write_text(
        json.dumps({"classifier": {"quality_blind_f1": 0.81, "quality_blind_hazard_recall": 0.9}})
    )
    found = classifier_quality([tmp_path / "missing.json", results])
    assert found == {
        "source": str(results),
        "figures": {"quality_blind_f1": 0.81, "quality_blind_hazard_recall": 0.9},
    }
