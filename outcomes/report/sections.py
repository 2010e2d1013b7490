"""The report's sections: one per outcome table (definition, England chart, latest England table,
local-authority table, comparison with published figures), then linkage and data quality."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from outcomes.report import charts
from outcomes.report.areas import area_sections
from outcomes.report.comparisons import COMPARISONS
from outcomes.report.quality import linkage_section, quality_section, rule_descriptions
from outcomes.report.read import PublishedTable, ReportData, Row, latest_complete_year
from outcomes.report.specs import (
    AXIS_FORMATS,
    OUTCOMES,
    ROLLING,
    SUPPRESSED,
    Outcome,
    label,
    long_date,
    row_key,
    sort_key,
)
from outcomes.report.views import (
    ChartView,
    Section,
    TableView,
    area_table,
    latest_rows,
    matches,
    outcome_table,
    ratio,
    total,
)


# -- charts ---------------------------------------------------------------------------------------
def period_chart(section_id: str, outcome: Outcome, rows: list[Row]) -> ChartView | None:
    spec = outcome.chart
    if spec is None:
        return None
    rolling = [r for r in rows if r["period_type"] == ROLLING and matches(r, spec.where)]
    ends = sorted({r["period_end"] for r in rolling})
    if not ends:
        return None
    labels = [f"{e:%Y-%m}" for e in ends]
    index = {e: i for i, e in enumerate(ends)}
    panels: dict[object, dict[tuple, charts.Series]] = defaultdict(dict)
    for r in sorted(rolling, key=lambda r: row_key(r, spec.series)):
        panel = r[spec.panel] if spec.panel else None
        key = tuple(r[d] for d in spec.series)
        series = panels[panel].get(key)
        if series is None:
            name = " · ".join(label(d, r[d]) for d in spec.series)
            series = panels[panel][key] = charts.Series(name, [None] * len(ends), [False] * len(ends))
        series.values[index[r["period_end"]]] = r.get(spec.column)
        series.provisional[index[r["period_end"]]] = bool(r.get("provisional"))
    chosen: dict[object, list[charts.Series]] = {}
    for panel, by_key in panels.items():
        kept = [s for s in by_key.values() if any(v is not None for v in s.values)]
        if spec.top:
            kept = [s for s in kept if sum(v is not None for v in s.values) >= 2]
            kept.sort(key=lambda s: -next((v for v in reversed(s.values) if v is not None), 0))
            kept = kept[: spec.top]
        chosen[panel] = kept
    y_range = charts.value_range([s for kept in chosen.values() for s in kept])
    fmt = AXIS_FORMATS[spec.kind]
    order = sorted(chosen, key=lambda p: sort_key(spec.panel, p)) if spec.panel else [None]
    drawn = []
    for k, panel in enumerate(order):
        title = spec.title + (f": {label(spec.panel, panel)}" if spec.panel else "")
        svg = charts.line_chart(
            f"{section_id}-chart-{k}",
            title + ", England",
            labels,
            chosen.get(panel, []),
            y_label=spec.y_label,
            x_label="12 months ending",
            fmt=fmt,
            y_range=y_range,
            integer=spec.kind == "count",
            width=460 if spec.panel else 680,
        )
        drawn.append((label(spec.panel, panel) if spec.panel else "", svg))
    caption = (
        "England, rolling 12-month periods by the month they end. Hollow points and faint lines are "
        "provisional; a gap is a suppressed value."
    )
    if spec.top:
        caption += f" Each panel shows at most the {spec.top} largest groups with at least two published points."
    return ChartView(spec.title + ", England", drawn, caption)


# -- sections -------------------------------------------------------------------------------------
def periodic_section(outcome: Outcome, t: PublishedTable, synthetic: str) -> Section:
    section = Section(outcome.name.replace("_", "-"), outcome.title, outcome.name, list(outcome.definition))
    section.caveat = outcome.caveat
    chart = period_chart(section.id, outcome, t.england)
    if chart:
        section.charts.append(chart)
    end, latest = latest_rows(t.england, ROLLING)
    dims = ["substance_group", *outcome.dims]
    if latest:
        latest.sort(key=lambda r: row_key(r, dims))
        view = outcome_table(
            f"{section.id}-england",
            f"England, 12 months ending {long_date(end)}",
            outcome,
            latest,
            dims,
        )
        section.tables.append(view)
    else:
        section.tables.append(
            TableView(f"{section.id}-england", "England", [], [], empty="No England rows are published yet.")
        )
    areas = area_table(section.id, outcome, t, dims)
    if areas:
        section.tables.append(areas)
    if outcome.provisional:
        section.definition.append(f"Provisional (P): {outcome.provisional}; the figures can still change.")
    if outcome.name in COMPARISONS:
        section.comparisons = COMPARISONS[outcome.name](t, synthetic)
    return section


def drug_deaths_section(outcome: Outcome, t: PublishedTable, as_of: dt.date | None) -> Section:
    section = Section("drug-related-deaths", outcome.title, outcome.name, list(outcome.definition))
    # England's totals are published as such (drug_related_deaths_by_area), so one suppressed fine
    # cell no longer blanks a year.
    by_year = [r for r in t.grains.get("england_by_year", []) if r["year_basis"] == "registration"]
    years = sorted({r["year"] for r in by_year})
    value = {(r["year"], c): r[c] for r in by_year for c in ("drug_poisoning_deaths", "drug_misuse_deaths")}
    series = [
        charts.Series(name, [value.get((y, column)) for y in years])
        for column, name in (("drug_poisoning_deaths", "Drug poisoning"), ("drug_misuse_deaths", "Drug misuse"))
    ]
    by_status = [r for r in t.grains.get("england_by_status", []) if r["year_basis"] == "registration"]
    statuses = sorted({r["treatment_status"] for r in by_status}, key=lambda v: sort_key("treatment_status", v))
    status_value = {(r["year"], r["treatment_status"]): r["drug_poisoning_deaths"] for r in by_status}
    status_series = [
        charts.Series(label("treatment_status", st), [status_value.get((y, st)) for y in years]) for st in statuses
    ]
    panels = []
    for k, (title, drawn) in enumerate(
        (("Deaths by year of registration", series), ("Drug poisoning deaths by treatment status", status_series))
    ):
        svg = charts.bar_chart(
            f"{section.id}-chart-{k}",
            f"{title}, England",
            [str(y) for y in years],
            drawn,
            y_label="Deaths",
            x_label="Year of registration",
            fmt=AXIS_FORMATS["count"],
            integer=True,
            width=460,
        )
        panels.append((title, svg))
    section.charts.append(
        ChartView(
            "Drug poisoning and drug misuse deaths by year of registration, England",
            panels,
            f"England's published totals by year (all areas, sexes and ages); {SUPPRESSED} where a total is "
            "suppressed.",
        )
    )
    year = latest_complete_year(t.england, as_of)
    if year is not None:
        dims = ["year_basis", "treatment_status", "sex", "age_band"]
        rows = sorted([r for r in t.england if r["year"] == year], key=lambda r: row_key(r, dims))
        section.tables.append(
            outcome_table(f"{section.id}-england", f"England, {year}", outcome, rows, dims, provisional=False)
        )
        if as_of is not None and dt.date(year, 12, 31) > as_of:
            section.tables[-1].notes.append(f"{year} is not complete at the as-of date.")
        section.tables[-1].notes.append(
            "Registrations lag deaths by months (inquests), so the latest years by occurrence are incomplete."
        )
    areas = area_table(section.id, outcome, t, ["treatment_status", "sex", "age_band"])
    if areas:
        section.tables.append(areas)
    return section


def deaths_after_section(outcome: Outcome, t: PublishedTable) -> Section:
    section = Section("deaths-after-treatment", outcome.title, outcome.name, list(outcome.definition))
    # Pooled over exit years and substance groups by the published table of that grain
    # (deaths_after_treatment_by_exit_type): its cells are disclosure-controlled as a whole.
    by_type = t.grains.get("by_exit_type", [])
    bands = sorted({r["time_since_exit"] for r in by_type}, key=lambda v: sort_key("time_since_exit", v))
    exit_types = sorted({r["exit_type"] for r in by_type}, key=lambda v: sort_key("exit_type", v))
    pooled: list[Row] = sorted(by_type, key=lambda r: row_key(r, ["exit_type", "time_since_exit"]))
    for band in bands:
        rows = [r for r in by_type if r["time_since_exit"] == band]
        py = sum(r["person_years"] or 0.0 for r in rows)
        row: Row = {"exit_type": "all exits", "time_since_exit": band, "person_years": py}
        for deaths, rate in (
            ("deaths_all_cause", "rate_all_cause_per_1000py"),
            ("deaths_drug_poisoning", "rate_drug_poisoning_per_1000py"),
        ):
            s = total(rows, [deaths])
            row[deaths] = None if s is None else s[deaths]
            row[rate] = None if s is None else ratio(s[deaths], py, 1000.0)
        pooled.append(row)
    panels = []
    for k, (rate, name) in enumerate(
        (("rate_all_cause_per_1000py", "All causes"), ("rate_drug_poisoning_per_1000py", "Drug poisoning"))
    ):
        series = [
            charts.Series(
                label("exit_type", e),
                [
                    next((r[rate] for r in pooled if r["exit_type"] == e and r["time_since_exit"] == b), None)
                    for b in bands
                ],
            )
            for e in exit_types
        ]
        svg = charts.bar_chart(
            f"{section.id}-chart-{k}",
            f"{name}: crude death rate per 1,000 person-years by time since exit, all exit years",
            [label("time_since_exit", b) for b in bands],
            series,
            y_label="Deaths per 1,000 PY",
            x_label="Time since exit",
            fmt=AXIS_FORMATS["per1000"],
            width=460,
        )
        panels.append((name, svg))
    section.charts.append(
        ChartView(
            "Crude death rates after leaving treatment, by time since exit",
            panels,
            "Pooled over exit years and substance groups (published at that grain); "
            f"{SUPPRESSED} where a cell is suppressed.",
        )
    )
    view = outcome_table(
        f"{section.id}-pooled",
        "All exit years and substance groups, by exit type and time since exit",
        outcome,
        pooled,
        ["exit_type", "time_since_exit"],
        provisional=False,
    )
    view.notes.append(
        "Rates are crude (not standardised for age or sex). Person-years are published unsuppressed; "
        f"deaths and rates show {SUPPRESSED} when suppressed; the all-exits rows add up the exit types' cells."
    )
    section.tables.append(view)
    dims = ["exit_year", "exit_type", "substance_group", "time_since_exit"]
    full = outcome_table(
        f"{section.id}-published",
        "Every published row, by exit year, exit type, substance group and time since exit",
        outcome,
        sorted(t.england, key=lambda r: (r["exit_year"], *row_key(r, dims[1:]))),
        dims,
        provisional=False,
        collapse_over=0,
    )
    section.tables.append(full)
    return section


def build_sections(data: ReportData) -> list[Section]:
    synthetic = "synthetic data" if is_synthetic(data) else "this warehouse"
    sections = []
    for outcome in OUTCOMES:
        t = data.tables.get(outcome.name)
        if t is None:
            sid = outcome.name.replace("_", "-")
            sections.append(
                Section(
                    sid, outcome.title, outcome.name, list(outcome.definition), missing="Not built or not readable."
                )
            )
        elif outcome.name == "drug_related_deaths":
            sections.append(drug_deaths_section(outcome, t, data.as_of))
        elif outcome.name == "deaths_after_treatment":
            sections.append(deaths_after_section(outcome, t))
        else:
            sections.append(periodic_section(outcome, t, synthetic))
    sections += area_sections(data)
    sections.append(linkage_section(data.linkage))
    sections.append(quality_section(data.quality, rule_descriptions()))
    return sections


def is_synthetic(data: ReportData) -> bool:
    """Precision and recall exist only where the linkage was given ground truth: synthetic data."""
    return any(r.get("pairwise_precision") is not None for r in data.linkage or [])
