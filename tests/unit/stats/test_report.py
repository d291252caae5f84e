"""The monthly report files: HTML charts and tables, CSV, XLSX, JSON, the e-mail, atomic reruns."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import Engine, select

from incidents.db.models import MonthlyReport
from incidents.stats.compute import MonthSummary, compute_month
from incidents.stats.report import render_report, report_email

NOW = datetime(2019, 6, 1, tzinfo=UTC)
JAN = date(2019, 1, 1)


class Outline(HTMLParser):
    """Sections with their charts, and the text of every table's cells."""

    def __init__(self) -> None:
        super().__init__()
        self.section: str | None = None
        self.charts: dict[str, int] = {}
        self.tables: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "section":
            self.section = a.get("id")
        elif tag in ("svg", "img") and self.section and self.section.startswith("chart-"):
            self.charts[self.section] = self.charts.get(self.section, 0) + 1
        elif tag == "table":
            self._table = a.get("id")
            self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self.tables[self._table].append([])
        elif tag in ("td", "th") and self._table:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "section":
            self.section = None
        elif tag == "table":
            self._table = None
        elif tag in ("td", "th") and self._cell is not None:
            self.tables[self._table][-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


@pytest.fixture
def january(dataset: Engine) -> MonthSummary:
    compute_month(dataset, date(2018, 12, 1), now=NOW)
    return compute_month(dataset, JAN, now=NOW)


def test_html_has_charts_and_tables(january: MonthSummary, tmp_path: Path) -> None:
    files = render_report(january, tmp_path)
    assert files.html == str(tmp_path / "2019-01" / "report.html")
    outline = Outline()
    outline.feed(Path(files.html).read_text(encoding="utf-8"))
    for chart in ("chart-municipalities", "chart-categories", "chart-networks", "chart-trend"):
        assert outline.charts.get(chart) == 1, chart
    tables = outline.tables
    for table in (
        "table-municipalities",
        "table-matrix",
        "table-executors",
        "table-hazards",
        "table-topics",
        "table-sources",
    ):
        assert table in tables, table
    munis = {row[1]: row for row in tables["table-municipalities"][1:]}
    assert munis["Арбажский район"][2:4] == ["3", "3"]  # posts, incidents of 33602
    assert munis["Афанасьевский район"][-1] == "—"  # no incidents in December
    execs = [row[:2] for row in tables["table-executors"][1:]]
    assert execs == [
        ["1", "Администрация Арбажского района"],
        ["2", "Министерство энергетики и жилищно-коммунального хозяйства Кировской области"],
        ["3", "Администрация Афанасьевского района"],
    ]
    hazards = tables["table-hazards"][1:]
    assert len(hazards) == 1 and hazards[0][1:] == ["1", "1"]
    assert tables["table-sources"][1] == ["ВКонтакте", "src1", "2"]
    summary = {row[0]: row[1:] for row in tables["table-summary"][1:]}
    assert summary["Собрано публикаций"] == ["6", "+500.0 %"]
    matrix_header = tables["table-matrix"][0]
    arbazh = next(r for r in tables["table-matrix"][1:] if r[0] == "Арбажский район")
    assert arbazh[matrix_header.index("Всего")] == "3"


def test_csv_json_and_xlsx(january: MonthSummary, tmp_path: Path) -> None:
    files = render_report(january, str(tmp_path))
    rows = list(csv.DictReader(io.StringIO(Path(files.csv).read_text(encoding="utf-8"))))
    assert len(rows) == len(january.stats)
    region = {
        r["metric"]: float(r["value"])
        for r in rows
        if (r["municipality_code"], r["category"], r["network"]) == ("*", "*", "*")
    }
    assert region["posts_collected"] == 6 and region["cases_overdue"] == 3
    doc = json.loads(Path(files.json).read_text(encoding="utf-8"))
    assert doc["region"]["incidents_found"] == 4
    wb = load_workbook(files.xlsx)
    for sheet in ("Summary", "Municipalities", "Categories", "Networks", "Executors", "Hazards"):
        assert sheet in wb.sheetnames
    summary = {r[0]: r[1] for r in wb["Summary"].iter_rows(min_row=2, values_only=True)}
    assert summary["Собрано публикаций"] == 6
    executors = list(wb["Executors"].iter_rows(min_row=2, values_only=True))
    assert [r[0] for r in executors] == ["adm_33602", "min_housing", "adm_33603"]
    hazards = list(wb["Hazards"].iter_rows(min_row=2, values_only=True))
    assert hazards[0][0] == "open_manhole" and hazards[0][2:] == (1, 1)


def test_rerun_replaces_files_and_report_row(january: MonthSummary, dataset: Engine, tmp_path: Path) -> None:
    first = render_report(january, f"file://{tmp_path}", run_id="r1")
    second = render_report(january, tmp_path, run_id="r2")
    assert first == second
    assert sorted(p.name for p in (tmp_path / "2019-01").iterdir()) == [
        "report.csv",
        "report.html",
        "report.json",
        "report.xlsx",
    ]
    with dataset.connect() as conn:
        rows = conn.execute(select(MonthlyReport.month, MonthlyReport.run_id, MonthlyReport.html_uri)).all()
    assert [(r.run_id, r.html_uri) for r in rows] == [("r2", second.html)]


def test_object_storage_like_target(january: MonthSummary) -> None:
    fsspec = pytest.importorskip("fsspec")
    pytest.importorskip("upath")
    files = render_report(january, "memory://reports-test")
    fs = fsspec.filesystem("memory")
    assert fs.exists("/reports-test/2019-01/report.xlsx")
    with fs.open("/reports-test/2019-01/report.html", "rb") as fh:
        assert b'id="chart-trend"' in fh.read()
    assert files.csv.endswith("2019-01/report.csv")
    assert not [p for p in fs.ls("/reports-test/2019-01", detail=False) if p.endswith(".tmp")]


def test_empty_month_renders(engine: Engine, tmp_path: Path) -> None:
    summary = compute_month(engine, date(2020, 3, 1), now=NOW.replace(year=2021))
    files = render_report(summary, tmp_path)
    outline = Outline()
    outline.feed(Path(files.html).read_text(encoding="utf-8"))
    assert outline.charts["chart-municipalities"] == 1
    assert outline.tables["table-executors"][1] == ["Нет данных"]


def test_email(january: MonthSummary, tmp_path: Path) -> None:
    files = render_report(january, tmp_path)
    subject, body = report_email(january, files)
    assert subject == "Ежемесячный отчёт по инцидентам в социальных сетях за январь 2019"
    assert "Арбажский район (3)" in body
    assert Path(files.html).as_uri() in body
    assert "66.7 %" in body  # 2 of 3 resolved on time
