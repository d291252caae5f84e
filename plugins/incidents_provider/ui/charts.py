"""Small server-rendered SVG charts (no JavaScript, no CDN: the browser may have no internet)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from html import escape

NETWORK_COLOURS = {
    "vk": "#2563eb",
    "ok": "#f59e0b",
    "twitter": "#0ea5e9",
    "facebook": "#6366f1",
    "instagram": "#db2777",
}
FALLBACK_COLOUR = "#64748b"


def _nice_max(value: float) -> float:
    """A round upper bound for an axis (1, 2, 5 × 10^n)."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 5, 10):
        if value <= step * magnitude:
            return float(step * magnitude)
    return float(10 * magnitude)


def _svg_open(title: str, chart_id: str, width: int, height: int, *, title_x: int) -> list[str]:
    """The opening ``<svg>`` element of a chart and its title."""
    return [
        f'<svg class="chart" id="{escape(chart_id)}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f'<text x="{title_x}" y="16" class="chart-title">{escape(title)}</text>',
    ]


def _grid(top_value: float, tick_format: str, *, left: int, x_end: int, top: int, plot_h: int) -> list[str]:
    """Five horizontal grid lines from 0 to ``top_value`` with their ticks."""
    parts = []
    for k in range(5):
        tick = top_value * k / 4
        y = top + plot_h - plot_h * k / 4
        parts.append(f'<line x1="{left}" x2="{x_end}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        parts.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" class="axis" text-anchor="end">{tick:{tick_format}}</text>'
        )
    return parts


def _legend(names: Iterable[str], colours: Mapping[str, str], *, left: int, height: int) -> list[str]:
    """A colour swatch and the name of each series along the bottom edge."""
    parts = []
    lx = left
    for name in names:
        parts.append(
            f'<rect x="{lx}" y="{height - 14}" width="10" height="10" fill="{colours.get(name, FALLBACK_COLOUR)}"/>'
        )
        parts.append(f'<text x="{lx + 14}" y="{height - 5}" class="legend">{escape(name)}</text>')
        lx += 14 + 8 * len(name) + 18
    return parts


def _polyline(points: list[str], colour: str) -> str:
    return f'<polyline points="{" ".join(points)}" fill="none" stroke="{colour}" stroke-width="2"/>'


def stacked_bars(
    title: str,
    labels: Sequence[str],
    series: Mapping[str, Sequence[float]],
    *,
    colours: Mapping[str, str] = NETWORK_COLOURS,
    width: int = 760,
    height: int = 220,
    chart_id: str = "",
) -> str:
    """Bars per label, stacked by series (e.g. posts per window, stacked by network)."""
    left, right, top, bottom = 48, 12, 28, 42
    plot_w, plot_h = width - left - right, height - top - bottom
    totals = [sum(values[i] for values in series.values()) for i in range(len(labels))]
    top_value = _nice_max(max(totals, default=0))
    parts = _svg_open(title, chart_id, width, height, title_x=left)
    parts += _grid(top_value, "g", left=left, x_end=width - right, top=top, plot_h=plot_h)
    n = max(len(labels), 1)
    slot = plot_w / n
    bar_w = max(min(slot * 0.7, 48), 1.5)
    label_every = max(1, round(n / 12))
    for i, label in enumerate(labels):
        x = left + slot * i + (slot - bar_w) / 2
        y: float = top + plot_h
        for name, values in series.items():
            value = values[i]
            if value <= 0:
                continue
            h = plot_h * value / top_value
            y -= h
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                f'fill="{colours.get(name, FALLBACK_COLOUR)}"><title>{escape(label)} · {escape(name)}: '
                f"{value:g}</title></rect>"
            )
        if i % label_every == 0:
            parts.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{top + plot_h + 14}" class="axis" '
                f'text-anchor="middle">{escape(label)}</text>'
            )
    parts += _legend(series, colours, left=left, height=height)
    parts.append("</svg>")
    return "".join(parts)


