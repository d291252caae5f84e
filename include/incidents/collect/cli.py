"""``python -m incidents collect NETWORK --start ISO --end ISO [--out FILE] [--source ID ...] [--landing DIR]``

Collects one network's window and writes its normalised posts as JSONL to stdout or ``--out``.
The connection comes from ``AIRFLOW_CONN_<NETWORK>_DEFAULT``, the sources from
``incidents/reference/sources.yaml`` (``--source`` picks some). Raw pages go to the landing area
(``--landing``, default ``<INCIDENTS_HOME>/landing``). Sources the API says are gone are skipped
and reported on stderr. The exit codes (:data:`EXIT_CODES`) tell apart what went wrong.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path

from incidents import NETWORKS
from incidents.collect.errors import (
    AllSourcesSkipped,
    ApiError,
    AuthError,
    DailyLimitReached,
    ManualActionRequired,
    PermissionMissing,
    TransientError,
    WindowIncomplete,
    WindowNotAvailable,
)
from incidents.collect.pipeline import LandingArea, collect_window
from incidents.config import get_connection, local_home
from incidents.sources import load_sources

log = logging.getLogger(__name__)

OK = 0
USAGE = 2
TOKEN_REFUSED = 3
WINDOW_NOT_AVAILABLE = 4
DAILY_LIMIT = 5
RETRIES_EXHAUSTED = 6
MANUAL_ACTION = 7
PERMISSION_MISSING = 8
ALL_SOURCES_SKIPPED = 9
WINDOW_INCOMPLETE = 10
API_ERROR = 11

EXIT_CODES: dict[int, str] = {
    OK: "the window was collected (sources the API says are gone are skipped and listed)",
    1: "an unexpected failure (a bug: the traceback is on stderr)",
    USAGE: "usage or configuration error (no connection, unknown source, bad window)",
    TOKEN_REFUSED: "the API refused the token (expired, revoked, wrong application key or signature)",
    WINDOW_NOT_AVAILABLE: "the API cannot serve this window (Twitter/X older than 7 days without full archive)",
    DAILY_LIMIT: "the daily limit was reached; the sources not collected are listed, run again later",
    RETRIES_EXHAUSTED: "the API kept failing (5xx, timeouts, rate limits, malformed answers) after every retry",
    MANUAL_ACTION: "the API wants a person to act first (captcha, account validation or confirmation)",
    PERMISSION_MISSING: "the token lacks a permission; the message names the connection and the permission",
    ALL_SOURCES_SKIPPED: "every source of the window was skipped (all gone), nothing could be collected",
    WINDOW_INCOMPLETE: "the API says there is more but its paging stopped advancing; run the window again",
    API_ERROR: "any other API error (the message has the API's code and text)",
}
"""Exit codes of ``python -m incidents collect`` (also in its ``--help`` and the README)."""

EXIT_CODES_HELP = "exit codes:\n" + "\n".join(f"  {code:>2}  {text}" for code, text in EXIT_CODES.items())

_ERROR_CODES: list[tuple[type[ApiError], int, str]] = [
    (PermissionMissing, PERMISSION_MISSING, "permission missing"),
    (AuthError, TOKEN_REFUSED, "authentication refused"),
    (WindowNotAvailable, WINDOW_NOT_AVAILABLE, "window not available"),
    (DailyLimitReached, DAILY_LIMIT, "daily limit reached"),
    (TransientError, RETRIES_EXHAUSTED, "retries exhausted"),
    (ManualActionRequired, MANUAL_ACTION, "manual action needed"),
    (AllSourcesSkipped, ALL_SOURCES_SKIPPED, "all sources skipped"),
    (WindowIncomplete, WINDOW_INCOMPLETE, "window incomplete"),
    (ApiError, API_ERROR, "API error"),
]


def exit_code_for(exc: ApiError) -> tuple[int, str]:
    """The exit code and the label of a typed API error (the first matching class wins)."""
    for cls, code, label in _ERROR_CODES:
        if isinstance(exc, cls):
            return code, label
    return API_ERROR, "API error"


def parse_time(value: str) -> datetime:
    """ISO 8601 date or datetime; naive values are UTC."""
    text = value.strip().replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {value!r}") from exc
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EXIT_CODES_HELP
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
        return USAGE
    sources = load_sources(args.network)
    if args.source:
        wanted = set(args.source)
        unknown = wanted - {s.id for s in sources}
        if unknown:
            sys.stderr.write(f"error: unknown {args.network} source(s): {', '.join(sorted(unknown))}\n")
            return USAGE
        sources = [s for s in sources if s.id in wanted]
    landing = LandingArea(args.landing or local_home() / "landing")
    run_id = args.run_id or f"cli-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    try:
        result = collect_window(
            args.network, args.start, args.end, conn=conn, sources=sources, landing=landing, run_id=run_id
        )
    except ApiError as exc:
        code, label = exit_code_for(exc)
        sys.stderr.write(f"error: {label}: {exc}\n")
        for skipped in getattr(exc, "skipped", []):
            sys.stderr.write(f"skipped source {skipped['source_id']}: {skipped['reason']}\n")
        return code
    except ValueError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return USAGE
    assert result.posts_path is not None  # written whenever collect_window returns
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
        return DAILY_LIMIT
    return OK
