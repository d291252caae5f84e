"""``python -m incidents case ...``: the operators' commands.

* ``list [--status S] [--municipality M] [--executor E] [--special] [--overdue] [--review] [--historical | --live] [--limit N]``
  (``--review``: cases with a post the analyser was unsure about, ``posts.needs_review``)
* ``show ID``                              the case, its posts and its audit trail
* ``assign ID EXECUTOR [--actor A] [--at ISO]``
* ``status ID STATUS [--reason R] [--actor A] [--at ISO]``   (``in_progress`` also records the first response)
* ``merge TARGET SOURCE [--actor A]``      the source's posts move to the target, the source is rejected
* ``split CASE POST [--actor A]``          the post moves into a new case
* ``reopen ID [--actor A]``                a historical case (from a backfilled window) becomes live:
  deadlines from now, notified if a hazard, escalated from now on

``--at`` records when an action happened (default: now), for answers given outside the system
(by phone, on paper); it cannot lie in the future. Every command prints a human-readable table,
or JSON with ``--json``. The database is
``--url`` or :func:`incidents.config.case_db_url`. Errors (unknown case, forbidden
transition) are reported on stderr with exit code 1.
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Engine, false, select, true
from sqlalchemy.orm import Session

from incidents.cases.create import reopen_historical, split
from incidents.cases.deadlines import TZ, as_utc
from incidents.cases.errors import CaseError
from incidents.cases.lifecycle import STATUSES, assign, merge_cases, transition
from incidents.db.models import Case, CaseEvent, CasePost, Post

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------- shared helpers


def add_common(parser: argparse.ArgumentParser) -> None:
    """``--url`` and ``--json``, shared by the case commands."""
    parser.add_argument("--url", help="SQLAlchemy URL of the case database (default: the configured one)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def engine_from(args: argparse.Namespace) -> Engine:
    from incidents.config import case_db_url
    from incidents.db.engine import get_engine

    return get_engine(getattr(args, "url", None) or case_db_url())


def default_actor() -> str:
    try:
        return f"operator:{getpass.getuser()}"
    except Exception:  # no login name in some containers
        return "operator"


def jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return as_utc(value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def local_time(value: datetime | None) -> str:
    return as_utc(value).astimezone(TZ).strftime("%Y-%m-%d %H:%M") if value else "—"


def write_json(data: Any) -> None:
    sys.stdout.write(json.dumps(jsonable(data), ensure_ascii=False, indent=2) + "\n")


def write_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    """A plain text table (times in Europe/Kirov)."""
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    out = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    out.append("  ".join("-" * w for w in widths))
    out += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    sys.stdout.write("\n".join(out) + "\n")


def _cell(value: Any) -> str:
    if isinstance(value, datetime):
        return local_time(value)
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else ""
    text = str(value).replace("\n", " ")
    return text if len(text) <= 60 else text[:57] + "..."


# ---------------------------------------------------------------------------- commands


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Sub-commands of ``incidents case``."""
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    ls = sub.add_parser("list", help="cases, newest first")
    ls.add_argument("--status", choices=STATUSES)
    ls.add_argument("--municipality", help="municipality code, e.g. 33602")
    ls.add_argument("--executor", help="executor code")
    ls.add_argument("--special", action="store_true", help="only cases under special control (hazards)")
    ls.add_argument("--overdue", action="store_true", help="only open cases past their resolution deadline")
    ls.add_argument(
        "--review",
        action="store_true",
        help="only cases with a low-confidence post (the analyser's needs_review)",
    )
    era = ls.add_mutually_exclusive_group()
    era.add_argument(
        "--historical",
        action="store_true",
        help="only historical cases (from backfilled windows: never notified or escalated automatically)",
    )
    era.add_argument("--live", action="store_true", help="only live cases (not historical)")
    ls.add_argument("--limit", type=int, default=50)
    show = sub.add_parser("show", help="a case with its posts and events")
    show.add_argument("case_id", type=int)
    a = sub.add_parser("assign", help="give a case to an executor")
    a.add_argument("case_id", type=int)
    a.add_argument("executor")
    st = sub.add_parser("status", help="change the status of a case")
    st.add_argument("case_id", type=int)
    st.add_argument("status", choices=STATUSES)
    st.add_argument("--reason", help="for rejected: not_confirmed, not_our_competence or duplicate")
    m = sub.add_parser("merge", help="merge SOURCE into TARGET")
    m.add_argument("target", type=int)
    m.add_argument("source", type=int)
    sp = sub.add_parser("split", help="move a post out of its case into a new case")
    sp.add_argument("case_id", type=int)
    sp.add_argument("post_id", type=int)
    ro = sub.add_parser(
        "reopen", help="make a historical case live: deadlines from now, notification and escalation on"
    )
    ro.add_argument("case_id", type=int)
    for p in (ls, show, a, st, m, sp, ro):
        add_common(p)
    for p in (a, st, m, sp, ro):
        p.add_argument("--actor", default=None, help="who does it (default: operator:<login>)")
    for p in (a, st):
        p.add_argument(
            "--at",
            type=_past_time,
            default=None,
            help="when it happened, ISO 8601 (default: now; an answer given outside the system)",
        )


