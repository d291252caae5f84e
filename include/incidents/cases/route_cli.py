"""``python -m incidents route [--batch ID | --since ISO | --posts ID ...] [--window-end ISO]``: route posts.

Routes every analysed incident post not linked to a case yet (optionally only one batch,
the posts published since a moment, or given post ids), then reconciles cases whose posts
were relabelled by a newer classifier. Prints the summary (``--json`` for JSON).

Cases are registered at ``--now`` (default: the current time); deadlines run from it. A post
whose window ended more than ``--live-horizon-hours`` (default ``INCIDENTS_LIVE_HORIZON_HOURS``,
72) before that opens a *historical* case: never notified nor escalated automatically. The
window's end is ``--window-end`` when given, else each post's batch's, else the post's time.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta

from incidents.cases.cli import add_common, engine_from, write_json, write_table


def parse_time(value: str) -> datetime:
    """An ISO 8601 moment; without an offset it is taken as UTC."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {value!r}") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--batch", type=int, help="only the posts of this batch id")
    which.add_argument("--since", type=parse_time, help="only posts published at or after this ISO time")
    which.add_argument("--posts", type=int, nargs="+", help="only these post ids")
    parser.add_argument(
        "--now", type=parse_time, help="registration time written on cases, links and events (default: now)"
    )
    parser.add_argument(
        "--window-end",
        type=parse_time,
        help="end of the window the posts come from (default: each post's batch's window end)",
    )
    parser.add_argument(
        "--live-horizon-hours",
        type=float,
        help="windows that ended longer ago open historical cases (default: INCIDENTS_LIVE_HORIZON_HOURS, 72)",
    )
    parser.add_argument("--actor", default="pipeline")
    add_common(parser)


def run(args: argparse.Namespace) -> int:
    from incidents.cases.routing import RoutingError, route_posts
    from incidents.config import settings

    hours = args.live_horizon_hours
    if hours is not None and hours < 0:
        sys.stderr.write("error: --live-horizon-hours must not be negative\n")
        return 1
    horizon = timedelta(hours=hours) if hours is not None else settings().live_horizon
    engine = engine_from(args)
    try:
        summary = route_posts(
            engine,
            post_ids=args.posts,
            batch_id=args.batch,
            since=args.since,
            now=args.now,
            actor=args.actor,
            window_end=args.window_end,
            live_horizon=horizon,
        )
    except RoutingError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    data = summary.as_dict()
    if args.json:
        write_json(data)
    else:
        write_table([{"metric": k, "value": v} for k, v in data.items()], ("metric", "value"))
    return 0
