"""Areas against England: a report section per core outcome indicator with each area's rate, its
Wilson 95% interval, a funnel plot against England's rate and the areas significantly above or
below it, as NDTMS.net and Fingertips show them (methods: outcomes.report.funnel).

Everything is computed from the published area-level tables of the latest financial year. An
area's figure that needs a suppressed cell is left out and counted as suppressed; sums over
published cells (over exit types, or over substance groups) are made only when none is suppressed.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from outcomes.reference import ENGLAND
from outcomes.report.funnel import AreaRate, Significance
from outcomes.report.funnel_chart import FunnelPoint, funnel_plot
from outcomes.report.read import PublishedTable, ReportData, Row
from outcomes.report.specs import FORMATS, SUBSTANCE_GROUPS, label
from outcomes.report.views import Cell, ChartView, Header, Section, TableView, area_name, total

ALL_GROUPS = "all"
METHOD = (
    "Intervals are Wilson score 95% confidence intervals. The funnel's control limits are England's rate "
    "± 1.96 and ± 3.09 standard errors for each denominator (95% and 99.8%), the limits Fingertips draws "
    "(OHID Fingertips technical guidance; PHEindicatormethods phe_funnels): an area lies outside the 95% "
    "limits exactly when its 95% interval excludes England's rate."
)


@dataclass(frozen=True)
class Indicator:
    key: str
    table: str
    title: str
    numerator: str
    denominator: str
    higher_is_better: bool
    definition: str
    summed_over: tuple[str, ...] = ()  # splits of the published table added up within an area


INDICATORS: tuple[Indicator, ...] = (
    Indicator(
        "successful-completion",
        "successful_completion",
        "Successful completion, not re-presenting",
        "not_representing",
        "in_treatment",
        True,
        "People who completed treatment successfully and did not re-present within 6 months, of everyone in "
        "treatment in the year (outcomes.md §1).",
    ),
    Indicator(
        "proven-reoffending",
        "proven_reoffending",
        "Proven reoffending",
        "reoffenders",
        "cohort",
        False,
        "People with a proven offence in the 12 months after starting treatment, of those starting treatment "
        "with a proven offence in the 2 years before (outcomes.md §3); all exit types together.",
        ("exit_type",),
    ),
    Indicator(
        "sustained-recovery",
        "sustained_recovery",
        "Sustained recovery",
        "sustained_recovery",
        "cohort",
        True,
        "People in sustained recovery 12 months after a successful completion (not re-presenting, no proven "
        "offence, alive, off out-of-work benefits in months 7–12), of the successful completions "
        "(outcomes.md §2).",
    ),
    Indicator(
        "out-of-work-benefits",
        "benefits_outcome",
        "On out-of-work benefits 12 months after leaving treatment",
        "oow_at_12_months",
        "cohort",
        False,
        "People on an out-of-work benefit 12 months after leaving treatment, of everyone leaving treatment in "
        "the year (outcomes.md §6); all exit types together.",
        ("exit_type",),
    ),
)

VERDICTS = {
    Significance.HIGHER_998: "Higher (outside 99.8% limits)",
    Significance.HIGHER_95: "Higher (outside 95% limits)",
    Significance.SIMILAR: "Similar",
    Significance.LOWER_95: "Lower (outside 95% limits)",
    Significance.LOWER_998: "Lower (outside 99.8% limits)",
}


@dataclass
class Panel:
    """One substance group of an indicator: England's figure and the areas that can be compared."""

    group: str
    england: tuple[int, int] | None  # numerator, denominator; None when suppressed or absent
    areas: list[AreaRate]
    suppressed: int  # areas with a row but a needed cell suppressed
    provisional: bool

    @property
    def benchmark(self) -> float | None:
        return _proportion(self.england)


def _proportion(figure: tuple[int, int] | None) -> float | None:
    return None if figure is None or not figure[1] else figure[0] / figure[1]


def _one_grain(rows: list[Row], dims: tuple[str, ...]) -> list[Row]:
    """Rows at the table's finest grain for `dims`: a published total row (the dim null or 'all')
    is used as it is, so a table published at coarser grains as well is never counted twice."""
    for dim in dims:
        totals = [r for r in rows if r.get(dim) in (None, ALL_GROUPS)]
        rows = totals or rows
    return rows


def _figure(rows: list[Row], ind: Indicator) -> tuple[int, int] | None:
    sums = total(_one_grain(rows, ind.summed_over), [ind.numerator, ind.denominator])
    return None if sums is None else (int(sums[ind.numerator]), int(sums[ind.denominator]))


def _group_rows(rows: list[Row], group: str) -> list[Row]:
    if group != ALL_GROUPS:
        return [r for r in rows if r.get("substance_group") == group]
    published_total = [r for r in rows if r.get("substance_group") in (None, ALL_GROUPS)]
    if published_total:
        return published_total
    return [r for r in rows if r.get("substance_group") in SUBSTANCE_GROUPS]


