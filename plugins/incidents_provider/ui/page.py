"""The HTML of the "Incidents pipeline health" view (server-rendered, inline SVG, no scripts)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from html import escape
from typing import Any
from urllib.parse import quote, urlencode

from incidents_provider.ui.charts import lag_bars, share_lines, stacked_bars

CSS = """
*{box-sizing:border-box}
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;padding:16px 20px;
color:#0f172a;background:#f8fafc}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:22px 0 8px}
.muted{color:#64748b}.bad{color:#b91c1c;font-weight:600}.ok{color:#15803d}
nav.period a{margin-right:10px}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:10px;margin:12px 0}
.card{background:#fff;border:1px solid #e2e8f0;border-radius:8px;padding:10px 12px}
.card .v{font-size:22px;font-weight:600}.card .k{color:#64748b;font-size:12px}
table{border-collapse:collapse;background:#fff;width:100%;font-size:13px}
th,td{border:1px solid #e2e8f0;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f1f5f9;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(520px,1fr));gap:10px}
.chart{background:#fff;border:1px solid #e2e8f0;border-radius:8px;width:100%;height:auto}
.chart-title{font-size:13px;font-weight:600;fill:#0f172a}.axis{font-size:10px;fill:#475569}
.legend{font-size:11px;fill:#0f172a}.grid{stroke:#e2e8f0}
details{margin-top:8px}summary{cursor:pointer;color:#1d4ed8}
.scroll{max-height:340px;overflow:auto}
"""


@dataclass
class DagCoverage:
    """A collection DAG's state as the REST API reports it, with its gaps in the period."""

    dag_id: str
    network: str
    paused: bool | None = None
    cron: str = ""
    gaps: list[dict[str, Any]] = field(default_factory=list)
    """``window_start``, ``window_end``, ``kind``, ``run_ids``."""
    error: str | None = None


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def _hours(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f} h"


def _when(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return "–" if value is None else value.strftime(fmt)


def run_url(base_url: str, dag_id: str, run_id: str | None) -> str:
    if not run_id:
        return f"{base_url}/dags/{quote(dag_id)}/runs"
    return f"{base_url}/dags/{quote(dag_id)}/runs/{quote(run_id, safe='')}"


def _td(value: Any, testid: str | None = None, cls: str = "n") -> str:
    attr = f' data-testid="{escape(testid)}"' if testid else ""
    return f'<td class="{cls}"{attr}>{escape(str(value))}</td>'


def render(
    *,
    report: Any,
    coverage: Sequence[DagCoverage],
    open_gaps: Sequence[Mapping[str, Any]],
    actions: Sequence[Mapping[str, Any]],
    quality: Mapping[str, Any],
    base_url: str,
    self_url: str,
    days: float,
    notes: Sequence[str] = (),
) -> str:
    """The whole page."""
    out = _header(report, self_url, days, notes)
    out += _cards(report, coverage, quality)
    out += _networks(report, coverage, base_url)
    out += _charts(report)
    out += _gaps(coverage, open_gaps, base_url)
    out += _actions(actions, base_url)
    out += _reasons(report)
    out += _skipped(report)
    out += _buckets(report, base_url)
    if quality.get("source"):
        out.append(f"<p class='muted'>Classifier quality from {escape(quality['source'])}.</p>")
    out.append("</body></html>")
    return "".join(out)


def _header(report: Any, self_url: str, days: float, notes: Sequence[str]) -> list[str]:
    """The title, the period and its links, the notes."""
    out: list[str] = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>Incidents pipeline health</title><style>{CSS}</style></head><body>",
        "<h1>Incidents pipeline health</h1>",
        f"<div class='muted' data-testid='period'>Windows starting {_when(report.start)} – "
        f"{_when(report.end)} UTC, by {escape(report.granularity)}</div>",
        "<nav class='period'>",
    ]
    for label, d, g in (
        ("48 h by hour", 2, "hour"),
        ("7 days by day", 7, "day"),
        ("30 days by day", 30, "day"),
    ):
        out.append(f"<a href='{escape(self_url)}?{urlencode({'days': d, 'granularity': g})}'>{label}</a>")
    out.append(f"<a href='{escape(self_url)}health.json?{urlencode({'days': days})}'>JSON</a></nav>")
    for note in notes:
        out.append(f"<p class='bad'>{escape(note)}</p>")
    return out


def _cards(report: Any, coverage: Sequence[DagCoverage], quality: Mapping[str, Any]) -> list[str]:
    """The headline figures of the period."""
    total = report.total
    out: list[str] = []
    versions = ", ".join(f"{v} ({n})" for v, n in report.classifier_versions.items()) or "none yet"
    if quality.get("figures"):
        qual = ", ".join(f"{k.removeprefix('quality_')}: {v}" for k, v in quality["figures"].items())
    else:
        qual = "not measured"
    open_count = sum(len(c.gaps) for c in coverage)
    cards = [
        ("collected posts + comments", total.collected, "total-collected"),
        ("quarantined share", _pct(total.quarantine_share), "total-quarantine-share"),
        ("incident share", _pct(total.incident_share), "total-incident-share"),
        ("hazards", total.hazards, "total-hazards"),
        ("lag post → case, median", _hours(total.lag_median_h), "total-lag-median"),
        ("lag post → case, p90", _hours(total.lag_p90_h), "total-lag-p90"),
        ("missing or failed windows", open_count, "total-gaps"),
    ]
    out.append("<div class='cards'>")
    for key, value, testid in cards:
        cls = " bad" if testid == "total-gaps" and open_count else ""
        out.append(
            f"<div class='card'><div class='v{cls}' data-testid='{testid}'>{escape(str(value))}</div>"
            f"<div class='k'>{escape(key)}</div></div>"
        )
    out.append(
        f"<div class='card'><div class='k'>classifier version (posts)</div><div data-testid='classifier-versions'>"
        f"{escape(versions)}</div><div class='k'>blind-set quality</div><div data-testid='classifier-quality'>"
        f"{escape(qual)}</div></div></div>"
    )
    return out


def _networks(report: Any, coverage: Sequence[DagCoverage], base_url: str) -> list[str]:
    """The per-network table."""
    out: list[str] = []
    out.append("<h2>Per network</h2><table data-testid='networks'><tr><th>network</th><th>windows</th>")
    out.append(
        "<th>last complete window</th><th>posts</th><th>comments</th><th>quarantined</th><th>share</th>"
        "<th>incidents</th><th>incident share</th><th>hazards</th><th>cases</th><th>lag median</th>"
        "<th>lag p90</th><th>missing / failed</th><th>DAG</th></tr>"
    )
    cov = {c.network: c for c in coverage}
    for network, fig in report.networks.items():
        c = cov.get(network)
        gaps = len(c.gaps) if c else 0
        state = ""
        if c and c.paused:
            state = " (paused)"
        elif c and c.error:
            state = " (state unknown)"
        last = fig.last_complete_window
        dag_id = f"collect_{network}"
        out.append(
            f"<tr data-network='{escape(network)}'><th>{escape(network)}</th>"
            + _td(fig.windows, f"net-{network}-windows")
            + _td(f"{_when(last[0])} – {_when(last[1], '%H:%M')}" if last else "–", f"net-{network}-last", "")
            + _td(fig.posts, f"net-{network}-posts")
            + _td(fig.comments, f"net-{network}-comments")
            + _td(fig.quarantined, f"net-{network}-quarantined")
            + _td(_pct(fig.quarantine_share), f"net-{network}-quarantine-share")
            + _td(fig.incidents, f"net-{network}-incidents")
            + _td(_pct(fig.incident_share), f"net-{network}-incident-share")
            + _td(fig.hazards, f"net-{network}-hazards")
            + _td(fig.cases, f"net-{network}-cases")
            + _td(_hours(fig.lag_median_h), f"net-{network}-lag-median")
            + _td(_hours(fig.lag_p90_h), f"net-{network}-lag-p90")
            + f"<td class='n{' bad' if gaps else ''}' data-testid='net-{network}-gaps'>{gaps}{escape(state)}</td>"
            + f"<td><a href='{escape(run_url(base_url, dag_id, None))}' target='_top'>{dag_id}</a></td></tr>"
        )
    out.append("</table>")
    return out


def _charts(report: Any) -> list[str]:
    """The charts over the period's buckets."""
    fmt = "%d.%m %H:%M" if report.granularity == "hour" else "%d.%m"
    out: list[str] = []
    buckets = sorted({b.start for b in report.buckets})
    labels = [b.strftime(fmt) for b in buckets]
    networks = list(report.networks)
    index = {(b.network, b.start): b for b in report.buckets}
    collected = {n: [index[(n, s)].collected if (n, s) in index else 0 for s in buckets] for n in networks}
    quarantine = {
        n: [index[(n, s)].quarantine_share if (n, s) in index else None for s in buckets] for n in networks
    }
    incidents = {
        "incidents": [sum(index[(n, s)].incidents for n in networks if (n, s) in index) for s in buckets],
        "hazards": [sum(index[(n, s)].hazards for n in networks if (n, s) in index) for s in buckets],
    }
    out.append("<h2>Charts</h2><div class='charts'>")
    out.append(stacked_bars("Posts and comments collected", labels, collected, chart_id="chart-collected"))
    out.append(share_lines("Quarantined share", labels, quarantine, chart_id="chart-quarantine"))
    out.append(
        stacked_bars(
            "Incidents (non-hazard) and hazards",
            labels,
            {
                "incidents": [
                    i - h for i, h in zip(incidents["incidents"], incidents["hazards"], strict=True)
                ],
                "hazards": incidents["hazards"],
            },
            colours={"incidents": "#0891b2", "hazards": "#dc2626"},
            chart_id="chart-incidents",
        )
    )
    out.append(
        lag_bars(
            "Lag post → case (median / p90)",
            [(n, f.lag_median_h, f.lag_p90_h) for n, f in report.networks.items()],
            chart_id="chart-lag",
        )
    )
    out.append("</div>")
    return out


def _gaps(
    coverage: Sequence[DagCoverage], open_gaps: Sequence[Mapping[str, Any]], base_url: str
) -> list[str]:
    """The missing or failed windows and what coverage did about them."""
    out: list[str] = []
    out.append("<h2>Missing or failed windows</h2>")
    any_gap = False
    out.append(
        "<table data-testid='gaps'><tr><th>DAG</th><th>window (UTC)</th><th>gap</th><th>runs</th>"
        "<th>catch-up</th></tr>"
    )
    tracked = {(g["dag_id"], g["window_start"]): g for g in open_gaps}
    for c in coverage:
        if c.error:
            out.append(
                f"<tr><td>{escape(c.dag_id)}</td><td colspan='4' class='bad'>{escape(c.error)}</td></tr>"
            )
        for gap in c.gaps:
            any_gap = True
            runs = (
                ", ".join(
                    f"<a href='{escape(run_url(base_url, c.dag_id, r))}' target='_top'>{escape(r)}</a>"
                    for r in gap["run_ids"]
                )
                or "no run"
            )
            t = tracked.get((c.dag_id, gap["window_start"]))
            if t is None:
                what = "not handled yet (the coverage DAG runs hourly)"
            else:
                what = f"{t['attempts']} backfill(s) {t['backfill_ids']}" if t["attempts"] else "detected"
                if t["alerted_at"]:
                    what += f"; alerted {_when(t['alerted_at'])}"
                if t["paused"]:
                    what += "; DAG paused: not backfilled"
            out.append(
                f"<tr><td>{escape(c.dag_id)}</td><td>{_when(gap['window_start'])} – "
                f"{_when(gap['window_end'])}</td><td class='bad'>{escape(gap['kind'])}</td><td>{runs}</td>"
                f"<td>{escape(what)}</td></tr>"
            )
    if not any_gap:
        out.append(
            "<tr><td colspan='5' class='ok'>none: every window of the period is collected or running</td></tr>"
        )
    out.append("</table>")
    return out


def _actions(actions: Sequence[Mapping[str, Any]], base_url: str) -> list[str]:
    """The coverage DAG's actions."""
    out: list[str] = []
    out.append("<h2>Coverage actions</h2><div class='scroll'><table data-testid='coverage-actions'>")
    out.append(
        "<tr><th>at (UTC)</th><th>DAG</th><th>window</th><th>action</th><th>backfill</th><th>run</th></tr>"
    )
    for a in actions:
        out.append(
            f"<tr><td>{_when(a['at'], '%Y-%m-%d %H:%M:%S')}</td><td>{escape(a['dag_id'])}</td>"
            f"<td>{_when(a['window_start'])} – {_when(a['window_end'])}</td>"
            f"<td>{escape(a['action'])}{' (' + escape(a['gap_kind']) + ')' if a.get('gap_kind') else ''}</td>"
            f"<td>{escape(str(a['backfill_id'] or ''))}</td>"
            f"<td>{_run_link(base_url, 'coverage', a.get('run_id'))}</td></tr>"
        )
    if not actions:
        out.append("<tr><td colspan='6' class='muted'>no actions yet</td></tr>")
    out.append("</table></div>")
    return out


def _reasons(report: Any) -> list[str]:
    """The top quarantine reasons per network."""
    out: list[str] = []
    out.append(
        "<h2>Quarantine: top reasons</h2><table data-testid='reasons'><tr><th>network</th><th>reason</th>"
    )
    out.append("<th>records</th></tr>")
    rows = 0
    for network, fig in report.networks.items():
        for reason, n in fig.top_reasons():
            rows += 1
            out.append(f"<tr><td>{escape(network)}</td><td>{escape(reason)}</td>{_td(n)}</tr>")
    if not rows:
        out.append("<tr><td colspan='3' class='muted'>nothing quarantined</td></tr>")
    out.append("</table>")
    return out


def _skipped(report: Any) -> list[str]:
    """The sources skipped per network."""
    out: list[str] = []
    out.append("<h2>Sources skipped</h2><table data-testid='skipped'><tr><th>network</th><th>source</th>")
    out.append("<th>reason</th><th>windows</th></tr>")
    rows = 0
    for network, fig in report.networks.items():
        for s in fig.skipped_by_source():
            rows += 1
            out.append(
                f"<tr><td>{escape(network)}</td><td>{escape(s['source_id'])}</td><td>{escape(s['reason'])}</td>"
                f"{_td(s['windows'])}</tr>"
            )
    if not rows:
        out.append("<tr><td colspan='4' class='muted'>no source skipped</td></tr>")
    out.append("</table>")
    return out


def _buckets(report: Any, base_url: str) -> list[str]:
    """Every bucket of the period, with its runs."""
    out: list[str] = []
    out.append(f"<details><summary>Every {escape(report.granularity)} ({len(report.buckets)} rows)</summary>")
    out.append(
        "<table data-testid='buckets'><tr><th>start</th><th>network</th><th>windows</th><th>collected</th>"
        "<th>quarantined</th><th>incidents</th><th>hazards</th><th>lag median</th><th>lag p90</th><th>runs</th></tr>"
    )
    for b in reversed(report.buckets):
        dag_id = f"collect_{b.network}"
        runs = ", ".join(_run_link(base_url, dag_id, r["run_id"], r["status"]) for r in b.runs)
        out.append(
            f"<tr><td>{_when(b.start)}</td><td>{escape(b.network)}</td>{_td(b.windows)}{_td(b.collected)}"
            f"{_td(b.quarantined)}{_td(b.incidents)}{_td(b.hazards)}{_td(_hours(b.lag_median_h))}"
            f"{_td(_hours(b.lag_p90_h))}<td>{runs}</td></tr>"
        )
    out.append("</table></details>")
    return out


def _run_link(base_url: str, dag_id: str, run_id: str | None, label: str | None = None) -> str:
    if not run_id:
        return ""
    return (
        f"<a href='{escape(run_url(base_url, dag_id, run_id))}' target='_top' title='{escape(run_id)}'>"
        f"{escape(label or run_id)}</a>"
    )
