"""``python -m incidents_dev sandbox serve|truth``: run the local network APIs, dump ground truth."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

from incidents_dev.sandbox.faults import FaultConfig
from incidents_dev.sandbox.generator import DEFAULT_RATE, generate

log = logging.getLogger(__name__)


def _when(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    serve = sub.add_parser("serve", help="serve the five APIs and print the connection environment")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=0, help="0 picks a free port")
    serve.add_argument("--seed", type=int, default=0)
    serve.add_argument("--rate", type=float, default=DEFAULT_RATE, help="posts per source per day")
    serve.add_argument(
        "--fault-rate", type=float, default=0.0, help="share of requests with a transient fault"
    )
    serve.add_argument(
        "--now",
        type=_when,
        default=None,
        help="fixed server clock (ISO 8601); default: wall clock. Everything published before it "
        "(since the generated world's start) is served: there is no history window",
    )
    serve.add_argument("--env-file", type=Path, default=None, help="also write KEY='VALUE' lines here")
    serve.add_argument("--pseudonym-key", default="sandbox-pseudonym-key")
    truth = sub.add_parser("truth", help="write the ground truth of a window as JSONL")
    truth.add_argument("--start", type=_when, required=True)
    truth.add_argument("--end", type=_when, required=True)
    truth.add_argument("--seed", type=int, default=0)
    truth.add_argument("--rate", type=float, default=DEFAULT_RATE)
    truth.add_argument("--now", type=_when, default=None, help="leave out items published after this")
    truth.add_argument("--out", type=Path, default=None, help="file to write (default stdout)")


def _serve(args: argparse.Namespace) -> int:
    from incidents_dev.sandbox.server import SandboxServer

    faults = FaultConfig.transient(args.fault_rate, seed=args.seed) if args.fault_rate else None
    server = SandboxServer(
        seed=args.seed,
        now=args.now,
        faults=faults,
        host=args.host,
        port=args.port,
        rate_per_source_per_day=args.rate,
    )
    server.start()
    env = server.connection_env(pseudonym_key=args.pseudonym_key)
    lines = [f"{key}='{value}'" for key, value in env.items()]
    sys.stdout.write(
        f"# sandbox at {server.base_url} (seed {args.seed}); admin: {server.base_url}/_admin/health\n"
    )
    sys.stdout.write("\n".join(f"export {line}" for line in lines) + "\n")
    sys.stdout.flush()
    if args.env_file:
        args.env_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
        log.info("connection environment written to %s", args.env_file)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


def _truth(args: argparse.Namespace) -> int:
    if args.end <= args.start:
        log.error("--end must be after --start")
        return 2
    out = args.out.open("w", encoding="utf-8") if args.out else sys.stdout
    count = 0
    try:
        for item in generate(
            args.start, args.end, seed=args.seed, rate_per_source_per_day=args.rate, now=args.now
        ):
            if item.deleted:
                continue
            out.write(json.dumps(item.truth(), ensure_ascii=False, sort_keys=True) + "\n")
            count += 1
    finally:
        if args.out:
            out.close()
    log.info("%d ground-truth records written", count)
    return 0


def run(args: argparse.Namespace) -> int:
    if args.action == "serve":
        return _serve(args)
    return _truth(args)
