"""The monthly report: a self-contained HTML page with charts, a CSV, an XLSX workbook and a JSON file.

Files go to ``<out_dir>/<YYYY-MM>/report.{html,csv,xlsx,json}``; each is written to a temporary
name and renamed over the old one, so a reader never sees half a file and a rerun replaces them.
``out_dir`` may be a local path, a ``file://`` URI, another fsspec URI (through ``upath`` when
installed) or any pathlib-like object with ``/``, ``mkdir``, ``open`` and ``rename`` (such as
Airflow's ``ObjectStoragePath``).

Charts are drawn with matplotlib's object API (no pyplot state, no GUI backend) and inlined as SVG.
"""

from __future__ import annotations

import csv
import html
import io
import logging
import os
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, cast
from urllib.parse import unquote, urlsplit

import matplotlib
from matplotlib.figure import Figure
from openpyxl import Workbook
from openpyxl.styles import Font
from sqlalchemy import Engine
from sqlalchemy.dialects import postgresql, sqlite

from incidents import NETWORKS
from incidents.db.models import WILDCARD, MonthlyReport
from incidents.stats.compute import MAIN_COUNTS, METRIC_LABELS, MonthSummary

log = logging.getLogger(__name__)

MONTHS_RU = (
    "январь",
    "февраль",
    "март",
    "апрель",
    "май",
    "июнь",
    "июль",
    "август",
    "сентябрь",
    "октябрь",
    "ноябрь",
    "декабрь",
)
NETWORK_NAMES = {
    "vk": "ВКонтакте",
    "ok": "Одноклассники",
    "twitter": "Twitter/X",
    "facebook": "Facebook",
    "instagram": "Instagram",
}
EXECUTOR_HEADERS = {
    "rank": "Место",
    "executor_name": "Исполнитель",
    "cases": "Обращений открыто",
    "resolved": "Решено",
    "resolved_on_time": "Решено в срок",
    "overdue": "Просрочено",
    "median_first_response_h": "Медиана первого ответа, ч",
    "timeliness": "Своевременность",
}
TABLE_METRICS = (
    "posts_collected",
    "incidents_found",
    "cases_opened",
    "cases_resolved",
    "cases_rejected",
    "cases_overdue",
    "hazards_found",
)


def month_title(month: date) -> str:
    """``январь 2019``."""
    return f"{MONTHS_RU[month.month - 1]} {month.year}"


@dataclass(frozen=True)
class ReportFiles:
    """Where the report's files were written (local paths or URIs)."""

    html: str | None
    csv: str | None
    xlsx: str | None
    json: str | None

    def as_dict(self) -> dict[str, str]:
        """The written files by format."""
        items = {"html": self.html, "csv": self.csv, "xlsx": self.xlsx, "json": self.json}
        return {k: v for k, v in items.items() if v is not None}


# --------------------------------------------------------------------------- output


def resolve_dir(out_dir: Any) -> Any:
    """A local ``Path`` for paths and ``file://`` URIs, a ``UPath`` for other URIs, else ``out_dir`` itself."""
    if isinstance(out_dir, Path):
        return out_dir
    if isinstance(out_dir, str):
        if out_dir.startswith("file://"):
            return Path(unquote(urlsplit(out_dir).path))
        if "://" in out_dir:
            try:
                from upath import UPath
            except ImportError as exc:  # pragma: no cover - depends on the environment
                raise ValueError(f"cannot write to {out_dir!r}: install universal_pathlib") from exc
            return UPath(out_dir)
        return Path(out_dir)
    if all(hasattr(out_dir, a) for a in ("__truediv__", "open", "mkdir")):
        return out_dir
    raise TypeError(f"out_dir must be a path, a URI or a path-like object, got {type(out_dir).__name__}")


def month_dir(out_dir: Any, month: date) -> Any:
    """``<out_dir>/<YYYY-MM>``, created."""
    target = resolve_dir(out_dir) / f"{month:%Y-%m}"
    target.mkdir(parents=True, exist_ok=True)
    return target