def share_lines(
    title: str,
    labels: Sequence[str],
    series: Mapping[str, Sequence[float | None]],
    *,
    colours: Mapping[str, str] = NETWORK_COLOURS,
    width: int = 760,
    height: int = 200,
    chart_id: str = "",
) -> str:
    """Lines of shares (0–1) per label, one per series; gaps where a value is unknown."""
    left, right, top, bottom = 48, 12, 28, 42
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [v for s in series.values() for v in s if v is not None]
    top_value = min(1.0, _nice_max(max(values, default=0) * 100) / 100) or 1.0
    parts = _svg_open(title, chart_id, width, height, title_x=left)
    parts += _grid(top_value, ".0%", left=left, x_end=width - right, top=top, plot_h=plot_h)
    n = max(len(labels), 1)
    slot = plot_w / n
    label_every = max(1, round(n / 12))
    for i, label in enumerate(labels):
        if i % label_every == 0:
            parts.append(
                f'<text x="{left + slot * (i + 0.5):.1f}" y="{top + plot_h + 14}" class="axis" '
                f'text-anchor="middle">{escape(label)}</text>'
            )
    for name, points in series.items():
        colour = colours.get(name, FALLBACK_COLOUR)
        segment: list[str] = []
        for i, value in enumerate(points):
            if value is None:
                if len(segment) > 1:
                    parts.append(_polyline(segment, colour))
                segment = []
                continue
            x = left + slot * (i + 0.5)
            y = top + plot_h - plot_h * min(value, top_value) / top_value
            segment.append(f"{x:.1f},{y:.1f}")
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{colour}"><title>{escape(label_at(labels, i))} · '
                f"{escape(name)}: {value:.1%}</title></circle>"
            )
        if len(segment) > 1:
            parts.append(_polyline(segment, colour))
    parts += _legend(series, colours, left=left, height=height)
    parts.append("</svg>")
    return "".join(parts)


def label_at(labels: Sequence[str], i: int) -> str:
    return labels[i] if 0 <= i < len(labels) else ""


def lag_bars(
    title: str,
    rows: Sequence[tuple[str, float | None, float | None]],
    *,
    width: int = 760,
    chart_id: str = "",
) -> str:
    """Horizontal bars per network: median lag (solid) and 90th percentile (light), in hours."""
    row_h, left, right, top = 30, 78, 90, 28
    height = top + row_h * max(len(rows), 1) + 10
    top_value = _nice_max(max((p90 or med or 0 for _, med, p90 in rows), default=0))
    plot_w = width - left - right
    parts = _svg_open(title, chart_id, width, height, title_x=8)
    for i, (name, median, p90) in enumerate(rows):
        y = top + i * row_h
        colour = NETWORK_COLOURS.get(name, FALLBACK_COLOUR)
        parts.append(
            f'<text x="{left - 6}" y="{y + 15}" class="axis" text-anchor="end">{escape(name)}</text>'
        )
        if median is None:
            parts.append(f'<text x="{left}" y="{y + 15}" class="axis">no cases</text>')
            continue
        if p90 is not None:
            parts.append(
                f'<rect x="{left}" y="{y + 4}" width="{plot_w * p90 / top_value:.1f}" height="14" '
                f'fill="{colour}" opacity="0.3"><title>p90 {p90:.1f} h</title></rect>'
            )
        parts.append(
            f'<rect x="{left}" y="{y + 4}" width="{plot_w * median / top_value:.1f}" height="14" '
            f'fill="{colour}"><title>median {median:.1f} h</title></rect>'
        )
        parts.append(
            f'<text x="{left + plot_w * (p90 or median) / top_value + 4:.1f}" y="{y + 15}" class="axis">'
            f"{median:.1f} / {p90 if p90 is not None else median:.1f} h</text>"
        )
    parts.append("</svg>")
    return "".join(parts)
