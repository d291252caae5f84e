"""The notification outbox: composing, enqueueing and delivering e-mails about cases.

Notifications are written to the ``notifications`` table in the same transaction as the
case event that causes them (routing of a hazard, an escalation step), with a unique
``idempotency_key``, so a rerun never enqueues one twice. :func:`deliver_pending` then
delivers them through a pluggable ``send(notification)`` callable (:func:`smtp_sender`
here, the SMTP provider's notifier in Airflow).

Delivery guarantees: each notification is claimed in its own short transaction that
holds a row lock while it is sent (PostgreSQL: ``SELECT ... FOR UPDATE SKIP LOCKED``, so
overlapping deliverers take different rows; SQLite: ``BEGIN IMMEDIATE``, one deliverer at
a time), and is marked ``sent`` in that transaction. A failure increments ``attempts``,
records ``last_error`` and schedules the next attempt with exponential backoff
(:func:`backoff`); after ``max_attempts`` the row becomes ``failed`` and the case gets a
``notification_failed`` event. Nothing is lost; a message can only be repeated if the
process dies between the SMTP server's acceptance and the commit (at-least-once).
"""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from typing import Any

from sqlalchemy import Connection, Engine, Row, and_, or_, select, update
from sqlalchemy.orm import Session

from incidents.cases.deadlines import TZ, as_utc
from incidents.cases.sql import begin_write, insert_ignore
from incidents.db.models import (
    Case,
    CaseEvent,
    CasePost,
    Executor,
    Municipality,
    Notification,
    Post,
    Topic,
    table_of,
)

log = logging.getLogger(__name__)

MAX_POST_LINKS = 10
MAX_ERROR_CHARS = 2000

STATUS_RU = {
    "new": "новый",
    "assigned": "назначен исполнителю",
    "in_progress": "в работе",
    "resolved": "решён",
    "rejected": "отклонён",
}
PRIORITY_RU = {"normal": "обычный", "high": "высокий", "critical": "критический"}


# ---------------------------------------------------------------------------- composing


def _hazard_names() -> dict[str, str]:
    from incidents.reference import load_rubricator

    return dict(load_rubricator().hazard_types)


