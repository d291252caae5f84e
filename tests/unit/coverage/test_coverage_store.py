"""The coverage_actions audit trail on SQLite and PostgreSQL: idempotent actions, history, open gaps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, func, select

from incidents.coverage import store
from incidents.coverage.store import Action
from incidents.coverage.windows import Gap, Window
from incidents.db.models import CoverageAction

T0 = datetime(2026, 10, 5, tzinfo=UTC)
DAG = "collect_vk"


def w(n: int) -> Window:
    return Window(T0 + timedelta(hours=n), T0 + timedelta(hours=n + 1))


def test_actions_are_recorded_once_per_key(engine: Engine) -> None:
    actions = [
        Action(DAG, w(1), "detected", gap_kind="missing"),
        Action(DAG, w(2), "detected", gap_kind="failed"),
    ]
    assert len(store.record(engine, actions, run_id="r1")) == 2
    again = store.record(engine, [*actions, Action(DAG, w(3), "detected", gap_kind="missing")], run_id="r2")
    assert [a.window for a in again] == [w(3)]
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(CoverageAction)).scalar_one() == 3
        row = conn.execute(select(CoverageAction).where(CoverageAction.gap_kind == "failed")).one()
        assert row.network == "vk" and row.run_id == "r1"


def test_history_counts_attempts_alerts_and_open_state(engine: Engine) -> None:
    store.record(
        engine,
        [
            Action(DAG, w(1), "detected", gap_kind="missing"),
            Action(DAG, w(1), "backfill_requested", key_suffix="1", backfill_id=7),
            Action(DAG, w(2), "detected", gap_kind="missing"),
            Action(DAG, w(2), "backfill_requested", key_suffix="1", backfill_id=7),
            Action(DAG, w(2), "caught_up"),
            Action("collect_ok", w(1), "detected", gap_kind="failed"),
        ],
        run_id="r1",
    )
    history = store.history(engine, DAG)
    assert set(history) == {w(1).start, w(2).start}
    assert history[w(1).start].open and history[w(1).start].attempts == 1
    assert history[w(1).start].backfill_ids == [7]
    assert not history[w(2).start].open
    assert history[w(1).start].window == w(1)
    assert store.history(engine, DAG, since=w(2).start).keys() == {w(2).start}

    gaps = store.open_gaps(engine)
    assert [(g["dag_id"], g["window_start"]) for g in gaps] == [("collect_ok", w(1).start), (DAG, w(1).start)]
    assert gaps[1]["attempts"] == 1 and gaps[1]["alerted_at"] is None


def test_an_alert_is_claimed_once_and_can_be_released(engine: Engine) -> None:
    gaps = [Gap(w(1), "failed", ("r",)), Gap(w(2), "missing")]
    assert store.claim_alert(engine, DAG, gaps, run_id="c1") == gaps
    assert store.claim_alert(engine, DAG, gaps, run_id="c2") == []
    store.release_alert(engine, DAG, gaps[:1])
    assert store.claim_alert(engine, DAG, gaps, run_id="c3") == gaps[:1]
    assert store.history(engine, DAG)[w(1).start].alerted


def test_recent_actions_newest_first(engine: Engine) -> None:
    store.record(engine, [Action(DAG, w(1), "detected")], run_id="a")
    store.record(engine, [Action(DAG, w(1), "alerted")], run_id="b")
    recent = store.recent_actions(engine)
    assert [r["action"] for r in recent] == ["alerted", "detected"]
    assert recent[0]["window_start"] == w(1).start


def test_a_window_that_becomes_a_gap_again_starts_a_new_cycle(engine: Engine) -> None:
    gap = Gap(w(1), "failed", ("r",))
    store.record(
        engine,
        [
            Action(DAG, w(1), "detected"),
            Action(DAG, w(1), "backfill_requested", key_suffix="1", backfill_id=3),
        ],
        run_id="a",
    )
    assert store.claim_alert(engine, DAG, [gap], run_id="a", history=store.history(engine, DAG)) == [gap]
    seen = store.history(engine, DAG)[w(1).start]
    store.record(engine, [Action(DAG, w(1), "caught_up", key_suffix=seen.key())], run_id="b")
    assert store.open_gaps(engine) == []
    # a rerun of the window failed later: a new cycle, with its own catch-up and alert
    seen = store.history(engine, DAG)[w(1).start]
    assert (seen.cycle, seen.attempts, seen.alerted, seen.open) == (1, 0, False, False)
    assert seen.key() == "c1" and seen.key("1") == "c1.1"
    new = store.record(engine, [Action(DAG, w(1), "detected", key_suffix=seen.key())], run_id="c")
    assert len(new) == 1
    assert [g["window_start"] for g in store.open_gaps(engine)] == [w(1).start]
    history = store.history(engine, DAG)
    assert history[w(1).start].open
    assert store.claim_alert(engine, DAG, [gap], run_id="c", history=history) == [gap]
    assert store.claim_alert(engine, DAG, [gap], run_id="d", history=store.history(engine, DAG)) == []
