"""View objects handed to the template (tables of formatted cells, charts, comparisons,
sections), and the tables built from published rows.

Only published cells are shown. A figure derived here (a sum over substance groups, a pooled
rate) is computed from published cells only, and only when none of the cells it needs is
suppressed; otherwise it is shown as suppressed too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache

from markupsafe import Markup

from outcomes.reference import local_authorities
from outcomes.report.read import PublishedTable, Row
from outcomes.report.specs import DIM_TITLES, FORMATS, NOT_APPLICABLE, SUPPRESSED, Measure, Outcome, label, row_key


# -- view objects ---------------------------------------------------------------------------------
@dataclass
class Cell:
    text: str
    cls: str = ""
    header: bool = False
    title: str | None = None


@dataclass
class Header:
    text: str
    cls: str = ""


@dataclass
class TableView:
    id: str
    caption: str
    headers: list[Header]
    rows: list[list[Cell]]
    kind: str = "published"  # published: disclosure-controlled figures; quality: operational counts
    notes: list[str] = field(default_factory=list)
    collapsed: bool = False
    empty: str = "No rows."

    @property
    def has_suppressed(self) -> bool:
        return any(c.text == SUPPRESSED for r in self.rows for c in r)

    @property
    def has_provisional(self) -> bool:
        return any("provisional" in c.cls for r in self.rows for c in r)


@dataclass
class ChartView:
    title: str
    panels: list[tuple[str, Markup | None]]
    caption: str
    empty: str = "Nothing to chart: every England figure needed is suppressed."

    @property
    def drawn(self) -> bool:
        return any(svg is not None for _, svg in self.panels)


@dataclass
class Comparison:
    measure: str
    published: str
    published_when: str
    ours: str
    ours_when: str
    note: str = ""


@dataclass
class Section:
    id: str
    title: str
    table_name: str
    definition: list[str]
    caveat: str | None = None
    charts: list[ChartView] = field(default_factory=list)
    tables: list[TableView] = field(default_factory=list)
    comparisons: list[Comparison] = field(default_factory=list)
    missing: str | None = None


# -- helpers over published rows ------------------------------------------------------------------
def total(rows: Iterable[Row], columns: Sequence[str]) -> dict[str, float] | None:
    """Sums of `columns` over rows, or None when a needed cell is suppressed (or there are no rows)."""
    rows = list(rows)
    if not rows or any(r.get(c) is None for r in rows for c in columns):
        return None
    return {c: sum(r[c] for r in rows) for c in columns}


def ratio(numerator: float, denominator: float, scale: float = 1.0) -> float | None:
    return scale * numerator / denominator if denominator else None


def measure_cell(m: Measure, row: Row) -> Cell:
    value = row.get(m.column)
    if value is None:
        if m.kind == "count" or any(row.get(i) is None for i in m.inputs):
            return Cell(SUPPRESSED, f"{m.cls} suppressed")
        return Cell(NOT_APPLICABLE, f"{m.cls} na", title="not applicable (no denominator)")
    return Cell(FORMATS[m.kind](value), m.cls)


def provisional_cell(row: Row) -> Cell:
    if row.get("provisional"):
        return Cell("P", "flag provisional", title="provisional")
    return Cell("", "flag")


def fully_suppressed(outcome: Outcome, row: Row) -> bool:
    return all(row.get(c) is None for c in outcome.counts)


def latest_rows(rows: list[Row], period_type: str) -> tuple[dt.date | None, list[Row]]:
    ends = [r["period_end"] for r in rows if r["period_type"] == period_type]
    if not ends:
        return None, []
    end = max(ends)
    return end, [r for r in rows if r["period_type"] == period_type and r["period_end"] == end]


def matches(row: Row, where: Sequence[tuple[str, str]]) -> bool:
    return all(row.get(k) == v for k, v in where)


# -- tables ---------------------------------------------------------------------------------------
def outcome_table(
    table_id: str,
    caption: str,
    outcome: Outcome,
    rows: list[Row],
    dims: Sequence[str],
    *,
    lead: Sequence[tuple[str, Callable[[Row], Cell]]] = (),
    provisional: bool = True,
    collapse_over: int = 30,
) -> TableView:
    headers = [Header(t) for t, _ in lead] + [Header(DIM_TITLES.get(d, d)) for d in dims]
    headers += [Header(m.label, "num") for m in outcome.measures]
    if provisional:
        headers.append(Header("Status"))
    body = []
    for row in rows:
        cells = [fn(row) for _, fn in lead]
        for i, d in enumerate(dims):
            cells.append(Cell(label(d, row.get(d)), header=not lead and i == 0))
        cells += [measure_cell(m, row) for m in outcome.measures]
        if provisional:
            cells.append(provisional_cell(row))
        body.append(cells)
    return TableView(table_id, caption, headers, body, collapsed=len(body) > collapse_over)


@cache
def _areas() -> dict[str, tuple[str, str]]:
    """la_code -> (name, region name) of every upper-tier local authority."""
    la = local_authorities()
    return {c: (n, r) for c, n, r in zip(la.la_code, la.la_name, la.region_name, strict=True)}


def area_name(code: str) -> str:
    return _areas().get(code, ("Area not recorded" if code == "unknown" else code, ""))[0]


def area_lead() -> list[tuple[str, Callable[[Row], Cell]]]:
    return [
        ("Local authority", lambda r: Cell(area_name(r["la_code"]), header=True)),
        ("Code", lambda r: Cell(r["la_code"], "code")),
        ("Region", lambda r: Cell(_areas().get(r["la_code"], ("", ""))[1])),
    ]


def area_table(section_id: str, outcome: Outcome, published: PublishedTable, dims: Sequence[str]) -> TableView | None:
    if not published.areas:
        return None
    listed = [r for r in published.areas if not fully_suppressed(outcome, r)]
    listed.sort(key=lambda r: (r["la_code"] == "unknown", area_name(r["la_code"]), row_key(r, dims)))
    hidden = len(published.areas) - len(listed)
    periodic = "period_type" in published.areas[0]
    when = (
        f"financial year {published.area_period}" if periodic else f"{published.area_period}, by year of registration"
    )
    view = outcome_table(
        f"{section_id}-areas",
        f"By local authority, {when}",
        outcome,
        listed,
        dims,
        lead=area_lead(),
        provisional=periodic,
        collapse_over=0,
    )
    areas = len({r["la_code"] for r in published.areas})
    view.notes.append(f"{len(published.areas):,} published rows for {areas:,} areas.")
    if hidden:
        view.notes.append(
            f"{hidden:,} rows in which every count is suppressed ({SUPPRESSED}) are not listed; "
            "a combination with no row at all is a zero."
        )
    return view
