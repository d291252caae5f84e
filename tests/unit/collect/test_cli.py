"""``python -m incidents collect``: JSONL output, exit codes on auth and window errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from incidents.cli import main

from .conftest import load

START = datetime(2025, 3, 1, tzinfo=UTC)


def _sources(tmp_path, monkeypatch, network: str = "vk") -> None:
    path = tmp_path / "sources.yaml"
    path.write_text(
        "sources:\n"
        f'  - {{network: {network}, id: "-7", name: "Группа", municipality: "33701"}}\n'
        f'  - {{network: {network}, id: "-8", name: "Другая", municipality: "33701"}}\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("INCIDENTS_SOURCES_FILE", str(path))
    from incidents.sources import _load

    _load.cache_clear()


def _conn(monkeypatch, network: str, host: str, **extra) -> None:
    value = {"conn_type": "http", "host": host, "password": "tok", "extra": {"pseudonym_key": "k", **extra}}
    monkeypatch.setenv(f"AIRFLOW_CONN_{network.upper()}_DEFAULT", json.dumps(value))


def test_collect_writes_jsonl(server, tmp_path, monkeypatch) -> None:
    _sources(tmp_path, monkeypatch)
    _conn(monkeypatch, "vk", server.url + "/method")
    item = {"id": 3, "owner_id": -7, "from_id": 5, "date": int((START + timedelta(hours=1)).timestamp()),
            "text": "Нет воды [club1|в Слободском]", "comments": {"count": 0}}  # fmt: skip
    server.handler = lambda r: (200, {}, {"response": {"count": 1, "items": [item]}})
    out = tmp_path / "out" / "posts.jsonl"
    code = main(["collect", "vk", "--start", "2025-03-01", "--end", "2025-03-02T00:00:00Z", "--source", "-7",
                 "--out", str(out), "--landing", str(tmp_path / "landing")])  # fmt: skip
    assert code == 0
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [(r["external_id"], r["text"], r["published_at"]) for r in rows] == [
        ("-7_3", "Нет воды в Слободском", "2025-03-01T01:00:00Z")
    ]
    assert {r.params["owner_id"] for r in server.requests} == {"-7"}
    assert (tmp_path / "landing" / "vk" / "20250301T000000Z_20250302T000000Z" / "-7" / "00001.json").exists()


def test_collect_auth_error_exit_code(server, tmp_path, monkeypatch, capsys) -> None:
    _sources(tmp_path, monkeypatch)
    _conn(monkeypatch, "vk", server.url + "/method")
    server.handler = lambda r: (
        200,
        {},
        {"error": {"error_code": 5, "error_msg": "User authorization failed"}},
    )
    code = main(["collect", "vk", "--start", "2025-03-01", "--end", "2025-03-02", "--landing", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 3 and "vk_default" in err and "tok" not in err.replace("token", "")


def test_collect_window_not_available_exit_code(tmp_path, monkeypatch, capsys) -> None:
    _sources(tmp_path, monkeypatch, "twitter")
    _conn(monkeypatch, "twitter", "http://127.0.0.1:9")
    code = main(
        ["collect", "twitter", "--start", "2020-01-01", "--end", "2020-01-02", "--landing", str(tmp_path)]
    )
    assert code == 4 and "full_archive" in capsys.readouterr().err


def test_collect_configuration_errors(tmp_path, monkeypatch, capsys) -> None:
    _sources(tmp_path, monkeypatch)
    monkeypatch.delenv("AIRFLOW_CONN_VK_DEFAULT", raising=False)
    assert main(["collect", "vk", "--start", "2025-03-01", "--end", "2025-03-02"]) == 2
    assert "AIRFLOW_CONN_VK_DEFAULT" in capsys.readouterr().err
    _conn(monkeypatch, "vk", "http://127.0.0.1:9")
    assert main(["collect", "vk", "--start", "2025-03-01", "--end", "2025-03-02", "--source", "-99"]) == 2
    assert "unknown vk source" in capsys.readouterr().err


def _vk_error(code: int, message: str) -> dict:
    return {"error": {"error_code": code, "error_msg": message}}


WALL = [{"id": 9 - i, "owner_id": -7, "from_id": 5, "date": int((START + timedelta(hours=20 - i)).timestamp()),
         "text": f"пост {i}", "comments": {"count": 0}} for i in range(7)]  # fmt: skip


def _stuck_wall(request):
    offset = int(request.params["offset"])
    return 200, {}, {"response": {"count": 7, "items": WALL[:3] if offset == 0 else WALL[1:3]}}


@pytest.mark.parametrize(
    ("answer", "code", "words"),
    [
        (lambda r: (200, {}, _vk_error(5, "User authorization failed")), 3, "authentication refused"),
        (lambda r: (200, {}, _vk_error(29, "Rate limit reached")), 5, "remaining sources: -7, -8"),
        (lambda r: (503, {}, b"<html>503</html>"), 6, "retries exhausted"),
        (lambda r: (200, {}, load("vk", "error_14_captcha.json")), 7, "manual action needed"),
        (lambda r: (200, {}, load("vk", "error_7_permission_denied.json")), 8, "permission missing"),
        (lambda r: (200, {}, _vk_error(18, "User was deleted or banned")), 9, "all sources skipped"),
        (_stuck_wall, 10, "window incomplete"),
        (lambda r: (200, {}, load("vk", "error_100_param.json")), 11, "API error"),
    ],
)
def test_collect_exit_codes(server, tmp_path, monkeypatch, capsys, answer, code, words) -> None:
    from incidents.collect.cli import EXIT_CODES

    _sources(tmp_path, monkeypatch)
    _conn(monkeypatch, "vk", server.url + "/method", max_retries=2, backoff_base=0.001, backoff_cap=0.002)
    server.handler = answer
    argv = ["collect", "vk", "--start", "2025-03-01", "--end", "2025-03-02", "--landing", str(tmp_path / "l")]
    assert main(argv) == code
    err = capsys.readouterr().err
    assert words in err and code in EXIT_CODES
    if code == 8:
        assert "vk_default" in err and "scope 'wall'" in err
    if code == 9:
        assert "skipped source -7: " in err and "skipped source -8: " in err


def test_collect_help_lists_every_exit_code(capsys) -> None:
    from incidents.collect.cli import EXIT_CODES

    with pytest.raises(SystemExit):
        main(["collect", "--help"])
    out = capsys.readouterr().out
    assert len(set(EXIT_CODES)) == len(EXIT_CODES) == 12
    for code, text in EXIT_CODES.items():
        assert f"{code:>2}  {text}" in out