def write_atomic(directory: Any, name: str, data: bytes) -> str:
    """Write ``data`` to ``directory/name`` through a temporary name and a rename; return its location."""
    final = directory / name
    tmp = directory / f".{name}.{uuid.uuid4().hex}.tmp"
    with tmp.open("wb") as fh:
        fh.write(data)
    if isinstance(final, Path):
        os.replace(tmp, final)
        return str(final)
    try:
        tmp.rename(final)
    except (FileExistsError, OSError):
        final.unlink()  # some object stores refuse to overwrite on rename
        tmp.rename(final)
    return str(final)


def record_report(engine: Engine, month: date, *, run_id: str | None = None, **uris: str | None) -> None:
    """Upsert the ``monthly_reports`` row of ``month`` (only the given URI columns change)."""
    allowed = {"html_uri", "csv_uri", "xlsx_uri", "open311_uri"}
    unknown = set(uris) - allowed
    if unknown:
        raise ValueError(f"unknown report columns: {sorted(unknown)}")
    values: dict[str, Any] = {"month": month, "generated_at": datetime.now(UTC), **uris}
    if run_id is not None:  # a later export without a run id keeps the report's run id
        values["run_id"] = run_id
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(MonthlyReport).values(**values)
    stmt = stmt.on_conflict_do_update(
        index_elements=[MonthlyReport.month], set_={k: v for k, v in values.items() if k != "month"}
    )
    with engine.begin() as conn:
        conn.execute(stmt)


# --------------------------------------------------------------------------- charts


def _svg(fig: Figure, name: str) -> str:
    """The figure as inline SVG markup (no XML prolog), ids salted per chart."""
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": f"incidents-{name}", "svg.fonttype": "none"}):
        fig.savefig(buf, format="svg", bbox_inches="tight")
    text = buf.getvalue()
    return text[text.index("<svg") :]


def _bar_chart(name: str, labels: list[str], series: dict[str, list[float]], title: str) -> str:
    height = max(2.5, 0.32 * len(labels) + 1.2)
    fig = Figure(figsize=(8, height))
    ax = fig.add_subplot()
    if not labels:
        ax.text(0.5, 0.5, "Нет данных", ha="center", va="center")
        ax.set_axis_off()
    else:
        width = 0.8 / max(1, len(series))
        positions = range(len(labels))
        for i, (label, values) in enumerate(series.items()):
            ax.barh([p + i * width for p in positions], values, height=width, label=label)
        ax.set_yticks([p + width * (len(series) - 1) / 2 for p in positions], labels)
        ax.invert_yaxis()
        ax.legend(loc="lower right", fontsize=8)
        ax.grid(axis="x", alpha=0.3)
    ax.set_title(title)
    return _svg(fig, name)


def _trend_chart(summary: MonthSummary) -> str:
    fig = Figure(figsize=(8, 3.5))
    ax = fig.add_subplot()
    trend = summary.trend
    if trend.empty:
        ax.text(0.5, 0.5, "Нет данных", ha="center", va="center")
        ax.set_axis_off()
    else:
        months = sorted(set(trend.month))
        labels = [f"{m:%Y-%m}" for m in months]
        for metric in ("posts_collected", "incidents_found", "cases_opened", "cases_resolved"):
            sub = dict(
                zip(trend[trend.metric == metric].month, trend[trend.metric == metric].value, strict=True)
            )
            ax.plot(labels, [sub.get(m, 0.0) for m in months], marker="o", label=METRIC_LABELS[metric])
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        ax.tick_params(axis="x", labelrotation=45)
    ax.set_title("Динамика за 12 месяцев (регион)")
    return _svg(fig, "trend")


def _dimension_chart(summary: MonthSummary, dimension: str, kind: str, metrics: tuple[str, ...]) -> str:
    table = summary.by(dimension, metrics)
    if dimension == "network":
        table = table.reindex([n for n in NETWORKS if n in table.index])
    table = table[(table != 0).any(axis=1)] if not table.empty else table
    if dimension == "municipality_code":
        table = table.sort_values(metrics[0], ascending=False)
    labels = [_label(summary, kind, code) for code in table.index]
    series = {METRIC_LABELS[m]: [float(v) for v in table[m]] for m in metrics}
    titles = {
        "municipalities": "По муниципальным образованиям",
        "categories": "По категориям",
        "networks": "По социальным сетям",
    }
    return _bar_chart(kind, labels, series, titles[kind])


