"""``python -m incidents collect NETWORK --start ISO --end ISO [--out FILE] [--source ID ...] [--landing DIR]``

Collects one network's window and writes its normalised posts as JSONL to stdout or ``--out``.
The connection comes from ``AIRFLOW_CONN_<NETWORK>_DEFAULT``, the sources from
``incidents/reference/sources.yaml`` (``--source`` picks some). Raw pages go to the landing area
(``--landing``, default ``<INCIDENTS_HOME>/landing``). Exit codes: 0 done, 1 collection stopped at a
daily limit (sources remain), 2 usage or configuration error, 3 authentication refused, 4 window
not available.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path

from incidents import NETWORKS
from incidents.collect.errors import ApiError, AuthError, WindowNotAvailable
from incidents.collect.pipeline import LandingArea, collect_window
from incidents.config import get_connection, local_home
from incidents.sources import load_sources

log = logging.getLogger(__name__)


def parse_time(value: str) -> datetime:
    """ISO 8601 date or datetime; naive values are UTC."""
    text = value.strip().replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {value!r}") from exc
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("network", choices=NETWORKS)
    parser.add_argument(
        "--start", required=True, type=parse_time, help="window start (ISO 8601, UTC if naive)"
    )
    parser.add_argument("--end", required=True, type=parse_time, help="window end, exclusive")
    parser.add_argument("--out", type=Path, help="JSONL output file (default: stdout)")
    parser.add_argument("--source", action="append", default=[], metavar="ID", help="only these source ids")
    parser.add_argument("--landing", type=Path, help="landing area root (default: <INCIDENTS_HOME>/landing)")
    parser.add_argument("--run-id", default=None, help="run id recorded with the window (default: cli-<now>)")


def run(args: argparse.Namespace) -> int:
    conn_id = f"{args.network}_default"
    conn = get_connection(conn_id)
    if conn is None:
        sys.stderr.write(
            f"error: connection {conn_id!r} is not configured (set AIRFLOW_CONN_{conn_id.upper()})\n"
        )
        return 2
    sources = load_sources(args.network)
    if args.source:
        wanted = set(args.source)
        unknown = wanted - {s.id for s in sources}
        if unknown:
            sys.stderr.write(f"error: unknown {args.network} source(s): {', '.join(sorted(unknown))}\n")
            return 2
        sources = [s for s in sources if s.id in wanted]
    landing = LandingArea(args.landing or local_home() / "landing")
    run_id = args.run_id or f"cli-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    try:
        result = collect_window(
            args.network, args.start, args.end, conn=conn, sources=sources, landing=landing, run_id=run_id
        )
    except AuthError as exc:
        sys.stderr.write(f"error: authentication refused: {exc}\n")
        return 3
    except WindowNotAvailable as exc:
        sys.stderr.write(f"error: window not available: {exc}\n")
        return 4
    except ValueError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    except ApiError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    with open(result.posts_path, encoding="utf-8") as source:
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            with open(args.out, "w", encoding="utf-8") as target:
                shutil.copyfileobj(source, target)
        else:
            shutil.copyfileobj(source, sys.stdout)
    for source_id, reason in result.skipped.items():
        sys.stderr.write(f"skipped source {source_id}: {reason}\n")
    sys.stderr.write(
        f"{args.network} {result.start}..{result.end}: {result.total_posts} posts/comments from "
        f"{len(result.counts)} source(s), {len(result.rejects)} rejected, {len(result.skipped)} skipped; "
        f"landing {result.landing_uri}\n"
    )
    if not result.complete:
        sys.stderr.write(
            f"stopped early: {result.stopped}; remaining sources: {', '.join(result.remaining)}\n"
        )
        return 1
    return 0