_LIST_COLUMNS = (
    "id",
    "status",
    "priority",
    "special_control",
    "category",
    "topic",
    "municipality_code",
    "executor_code",
    "opened_at",
    "resolution_due",
    "escalation_level",
    "historical",
    "summary",
)


def list_cases(
    engine: Engine,
    *,
    status: str | None = None,
    municipality: str | None = None,
    executor: str | None = None,
    special: bool = False,
    overdue: bool = False,
    historical: bool | None = None,
    limit: int = 50,
    now: datetime | None = None,
    review: bool = False,
) -> list[dict[str, Any]]:
    """Cases matching the filters, newest first, as dicts (``historical``: True/False/None = both)."""
    query = select(Case.__table__).order_by(Case.opened_at.desc(), Case.id.desc()).limit(limit)
    if status:
        query = query.where(Case.status == status)
    if municipality:
        query = query.where(Case.municipality_code == municipality)
    if executor:
        query = query.where(Case.executor_code == executor)
    if special:
        query = query.where(Case.special_control == true())
    if historical is not None:
        query = query.where(Case.historical == (true() if historical else false()))
    if review:
        unsure = (
            select(CasePost.case_id)
            .join(Post, Post.id == CasePost.post_id)
            .where(Post.needs_review == true())
        )
        query = query.where(Case.id.in_(unsure))
    if overdue:
        query = query.where(
            Case.status.in_(("new", "assigned", "in_progress")),
            Case.resolution_due < as_utc(now or datetime.now(UTC)),
        )
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]


def case_details(engine: Engine, case_id: int) -> dict[str, Any]:
    """A case with its posts and events; :class:`CaseError` when it does not exist."""
    with engine.connect() as conn:
        row = conn.execute(select(Case.__table__).where(Case.id == case_id)).first()
        if row is None:
            raise CaseError(f"case {case_id} does not exist")
        posts = conn.execute(
            select(
                CasePost.post_id,
                CasePost.link,
                CasePost.score,
                Post.network,
                Post.published_at,
                Post.url,
                Post.text,
            )
            .join(Post, Post.id == CasePost.post_id)
            .where(CasePost.case_id == case_id)
            .order_by(Post.published_at)
        ).all()
        events = conn.execute(
            select(
                CaseEvent.at,
                CaseEvent.kind,
                CaseEvent.from_status,
                CaseEvent.to_status,
                CaseEvent.level,
                CaseEvent.actor,
                CaseEvent.details,
            )
            .where(CaseEvent.case_id == case_id)
            .order_by(CaseEvent.at, CaseEvent.id)
        ).all()
    return {
        "case": dict(row._mapping),
        "posts": [dict(p._mapping) for p in posts],
        "events": [dict(e._mapping) for e in events],
    }


