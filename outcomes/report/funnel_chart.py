"""The funnel plot as an inline SVG: areas' rates against their denominators, England's rate as a
line, and the 95% and 99.8% control limits around it (outcomes.report.funnel)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup

from outcomes.report.charts import _e, _frame, nice_ticks
from outcomes.report.funnel import LEVELS, Significance, control_limits, funnel_curve

# Okabe-Ito colours (charts.PALETTE): blue above, vermilion below, grey within the limits.
POINT_COLOURS = {1: "#0072B2", -1: "#D55E00", 0: "#8c8c8c"}
LIMIT_DASHES = {0.95: "6 3", 0.998: "2 3"}


@dataclass(frozen=True)
class FunnelPoint:
    name: str
    numerator: int
    denominator: int
    significance: Significance

    @property
    def rate(self) -> float:
        return self.numerator / self.denominator


def funnel_plot(
    chart_id: str,
    title: str,
    points: Sequence[FunnelPoint],
    benchmark: float,
    *,
    suppressed: int,
    x_label: str,
    fmt: Callable[[float], str],
    width: int = 460,
    height: int = 300,
) -> Markup | None:
    """Points (one per area) over the funnel around `benchmark`; None when no area can be drawn.
    The count of areas left out because a cell they need is suppressed is written on the chart."""
    if not points:
        return None
    left, right, top = 62, width - 16, 14
    bottom = height - 62
    n_lo = min(p.denominator for p in points)
    n_hi = max(p.denominator for p in points)
    x_max = nice_ticks(0, n_hi * 1.05, integer=True)[-1]
    n_start = max(1.0, n_lo * 0.6)
    curves = {level: funnel_curve(benchmark, n_start, x_max, level) for level in LEVELS}
    widest = control_limits(benchmark, n_start, max(LEVELS))
    values = [p.rate for p in points] + [benchmark, *widest]
    y_ticks = [t for t in nice_ticks(max(0.0, min(values)), min(1.0, max(values))) if -1e-9 <= t <= 1 + 1e-9]
    y_lo, y_hi = y_ticks[0], y_ticks[-1]
    x_ticks = nice_ticks(0, x_max, integer=True)

    def x_of(n: float) -> float:
        return left + n / x_max * (right - left)

    def y_of(v: float) -> float:
        v = min(max(v, y_lo), y_hi)
        return bottom - (v - y_lo) / (y_hi - y_lo) * (bottom - top)

    outside = sum(p.significance.direction != 0 for p in points)
    desc = (
        f"Funnel plot of {len(points)} areas' rates against their denominators, with England's rate "
        f"{fmt(benchmark)} and its 95% and 99.8% control limits; {outside} areas outside the 95% limits; "
        f"{suppressed} areas not shown because a cell they need is suppressed. The table below gives the figures."
    )
    legend_y = height + 6
    parts = _frame(chart_id, title, desc, width, height + 50)
    for t in y_ticks:
        y = y_of(t)
        parts.append(f'<line x1="{left}" x2="{right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e3e3e3" />')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="#333">{_e(fmt(t))}</text>')
    for t in x_ticks:
        x = x_of(t)
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{bottom}" y2="{bottom + 4}" stroke="#888" />')
        parts.append(f'<text x="{x:.1f}" y="{bottom + 17}" text-anchor="middle" fill="#333">{t:,.0f}</text>')
    parts.append(f'<line x1="{left}" x2="{right}" y1="{bottom}" y2="{bottom}" stroke="#888" />')
    parts.append(
        f'<text x="{(left + right) / 2:.1f}" y="{bottom + 34}" text-anchor="middle" fill="#333">{_e(x_label)}</text>'
    )
    mid = (top + bottom) / 2
    parts.append(f'<text transform="translate(14 {mid:.1f}) rotate(-90)" text-anchor="middle" fill="#333">Rate</text>')
    # Limits and England's line first, so that the points are drawn over them.
    for level, curve in curves.items():
        for side in (1, 2):
            path = " ".join(f"{x_of(c[0]):.1f},{y_of(c[side]):.1f}" for c in curve)
            parts.append(
                f'<polyline class="limit" points="{path}" fill="none" stroke="#555" stroke-width="1.2" '
                f'stroke-dasharray="{LIMIT_DASHES[level]}" />'
            )
    parts.append(
        f'<line class="benchmark" x1="{x_of(n_start):.1f}" x2="{right}" y1="{y_of(benchmark):.1f}" '
        f'y2="{y_of(benchmark):.1f}" stroke="#000" stroke-width="1.6" />'
    )
    parts.append('<g class="areas">')
    for p in sorted(points, key=lambda p: (p.significance.direction != 0, p.name)):
        colour = POINT_COLOURS[p.significance.direction]
        parts.append(
            f'<circle cx="{x_of(p.denominator):.1f}" cy="{y_of(p.rate):.1f}" r="3.6" fill="{colour}" '
            f'fill-opacity="0.85" stroke="#fff" stroke-width="0.8"><title>{_e(p.name)}: {_e(fmt(p.rate))} '
            f"({p.numerator:,} of {p.denominator:,})</title></circle>"
        )
    parts.append("</g>")
    rows = [
        [
            ('<line x1="{x}" x2="{x2}" y1="{y}" y2="{y}" stroke="#000" stroke-width="1.6" />', "England"),
            ('<line x1="{x}" x2="{x2}" y1="{y}" y2="{y}" stroke="#555" stroke-dasharray="6 3" />', "95% limits"),
            ('<line x1="{x}" x2="{x2}" y1="{y}" y2="{y}" stroke="#555" stroke-dasharray="2 3" />', "99.8% limits"),
        ],
        [
            (f'<circle cx="{{xc}}" cy="{{y}}" r="3.6" fill="{POINT_COLOURS[1]}" />', "Above the limits"),
            (f'<circle cx="{{xc}}" cy="{{y}}" r="3.6" fill="{POINT_COLOURS[-1]}" />', "Below"),
            (f'<circle cx="{{xc}}" cy="{{y}}" r="3.6" fill="{POINT_COLOURS[0]}" />', "Within"),
        ],
    ]
    for k, items in enumerate(rows):
        x, y = left, legend_y + 18 * k
        for shape, text in items:
            parts.append(shape.format(x=x, x2=x + 18, xc=x + 9, y=y - 4))
            parts.append(f'<text x="{x + 22}" y="{y}" fill="#222">{_e(text)}</text>')
            x += 34 + 6.5 * len(text)
    note = f"{len(points)} areas shown; {suppressed} left out because a cell they need is suppressed"
    parts.append(f'<text class="suppressed-note" x="10" y="{legend_y + 38}" fill="#444">{_e(note)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