def _label(summary: MonthSummary, kind: str, code: str) -> str:
    if kind == "networks":
        return NETWORK_NAMES.get(code, code)
    return summary.name(kind, code)


# --------------------------------------------------------------------------- tables


def _fmt(value: Any, *, share: bool = False) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "—"
    if share:
        return f"{float(value) * 100:.1f} %"
    value = float(value)
    return f"{value:.0f}" if value.is_integer() else f"{value:.1f}"


def _table(table_id: str, headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    if not rows:
        body = f'<tr><td colspan="{len(headers)}" class="empty">Нет данных</td></tr>'
    else:
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table id="{table_id}" class="data"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _summary_rows(summary: MonthSummary) -> list[list[str]]:
    region = summary.region()
    rows = []
    for metric in (
        *MAIN_COUNTS,
        "cases_resolved_on_time",
        "cases_open_overdue",
        "share_resolved_on_time",
        "first_response_median_h",
        "first_response_p90_h",
        "resolution_median_h",
        "resolution_p90_h",
    ):
        change = region.get(f"{metric}_change_pct")
        rows.append(
            [
                METRIC_LABELS[metric],
                _fmt(region.get(metric), share=metric.startswith("share")),
                "—" if change is None else f"{change:+.1f} %",
            ]
        )
    return rows


def _dimension_rows(summary: MonthSummary, dimension: str, kind: str) -> list[list[str]]:
    table = summary.by(dimension, (*TABLE_METRICS, "share_resolved_on_time"))
    if dimension == "network":
        table = table.reindex([n for n in NETWORKS if n in table.index])
    rows: list[list[str]] = []
    for index, row in table.iterrows():
        code = cast(str, index)  # the index holds the dimension's codes
        cells = [code, _label(summary, kind, code)]
        cells += [_fmt(row[m]) for m in TABLE_METRICS]
        share = summary.value("share_resolved_on_time", **{_arg(dimension): code})
        cells.append(_fmt(share, share=True))
        if dimension == "municipality_code":
            change = summary.value("incidents_found_change_pct", municipality=code)
            cells.append("—" if change is None else f"{change:+.1f} %")
        rows.append(cells)
    return rows


def _arg(dimension: str) -> str:
    return {"municipality_code": "municipality", "category": "category", "network": "network"}[dimension]


def _dimension_headers(first: str, with_change: bool) -> list[str]:
    headers = ["Код", first, *(METRIC_LABELS[m] for m in TABLE_METRICS), "Доля решённых в срок"]
    if with_change:
        headers.append("Изменение инцидентов к прошлому месяцу")
    return headers


def _matrix(summary: MonthSummary) -> tuple[list[str], list[list[str]]]:
    matrix = summary.matrix("incidents_found")
    cats = [c for c in summary.names.get("categories", {}) if c in matrix.columns] or list(matrix.columns)
    headers = ["Муниципальное образование", *(summary.name("categories", c) for c in cats), "Всего"]
    rows = []
    for index, row in matrix.iterrows():
        code = cast(str, index)  # municipality codes
        total = summary.value("incidents_found", municipality=code) or 0.0
        rows.append(
            [summary.name("municipalities", code), *(_fmt(row.get(c, 0.0)) for c in cats), _fmt(total)]
        )
    return headers, rows


def _executor_rows(summary: MonthSummary) -> list[list[str]]:
    rows = []
    for e in summary.executors.to_dict(orient="records"):
        rows.append(
            [
                _fmt(e["rank"]),
                cast(str, e["executor_name"]),
                _fmt(e["cases"]),
                _fmt(e["resolved"]),
                _fmt(e["resolved_on_time"]),
                _fmt(e["overdue"]),
                _fmt(e["median_first_response_h"]),
                _fmt(e["timeliness"], share=True),
            ]
        )
    return rows


def _hazard_rows(summary: MonthSummary) -> list[list[str]]:
    return [[cast(str, h.name), _fmt(h.found), _fmt(h.removed)] for h in summary.hazards().itertuples()]


def _topic_rows(summary: MonthSummary) -> list[list[str]]:
    return [
        [summary.name("topics", slug), summary.name("categories", _topic_category(summary, slug)), _fmt(n)]
        for slug, n in summary.prefixed("top_topic")
    ]


def _topic_category(summary: MonthSummary, slug: str) -> str:
    for cat in summary.names.get("categories", {}):
        if slug.startswith(cat + "_"):
            return cat
    return WILDCARD


def _source_rows(summary: MonthSummary) -> list[list[str]]:
    rows = []
    for name, n in summary.prefixed("top_source"):
        network, source_id = name.split(":", 1)
        rows.append([NETWORK_NAMES.get(network, network), source_id, _fmt(n)])
    return rows


# --------------------------------------------------------------------------- renderers

CSS = """
body{font-family:Arial,Helvetica,sans-serif;margin:24px;color:#1f2937;max-width:1200px}
h1{font-size:24px}h2{font-size:19px;margin-top:32px;border-bottom:1px solid #d1d5db}
table.data{border-collapse:collapse;font-size:13px;margin:8px 0}
table.data th,table.data td{border:1px solid #d1d5db;padding:4px 8px;text-align:right}
table.data th{background:#f3f4f6}table.data td:first-child,table.data td:nth-child(2){text-align:left}
td.empty{text-align:center;color:#6b7280}section.chart svg{max-width:100%;height:auto}
.kpi{display:inline-block;margin:0 24px 12px 0}.kpi b{display:block;font-size:26px}
"""


def render_html(summary: MonthSummary) -> str:
    """The report as one self-contained HTML page."""
    title = f"Инциденты в социальных сетях Кировской области: {month_title(summary.month)}"
    region = summary.region()
    kpis = "".join(
        f'<div class="kpi" id="kpi-{m}"><b>{_fmt(region.get(m))}</b>{html.escape(METRIC_LABELS[m])}</div>'
        for m in ("posts_collected", "incidents_found", "cases_opened", "cases_resolved", "cases_overdue")
    )
    charts = {
        "municipalities": _dimension_chart(
            summary, "municipality_code", "municipalities", ("incidents_found", "cases_opened")
        ),
        "categories": _dimension_chart(
            summary, "category", "categories", ("incidents_found", "cases_opened")
        ),
        "networks": _dimension_chart(summary, "network", "networks", ("posts_collected", "incidents_found")),
        "trend": _trend_chart(summary),
    }
    chart_titles = {
        "municipalities": "Муниципальные образования",
        "categories": "Категории",
        "networks": "Социальные сети",
        "trend": "Динамика за 12 месяцев",
    }
    matrix_headers, matrix_rows = _matrix(summary)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="ru"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>",
        f'<h1 id="report-title">{html.escape(title)}</h1>',
        f'<p class="meta">Месяц: {summary.month:%Y-%m} (календарный месяц по времени Europe/Kirov).</p>',
        f'<section id="kpis">{kpis}</section>',
        '<section id="summary"><h2>Сводные показатели региона</h2>',
        _table("table-summary", ["Показатель", "Значение", "К прошлому месяцу"], _summary_rows(summary)),
        "</section>",
    ]
    for key, svg in charts.items():
        parts.append(
            f'<section id="chart-{key}" class="chart"><h2>{html.escape(chart_titles[key])}</h2>{svg}</section>'
        )
    parts += [
        '<section id="municipalities"><h2>Муниципальные образования</h2>',
        _table(
            "table-municipalities",
            _dimension_headers("Муниципальное образование", True),
            _dimension_rows(summary, "municipality_code", "municipalities"),
        ),
        "<h2>Инциденты: муниципальные образования × категории</h2>",
        _table("table-matrix", matrix_headers, matrix_rows),
        "</section>",
        '<section id="categories"><h2>Категории</h2>',
        _table(
            "table-categories",
            _dimension_headers("Категория", False),
            _dimension_rows(summary, "category", "categories"),
        ),
        "</section>",
        '<section id="networks"><h2>Социальные сети</h2>',
        _table(
            "table-networks",
            _dimension_headers("Сеть", False),
            _dimension_rows(summary, "network", "networks"),
        ),
        "</section>",
        '<section id="executors"><h2>Рейтинг исполнителей</h2>',
        _table("table-executors", list(EXECUTOR_HEADERS.values()), _executor_rows(summary)),
        "</section>",
        '<section id="hazards"><h2>Опасности по типам</h2>',
        _table("table-hazards", ["Тип опасности", "Выявлено", "Устранено"], _hazard_rows(summary)),
        "</section>",
        '<section id="topics"><h2>Самые частые темы</h2>',
        _table("table-topics", ["Тема", "Категория", "Инцидентов"], _topic_rows(summary)),
        "</section>",
        '<section id="sources"><h2>Самые активные источники</h2>',
        _table("table-sources", ["Сеть", "Источник", "Инцидентов"], _source_rows(summary)),
        "</section>",
        "</body></html>",
    ]
    return "\n".join(parts)


