"""Areas against England: Wilson intervals, funnel-plot control limits and the report sections
built from published area rows (outcomes.report.funnel, outcomes.report.areas)."""

from __future__ import annotations

import datetime as dt
import math
import re

import pytest
from scipy.stats import norm

from outcomes.reference import ENGLAND
from outcomes.report.areas import INDICATORS, indicator_section, panels
from outcomes.report.funnel import Significance, control_limits, significance, wilson_interval, z_value
from outcomes.report.read import PublishedTable

FY_END = dt.date(2025, 3, 31)


def test_wilson_interval_known_values():
    assert wilson_interval(5, 10) == pytest.approx((0.2366, 0.7634), abs=5e-5)
    # Newcombe (1998), table I: 81 of 263 gives 0.2553 to 0.3662; 0 of 10 an upper limit of 0.2775.
    assert wilson_interval(81, 263) == pytest.approx((0.2553, 0.3662), abs=5e-5)
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=5e-5)
    assert wilson_interval(10, 10)[0] == pytest.approx(0.7225, abs=5e-5)


def test_z_values_of_the_two_funnel_levels():
    assert z_value(0.95) == pytest.approx(1.95996, abs=1e-5)
    assert z_value(0.998) == pytest.approx(3.09023, abs=1e-5)


def _phe_limit(p0: float, n: float, p: float, side: str) -> float:
    """PHEindicatormethods' sigma_adjustment (R/Funnels.R), written out independently as the reference."""
    z2 = norm.ppf(p) ** 2
    first = p0 * (n / z2 + 1)
    adj = math.sqrt(
        (-8 * p0 * (n / z2 + 1)) ** 2 - 64 * (1 / z2 + 1 / n) * p0 * (n * (p0 * (n / z2 + 2) - 1) + z2 * (p0 - 1))
    )
    last = 1 / z2 + 1 / n
    return ((first - adj / 8) if side == "low" else (first + adj / 8)) / last / n


@pytest.mark.parametrize("p0,n", [(0.3, 100), (0.05, 40), (0.47, 1_000), (0.9, 25)])
def test_control_limits_match_the_fingertips_funnel(p0, n):
    for level, p in ((0.95, 0.975), (0.998, 0.999)):
        lo, hi = control_limits(p0, n, level)
        assert lo == pytest.approx(max(0.0, _phe_limit(p0, n, p, "low")), abs=1e-9)
        assert hi == pytest.approx(min(1.0, _phe_limit(p0, n, p, "high")), abs=1e-9)
    assert control_limits(0.3, 100, 0.95) == pytest.approx((0.2102, 0.3898), abs=5e-5)
    assert control_limits(0.3, 100, 0.998) == pytest.approx((0.1584, 0.4416), abs=5e-5)


def test_outside_the_95_limits_exactly_when_the_wilson_interval_excludes_england():
    for n in (7, 30, 120):
        for x in range(n + 1):
            lo, hi = wilson_interval(x, n)
            s = significance(x, n, 0.3)
            assert (s.direction != 0) == (not lo <= 0.3 <= hi), (x, n)
    assert significance(45, 100, 0.3) is Significance.HIGHER_998
    assert significance(40, 100, 0.3) is Significance.HIGHER_95
    assert significance(30, 100, 0.3) is Significance.SIMILAR
    assert significance(20, 100, 0.3) is Significance.LOWER_95
    assert significance(15, 100, 0.3) is Significance.LOWER_998


def test_bad_input_is_refused_clearly():
    with pytest.raises(ValueError, match="denominator must be positive"):
        wilson_interval(0, 0)
    with pytest.raises(ValueError, match="numerator must be from 0 to the denominator"):
        significance(11, 10, 0.5)
    with pytest.raises(ValueError, match="suppressed"):
        wilson_interval(None, 10)
    with pytest.raises(ValueError, match="benchmark must be a proportion"):
        control_limits(1.5, 10, 0.95)
    with pytest.raises(ValueError, match="confidence level"):
        z_value(95)


def _row(la: str, group: str, exit_type: str, cohort: int | None, oow: int | None) -> dict:
    return {
        "period_type": "financial_year",
        "period_label": "2024-25",
        "period_end": FY_END,
        "la_code": la,
        "substance_group": group,
        "exit_type": exit_type,
        "cohort": cohort,
        "oow_at_12_months": oow,
        "provisional": False,
    }