def load_case_contexts(conn: Connection | Session, case_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """Everything a message about each case needs, read in three bulk queries."""
    ids = sorted(set(case_ids))
    if not ids:
        return {}
    out: dict[int, dict[str, Any]] = {}
    hazards = _hazard_names()
    for i in range(0, len(ids), 500):
        part = ids[i : i + 500]
        rows = conn.execute(
            select(
                Case.__table__,
                Topic.name.label("topic_name"),
                Municipality.short_name.label("municipality_name"),
                Executor.name.label("executor_name"),
            )
            .outerjoin(Topic, Topic.slug == Case.topic)
            .outerjoin(Municipality, Municipality.code == Case.municipality_code)
            .outerjoin(Executor, Executor.code == Case.executor_code)
            .where(Case.id.in_(part))
        ).all()
        for row in rows:
            case = row  # the case's columns, plus the three labels
            out[case.id] = {
                "id": case.id,
                "category": case.category,
                "topic": case.topic,
                "topic_name": row.topic_name,
                "hazard_type": case.hazard_type,
                "hazard_name": hazards.get(case.hazard_type or ""),
                "municipality_code": case.municipality_code,
                "municipality_name": row.municipality_name,
                "executor_code": case.executor_code,
                "executor_name": row.executor_name,
                "priority": case.priority,
                "special_control": case.special_control,
                "status": case.status,
                "opened_at": case.opened_at,
                "registered_at": case.registered_at,
                "historical": bool(case.historical),
                "first_response_due": case.first_response_due,
                "resolution_due": case.resolution_due,
                "summary": case.summary,
                "escalation_level": case.escalation_level,
                "urls": [],
            }
        links = conn.execute(
            select(CasePost.case_id, Post.url, Post.network)
            .join(Post, Post.id == CasePost.post_id)
            .where(CasePost.case_id.in_(part))
            .order_by(CasePost.case_id, Post.published_at)
        ).all()
        for case_id, url, network in links:
            ctx = out.get(case_id)
            if ctx is not None and url and len(ctx["urls"]) < MAX_POST_LINKS:
                ctx["urls"].append(f"{network}: {url}")
    return out


def _local(value: datetime | None) -> str:
    if value is None:
        return "—"
    return as_utc(value).astimezone(TZ).strftime("%d.%m.%Y %H:%M") + " (Киров)"


def compose(ctx: Mapping[str, Any], *, reason: str, level: int | None = None) -> tuple[str, str]:
    """Subject and body (Russian, plain text) of a message about a case.

    ``reason``: ``opened`` (a new hazard case) or ``escalated`` (with ``level``), or a
    free phrase; the subject looks like
    ``[ОСОБЫЙ КОНТРОЛЬ] Открытый люк — Кирово-Чепецкий район, случай #123``.
    """
    what = ctx.get("hazard_name") or ctx.get("topic_name") or ctx.get("category") or "обращение"
    where = ctx.get("municipality_name") or "муниципалитет не определён"
    tags = []
    if ctx.get("special_control"):
        tags.append("[ОСОБЫЙ КОНТРОЛЬ]")
    if reason == "escalated" and level:
        tags.append(f"[ЭСКАЛАЦИЯ, уровень {level}]")
    subject = f"{' '.join(tags) + ' ' if tags else ''}{what} — {where}, случай #{ctx['id']}"
    lead = {
        "opened": "Открыт случай, требующий немедленной реакции.",
        "escalated": f"Случай эскалирован на уровень {level}: сроки реакции нарушены или угроза не снята.",
    }.get(reason, reason)
    lines = [
        lead,
        "",
        f"Случай: #{ctx['id']}",
        f"Тема: {ctx.get('topic_name') or ctx.get('topic') or '—'} (категория {ctx.get('category')})",
        f"Муниципалитет: {where}",
        f"Исполнитель: {ctx.get('executor_name') or ctx.get('executor_code')}",
        f"Приоритет: {PRIORITY_RU.get(ctx.get('priority') or '', ctx.get('priority'))}",
        f"Статус: {STATUS_RU.get(ctx.get('status') or '', ctx.get('status'))}",
        f"Открыт: {_local(ctx.get('opened_at'))}",
        f"Срок первого ответа: {_local(ctx.get('first_response_due'))}",
        f"Срок решения: {_local(ctx.get('resolution_due'))}",
    ]
    if ctx.get("hazard_name"):
        lines.append(f"Угроза: {ctx['hazard_name']}")
    lines += ["", "Текст обращения:", (ctx.get("summary") or "").strip(), ""]
    urls = ctx.get("urls") or []
    if urls:
        lines.append("Публикации:")
        lines += [f"  {u}" for u in urls]
    return subject[:500], "\n".join(lines)


def notification_row(
    *,
    case_id: int,
    recipient: str,
    subject: str,
    body: str,
    key: str,
    now: datetime,
    channel: str = "email",
) -> dict[str, Any]:
    """A ``notifications`` row for :func:`incidents.cases.sql.insert_ignore`."""
    return {
        "case_id": case_id,
        "channel": channel,
        "recipient": recipient,
        "subject": subject,
        "body": body,
        "status": "pending",
        "attempts": 0,
        "idempotency_key": key[:200],
        "created_at": now,
    }


# ---------------------------------------------------------------------------- delivery


@dataclass
class DeliverySummary:
    """What one :func:`deliver_pending` run did."""

    sent: int = 0
    failed_now: int = 0
    """Attempts that failed this run (the notification stays pending or gave up)."""
    gave_up: int = 0
    """Notifications that reached ``max_attempts`` this run and are now ``failed``."""
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def backoff(attempts: int) -> timedelta:
    """Wait before the next attempt after ``attempts`` failures: 1, 2, 4, ... minutes, at most 1 h."""
    return timedelta(minutes=min(2 ** max(attempts - 1, 0), 60))


def _claim_one(conn: Connection, now: datetime, exclude: set[int]) -> Row[Any] | None:
    due = or_(Notification.next_attempt_at.is_(None), Notification.next_attempt_at <= now)
    query = (
        select(Notification.__table__)
        .where(and_(Notification.status == "pending", due))
        .order_by(Notification.id)
        .limit(1)
    )
    if exclude:
        query = query.where(Notification.id.not_in(exclude))
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return conn.execute(query).first()


def deliver_pending(
    engine: Engine,
    send: Callable[[Notification], None],
    *,
    max_attempts: int = 5,
    batch: int = 100,
    now: datetime | None = None,
) -> DeliverySummary:
    """Deliver up to ``batch`` due pending notifications with ``send`` (see the module docstring)."""
    if max_attempts < 1:
        raise ValueError("max_attempts must be >= 1")
    now = as_utc(now or datetime.now(UTC))
    summary = DeliverySummary()
    seen: set[int] = set()
    for _ in range(batch):
        with engine.connect() as conn:
            with conn.begin():
                begin_write(conn)
                row = _claim_one(conn, now, seen)
                if row is None:
                    break
                note = Notification(**dict(row._mapping))
                seen.add(note.id)
                attempts = (note.attempts or 0) + 1
                try:
                    send(note)
                except Exception as exc:  # any failure of the transport is recorded
                    error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]
                    summary.failed_now += 1
                    summary.errors.append(f"#{note.id} {note.recipient}: {error}")
                    gave_up = attempts >= max_attempts
                    conn.execute(
                        update(Notification)
                        .where(Notification.id == note.id)
                        .values(
                            attempts=attempts,
                            last_error=error,
                            status="failed" if gave_up else "pending",
                            next_attempt_at=None if gave_up else now + backoff(attempts),
                        )
                    )
                    log.warning(
                        "notification %s to %s failed (%d/%d): %s",
                        note.id,
                        note.recipient,
                        attempts,
                        max_attempts,
                        error,
                    )
                    if gave_up:
                        summary.gave_up += 1
                        if note.case_id is not None:
                            insert_ignore(
                                conn,
                                table_of(CaseEvent),
                                [
                                    {
                                        "case_id": note.case_id,
                                        "kind": "notification_failed",
                                        "actor": "delivery",
                                        "at": now,
                                        "details": {
                                            "notification_id": note.id,
                                            "recipient": note.recipient,
                                            "attempts": attempts,
                                            "error": error,
                                        },
                                        "idempotency_key": f"notification_failed:{note.id}",
                                    }
                                ],
                            )
                    continue
                conn.execute(
                    update(Notification)
                    .where(Notification.id == note.id)
                    .values(status="sent", sent_at=now, attempts=attempts, next_attempt_at=None)
                )
                if note.case_id is not None:
                    insert_ignore(
                        conn,
                        table_of(CaseEvent),
                        [
                            {
                                "case_id": note.case_id,
                                "kind": "notified",
                                "actor": "delivery",
                                "at": now,
                                "details": {
                                    "notification_id": note.id,
                                    "recipient": note.recipient,
                                    "subject": note.subject,
                                },
                                "idempotency_key": f"notified:{note.id}",
                            }
                        ],
                    )
                summary.sent += 1
    log.info(
        "delivered %d notification(s), %d failed attempt(s), %d given up",
        summary.sent,
        summary.failed_now,
        summary.gave_up,
    )
    return summary