def render_csv(summary: MonthSummary) -> str:
    """The figures in long format with display names (UTF-8, comma-separated)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(
        [
            "month",
            "municipality_code",
            "municipality",
            "category",
            "category_name",
            "network",
            "metric",
            "value",
        ]
    )
    for row in summary.stats.itertuples(index=False):
        municipality, category = cast(str, row.municipality_code), cast(str, row.category)
        value = cast(float, row.value)
        writer.writerow(
            [
                f"{summary.month:%Y-%m}",
                municipality,
                summary.name("municipalities", municipality),
                category,
                summary.name("categories", category),
                row.network,
                row.metric,
                repr(float(value)) if value == value else "",
            ]
        )
    return buf.getvalue()


def _sheet(wb: Workbook, title: str, headers: list[str], rows: list[list[Any]]) -> None:
    ws = wb.create_sheet(title)
    ws.append(headers)
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for row in rows:
        ws.append(row)
    for i, header in enumerate(headers, start=1):
        ws.column_dimensions[ws.cell(1, i).column_letter].width = max(12, min(60, len(str(header)) + 2))
    ws.freeze_panes = "A2"


def _num(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if value != value else value


def render_xlsx(summary: MonthSummary) -> bytes:
    """The workbook: Summary, Municipalities, Categories, Networks, Executors, Hazards, Topics, Sources."""
    wb = Workbook()
    if wb.active is not None:  # a new workbook's empty default sheet
        wb.remove(wb.active)
    region = summary.region()
    summary_rows: list[list[str | float | None]] = [["Месяц", f"{summary.month:%Y-%m}", None]]
    for metric, label in METRIC_LABELS.items():
        summary_rows.append([label, _num(region.get(metric)), _num(region.get(f"{metric}_change_pct"))])
    _sheet(wb, "Summary", ["Показатель", "Значение", "Изменение к прошлому месяцу, %"], summary_rows)
    metrics = (*TABLE_METRICS, "share_resolved_on_time")
    headers = [METRIC_LABELS[m] for m in metrics]
    for sheet, dimension, kind, first in (
        ("Municipalities", "municipality_code", "municipalities", "Муниципальное образование"),
        ("Categories", "category", "categories", "Категория"),
        ("Networks", "network", "networks", "Сеть"),
    ):
        table = summary.by(dimension, metrics)
        rows = [
            [code, _label(summary, kind, code), *(_num(row[m]) for m in metrics)]
            for code, row in ((cast(str, index), row) for index, row in table.iterrows())
        ]
        for row, code in zip(rows, table.index, strict=True):
            row[-1] = summary.value("share_resolved_on_time", **{_arg(dimension): code})
        _sheet(wb, sheet, ["Код", first, *headers], rows)
    _sheet(
        wb,
        "Executors",
        ["Код", *EXECUTOR_HEADERS.values()],
        [
            [e["executor_code"], *(_num(e[k]) if k != "executor_name" else e[k] for k in EXECUTOR_HEADERS)]
            for e in summary.executors.to_dict(orient="records")
        ],
    )
    _sheet(
        wb,
        "Hazards",
        ["Тип", "Название", "Выявлено", "Устранено"],
        [[h.hazard_type, h.name, h.found, h.removed] for h in summary.hazards().itertuples()],
    )
    _sheet(
        wb,
        "Topics",
        ["Тема", "Название", "Инцидентов"],
        [[slug, summary.name("topics", slug), n] for slug, n in summary.prefixed("top_topic")],
    )
    _sheet(
        wb,
        "Sources",
        ["Сеть", "Источник", "Инцидентов"],
        [[*name.split(":", 1), n] for name, n in summary.prefixed("top_source")],
    )
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


FORMATS = ("html", "csv", "xlsx", "json")


def render_report(
    summary: MonthSummary,
    out_dir: Any,
    *,
    engine: Engine | None = None,
    run_id: str | None = None,
    formats: Iterable[str] = FORMATS,
) -> ReportFiles:
    """Write ``report.html``, ``report.csv``, ``report.xlsx`` and ``report.json`` under ``<out_dir>/<YYYY-MM>/``.

    ``formats`` limits which files are written (the others are None in the result). Records the
    locations in ``monthly_reports`` (upsert on the month; columns of formats not written keep their
    value) through ``engine`` or the engine the summary was loaded from.
    """
    formats = set(formats)
    unknown = formats - set(FORMATS)
    if unknown:
        raise ValueError(f"unknown report formats {sorted(unknown)}; choose from {list(FORMATS)}")
    target = month_dir(out_dir, summary.month)
    renderers = {
        "html": lambda: render_html(summary).encode("utf-8"),
        "csv": lambda: render_csv(summary).encode("utf-8"),
        "xlsx": lambda: render_xlsx(summary),
        "json": lambda: summary.to_json(indent=1).encode("utf-8"),
    }
    written = {
        fmt: write_atomic(target, f"report.{fmt}", renderers[fmt]()) for fmt in FORMATS if fmt in formats
    }
    files = ReportFiles(**{fmt: written.get(fmt) for fmt in FORMATS})
    engine = engine or summary.engine
    if engine is not None:
        uris = {f"{fmt}_uri": written[fmt] for fmt in ("html", "csv", "xlsx") if fmt in written}
        record_report(engine, summary.month, run_id=run_id, **uris)
    log.info("report of %s written to %s", f"{summary.month:%Y-%m}", target)
    return files


def report_email(summary: MonthSummary, files: ReportFiles) -> tuple[str, str]:
    """Subject and HTML body of the announcement e-mail."""
    title = month_title(summary.month)
    subject = f"Ежемесячный отчёт по инцидентам в социальных сетях за {title}"
    region = summary.region()
    rows = "".join(
        f"<tr><td>{html.escape(METRIC_LABELS[m])}</td><td>{_fmt(region.get(m))}</td></tr>"
        for m in (
            "posts_collected",
            "incidents_found",
            "cases_opened",
            "cases_resolved",
            "cases_overdue",
            "hazards_found",
        )
    )
    share = _fmt(region.get("share_resolved_on_time"), share=True)
    top = summary.by("municipality_code", ("incidents_found",)).sort_values(
        "incidents_found", ascending=False
    )
    leaders = ", ".join(
        f"{html.escape(summary.name('municipalities', cast(str, code)))} ({_fmt(n)})"
        for code, n in top["incidents_found"].head(3).items()
        if n > 0
    )
    links = "".join(
        f'<li>{label}: <a href="{html.escape(_href(path))}">{html.escape(path)}</a></li>'
        for label, path in (
            ("HTML", files.html),
            ("CSV", files.csv),
            ("XLSX", files.xlsx),
            ("JSON", files.json),
        )
        if path
    )
    body = (
        f"<p>Здравствуйте!</p><p>Подготовлен отчёт по обращениям жителей в социальных сетях за {title}.</p>"
        f"<table>{rows}<tr><td>{html.escape(METRIC_LABELS['share_resolved_on_time'])}</td><td>{share}</td></tr></table>"
        + (f"<p>Больше всего инцидентов: {leaders}.</p>" if leaders else "")
        + f"<p>Файлы отчёта:</p><ul>{links}</ul>"
        "<p>Письмо сформировано автоматически.</p>"
    )
    return subject, body


def _href(path: str) -> str:
    return Path(path).as_uri() if path.startswith("/") else path


__all__ = [
    "ReportFiles",
    "record_report",
    "render_csv",
    "render_html",
    "render_report",
    "render_xlsx",
    "report_email",
]