def _benefits_table() -> PublishedTable:
    england = [
        _row(ENGLAND, g, e, 1000, 300) for g in ("opiate", "alcohol_only") for e in ("successful", "unsuccessful")
    ]
    areas = [
        # Area A: every cell published; its opiate rate 90/200 is far above England's 30%.
        _row("E06000001", "opiate", "successful", 100, 45),
        _row("E06000001", "opiate", "unsuccessful", 100, 45),
        _row("E06000001", "alcohol_only", "successful", 50, 15),
        _row("E06000001", "alcohol_only", "unsuccessful", 50, 15),
        # Area B: one opiate cell suppressed; its alcohol figure is published.
        _row("E06000002", "opiate", "successful", 20, None),
        _row("E06000002", "opiate", "unsuccessful", 30, 9),
        _row("E06000002", "alcohol_only", "successful", 60, 18),
        # Rows of an unknown area are not an area.
        _row("unknown", "opiate", "successful", 40, 12),
    ]
    return PublishedTable("benefits_outcome", england=england, areas=areas, area_period="2024-25")


def test_panels_sum_published_cells_and_count_suppressed_areas():
    ind = next(i for i in INDICATORS if i.table == "benefits_outcome")
    by_group = {p.group: p for p in panels(ind, _benefits_table())}
    assert by_group["all"].england == (1200, 4000)
    assert [(a.la_code, a.numerator, a.denominator) for a in by_group["all"].areas] == [("E06000001", 120, 300)]
    assert by_group["all"].suppressed == 1
    opiate = by_group["opiate"]
    assert [(a.la_code, a.numerator, a.denominator) for a in opiate.areas] == [("E06000001", 90, 200)]
    assert opiate.suppressed == 1 and opiate.benchmark == pytest.approx(0.3)
    assert opiate.areas[0].significance is Significance.HIGHER_998
    alcohol = by_group["alcohol_only"]
    assert [(a.la_code, a.numerator, a.denominator) for a in alcohol.areas] == [
        ("E06000001", 30, 100),
        ("E06000002", 18, 60),
    ]
    assert alcohol.suppressed == 0
    assert by_group["non_opiate_only"].england is None and by_group["non_opiate_only"].areas == []


def test_a_published_total_row_is_used_rather_than_added_to():
    table = _benefits_table()
    table.areas.append(_row("E06000002", "opiate", None, 50, 15))  # a coarser grain published as well
    ind = next(i for i in INDICATORS if i.table == "benefits_outcome")
    opiate = next(p for p in panels(ind, table) if p.group == "opiate")
    assert [(a.la_code, a.numerator, a.denominator) for a in opiate.areas][-1] == ("E06000002", 15, 50)
    assert opiate.suppressed == 0


def test_the_section_plots_every_comparable_area_and_lists_the_significant_ones():
    ind = next(i for i in INDICATORS if i.table == "benefits_outcome")
    section = indicator_section(ind, _benefits_table())
    assert section.id == "areas-out-of-work-benefits" and "Lower is better." in section.definition[-1]
    chart = section.charts[0]
    svgs = {name.split(":")[0]: svg for name, svg in chart.panels}
    assert svgs["Opiate"].count("<circle") == 1 + 3  # one area, three legend markers
    assert "1 areas shown; 1 left out because a cell they need is suppressed" in svgs["Opiate"]
    assert svgs["Non-opiate only (England's figure is suppressed"] is None
    significant = section.tables[0]
    verdicts = [(row[0].text, row[2].text, row[-1].text) for row in significant.rows]
    assert ("Opiate", "E06000001", "Higher (outside 99.8% limits), worse") in verdicts
    assert all(v[1] != "E06000002" for v in verdicts)  # 18/60 = England's 30%
    every = section.tables[1]
    assert len(every.rows) == 4 and every.collapsed
    interval = next(r[6].text for r in every.rows if r[0].text == "Opiate")
    assert re.fullmatch(r"\d+\.\d% to \d+\.\d%", interval)


def test_a_table_with_no_area_rows_says_so():
    section = indicator_section(INDICATORS[0], PublishedTable("successful_completion"))
    assert section.missing and not section.charts
