"""Pipeline health figures per network and per hour or day, read from the case database.

Every figure is computed from the pipeline's own tables, per collection window (``batches``):

* **collected**: posts and comments stored for the window (``posts.batch_id``);
* **quarantined**: records of the window kept in ``quarantine`` (any stage), with their reasons;
  the *quarantined share* is quarantined / (collected + quarantined at collection), since a
  record rejected at collection never became a post;
* **incidents**: analysed posts labelled as incidents; the *incident share* is incidents / analysed;
* **hazards**: posts labelled as hazards;
* **lag**: for cases whose origin post belongs to the window, ``registered_at - opened_at`` (the
  post's time to the pipeline's registration), in hours: median and 90th percentile (linear
  interpolation between ranks);
* **skipped sources**: ``batches.skipped_sources`` with their reasons;
* **last complete window**: the latest window collected and processed (status ``analysed`` or
  ``routed``).

Windows are grouped into buckets by their start (UTC), hourly or daily.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, and_, case, func, literal_column, select

from incidents import NETWORKS
from incidents.coverage.windows import utc
from incidents.db.models import Batch, Case, CasePost, Post, Quarantine

GRANULARITIES = {"hour": timedelta(hours=1), "day": timedelta(days=1)}
COMPLETE_STATUSES = ("analysed", "routed")


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0–100) by linear interpolation between closest ranks; None if empty."""
    if not values:
        return None
    if not 0 <= q <= 100:
        raise ValueError("q must lie in [0, 100]")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low, high = math.floor(pos), math.ceil(pos)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def bucket_start(moment: datetime, granularity: str) -> datetime:
    """The start of the hour or UTC day ``moment`` lies in."""
    moment = utc(moment)
    if granularity == "hour":
        return moment.replace(minute=0, second=0, microsecond=0)
    if granularity == "day":
        return moment.replace(hour=0, minute=0, second=0, microsecond=0)
    raise ValueError(f"granularity must be one of {sorted(GRANULARITIES)}, got {granularity!r}")


