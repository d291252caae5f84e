"""Seed sweep without Airflow: the real network clients (``incidents.collect.pipeline.collect_window``)
against the in-process sandbox, 200 fault seeds for every network with 20 % transient faults
(``FaultConfig.transient(0.2)``: throttling, 5xx, truncated JSON, timeouts, truncated pages and
pages that repeat earlier items), over three small windows (one at the very end of the walls,
one across midnight, one in the middle of a day), wall and feed paging and comment threads
included. Every collection must be exactly the sandbox's ground truth of its window: nothing
lost, nothing duplicated, complete, no source skipped.

Fast by construction: few sources, small windows, retries without real waiting (the clients'
``sleep`` is injectable; the sandbox's injected throttling does not depend on time), a short
read timeout so that an injected timeout costs a tenth of a second.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from incidents import NETWORKS
from incidents.collect.pipeline import LandingArea, client_for, collect_window, read_posts
from incidents.config import ConnectionInfo, parse_connection
from incidents.sources import Source, load_sources
from incidents_dev.sandbox.faults import FaultConfig, RateLimit
from incidents_dev.sandbox.generator import WORLD_START, generate
from incidents_dev.sandbox.server import SandboxServer

SEEDS = range(200)
SOURCES = {
    "vk": ("-31285017", "-160312874", "search:incidents"),
    "ok": ("51987203456712", "53038939046008"),
    "twitter": ("3345120987", "1012345678901234567"),
    "facebook": ("101928374650192", "104567283951762"),
    "instagram": ("17841405678901234", "17841401234567890"),
}
"""Per network a public source (many comments and threads), an official one and VK's search."""
WINDOWS = (
    (WORLD_START, WORLD_START + timedelta(hours=8)),  # the walls' last page
    (datetime(2025, 1, 2, 20, tzinfo=UTC), datetime(2025, 1, 3, 4, tzinfo=UTC)),  # across midnight
    (datetime(2025, 1, 3, 9, tzinfo=UTC), datetime(2025, 1, 3, 17, tzinfo=UTC)),
)
NOW = datetime(2025, 1, 12, tzinfo=UTC)
"""Every comment of the windows' posts is published (two days suffice); VK walls are paged by
offset from here back to the windows: a couple of pages above them, and for the first window the
walls' last page."""
RATE = 16.0
READ_TIMEOUT = 0.1


def _sources() -> list[Source]:
    by_key = {(s.network, s.id): s for s in load_sources()}
    return [by_key[(network, sid)] for network, ids in SOURCES.items() for sid in ids]


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    with SandboxServer(
        seed=3,
        now=NOW,
        sources=_sources(),
        rate_per_source_per_day=RATE,
        client_read_timeout=READ_TIMEOUT,
        rate_limits={network: RateLimit(10**9, 1.0) for network in NETWORKS},
    ) as srv:
        # render every hour the clients will page through once, before the clock matters
        for _ in generate(WORLD_START, NOW, config=srv.config):
            pass
        yield srv


def _truth(server: SandboxServer, network: str, window: tuple[datetime, datetime]) -> dict[str, tuple]:
    out = {}
    for item in generate(*window, config=server.config, now=server.now(), include_deleted=False):
        if item.network == network:
            record = item.truth()
            out[record["external_id"]] = (
                record["parent_external_id"],
                record["kind"],
                record["published_at"],
            )
    return out


def _conn(server: SandboxServer, network: str) -> ConnectionInfo:
    env = server.connection_env(backoff_base=0.001, backoff_cap=0.002, max_retries=12)
    return parse_connection(f"{network}_default", env[f"AIRFLOW_CONN_{network.upper()}_DEFAULT"])


def _collect_once(
    server: SandboxServer, network: str, window: tuple[datetime, datetime], landing: LandingArea, run: str
) -> tuple[dict[str, tuple], list[str], str | None]:
    """(posts by external id, duplicate ids, why incomplete or None)."""
    sources = [s for s in server.config.sources if s.network == network]
    conn = _conn(server, network)
    client = client_for(network, conn, sleep=lambda _seconds: None)
    result = collect_window(
        network, *window, conn=conn, sources=sources, landing=landing, run_id=run, client=client
    )
    problem = None
    if not result.complete or result.skipped or result.remaining:
        problem = f"incomplete: {result.summary()}"
    got: dict[str, tuple] = {}
    duplicates = []
    assert result.posts_path is not None
    for row in read_posts(result.posts_path):
        if row["external_id"] in got:
            duplicates.append(row["external_id"])
        published = datetime.fromisoformat(row["published_at"].replace("Z", "+00:00"))
        got[row["external_id"]] = (
            row["parent_external_id"],
            row["kind"],
            published.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
    return got, duplicates, problem


@pytest.mark.parametrize("network", NETWORKS)
def test_every_fault_seed_collects_exactly_the_ground_truth(
    server: SandboxServer, network: str, tmp_path: Path
) -> None:
    truths = [_truth(server, network, window) for window in WINDOWS]
    for truth in truths:
        assert truth, f"{network}: an empty window tests nothing"
    comments = sum(1 for truth in truths for v in truth.values() if v[1] == "comment")
    replies = sum(1 for truth in truths for v in truth.values() if v[1] == "comment" and v[0] in truth)
    assert comments >= 20 and (network == "twitter" or replies >= 3), (network, comments, replies)

    failures: list[str] = []
    before = dict(server.faults.injected)
    for seed in SEEDS:
        config = FaultConfig.transient(0.2, seed=seed * 31 + NETWORKS.index(network), timeout_seconds=0)
        config.networks = [network]
        server.faults.update(config.to_dict(), replace=True)
        w = seed % len(WINDOWS)
        try:
            got, duplicates, problem = _collect_once(
                server, network, WINDOWS[w], LandingArea(tmp_path / f"s{seed}"), f"seed-{seed}"
            )
        except Exception as exc:  # every seed is reported, not only the first failure
            failures.append(f"seed {seed} window {w}: {type(exc).__name__}: {exc}")
            continue
        want = truths[w]
        missing, extra = sorted(set(want) - set(got)), sorted(set(got) - set(want))
        wrong = sorted(k for k in set(want) & set(got) if want[k] != got[k])
        if missing or extra or duplicates or wrong or problem:
            failures.append(
                f"seed {seed} window {w}: missing {missing[:4]} ({len(missing)}), extra {extra[:4]}, "
                f"duplicated {duplicates[:4]}, wrong {wrong[:2]}, {problem or 'complete'}"
            )
    server.faults.update({}, replace=True)
    injected = {k: v - before.get(k, 0) for k, v in server.faults.injected.items()}
    for kind in (
        "rate_limit",
        "server_error",
        "timeout",
        "malformed_json",
        "truncated_page",
        "duplicate_items",
    ):
        assert injected.get(kind, 0) >= 5, f"{network}: too few {kind} faults to be a sweep: {injected}"
    assert not failures, f"{network}: {len(failures)} of {len(SEEDS)} seeds failed:\n" + "\n".join(failures)
