"""The outbox: retries with backoff, giving up, never sending twice; SMTP delivery."""

from __future__ import annotations

import email
import socket
import threading
import time
from collections import Counter
from datetime import timedelta
from email.header import decode_header, make_header

import pytest
from cases_helpers import BASE_TIME, add_posts, clear, post_row, run_concurrently
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from incidents.cases.notify import deliver_pending, smtp_sender
from incidents.cases.routing import route_posts
from incidents.db.models import CaseEvent, Notification

HAZARD = {
    "category": "improvement",
    "topic": "improvement_open_manhole",
    "hazard": True,
    "hazard_type": "open_manhole",
    "text": "Открытый люк у подъезда, ребёнок чуть не упал",
}


def _outbox(engine: Engine) -> list[Notification]:
    with Session(engine) as s:
        return list(s.execute(select(Notification).order_by(Notification.id)).scalars())


def test_retries_backoff_give_up_and_no_double_send(engine: Engine, make_posts) -> None:
    make_posts(HAZARD)
    route_posts(engine, now=BASE_TIME)
    notes = _outbox(engine)
    assert len(notes) == 2
    bad = next(n.recipient for n in notes if n.recipient.startswith("duty"))
    sent: Counter[str] = Counter()

    def send(n: Notification) -> None:
        if n.recipient == bad:
            raise ConnectionRefusedError("smtp down")
        sent[n.idempotency_key] += 1

    first = deliver_pending(engine, send, max_attempts=3, now=BASE_TIME)
    assert (first.sent, first.failed_now, first.gave_up) == (1, 1, 0)
    # within the backoff nothing is retried, and the sent one is never sent again
    again = deliver_pending(engine, send, max_attempts=3, now=BASE_TIME + timedelta(seconds=30))
    assert (again.sent, again.failed_now) == (0, 0)
    failing = next(n for n in _outbox(engine) if n.recipient == bad)
    assert failing.status == "pending" and failing.attempts == 1 and "smtp down" in failing.last_error
    later = BASE_TIME
    for attempt in (2, 3):
        later += timedelta(hours=2)
        result = deliver_pending(engine, send, max_attempts=3, now=later)
        assert result.failed_now == 1 and result.gave_up == (1 if attempt == 3 else 0)
    final = {n.recipient: n for n in _outbox(engine)}
    assert final[bad].status == "failed" and final[bad].attempts == 3
    ok = next(n for r, n in final.items() if r != bad)
    assert ok.status == "sent" and ok.sent_at is not None and ok.attempts == 1
    assert sum(sent.values()) == 1
    assert deliver_pending(engine, send, now=later + timedelta(days=1)).sent == 0
    with engine.connect() as conn:
        kinds = Counter(conn.execute(select(CaseEvent.kind)).scalars())
    assert kinds["notified"] == 1 and kinds["notification_failed"] == 1


@pytest.mark.postgres
def test_overlapping_deliverers_never_double_send(pg_engine: Engine) -> None:
    clear(pg_engine)
    try:
        add_posts(
            pg_engine,
            [post_row(**HAZARD, municipality_code=m) for m in ("33602", "33603", "33605", "33606", "33607")],
        )
        route_posts(pg_engine, now=BASE_TIME)
        total = len(_outbox(pg_engine))
        assert total == 10
        calls: Counter[int] = Counter()
        lock = threading.Lock()

        def send(n: Notification) -> None:
            with lock:
                calls[n.id] += 1
            time.sleep(0.02)

        run_concurrently(3, lambda: deliver_pending(pg_engine, send, now=BASE_TIME))
        assert len(calls) == total and set(calls.values()) == {1}
        assert {n.status for n in _outbox(pg_engine)} == {"sent"}
    finally:
        clear(pg_engine)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_smtp_sender_delivers_utf8_message(engine: Engine, make_posts) -> None:
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message

    received: list[email.message.Message] = []

    class Keep(Message):
        def handle_message(self, message) -> None:
            received.append(message)

    port = _free_port()
    controller = Controller(Keep(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        make_posts({**HAZARD, "municipality_code": "33618"})
        route_posts(engine, now=BASE_TIME)
        send = smtp_sender("127.0.0.1", port, "incidents@kirov-region.example.org")
        result = deliver_pending(engine, send, now=BASE_TIME)
        assert result.sent == 2 and result.failed_now == 0
    finally:
        controller.stop()
    assert len(received) == 2
    msg = received[0]
    subject = str(make_header(decode_header(msg["Subject"])))
    assert subject.startswith("[ОСОБЫЙ КОНТРОЛЬ] ") and "Кирово-Чепецкий район, случай #" in subject
    body = msg.get_payload(decode=True).decode("utf-8")
    assert "Срок первого ответа" in body and "(Киров)" in body and "https://vk.com/wall" in body
    assert msg["X-Incidents-Notification"].startswith("notify:")


def test_smtp_failure_is_recorded(engine: Engine, make_posts) -> None:
    make_posts(HAZARD)
    route_posts(engine, now=BASE_TIME)
    send = smtp_sender("127.0.0.1", _free_port(), "incidents@kirov-region.example.org", timeout=2)
    result = deliver_pending(engine, send, now=BASE_TIME)
    assert result.sent == 0 and result.failed_now == 2
    assert all(n.last_error and n.status == "pending" for n in _outbox(engine))
