"""The collection backfill test's period and the sandbox's ground truth agree for any clock.

No Airflow: for several clocks (2026-03-02 and 2026-12-04 among them, the latter the date on which
a 60-day history window in the sandbox used to lose the first eleven days of the period), the
sandbox runs in-process with that clock, the real clients collect the period's three windows
(the same timetable as the Airflow test) and every network brings exactly
``ground_truth(period, now=clock)``. The period itself is checked for every day of five years.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from incidents import NETWORKS
from incidents.collect.pipeline import LandingArea, client_for, collect_window, read_posts
from incidents.config import parse_connection
from incidents.sources import Source, load_sources
from incidents_dev.sandbox.faults import RateLimit
from incidents_dev.sandbox.generator import ground_truth
from incidents_dev.sandbox.server import SandboxServer

from .collection_period import FIRE_DAYS, collection_period, fires_before

RATE = 1.5  # as in test_collection_backfill
DAG_START = datetime(2026, 1, 1, tzinfo=UTC)  # plugins/incidents_provider/defaults.py START_DATE
CLOCKS = (
    datetime(2026, 3, 2, 9, 30, tzinfo=UTC),
    datetime(2026, 12, 4, 20, 15, tzinfo=UTC),
    datetime(2027, 2, 21, 0, 0, 1, tzinfo=UTC),  # a window has just completed
    datetime(2027, 3, 10, 23, 59, tzinfo=UTC),  # February is skipped for January
    datetime(2028, 8, 1, 0, 0, tzinfo=UTC),  # at a fire time itself
)
# one source per network (the period's agreement with the sandbox does not depend on how many),
# the VK one a community wall that is paged by offset from the clock back to the period
SOURCES = {
    "vk": "-31285017",
    "ok": "51987203456712",
    "twitter": "3345120987",
    "facebook": "101928374650192",
    "instagram": "17841405678901234",
}


def _windows(start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """The timetable's windows tiling [start, end) (runs start on the fire days)."""
    fires = [start]
    day = start + timedelta(days=1)
    while day < end:
        if day.day in FIRE_DAYS:
            fires.append(day)
        day += timedelta(days=1)
    return list(zip(fires, [*fires[1:], end], strict=True))


def test_the_period_is_a_whole_month_clear_of_the_latest_window_for_every_day() -> None:
    moment = datetime(2026, 2, 11, 7, tzinfo=UTC)
    while moment < datetime(2031, 2, 11, tzinfo=UTC):
        start, end = collection_period(moment)
        assert start.day == 1 and end.day == 1 and start.tzinfo is not None, moment
        assert timedelta(days=30) <= end - start <= timedelta(days=31), moment
        # the scheduler runs the latest complete window on unpause: the backfill stays before it
        assert end <= fires_before(moment, 2)[0], moment
        assert start >= DAG_START, moment
        assert len(_windows(start, end)) == len(FIRE_DAYS), moment
        moment += timedelta(days=1, hours=5)
    with pytest.raises(ValueError):
        collection_period(datetime(2026, 12, 4))


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    by_key = {(s.network, s.id): s for s in load_sources()}
    sources = [by_key[(network, sid)] for network, sid in SOURCES.items()]
    with SandboxServer(
        seed=0,
        sources=sources,
        rate_per_source_per_day=RATE,
        rate_limits={network: RateLimit(10**9, 1.0) for network in NETWORKS},
    ) as srv:
        yield srv


def _collect(
    server: SandboxServer, network: str, window: tuple[datetime, datetime], landing: LandingArea
) -> dict[str, tuple]:
    env = server.connection_env(backoff_base=0.001, backoff_cap=0.002, max_retries=3)
    conn = parse_connection(f"{network}_default", env[f"AIRFLOW_CONN_{network.upper()}_DEFAULT"])
    sources: list[Source] = [s for s in server.config.sources if s.network == network]
    result = collect_window(
        network,
        *window,
        conn=conn,
        sources=sources,
        landing=landing,
        run_id="period",
        # the clients' clock is the test's clock too (Twitter/X decides by it whether a window is over)
        client=client_for(network, conn, sleep=lambda _seconds: None, clock=lambda: server.now().timestamp()),
    )
    assert result.complete and not result.skipped, result.summary()
    assert result.posts_path is not None
    out = {}
    for row in read_posts(result.posts_path):
        assert row["external_id"] not in out, f"duplicate {row['external_id']}"
        published = datetime.fromisoformat(row["published_at"].replace("Z", "+00:00")).astimezone(UTC)
        out[row["external_id"]] = (row["kind"], published.strftime("%Y-%m-%dT%H:%M:%SZ"))
    return out


@pytest.mark.parametrize("clock", CLOCKS, ids=[c.strftime("%Y-%m-%dT%H%M") for c in CLOCKS])
def test_the_sandbox_serves_exactly_the_ground_truth_of_the_period(
    server: SandboxServer, clock: datetime, tmp_path: Path
) -> None:
    server.set_now(clock)
    start, end = collection_period(clock)
    truth = ground_truth(start, end, now=clock, config=server.config)
    landing = LandingArea(tmp_path / "landing")
    for network in NETWORKS:
        want = {t["external_id"]: (t["kind"], t["published_at"]) for t in truth if t["network"] == network}
        assert len(want) >= 20, f"{network}: too little data in {start:%Y-%m} to be a test"
        got: dict[str, tuple] = {}
        for window in _windows(start, end):
            collected = _collect(server, network, window, landing)
            assert not set(got) & set(collected), f"{network}: an item in two windows"
            got.update(collected)
        missing, extra = sorted(set(want) - set(got)), sorted(set(got) - set(want))
        assert not missing and not extra, (
            f"{network} at {clock:%Y-%m-%d}: period {start:%Y-%m-%d}..{end:%Y-%m-%d}: "
            f"missing {missing[:5]} ({len(missing)}), extra {extra[:5]} ({len(extra)})"
        )
        assert got == want