def _show(engine: Engine, case_id: int, as_json: bool) -> None:
    data = case_details(engine, case_id)
    if as_json:
        write_json(data)
        return
    case = data["case"]
    lines = [f"Case #{case['id']}  {case['status']}  priority {case['priority']}"]
    for key in (
        "category",
        "topic",
        "municipality_code",
        "settlement_oktmo",
        "executor_code",
        "hazard_type",
        "special_control",
        "rejection_reason",
        "opened_at",
        "registered_at",
        "historical",
        "first_response_due",
        "first_response_at",
        "resolution_due",
        "resolved_at",
        "escalation_level",
        "operator_touched",
        "classifier_version",
    ):
        lines.append(f"  {key:<20} {_cell(case[key])}")
    if case.get("suggestion"):
        lines.append(f"  {'suggestion':<20} {json.dumps(jsonable(case['suggestion']), ensure_ascii=False)}")
    lines.append(f"  {'summary':<20} {case['summary']}")
    sys.stdout.write("\n".join(lines) + "\n\nPosts\n")
    write_table(data["posts"], ("post_id", "link", "score", "network", "published_at", "url", "text"))
    sys.stdout.write("\nEvents\n")
    write_table(data["events"], ("at", "kind", "from_status", "to_status", "level", "actor", "details"))


def _past_time(value: str) -> datetime:
    """An ISO 8601 moment (UTC without an offset) that is not in the future."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {value!r}") from exc
    parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    if parsed > datetime.now(UTC):
        raise argparse.ArgumentTypeError(f"{value} lies in the future")
    return parsed


def _result(case: Case) -> dict[str, Any]:
    return {
        "id": case.id,
        "status": case.status,
        "executor_code": case.executor_code,
        "rejection_reason": case.rejection_reason,
        "first_response_at": case.first_response_at,
        "resolved_at": case.resolved_at,
    }


def run(args: argparse.Namespace) -> int:
    engine = engine_from(args)
    actor = getattr(args, "actor", None) or default_actor()
    try:
        if args.action == "list":
            rows = list_cases(
                engine,
                status=args.status,
                municipality=args.municipality,
                executor=args.executor,
                special=args.special,
                overdue=args.overdue,
                historical=True if args.historical else (False if args.live else None),
                limit=args.limit,
                review=args.review,
            )
            if args.json:
                write_json(rows)
            else:
                write_table(rows, _LIST_COLUMNS)
            return 0
        if args.action == "show":
            _show(engine, args.case_id, args.json)
            return 0
        if args.action == "split":
            new_id = split(engine, args.case_id, args.post_id, actor)
            result: dict[str, Any] = {
                "from_case_id": args.case_id,
                "post_id": args.post_id,
                "new_case_id": new_id,
            }
        elif args.action == "reopen":
            reopen_historical(engine, args.case_id, actor)
            with Session(engine) as session:
                case = session.get(Case, args.case_id)
                assert case is not None
                result = _result(case) | {
                    "historical": case.historical,
                    "registered_at": case.registered_at,
                    "first_response_due": case.first_response_due,
                    "resolution_due": case.resolution_due,
                }
        else:
            with Session(engine, expire_on_commit=False) as session:
                if args.action == "assign":
                    case = assign(session, args.case_id, args.executor, actor, at=args.at)
                elif args.action == "status":
                    case = transition(
                        session, args.case_id, args.status, actor, reason=args.reason, at=args.at
                    )
                else:
                    case = merge_cases(session, args.target, args.source, actor)
                session.commit()
                result = _result(case)
    except CaseError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    if args.json:
        write_json(result)
    else:
        sys.stdout.write("  ".join(f"{k}={_cell(v)}" for k, v in result.items()) + "\n")
    return 0
