"""``python -m incidents route [--batch ID | --since ISO | --posts ID ...]``: route incident posts into cases.

Routes every analysed incident post not linked to a case yet (optionally only one batch,
the posts published since a moment, or given post ids), then reconciles cases whose posts
were relabelled by a newer classifier. Prints the summary (``--json`` for JSON).
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

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
    parser.add_argument("--now", type=parse_time, help="time written on links and events (default: now)")
    parser.add_argument("--actor", default="pipeline")
    add_common(parser)


def run(args: argparse.Namespace) -> int:
    from incidents.cases.routing import RoutingError, route_posts

    engine = engine_from(args)
    try:
        summary = route_posts(
            engine, post_ids=args.posts, batch_id=args.batch, since=args.since, now=args.now, actor=args.actor
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