def panels(ind: Indicator, t: PublishedTable) -> list[Panel]:
    """The all-groups panel and one per substance group, for the latest financial year of `t.areas`."""
    if not t.areas:
        return []
    end = max(r["period_end"] for r in t.areas)
    area_rows = [r for r in t.areas if r["period_end"] == end and r["la_code"] not in (ENGLAND, "unknown")]
    england_rows = [r for r in t.england if r.get("period_type") == "financial_year" and r["period_end"] == end]
    by_area: dict[str, list[Row]] = defaultdict(list)
    for r in area_rows:
        by_area[r["la_code"]].append(r)
    out = []
    for group in (ALL_GROUPS, *SUBSTANCE_GROUPS):
        rows = _group_rows(england_rows, group)
        england = _figure(rows, ind) if rows else None
        benchmark = _proportion(england)
        areas, suppressed = [], 0
        for code in sorted(by_area):
            rows = _group_rows(by_area[code], group)
            if not rows:
                continue  # no row: nobody in this area and group
            figure = _figure(rows, ind)
            if figure is None:
                suppressed += 1
            elif figure[1] > 0 and benchmark is not None:
                areas.append(AreaRate(code, figure[0], figure[1], benchmark))
        provisional = any(r.get("provisional") for r in england_rows)
        out.append(Panel(group, england, areas, suppressed, provisional))
    return out


def _group_label(group: str) -> str:
    return "All substance groups" if group == ALL_GROUPS else label("substance_group", group)


def _verdict(ind: Indicator, s: Significance) -> str:
    if s.direction == 0:
        return VERDICTS[s]
    better = (s.direction > 0) == ind.higher_is_better
    return f"{VERDICTS[s]}, {'better' if better else 'worse'}"


def _area_cells(ind: Indicator, p: Panel, a: AreaRate) -> list[Cell]:
    lo, hi = a.interval
    rate = FORMATS["rate"]
    return [
        Cell(_group_label(p.group)),
        Cell(area_name(a.la_code), header=True),
        Cell(a.la_code, "code"),
        Cell(f"{a.numerator:,}", "num count"),
        Cell(f"{a.denominator:,}", "num count"),
        Cell(rate(a.rate), "num rate"),
        Cell(f"{rate(lo)} to {rate(hi)}", "num rate"),
        Cell(rate(a.benchmark), "num rate"),
        Cell(_verdict(ind, a.significance), f"verdict direction-{a.significance.direction}"),
    ]


def _headers(ind: Indicator) -> list[Header]:
    return [
        Header("Substance group"),
        Header("Local authority"),
        Header("Code"),
        Header(ind.numerator.replace("_", " ").capitalize(), "num"),
        Header(ind.denominator.replace("_", " ").capitalize(), "num"),
        Header("Rate", "num"),
        Header("95% interval", "num"),
        Header("England", "num"),
        Header("Compared with England"),
    ]


def indicator_section(ind: Indicator, t: PublishedTable | None) -> Section:
    section = Section(
        f"areas-{ind.key}",
        f"Areas against England: {ind.title}",
        f"published.{ind.table}",
        [ind.definition, METHOD],
    )
    section.definition.append(
        ("Higher is better." if ind.higher_is_better else "Lower is better.")
        + " Areas whose figure needs a suppressed cell ([c]) are left out of the plot and the tables, and "
        "counted on each chart; areas with no published row had no one in the group."
    )
    if t is None or not t.areas:
        section.missing = f"published.{ind.table} has no area rows for a financial year yet."
        return section
    drawn, significant, listed = [], [], []
    shown_panels = panels(ind, t)
    for k, p in enumerate(shown_panels):
        name = _group_label(p.group)
        if p.benchmark is None:
            drawn.append((f"{name} (England's figure is suppressed: no comparison)", None))
            continue
        points = [FunnelPoint(area_name(a.la_code), a.numerator, a.denominator, a.significance) for a in p.areas]
        svg = funnel_plot(
            f"{section.id}-chart-{k}",
            f"{ind.title}, {name}: areas against England ({FORMATS['rate'](p.benchmark)})",
            points,
            p.benchmark,
            suppressed=p.suppressed,
            x_label=ind.denominator.replace("_", " ").capitalize() + " (denominator)",
            fmt=FORMATS["rate"],
        )
        drawn.append((f"{name}: England {FORMATS['rate'](p.benchmark)}, {p.suppressed} areas suppressed", svg))
        for a in sorted(p.areas, key=lambda a: (-a.significance.direction, area_name(a.la_code))):
            cells = _area_cells(ind, p, a)
            listed.append(cells)
            if a.significance.direction != 0:
                significant.append(cells)
    period = t.area_period or "the latest financial year"
    provisional = any(p.provisional for p in shown_panels)
    caption = (
        f"Financial year {period}{' (provisional)' if provisional else ''}. Each point is a local authority: "
        "its rate against its denominator. Areas outside the dashed (95%) or dotted (99.8%) limits differ "
        "significantly from England. Areas whose figure needs a suppressed cell are not plotted; each chart "
        "says how many."
    )
    empty = (
        "Nothing to compare: England's figure is suppressed in every substance group."
        if all(p.benchmark is None for p in shown_panels)
        else "Nothing to plot: every area's figure needs a suppressed cell "
        f"({max(p.suppressed for p in shown_panels):,} areas left out)."
    )
    section.charts.append(ChartView(f"{ind.title}: areas against England", drawn, caption, empty))
    headers = _headers(ind)
    section.tables.append(
        TableView(
            f"{section.id}-significant",
            f"Areas significantly above or below England, financial year {period}",
            headers,
            significant,
            empty="No area differs significantly from England at the 95% level.",
        )
    )
    every = TableView(f"{section.id}-all", f"Every area compared, financial year {period}", headers, listed)
    every.collapsed = True
    every.notes.append(METHOD)
    section.tables.append(every)
    return section


def area_sections(data: ReportData) -> list[Section]:
    """A section per core indicator, in the order of INDICATORS."""
    return [indicator_section(ind, data.tables.get(ind.table)) for ind in INDICATORS]
