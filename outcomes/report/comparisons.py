"""Our figures set beside the published figures of shared/spec/context.md, where one is comparable."""

from __future__ import annotations

from collections import defaultdict

from outcomes.report.read import PublishedTable, Row
from outcomes.report.specs import FORMATS, ROLLING, SUPPRESSED, label, long_date, row_key
from outcomes.report.views import Comparison, area_name, latest_rows, ratio, total


def _pct(v: float | None) -> str:
    return SUPPRESSED if v is None else f"{100 * v:.1f}%"


def _period_words(rows: list[Row]) -> str:
    r = rows[0]
    words = (
        f"financial year {r['period_label']}"
        if r["period_type"] == "financial_year"
        else (f"12 months to {long_date(r['period_end'])}")
    )
    return words + (" (provisional)" if r.get("provisional") else "")


def _comparison_rows(england: list[Row]) -> list[Row]:
    """The England rows of one period: the latest financial year whose figures are final, else the
    latest final rolling period, else the latest financial year or rolling period (provisional)."""
    for final in (True, False):
        for period_type in ("financial_year", ROLLING):
            candidates = [r for r in england if not (final and r.get("provisional"))]
            rows = latest_rows(candidates, period_type)[1]
            if rows:
                return rows
    return []


def compare_successful_completion(t: PublishedTable, synthetic: str) -> list[Comparison]:
    rows = _comparison_rows(t.england)
    if not rows:
        return []
    sums = total(rows, ["not_representing", "in_treatment"])
    ours = _pct(ratio(sums["not_representing"], sums["in_treatment"])) if sums else SUPPRESSED
    by_group = "; ".join(
        f"{label('substance_group', r['substance_group'])} {_pct(r['rate'])}"
        for r in sorted(rows, key=lambda r: row_key(r, ["substance_group"]))
    )
    out = [
        Comparison(
            "Share completing successfully and not returning",
            "nearly one third",
            "2005-06 to 2011-12",
            f"{ours} (all substance groups; {by_group})",
            f"{synthetic}, {_period_words(rows)}",
            "Ours is of everyone in treatment in the period; the published figure's base is not stated as "
            "precisely, so compare the order of magnitude only.",
        )
    ]
    areas = defaultdict(list)
    for r in t.areas:
        if r["la_code"] != "unknown":
            areas[r["la_code"]].append(r)
    rates = {}
    for code, area_rows in areas.items():
        s = total(area_rows, ["not_representing", "in_treatment"])
        if s and s["in_treatment"]:
            rates[code] = s["not_representing"] / s["in_treatment"]
    if len(rates) >= 2:
        best, worst = max(rates, key=rates.get), min(rates, key=rates.get)
        out.append(
            Comparison(
                "Successful completion rate, best against worst area",
                "Kent 25% against Gloucestershire 5%",
                "2010-11",
                f"{area_name(best)} {_pct(rates[best])} against {area_name(worst)} {_pct(rates[worst])}",
                f"{synthetic}, financial year {t.area_period}"
                + (" (provisional)" if any(r.get("provisional") for r in t.areas) else "")
                + f", {len(rates)} areas with every cell published",
                "Small areas swing widely in a synthetic population of this size.",
            )
        )
    return out


def compare_convictions(t: PublishedTable, synthetic: str) -> list[Comparison]:
    rows = [r for r in _comparison_rows(t.england) if r["offence_scope"] == "all"]
    if not rows:
        return []
    ours = []
    for retention, word in (("retained", "retained two years"), ("completed", "completing")):
        group = [r for r in rows if r["retention"] == retention]
        sums = total(group, ["offences_before", "offences_after"])
        change = ratio(sums["offences_after"] - sums["offences_before"], sums["offences_before"]) if sums else None
        if change is not None:
            ours.append(f"{word}: fall of {-100 * change:.0f}%".replace("fall of -", "rise of "))
        else:
            parts = [
                f"{label('substance_group', r['substance_group'])} "
                + (SUPPRESSED if r["percent_change"] is None else FORMATS["percent"](r["percent_change"]))
                for r in sorted(group, key=lambda r: row_key(r, ["substance_group"]))
            ]
            ours.append(f"{word}: all groups together {SUPPRESSED} (by group: {'; '.join(parts) or 'no rows'})")
    return [
        Comparison(
            "Fall in convictions, offenders retained in treatment two years / completing",
            "47% / 48%",
            "cohort from 2006-07",
            "; ".join(ours),
            f"{synthetic}, people starting treatment in the {_period_words(rows)}",
            "Neither figure is a causal effect of treatment (see the caveat above)."
            + (
                " Ours is provisional: the 2 years after the start are not all over, so offences after are "
                "undercounted and the fall overstated."
                if rows[0].get("provisional")
                else ""
            ),
        )
    ]


def compare_benefits(t: PublishedTable, synthetic: str) -> list[Comparison]:
    rows = [r for r in _comparison_rows(t.england) if r["substance_group"] == "opiate"]
    if not rows:
        return []
    sums = total(rows, ["oow_at_start", "cohort"])
    ours = _pct(ratio(sums["oow_at_start"], sums["cohort"])) if sums else SUPPRESSED
    return [
        Comparison(
            "Heroin or crack users on benefits",
            "about 80%",
            "c. 2010",
            f"{ours} of opiate users leaving treatment were on an out-of-work benefit when their journey started",
            f"{synthetic}, {_period_words(rows)}",
            "The published figure counts any benefit; ours counts out-of-work benefits only.",
        )
    ]


def compare_treatment_flow(t: PublishedTable, synthetic: str) -> list[Comparison]:
    rows = _comparison_rows(t.england)
    if not rows:
        return []
    new = total(rows, ["new_journeys"])
    shares = []
    for status in ("no_fixed_abode", "housing_problem"):
        part = total([r for r in rows if r["housing_status"] == status], ["new_journeys"])
        shares.append(_pct(ratio(part["new_journeys"], new["new_journeys"])) if part and new else SUPPRESSED)
    return [
        Comparison(
            "Starting treatment with no fixed abode / another housing problem",
            "9% / 15%",
            "2010-11",
            " / ".join(shares),
            f"{synthetic}, new journeys in the {_period_words(rows)}",
            f"{SUPPRESSED}: a cell the share needs is suppressed in the published table."
            if SUPPRESSED in shares
            else "",
        )
    ]


COMPARISONS = {
    "successful_completion": compare_successful_completion,
    "convictions_before_after": compare_convictions,
    "benefits_outcome": compare_benefits,
    "treatment_flow": compare_treatment_flow,
}
