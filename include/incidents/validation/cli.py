"""``python -m incidents validate``: validate a JSONL batch of normalised posts with Great Expectations.

Reads JSONL (a file or stdin), writes the valid records as JSONL to stdout (or ``--out``),
the quarantined ones with their reasons to ``--quarantine`` (JSONL), and a summary to
stderr. Lines that are not JSON objects (even undecodable bytes) are quarantined, never
dropped. Exit status 1 when the failing share passes ``--threshold``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

log = logging.getLogger(__name__)


def _when(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 timestamp: {value!r}") from exc
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from incidents import NETWORKS

    parser.add_argument("--network", required=True, choices=NETWORKS)
    parser.add_argument("--start", required=True, type=_when, help="window start (ISO 8601, inclusive)")
    parser.add_argument("--end", required=True, type=_when, help="window end (ISO 8601, exclusive)")
    parser.add_argument("--in", dest="input", help="JSONL file to read (default: stdin)")
    parser.add_argument("--out", help="write the valid records here instead of stdout")
    parser.add_argument("--quarantine", help="write quarantined records (JSONL with reasons) here")
    parser.add_argument("--threshold", type=float, default=0.05, help="maximum failing share (default 0.05)")
    parser.add_argument("--docs", help="write the validation result JSON and HTML summary into this folder")
    parser.add_argument(
        "--source",
        action="append",
        dest="sources",
        help="a known source id (repeatable); default: the configured sources of the network",
    )
    parser.add_argument("--run-id", default=None)


def _read_lines(stream: IO[bytes]) -> list[Any]:
    """Each non-blank line as text, or as bytes when it is not UTF-8 (the gate quarantines those)."""
    items: list[Any] = []
    for line in stream:
        line = line.rstrip(b"\r\n")
        if not line.strip():
            continue
        try:
            items.append(line.decode("utf-8"))
        except UnicodeDecodeError:
            items.append(line)
    return items


def run(args: argparse.Namespace) -> int:
    from incidents.validation.gate import validate_batch

    if args.sources:
        known = set(args.sources)
    else:
        from incidents.sources import load_sources

        known = {s.id for s in load_sources(args.network)}
    if args.input and args.input != "-":
        with open(args.input, "rb") as fh:
            items = _read_lines(fh)
    else:
        items = _read_lines(sys.stdin.buffer)
    report = validate_batch(
        items,
        network=args.network,
        window_start=args.start,
        window_end=args.end,
        known_sources=known,
        max_failed_share=args.threshold,
        docs_dir=Path(args.docs) if args.docs else None,
        run_id=args.run_id,
    )
    out: IO[str] = open(args.out, "w", encoding="utf-8") if args.out else sys.stdout
    try:
        for rec in report.valid_records:
            out.write(json.dumps(rec, ensure_ascii=False, default=str) + "\n")
    finally:
        if out is not sys.stdout:
            out.close()
    if args.quarantine:
        with open(args.quarantine, "w", encoding="utf-8") as fh:
            for q in report.quarantined:
                fh.write(json.dumps(q.to_json_dict(), ensure_ascii=False) + "\n")
    elif report.quarantined:
        log.warning(
            "%d quarantined records not written anywhere (use --quarantine FILE)", len(report.quarantined)
        )
    sys.stderr.write(report.summary() + "\n")
    if report.docs_path:
        sys.stderr.write(f"validation docs: {report.docs_path}\n")
    return 0 if report.success else 1
