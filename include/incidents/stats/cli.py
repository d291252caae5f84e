"""``python -m incidents stats``: monthly statistics, the report files and the Open311 export.

Examples::

    python -m incidents stats --month 2019-01                      # report.html under the reports folder
    python -m incidents stats --month 2019-01 --format json        # the figures as JSON on stdout
    python -m incidents stats --month 2019-01 --format xlsx --out /tmp/r --recompute
    python -m incidents stats --month 2019-01 --open311 /tmp/open311

The figures are computed when the month has none stored yet, or always with ``--recompute``
(replacing the stored ones). The written file's path is printed on stdout.
"""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import date

from sqlalchemy import Engine

from incidents.config import local_home
from incidents.db.engine import make_engine
from incidents.stats.compute import MonthSummary, StatsError, compute_month, load_month, month_start
from incidents.stats.report import FORMATS, render_report

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``incidents stats``."""
    parser.add_argument(
        "--month", required=True, help="the month, YYYY-MM (a calendar month in Europe/Kirov)"
    )
    parser.add_argument("--format", choices=FORMATS, help="report file to write (default: html)")
    parser.add_argument("--out", help="folder or URI of the reports (default: <INCIDENTS_HOME>/reports)")
    parser.add_argument("--recompute", action="store_true", help="recompute and replace the stored figures")
    parser.add_argument("--open311", metavar="DIR", help="write the Open311 GeoReport v2 export to DIR")
    parser.add_argument("--url", help="SQLAlchemy URL of the case database (default: the configured one)")
    parser.add_argument("--run-id", help="recorded with the report (e.g. an Airflow run id)")


def _summary(engine: Engine, month: date, recompute: bool) -> MonthSummary:
    if not recompute:
        try:
            return load_month(engine, month)
        except StatsError:
            log.info("no figures stored for %s: computing them", f"{month:%Y-%m}")
    return compute_month(engine, month)


def run(args: argparse.Namespace) -> int:
    """Compute or load the month, then write what was asked for; 2 on bad input."""
    try:
        month = month_start(args.month)
    except StatsError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    engine = make_engine(args.url)
    try:
        if args.open311:
            from incidents.stats.open311 import export_open311

            exported = export_open311(engine, month, args.open311, run_id=args.run_id)
            for path in (exported.services, exported.requests, exported.requests_xml):
                if path:
                    sys.stdout.write(f"{path}\n")
            if not args.format:
                if args.recompute:
                    compute_month(engine, month)
                return 0
        summary = _summary(engine, month, args.recompute)
        fmt = args.format or "html"
        if fmt == "json" and not args.out:
            sys.stdout.write(summary.to_json(indent=1) + "\n")
            return 0
        out = args.out or str(local_home() / "reports")
        files = render_report(summary, out, run_id=args.run_id, formats=[fmt])
        sys.stdout.write(f"{files.as_dict()[fmt]}\n")
        return 0
    except StatsError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    finally:
        engine.dispose()