def smtp_sender(
    host: str,
    port: int,
    sender: str,
    use_tls: bool = False,
    login: str | None = None,
    password: str | None = None,
    *,
    use_ssl: bool = False,
    timeout: float = 30.0,
    sender_name: str = "Центр управления регионом",
) -> Callable[[Notification], None]:
    """A ``send(notification)`` that delivers e-mail over SMTP (UTF-8 subject and body).

    ``use_tls`` upgrades with STARTTLS, ``use_ssl`` connects over implicit TLS (port 465).
    Raises on any failure, so that :func:`deliver_pending` records it and retries.
    """

    def send(notification: Notification) -> None:
        if notification.channel != "email":
            raise ValueError(f"channel {notification.channel!r} cannot be sent by e-mail")
        msg = EmailMessage()
        msg["Subject"] = notification.subject
        msg["From"] = formataddr((sender_name, sender))
        msg["To"] = notification.recipient
        msg["Message-ID"] = make_msgid(domain=sender.rsplit("@", 1)[-1] or None)
        msg["X-Incidents-Notification"] = notification.idempotency_key
        msg.set_content(notification.body, charset="utf-8")
        factory = smtplib.SMTP_SSL if use_ssl else smtplib.SMTP
        with factory(host, port, timeout=timeout) as smtp:
            if use_tls and not use_ssl:
                smtp.starttls()
            if login:
                smtp.login(login, password or "")
            smtp.send_message(msg)

    return send