@dataclass
class Figures:
    """The health figures of one network (or ``*``) over one bucket or the whole period."""

    network: str
    start: datetime | None = None
    end: datetime | None = None
    windows: int = 0
    posts: int = 0
    comments: int = 0
    quarantined: int = 0
    quarantined_at_collection: int = 0
    analysed: int = 0
    incidents: int = 0
    hazards: int = 0
    cases: int = 0
    lags_h: list[float] = field(default_factory=list, repr=False)
    reasons: Counter[str] = field(default_factory=Counter, repr=False)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    """The windows of the bucket: start, end, run id, status."""
    last_complete_window: tuple[datetime, datetime] | None = None

    @property
    def collected(self) -> int:
        return self.posts + self.comments

    @property
    def quarantine_share(self) -> float | None:
        denominator = self.collected + self.quarantined_at_collection
        return self.quarantined / denominator if denominator else None

    @property
    def incident_share(self) -> float | None:
        return self.incidents / self.analysed if self.analysed else None

    @property
    def lag_median_h(self) -> float | None:
        return percentile(self.lags_h, 50)

    @property
    def lag_p90_h(self) -> float | None:
        return percentile(self.lags_h, 90)

    def top_reasons(self, n: int = 5) -> list[tuple[str, int]]:
        return sorted(self.reasons.items(), key=lambda kv: (-kv[1], kv[0]))[:n]

    def skipped_by_source(self) -> list[dict[str, Any]]:
        """Skipped sources with their reasons and how many windows skipped them."""
        counts: Counter[tuple[str, str]] = Counter((s["source_id"], s["reason"]) for s in self.skipped)
        return [
            {"source_id": sid, "reason": reason, "windows": n}
            for (sid, reason), n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        ]

    def add(self, other: Figures) -> None:
        for name in (
            "windows",
            "posts",
            "comments",
            "quarantined",
            "quarantined_at_collection",
            "analysed",
            "incidents",
            "hazards",
            "cases",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.lags_h.extend(other.lags_h)
        self.reasons.update(other.reasons)
        self.skipped.extend(other.skipped)
        self.runs.extend(other.runs)
        if other.last_complete_window and (
            self.last_complete_window is None or other.last_complete_window[1] > self.last_complete_window[1]
        ):
            self.last_complete_window = other.last_complete_window

    def as_dict(self) -> dict[str, Any]:
        return {
            "network": self.network,
            "start": self.start.isoformat() if self.start else None,
            "end": self.end.isoformat() if self.end else None,
            "windows": self.windows,
            "posts": self.posts,
            "comments": self.comments,
            "collected": self.collected,
            "quarantined": self.quarantined,
            "quarantine_share": self.quarantine_share,
            "top_reasons": [{"reason": r, "count": n} for r, n in self.top_reasons()],
            "analysed": self.analysed,
            "incidents": self.incidents,
            "incident_share": self.incident_share,
            "hazards": self.hazards,
            "cases": self.cases,
            "lag_median_h": self.lag_median_h,
            "lag_p90_h": self.lag_p90_h,
            "skipped_sources": self.skipped_by_source(),
            "last_complete_window": [w.isoformat() for w in self.last_complete_window]
            if self.last_complete_window
            else None,
        }


@dataclass
class HealthReport:
    """Figures per network and bucket, per network over the period, and for all networks."""

    start: datetime
    end: datetime
    granularity: str
    buckets: list[Figures]
    networks: dict[str, Figures]
    total: Figures
    classifier_versions: dict[str, int]

    def as_dict(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "granularity": self.granularity,
            "total": self.total.as_dict(),
            "networks": {n: f.as_dict() for n, f in self.networks.items()},
            "buckets": [b.as_dict() for b in self.buckets],
            "classifier_versions": self.classifier_versions,
        }


def _reason_label(stage: str, expectation: str | None, reason: str | None) -> str:
    text = expectation or (reason or "").splitlines()[0][:100] or "unknown"
    return f"{stage}: {text}"


def _as_int(value: Any) -> int:
    return int(value or 0)


def pipeline_health(
    engine: Engine,
    start: datetime,
    end: datetime,
    *,
    granularity: str = "hour",
    networks: Iterable[str] = NETWORKS,
) -> HealthReport:
    """Health figures of the windows that start in ``[start, end)``."""
    start, end = utc(start), utc(end)
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity must be one of {sorted(GRANULARITIES)}, got {granularity!r}")
    networks = tuple(networks)
    window_filter = and_(Batch.window_start >= start, Batch.window_start < end, Batch.network.in_(networks))
    # literal bounds: PostgreSQL matches a GROUP BY expression only when it is the same text
    reason_head = func.substr(Quarantine.reason, literal_column("1"), literal_column("200"))
    with engine.connect() as conn:
        batches = conn.execute(
            select(
                Batch.id,
                Batch.network,
                Batch.window_start,
                Batch.window_end,
                Batch.run_id,
                Batch.status,
                Batch.counts,
                Batch.skipped_sources,
            ).where(window_filter)
        ).all()
        post_rows = conn.execute(
            select(
                Post.batch_id,
                func.sum(case((Post.kind == "comment", 0), else_=1)),
                func.sum(case((Post.kind == "comment", 1), else_=0)),
                func.sum(case((Post.is_incident.is_not(None), 1), else_=0)),
                func.sum(case((Post.is_incident.is_(True), 1), else_=0)),
                func.sum(case((Post.hazard.is_(True), 1), else_=0)),
            )
            .join(Batch, Batch.id == Post.batch_id)
            .where(window_filter)
            .group_by(Post.batch_id)
        ).all()
        quarantine_rows = conn.execute(
            select(
                Quarantine.batch_id,
                Quarantine.stage,
                Quarantine.expectation,
                reason_head,
                func.count(),
            )
            .join(Batch, Batch.id == Quarantine.batch_id)
            .where(window_filter)
            .group_by(
                Quarantine.batch_id,
                Quarantine.stage,
                Quarantine.expectation,
                reason_head,
            )
        ).all()
        lag_rows = conn.execute(
            select(Batch.id, Case.id, Case.opened_at, Case.registered_at)
            .join(CasePost, CasePost.case_id == Case.id)
            .join(Post, Post.id == CasePost.post_id)
            .join(Batch, Batch.id == Post.batch_id)
            .where(window_filter, CasePost.link == "origin")
        ).all()
        version_rows = conn.execute(
            select(Post.classifier_version, func.count())
            .join(Batch, Batch.id == Post.batch_id)
            .where(window_filter, Post.classifier_version.is_not(None))
            .group_by(Post.classifier_version)
        ).all()

    per_batch: dict[int, Figures] = {}
    for bid, network, w_start, w_end, run_id, status, _counts, skipped in batches:
        w_start, w_end = utc(w_start), utc(w_end)
        fig = Figures(network=network, start=w_start, end=w_end, windows=1)
        fig.runs.append({"start": w_start, "end": w_end, "run_id": run_id, "status": status})
        if status in COMPLETE_STATUSES:
            fig.last_complete_window = (w_start, w_end)
        if isinstance(skipped, str):
            skipped = json.loads(skipped)
        for item in skipped or []:
            fig.skipped.append({"source_id": str(item.get("source_id")), "reason": str(item.get("reason"))})
        per_batch[bid] = fig
    for bid, posts, comments, analysed, incidents, hazards in post_rows:
        fig = per_batch[bid]
        fig.posts, fig.comments = _as_int(posts), _as_int(comments)
        fig.analysed, fig.incidents, fig.hazards = _as_int(analysed), _as_int(incidents), _as_int(hazards)
    for bid, stage, expectation, reason, count in quarantine_rows:
        fig = per_batch[bid]
        fig.quarantined += int(count)
        if stage == "collect":
            fig.quarantined_at_collection += int(count)
        fig.reasons[_reason_label(stage, expectation, reason)] += int(count)
    for bid, _case_id, opened_at, registered_at in lag_rows:
        fig = per_batch[bid]
        fig.cases += 1
        if opened_at is not None and registered_at is not None:
            fig.lags_h.append((utc(registered_at) - utc(opened_at)).total_seconds() / 3600)

    step = GRANULARITIES[granularity]
    buckets: dict[tuple[str, datetime], Figures] = {}
    by_network = {n: Figures(network=n, start=start, end=end) for n in networks}
    total = Figures(network="*", start=start, end=end)
    for fig in per_batch.values():
        assert fig.start is not None  # a batch's figures always have its window
        b_start = bucket_start(fig.start, granularity)
        key = (fig.network, b_start)
        if key not in buckets:
            buckets[key] = Figures(network=fig.network, start=b_start, end=b_start + step)
        buckets[key].add(fig)
        by_network[fig.network].add(fig)
        total.add(fig)
    return HealthReport(
        start=start,
        end=end,
        granularity=granularity,
        buckets=sorted(
            buckets.values(),
            key=lambda f: (f.start, NETWORKS.index(f.network) if f.network in NETWORKS else 99),
        ),
        networks=by_network,
        total=total,
        classifier_versions={v: int(n) for v, n in sorted(version_rows) if v is not None},
    )


def classifier_quality(paths: Iterable[Path]) -> dict[str, Any]:
    """The classifier's measured blind-set quality: every ``quality_*`` figure found in the JSON
    files ``paths`` (the first file that has any wins, with its path); empty when not measured."""
    for path in paths:
        path = Path(path)
        if not path.is_file():
            continue
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        found: dict[str, Any] = {}
        _collect_quality(data, found)
        if found:
            return {"source": str(path), "figures": found}
    return {}


def _collect_quality(data: Any, found: dict[str, Any], depth: int = 0) -> None:
    if depth > 4:
        return
    if isinstance(data, dict):
        for key, value in data.items():
            if isinstance(key, str) and key.startswith("quality_") and isinstance(value, (int, float, str)):
                found.setdefault(key, value)
            elif isinstance(value, (dict, list)):
                _collect_quality(value, found, depth + 1)
    elif isinstance(data, list):
        for item in data[:50]:
            _collect_quality(item, found, depth + 1)
