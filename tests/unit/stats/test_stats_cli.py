"""``python -m incidents stats`` end to end on the fixed dataset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import Engine, update

from incidents.cli import main
from incidents.db.models import Case


def _url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def test_json_to_stdout_computes_when_missing(dataset: Engine, capsys: pytest.CaptureFixture) -> None:
    assert main(["stats", "--url", _url(dataset), "--month", "2019-01", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["month"] == "2019-01"
    assert doc["region"]["posts_collected"] == 6
    assert doc["region"]["cases_resolved"] == 3


def test_stored_figures_until_recompute(
    dataset: Engine, capsys: pytest.CaptureFixture, tmp_path: Path
) -> None:
    url = _url(dataset)
    assert main(["stats", "--url", url, "--month", "2019-01", "--format", "json"]) == 0
    capsys.readouterr()
    with dataset.begin() as conn:
        conn.execute(update(Case).where(Case.id == 2).values(resolved_at=Case.opened_at))
    assert main(["stats", "--url", url, "--month", "2019-01", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["region"]["cases_resolved"] == 3  # stored figures
    args = [
        "stats",
        "--url",
        url,
        "--month",
        "2019-01",
        "--format",
        "xlsx",
        "--out",
        str(tmp_path),
        "--recompute",
    ]
    assert main(args) == 0
    path = capsys.readouterr().out.strip()
    assert path == str(tmp_path / "2019-01" / "report.xlsx")
    summary = {r[0]: r[1] for r in load_workbook(path)["Summary"].iter_rows(min_row=2, values_only=True)}
    assert summary["Решено обращений"] == 4  # C2 now resolved in January
    assert sorted(p.name for p in (tmp_path / "2019-01").iterdir()) == ["report.xlsx"]


def test_html_to_default_folder_and_open311(
    dataset: Engine, capsys: pytest.CaptureFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INCIDENTS_HOME", str(tmp_path / "home"))
    assert main(["stats", "--url", _url(dataset), "--month", "2019-01"]) == 0
    html = Path(capsys.readouterr().out.strip())
    assert html == tmp_path / "home" / "reports" / "2019-01" / "report.html"
    assert 'id="chart-municipalities"' in html.read_text(encoding="utf-8")
    assert (
        main(["stats", "--url", _url(dataset), "--month", "2019-01", "--open311", str(tmp_path / "o")]) == 0
    )
    printed = capsys.readouterr().out.split()
    assert [Path(p).name for p in printed] == ["services.json", "requests.json", "requests.xml"]
    assert len(json.loads(Path(printed[1]).read_text(encoding="utf-8"))) == 6


def test_bad_month(dataset: Engine, capsys: pytest.CaptureFixture) -> None:
    assert main(["stats", "--url", _url(dataset), "--month", "2019/01"]) == 2
    assert "YYYY-MM" in capsys.readouterr().err
