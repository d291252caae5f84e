"""``python -m incidents db ...`` on a fresh SQLite database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from incidents.cli import main


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.sqlite'}"


def test_migrate_status_seed_downgrade(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "--url", url, "status", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["current_revision"] is None and info["up_to_date"] is False
    assert info["tables"]["municipalities"] is None

    assert main(["db", "--url", url, "seed"]) == 1  # refuses an unmigrated database
    assert "run `incidents db migrate` first" in capsys.readouterr().err

    assert main(["db", "--url", url, "migrate"]) == 0
    out = capsys.readouterr().out
    assert "migrated to" in out and "settlements 4288 changed" in out

    assert main(["db", "--url", url, "seed"]) == 0
    assert "settlements 0 changed" in capsys.readouterr().out

    assert main(["db", "--url", url, "status"]) == 0
    out = capsys.readouterr().out
    assert "up to date" in out
    assert any(line.split() == ["settlements", "4288"] for line in out.splitlines())
    assert any(line.split() == ["municipalities", "49"] for line in out.splitlines())
    assert any(line.split() == ["cases", "0"] for line in out.splitlines())

    assert main(["db", "--url", url, "downgrade"]) == 0
    assert "downgraded to base" in capsys.readouterr().out
    assert main(["db", "--url", url, "status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["tables"]["settlements"] is None


def test_migrate_without_seed(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "--url", url, "migrate", "--no-seed"]) == 0
    capsys.readouterr()
    assert main(["db", "--url", url, "status", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["up_to_date"] is True and info["tables"]["settlements"] == 0
