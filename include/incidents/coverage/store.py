"""The ``coverage_actions`` table: what coverage runs found and did, once per idempotency key."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select

from incidents.cases.sql import insert_ignore
from incidents.coverage.windows import Gap, GapHistory, Window, utc
from incidents.db.models import CoverageAction, table_of

ACTIONS = ("detected", "backfill_requested", "caught_up", "alerted", "skipped_paused")


@dataclass(frozen=True)
class Action:
    """One action about one window of one DAG."""

    dag_id: str
    window: Window
    action: str
    key_suffix: str = ""
    """Makes repeated actions of one kind distinct (e.g. the catch-up attempt number)."""
    gap_kind: str | None = None
    backfill_id: int | None = None
    details: dict[str, Any] | None = None

    @property
    def idempotency_key(self) -> str:
        key = f"{self.action}:{self.dag_id}:{self.window.start.isoformat()}"
        return f"{key}:{self.key_suffix}" if self.key_suffix else key


def network_of(dag_id: str) -> str | None:
    """``collect_vk`` → ``vk``."""
    return dag_id.removeprefix("collect_") if dag_id.startswith("collect_") else None


def record(engine: Engine, actions: Sequence[Action], *, run_id: str | None) -> list[Action]:
    """Store the actions; returns those that were new (an action whose key exists is skipped)."""
    if not actions:
        return []
    for a in actions:
        if a.action not in ACTIONS:
            raise ValueError(f"unknown coverage action {a.action!r}")
    now = datetime.now(UTC)
    by_key = {a.idempotency_key: a for a in actions}
    rows = [
        {
            "dag_id": a.dag_id,
            "network": network_of(a.dag_id),
            "window_start": a.window.start,
            "window_end": a.window.end,
            "action": a.action,
            "gap_kind": a.gap_kind,
            "backfill_id": a.backfill_id,
            "run_id": run_id,
            "at": now,
            "details": a.details,
            "idempotency_key": key,
        }
        for key, a in by_key.items()
    ]
    with engine.begin() as conn:
        won = insert_ignore(conn, table_of(CoverageAction), rows, returning="idempotency_key")
    return [by_key[k] for k in won]


def _suffix(history: Mapping[datetime, GapHistory] | None, gap: Gap) -> str:
    seen = (history or {}).get(gap.window.start)
    return seen.key() if seen else ""


def claim_alert(
    engine: Engine,
    dag_id: str,
    gaps: Sequence[Gap],
    *,
    run_id: str | None,
    history: Mapping[datetime, GapHistory] | None = None,
) -> list[Gap]:
    """Claim the alert of each gap; returns the gaps this call won (never alerted before in the
    gap's current cycle, see :attr:`GapHistory.cycle`).

    The claim is written before the e-mail goes out, so two overlapping coverage runs never
    alert the same gap twice.
    """
    actions = [
        Action(
            dag_id,
            g.window,
            "alerted",
            key_suffix=_suffix(history, g),
            gap_kind=g.kind,
            details={"run_ids": list(g.run_ids)},
        )
        for g in gaps
    ]
    won = {a.window.start for a in record(engine, actions, run_id=run_id)}
    return [g for g in gaps if g.window.start in won]


def release_alert(
    engine: Engine, dag_id: str, gaps: Iterable[Gap], history: Mapping[datetime, GapHistory] | None = None
) -> None:
    """Undo :func:`claim_alert` for gaps whose e-mail could not be sent (the next run retries)."""
    keys = [Action(dag_id, g.window, "alerted", key_suffix=_suffix(history, g)).idempotency_key for g in gaps]
    if not keys:
        return
    with engine.begin() as conn:
        conn.execute(
            table_of(CoverageAction).delete().where(table_of(CoverageAction).c.idempotency_key.in_(keys))
        )


def history(engine: Engine, dag_id: str, since: datetime | None = None) -> dict[datetime, GapHistory]:
    """What was done about each window of ``dag_id`` (from ``since`` on), by window start."""
    query = select(
        CoverageAction.window_start,
        CoverageAction.window_end,
        CoverageAction.action,
        CoverageAction.backfill_id,
        CoverageAction.at,
        CoverageAction.id,
    ).where(CoverageAction.dag_id == dag_id)
    if since is not None:
        query = query.where(CoverageAction.window_start >= since)
    out: dict[datetime, GapHistory] = {}
    with engine.connect() as conn:
        for start, end, action, backfill_id, _at, _id in conn.execute(query.order_by(CoverageAction.id)):
            window = Window(start, end)
            seen = out.setdefault(window.start, GapHistory(window))
            if action == "detected":
                seen.open = True
            elif action == "caught_up":
                # the gap is closed; should the window become a gap again, a new cycle starts
                seen.open, seen.attempts, seen.alerted, seen.backfill_ids = False, 0, False, []
                seen.cycle += 1
            elif action == "backfill_requested":
                seen.attempts += 1
                if backfill_id is not None:
                    seen.backfill_ids.append(int(backfill_id))
            elif action == "alerted":
                seen.alerted = True
    return out


def recent_actions(
    engine: Engine, *, since: datetime | None = None, limit: int = 200
) -> list[dict[str, Any]]:
    """The latest actions, newest first (for the health view)."""
    query = select(CoverageAction).order_by(CoverageAction.id.desc()).limit(limit)
    if since is not None:
        query = query.where(CoverageAction.at >= since)
    with engine.connect() as conn:
        rows = conn.execute(query).mappings().all()
    out = []
    for row in rows:
        item = {k: row[k] for k in row.keys()}
        for key in ("window_start", "window_end", "at"):
            item[key] = utc(item[key])
        out.append(item)
    return out


def open_gaps(engine: Engine) -> list[dict[str, Any]]:
    """Windows detected as gaps and not caught up since, oldest first, with what was done."""
    query = select(
        CoverageAction.dag_id,
        CoverageAction.network,
        CoverageAction.window_start,
        CoverageAction.window_end,
        CoverageAction.action,
        CoverageAction.gap_kind,
        CoverageAction.backfill_id,
        CoverageAction.at,
    ).order_by(CoverageAction.id)
    state: dict[tuple[str, datetime], dict[str, Any]] = {}
    with engine.connect() as conn:
        for dag_id, network, start, end, action, kind, backfill_id, at in conn.execute(query):
            key = (dag_id, utc(start))
            if action == "detected":
                state[key] = {
                    "dag_id": dag_id,
                    "network": network,
                    "window_start": utc(start),
                    "window_end": utc(end),
                    "kind": kind,
                    "detected_at": utc(at),
                    "attempts": 0,
                    "backfill_ids": [],
                    "alerted_at": None,
                    "paused": False,
                }
            elif key not in state:
                continue
            elif action == "caught_up":
                del state[key]
            elif action == "backfill_requested":
                state[key]["attempts"] += 1
                if backfill_id is not None:
                    state[key]["backfill_ids"].append(int(backfill_id))
            elif action == "alerted":
                state[key]["alerted_at"] = utc(at)
            elif action == "skipped_paused":
                state[key]["paused"] = True
    return sorted(state.values(), key=lambda g: (g["window_start"], g["dag_id"]))
