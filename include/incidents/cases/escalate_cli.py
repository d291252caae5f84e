"""``python -m incidents escalate [--now ISO] [--deliver]``: climb the escalation ladder, send e-mails.

Escalates hazard and overdue cases (exactly once per level), then with ``--deliver``
delivers the pending notifications over SMTP from the ``smtp_default`` connection
(``AIRFLOW_CONN_SMTP_DEFAULT``, read like the SMTP provider does: implicit SSL unless the extra
``disable_ssl``, else STARTTLS unless ``disable_tls``;
the sender is the connection's ``from_email`` extra or ``INCIDENTS_MAIL_FROM``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from incidents.cases.cli import add_common, engine_from, write_json, write_table
from incidents.cases.route_cli import parse_time

if TYPE_CHECKING:
    from incidents.db.models import Notification


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--now", type=parse_time, help="the moment to escalate at (default: now)")
    parser.add_argument("--deliver", action="store_true", help="deliver pending notifications by SMTP")
    parser.add_argument("--max-attempts", type=int, default=5, help="delivery attempts before giving up")
    parser.add_argument("--batch", type=int, default=100, help="notifications delivered per run")
    add_common(parser)


def _truthy(value: object) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def sender_from_connection() -> Callable[[Notification], None]:
    """``send(notification)`` over SMTP, configured by the ``smtp_default`` connection."""
    from incidents.cases.notify import smtp_sender
    from incidents.config import get_connection, settings

    conn = get_connection("smtp_default")
    if conn is None or not conn.host:
        raise RuntimeError("--deliver needs AIRFLOW_CONN_SMTP_DEFAULT (smtp://user:password@host:port)")
    extra = conn.extra or {}
    sender = extra.get("from_email") or settings().mail_from or conn.login
    if not sender or "@" not in sender:
        raise RuntimeError(
            "no sender address: set from_email in the connection's extra or INCIDENTS_MAIL_FROM"
        )
    # the SMTP provider's semantics: SSL unless disable_ssl, STARTTLS unless disable_tls
    use_ssl = not _truthy(extra.get("disable_ssl", False))
    return smtp_sender(
        conn.host,
        int(conn.port or (465 if use_ssl else 25)),
        sender,
        use_tls=not use_ssl and not _truthy(extra.get("disable_tls", False)),
        login=conn.login or None,
        password=conn.password or None,
        use_ssl=use_ssl,
        timeout=float(extra.get("timeout", 30)),
    )


def run(args: argparse.Namespace) -> int:
    from incidents.cases.escalation import escalate
    from incidents.cases.notify import deliver_pending

    send = None
    if args.deliver:  # configuration errors before anything is written
        try:
            send = sender_from_connection()
        except RuntimeError as exc:
            sys.stderr.write(f"error: {exc}\n")
            return 1
    engine = engine_from(args)
    result = {"escalation": escalate(engine, now=args.now).as_dict()}
    if send is not None:
        result["delivery"] = deliver_pending(
            engine, send, max_attempts=args.max_attempts, batch=args.batch, now=args.now
        ).as_dict()
    if args.json:
        write_json(result)
    else:
        rows = [
            {"stage": stage, "metric": k, "value": v}
            for stage, data in result.items()
            for k, v in data.items()
        ]
        write_table(rows, ("stage", "metric", "value"))
    return 1 if args.deliver and result["delivery"]["gave_up"] else 0
