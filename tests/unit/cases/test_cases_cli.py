"""The ``route``, ``case`` and ``escalate`` commands end to end on the case database."""

from __future__ import annotations

import json
import socket

import pytest
from cases_helpers import BASE_TIME
from sqlalchemy import Engine, select

from incidents.cli import main
from incidents.db.models import Case, CaseEvent


def _url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_route_list_show_and_operate(engine: Engine, make_posts, capsys) -> None:
    url = _url(engine)
    a, b, c = make_posts(
        {"text": "Яма на Ленина у дома 3", "municipality_code": "33602"},
        {"text": "Не вывозят мусор во дворе", "category": "waste", "municipality_code": "33603"},
        {
            "text": "Открытый люк у школы",
            "category": "improvement",
            "topic": "improvement_open_manhole",
            "hazard": True,
            "municipality_code": "33603",
        },
    )
    code, out, _ = _run(capsys, "route", "--url", url, "--now", BASE_TIME.isoformat(), "--json")
    assert code == 0 and json.loads(out)["opened"] == 3

    code, out, _ = _run(capsys, "case", "list", "--url", url, "--special", "--json")
    special = json.loads(out)
    assert code == 0 and len(special) == 1 and special[0]["priority"] == "critical"
    hazard_id = special[0]["id"]
    code, out, _ = _run(capsys, "case", "list", "--url", url, "--municipality", "33603")
    assert code == 0 and out.count("\n") == 4 and "adm_33603" in out  # header, rule, two cases

    code, out, _ = _run(capsys, "case", "show", str(hazard_id), "--url", url)
    assert code == 0 and f"Case #{hazard_id}" in out and "opened" in out and "origin" in out

    with engine.connect() as conn:
        ids = dict(conn.execute(select(Case.summary, Case.id)).all())
    road, waste = ids["Яма на Ленина у дома 3"], ids["Не вывозят мусор во дворе"]
    code, out, _ = _run(
        capsys, "case", "status", str(road), "in_progress", "--url", url, "--actor", "op:k", "--json"
    )
    assert code == 0 and json.loads(out)["status"] == "in_progress" and json.loads(out)["first_response_at"]
    code, _, err = _run(capsys, "case", "status", str(road), "new", "--url", url)
    assert code == 1 and "not allowed" in err
    code, _, err = _run(capsys, "case", "status", str(waste), "rejected", "--url", url)
    assert code == 1 and "needs a reason" in err
    code, out, _ = _run(capsys, "case", "assign", str(waste), "min_ecology", "--url", url, "--actor", "op:k")
    assert code == 0 and "executor_code=min_ecology" in out
    code, out, _ = _run(capsys, "case", "merge", str(hazard_id), str(waste), "--url", url, "--json")
    assert code == 0 and json.loads(out)["id"] == hazard_id
    code, out, _ = _run(capsys, "case", "split", str(hazard_id), str(b), "--url", url, "--json")
    assert code == 0 and json.loads(out)["new_case_id"] not in (hazard_id, waste)
    code, _, err = _run(capsys, "case", "show", "999999", "--url", url)
    assert code == 1 and "does not exist" in err
    with engine.connect() as conn:
        actors = set(conn.execute(select(CaseEvent.actor).where(CaseEvent.kind == "status")).scalars())
    assert actors == {"op:k"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_escalate_and_deliver(engine: Engine, make_posts, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message

    received = []

    class Keep(Message):
        def handle_message(self, message) -> None:
            received.append(message)

    url = _url(engine)
    make_posts(
        {
            "text": "Оборван провод на улице Мира",
            "category": "power",
            "topic": "power_bare_wires",
            "hazard": True,
        }
    )
    assert _run(capsys, "route", "--url", url, "--now", BASE_TIME.isoformat())[0] == 0
    code, _, err = _run(capsys, "escalate", "--url", url, "--now", BASE_TIME.isoformat(), "--deliver")
    if "AIRFLOW_CONN_SMTP_DEFAULT" not in err:
        pytest.fail(f"expected a configuration error, got {code} {err!r}")
    port = _free_port()
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMTP_DEFAULT",
        json.dumps(
            {
                "conn_type": "smtp",
                "host": "127.0.0.1",
                "port": port,
                "extra": {"disable_ssl": True, "disable_tls": True, "from_email": "cur@kirov.example.org"},
            }
        ),
    )
    controller = Controller(Keep(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        code, out, _ = _run(
            capsys, "escalate", "--url", url, "--now", BASE_TIME.isoformat(), "--deliver", "--json"
        )
    finally:
        controller.stop()
    result = json.loads(out)
    assert code == 0 and result["escalation"]["by_level"] == {"1": 1}
    # 2 on opening (executor, duty officer) + 2 on escalation level 1
    assert result["delivery"]["sent"] == 4 and len(received) == 4
