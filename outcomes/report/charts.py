"""Small inline SVG charts drawn in Python: a line chart over periods and a grouped bar chart.

Every chart is a standalone `<svg>` element with a `<title>` and `<desc>` (read out by screen
readers through `aria-labelledby`), labelled axes and a legend. Missing values (suppressed or not
computable) leave a gap in a line and a "[c]" mark instead of a bar. Provisional points are drawn
hollow and joined by faint segments. All text is escaped here: the output is trusted markup.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from html import escape

from markupsafe import Markup

# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
DASHES = ("", "6 3", "2 3", "8 3 2 3", "", "6 3", "2 3")
FONT = 12


@dataclass
class Series:
    name: str
    values: list[float | None]
    provisional: list[bool] = field(default_factory=list)

    def is_provisional(self, i: int) -> bool:
        return bool(self.provisional) and self.provisional[i]


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def nice_ticks(lo: float, hi: float, count: int = 5, integer: bool = False) -> list[float]:
    """Round tick values covering [lo, hi]; whole numbers only when `integer`."""
    if hi <= lo:
        hi = lo + (count if integer else 1.0)
    raw = (hi - lo) / max(count, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    if integer:
        step = max(1, round(step))
    ticks = [round(math.floor(lo / step) * step, 10)]
    while ticks[-1] < hi - 1e-12:
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


def value_range(series: Sequence[Series], include_zero: bool = True) -> tuple[float, float] | None:
    values = [v for s in series for v in s.values if v is not None]
    if not values:
        return None
    lo, hi = min(values), max(values)
    if include_zero:
        lo, hi = min(lo, 0.0), max(hi, 0.0)
    return lo, hi


def _frame(chart_id: str, title: str, desc: str, width: int, height: int) -> list[str]:
    return [
        f'<svg class="chart" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-labelledby="{chart_id}-t {chart_id}-d" '
        f'font-family="inherit" font-size="{FONT}">',
        f'<title id="{chart_id}-t">{_e(title)}</title>',
        f'<desc id="{chart_id}-d">{_e(desc)}</desc>',
    ]


def _y_axis(parts, ticks, y_of, left, right, fmt, y_label, top, bottom):
    for t in ticks:
        y = y_of(t)
        stroke = "#888" if t == 0 else "#e3e3e3"
        parts.append(f'<line x1="{left}" x2="{right}" y1="{y:.1f}" y2="{y:.1f}" stroke="{stroke}" />')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="#333">{_e(fmt(t))}</text>')
    mid = (top + bottom) / 2
    parts.append(
        f'<text transform="translate(14 {mid:.1f}) rotate(-90)" text-anchor="middle" fill="#333">{_e(y_label)}</text>'
    )


def _x_title(parts, x: float, y: float, text: str) -> None:
    parts.append(f'<text x="{x:.1f}" y="{y}" text-anchor="middle" fill="#333">{_e(text)}</text>')


def _legend(parts, series_names, y, width, left, marker="line") -> int:
    """Legend items laid out in rows from `left`; returns the height used."""
    x, row_h, used = left, 18, 18
    for i, name in enumerate(series_names):
        item_w = 34 + 7 * len(name)
        if x + item_w > width - 8 and x > left:
            x, y, used = left, y + row_h, used + row_h
        color = PALETTE[i % len(PALETTE)]
        if marker == "line":
            dash = DASHES[i % len(DASHES)]
            dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
            parts.append(
                f'<line x1="{x}" x2="{x + 22}" y1="{y - 4}" y2="{y - 4}" stroke="{color}" '
                f'stroke-width="2.5"{dash_attr} />'
            )
        else:
            parts.append(f'<rect x="{x + 4}" y="{y - 11}" width="14" height="12" fill="{color}" />')
        parts.append(f'<text x="{x + 28}" y="{y}" fill="#222">{_e(name)}</text>')
        x += item_w
    return used


def _legend_height(series_names, width, left) -> int:
    x, rows = left, 1
    for name in series_names:
        item_w = 34 + 7 * len(name)
        if x + item_w > width - 8 and x > left:
            x, rows = left, rows + 1
        x += item_w
    return rows * 18


def line_chart(
    chart_id: str,
    title: str,
    x_labels: Sequence[str],
    series: Sequence[Series],
    *,
    y_label: str,
    x_label: str,
    fmt: Callable[[float], str],
    y_range: tuple[float, float] | None = None,
    integer: bool = False,
    width: int = 640,
    height: int = 260,
) -> Markup | None:
    """Lines over the x categories (periods); None when there is no value to draw."""
    series = [s for s in series if any(v is not None for v in s.values)]
    y_range = y_range or value_range(series)
    if not series or y_range is None:
        return None
    names = [s.name for s in series]
    left, right, top = 62, width - 16, 14
    legend_h = _legend_height(names, width, left)
    total_h = height + legend_h + 8
    bottom = height - 50
    ticks = nice_ticks(*y_range, integer=integer)
    lo, hi = ticks[0], ticks[-1]

    def y_of(v: float) -> float:
        return bottom - (v - lo) / (hi - lo) * (bottom - top)

    n = len(x_labels)

    def x_of(i: int) -> float:
        return left + 8 + (i * (right - left - 16) / (n - 1) if n > 1 else (right - left - 16) / 2)

    shown = sum(v is not None for s in series for v in s.values)
    desc = (
        f"Line chart of {y_label.lower()} by {x_label.lower()}, {x_labels[0]} to {x_labels[-1]}, "
        f"{len(series)} series ({', '.join(names)}); {shown} published points. "
        "Hollow points are provisional; gaps are suppressed or missing values. The table below gives the figures."
    )
    parts = _frame(chart_id, title, desc, width, total_h)
    _y_axis(parts, ticks, y_of, left, right, fmt, y_label, top, bottom)
    parts.append(f'<line x1="{left}" x2="{right}" y1="{bottom}" y2="{bottom}" stroke="#888" />')
    every = max(1, math.ceil(n / 7))
    ticked = [i for i in range(n) if i % every == 0]
    if n - 1 - ticked[-1] >= every * 0.75:
        ticked.append(n - 1)
    for i, label in enumerate(x_labels):
        if i in ticked:
            x = x_of(i)
            parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{bottom}" y2="{bottom + 4}" stroke="#888" />')
            parts.append(f'<text x="{x:.1f}" y="{bottom + 17}" text-anchor="middle" fill="#333">{_e(label)}</text>')
    _x_title(parts, (left + right) / 2, bottom + 38, x_label)
    for k, s in enumerate(series):
        color, dash = PALETTE[k % len(PALETTE)], DASHES[k % len(DASHES)]
        parts.append(f'<g class="series" aria-label="{_e(s.name)}">')
        for i in range(n - 1):
            a, b = s.values[i], s.values[i + 1]
            if a is None or b is None:
                continue
            faint = ' stroke-opacity="0.45"' if (s.is_provisional(i) or s.is_provisional(i + 1)) else ""
            dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
            parts.append(
                f'<line x1="{x_of(i):.1f}" y1="{y_of(a):.1f}" x2="{x_of(i + 1):.1f}" y2="{y_of(b):.1f}" '
                f'stroke="{color}" stroke-width="2.2"{dash_attr}{faint} />'
            )
        for i, v in enumerate(s.values):
            if v is None:
                continue
            fill = "#fff" if s.is_provisional(i) else color
            note = " (provisional)" if s.is_provisional(i) else ""
            parts.append(
                f'<circle cx="{x_of(i):.1f}" cy="{y_of(v):.1f}" r="3.4" fill="{fill}" stroke="{color}" '
                f'stroke-width="1.6"><title>{_e(s.name)}, {_e(x_labels[i])}: {_e(fmt(v))}{note}</title></circle>'
            )
        parts.append("</g>")
    _legend(parts, names, height + 12, width, left)
    parts.append("</svg>")
    return Markup("".join(parts))


def bar_chart(
    chart_id: str,
    title: str,
    categories: Sequence[str],
    series: Sequence[Series],
    *,
    y_label: str,
    x_label: str,
    fmt: Callable[[float], str],
    integer: bool = False,
    width: int = 640,
    height: int = 260,
) -> Markup | None:
    """Grouped bars: one group per category, one bar per series; None when there is no value."""
    y_range = value_range(series)
    if not series or not categories or y_range is None:
        return None
    names = [s.name for s in series]
    left, right, top = 62, width - 16, 14
    legend_h = _legend_height(names, width, left)
    extra = 14 * (max(len(c.split("\n")) for c in categories) - 1)
    total_h = height + legend_h + 8 + extra
    bottom = height - 50
    ticks = nice_ticks(*y_range, integer=integer)
    lo, hi = ticks[0], ticks[-1]

    def y_of(v: float) -> float:
        return bottom - (v - lo) / (hi - lo) * (bottom - top)

    group_w = (right - left) / len(categories)
    bar_w = min(36.0, group_w * 0.8 / len(series))
    desc = (
        f"Bar chart of {y_label.lower()} by {x_label.lower()} ({', '.join(categories)}), "
        f"bars for {', '.join(names)}. [c] marks a suppressed value. The table below gives the figures."
    )
    parts = _frame(chart_id, title, desc, width, total_h)
    _y_axis(parts, ticks, y_of, left, right, fmt, y_label, top, bottom)
    zero = y_of(max(lo, 0.0))
    for g, category in enumerate(categories):
        x0 = left + g * group_w + (group_w - bar_w * len(series)) / 2
        for k, s in enumerate(series):
            v = s.values[g]
            x = x0 + k * bar_w
            if v is None:
                parts.append(
                    f'<text x="{x + bar_w / 2:.1f}" y="{zero - 4:.1f}" text-anchor="middle" fill="#666" '
                    f'font-size="10">[c]<title>{_e(s.name)}, {_e(category)}: suppressed</title></text>'
                )
                continue
            if v == 0:
                parts.append(
                    f'<text x="{x + bar_w / 2:.1f}" y="{zero - 4:.1f}" text-anchor="middle" fill="#666" '
                    f'font-size="10">0<title>{_e(s.name)}, {_e(category)}: {_e(fmt(v))}</title></text>'
                )
            y = y_of(v)
            top_y, h = min(y, zero), abs(zero - y)
            parts.append(
                f'<rect x="{x + 1:.1f}" y="{top_y:.1f}" width="{bar_w - 2:.1f}" height="{max(h, 0.5):.1f}" '
                f'fill="{PALETTE[k % len(PALETTE)]}"><title>{_e(s.name)}, {_e(category)}: {_e(fmt(v))}</title></rect>'
            )
        cx = left + (g + 0.5) * group_w
        lines = "".join(
            f'<tspan x="{cx:.1f}" dy="{0 if i == 0 else 14}">{_e(line)}</tspan>'
            for i, line in enumerate(category.split("\n"))
        )
        parts.append(f'<text y="{bottom + 17}" text-anchor="middle" fill="#333">{lines}</text>')
    parts.append(f'<line x1="{left}" x2="{right}" y1="{bottom}" y2="{bottom}" stroke="#888" />')
    _x_title(parts, (left + right) / 2, bottom + 38 + extra, x_label)
    _legend(parts, names, height + 12 + extra, width, left, marker="box")
    parts.append("</svg>")
    return Markup("".join(parts))
