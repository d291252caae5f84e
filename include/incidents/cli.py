"""Command line: ``python -m incidents <command>``; every pipeline stage is reachable here.

Each command lives in its own module exposing ``add_arguments(parser)`` and
``run(args) -> int``; they are imported only when chosen, so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

COMMANDS: dict[str, tuple[str, str]] = {
    "db": ("incidents.db.cli", "migrate, seed and inspect the case database"),
    "collect": ("incidents.collect.cli", "collect one network's posts of a window as JSONL"),
    "validate": ("incidents.validation.cli", "validate a JSONL batch with Great Expectations"),
    "classify": ("incidents.analysis.cli", "classify JSONL posts from stdin to stdout"),
    "train": ("incidents.analysis.training", "train the analyser's model from the training data"),
    "build-lexicon": (
        "incidents.analysis.morph",
        "rebuild the analyser's word lexicon (after upgrading pymorphy3)",
    ),
    "evaluate": ("incidents.analysis.evaluate", "measure the analyser (--blind: on the blind test set)"),
    "route": ("incidents.cases.route_cli", "route analysed incident posts into cases"),
    "case": ("incidents.cases.cli", "operators' commands: list, show, assign, status, merge, split"),
    "escalate": ("incidents.cases.escalate_cli", "escalate hazard and overdue cases, deliver notifications"),
    "stats": ("incidents.stats.cli", "monthly statistics and reports"),
}


def build_parser(
    commands: dict[str, tuple[str, str]] = COMMANDS, prog: str = "incidents", description: str = ""
) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description or __doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_module, help_text) in commands.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(
    argv: list[str] | None = None,
    commands: dict[str, tuple[str, str]] = COMMANDS,
    prog: str = "incidents",
    description: str = "",
) -> int:
    """Dispatch ``argv`` to one of ``commands`` (name -> (module, help)); returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(commands, prog, description)
    if not argv or argv[0] in ("-h", "--help") or (argv[0] not in commands and not argv[0].startswith("-")):
        parser.print_help(sys.stderr)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    verbose = False
    while argv and argv[0].startswith("-"):
        flag = argv.pop(0)
        if flag in ("-v", "--verbose"):
            verbose = True
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    name = argv.pop(0)
    module = importlib.import_module(commands[name][0])
    sub = argparse.ArgumentParser(prog=f"{prog} {name}", description=commands[name][1])
    module.add_arguments(sub)
    args = sub.parse_args(argv)
    return int(module.run(args) or 0)
