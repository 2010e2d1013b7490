"""What the report knows of each outcome table: labels and order of its categories, how its
measures are formatted, and what its chart shows."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from outcomes.report.read import Row

SUPPRESSED = "[c]"
NOT_APPLICABLE = "–"
MINUS = "\u2212"
ROLLING = "rolling_12_months"

SUBSTANCE_GROUPS = ("opiate", "non_opiate_only", "non_opiate_and_alcohol", "alcohol_only")
LABELS: dict[str, dict[str, str]] = {
    "substance_group": {
        "opiate": "Opiate",
        "non_opiate_only": "Non-opiate only",
        "non_opiate_and_alcohol": "Non-opiate and alcohol",
        "alcohol_only": "Alcohol only",
    },
    "exit_type": {
        "successful": "Successful completion",
        "still_in_treatment": "Still in treatment",
        "unsuccessful": "Unsuccessful",
        "transferred": "Transferred, not continued",
        "died": "Died",
        "all exits": "All exits",
    },
    "retention": {"retained": "Retained in treatment", "completed": "Completed", "left": "Left treatment"},
    "offence_scope": {"all": "All offences", "trigger": "Trigger offences"},
    "time_since_exit": {"0-28d": "0–28 days", "29-365d": "29–365 days", "1-2y": "1–2 years", "2-5y": "2–5 years"},
    "year_basis": {"registration": "Registration", "occurrence": "Death (occurrence)"},
    "treatment_status": {
        "in_treatment": "In treatment",
        "left_within_1_year": "Left within a year",
        "left_over_1_year": "Left over a year before",
        "never_in_treatment": "Never in treatment",
    },
    "sex": {"M": "Male", "F": "Female", "U": "Not known"},
    "housing_status": {
        "no_problem": "No housing problem",
        "housing_problem": "Housing problem",
        "no_fixed_abode": "No fixed abode",
        "unknown": "Not known",
    },
    "setting": {"community": "Community", "residential": "Residential", "inpatient": "In-patient", "prison": "Prison"},
    "age_band": {"unknown": "Not known"},
}
DIM_TITLES = {
    "substance_group": "Substance group",
    "exit_type": "Exit type",
    "retention": "Status 2 years on",
    "offence_scope": "Offences",
    "time_since_exit": "Time since exit",
    "year_basis": "Counted by year of",
    "year": "Year",
    "exit_year": "Exit year",
    "treatment_status": "Treatment status at death",
    "sex": "Sex",
    "age_band": "Age",
    "setting": "Setting",
    "housing_status": "Housing at start",
}
ORDER = {
    "substance_group": SUBSTANCE_GROUPS,
    "exit_type": ("successful", "still_in_treatment", "unsuccessful", "transferred", "died"),
    "retention": ("retained", "completed", "left"),
    "offence_scope": ("all", "trigger"),
    "time_since_exit": ("0-28d", "29-365d", "1-2y", "2-5y"),
    "year_basis": ("registration", "occurrence"),
    "treatment_status": ("in_treatment", "left_within_1_year", "left_over_1_year", "never_in_treatment"),
    "age_band": ("<20", "20-29", "30-39", "40-49", "50-69", "70+", "unknown"),
    "setting": ("community", "residential", "inpatient", "prison"),
    "housing_status": ("no_problem", "housing_problem", "no_fixed_abode", "unknown"),
}


def label(dim: str, value: object) -> str:
    if value is None:
        return "Not known"
    return LABELS.get(dim, {}).get(str(value), str(value).replace("_", " "))


def sort_key(dim: str, value: object) -> tuple:
    order = ORDER.get(dim, ())
    return (order.index(value), "") if value in order else (len(order), str(value))


def row_key(row: Row, dims: Sequence[str]) -> tuple:
    return tuple(sort_key(d, row.get(d)) for d in dims)


# -- formatting -----------------------------------------------------------------------------------
def _signed(text: str) -> str:
    return text.replace("-", MINUS)


FORMATS: dict[str, Callable[[float], str]] = {
    "count": lambda v: f"{int(v):,}",
    "rate": lambda v: f"{100 * v:.1f}%",
    "percent": lambda v: _signed(f"{v:+.1f}%"),
    "per1000": lambda v: f"{v:,.1f}",
    "years": lambda v: f"{v:,.1f}",
    "ratio": lambda v: f"{v:.2f}",
    "score": lambda v: f"{v:.4f}",
}
AXIS_FORMATS: dict[str, Callable[[float], str]] = {
    "count": lambda v: f"{v:,.0f}",
    "rate": lambda v: f"{100 * v:.0f}%",
    "percent": lambda v: _signed(f"{v:.0f}%"),
    "per1000": lambda v: f"{v:,.2f}".rstrip("0").rstrip("."),
}


def long_date(d: dt.date) -> str:
    return f"{d.day} {d:%B %Y}"


# -- outcome specifications -----------------------------------------------------------------------
@dataclass(frozen=True)
class Measure:
    column: str
    label: str
    kind: str = "count"
    inputs: tuple[str, ...] = ()  # counts a rate is built on: null inputs mean suppressed, else not applicable

    @property
    def cls(self) -> str:
        return "num count" if self.kind == "count" else "num rate"


@dataclass(frozen=True)
class ChartSpec:
    column: str
    kind: str
    y_label: str
    title: str
    series: tuple[str, ...] = ("substance_group",)
    panel: str | None = None
    where: tuple[tuple[str, str], ...] = ()
    top: int | None = None  # keep the series with the largest latest value


@dataclass(frozen=True)
class Outcome:
    name: str
    title: str
    definition: tuple[str, ...]
    measures: tuple[Measure, ...]
    dims: tuple[str, ...] = ()
    chart: ChartSpec | None = None
    caveat: str | None = None
    provisional: str | None = None

    @property
    def counts(self) -> list[str]:
        return [m.column for m in self.measures if m.kind == "count"]


def _rate(column: str, text: str, numerator: str, denominator: str) -> Measure:
    return Measure(column, text, "rate", (numerator, denominator))


CAUSAL_CAVEAT = (
    "Before/after changes in convictions are not effects of treatment: as the drug strategy papers say, "
    "such reductions “cannot be interpreted as direct, quantifiable measures of a causal effect”. Offending "
    "often peaks just before treatment starts, and there is no comparison group of similar people who were "
    "not treated."
)

OUTCOMES: tuple[Outcome, ...] = (
    Outcome(
        "successful_completion",
        "Successful completion",
        (
            "Everyone with a treatment episode in the 12-month period, by the substance group of their latest "
            "journey. A successful completion is a journey that ended with the person free of dependence; it "
            "counts here when the person did not come back to treatment (re-present) within 6 months.",
            "Rate = people who completed successfully and did not re-present ÷ people in treatment (the Public "
            "Health Outcomes Framework measure).",
        ),
        (
            Measure("in_treatment", "In treatment"),
            Measure("successful_completions", "Successful completions"),
            Measure("not_representing", "Completed, not re-presenting"),
            _rate("rate", "Rate", "not_representing", "in_treatment"),
        ),
        chart=ChartSpec("rate", "rate", "Rate", "Successful completions not re-presenting, % of people in treatment"),
        provisional="the 6 months after the period have not all passed at the as-of date",
    ),
    Outcome(
        "sustained_recovery",
        "Sustained recovery",
        (
            "People who completed treatment successfully in the period, followed for 12 months after they "
            "left: not back in treatment, no proven offence, alive, and not on an out-of-work benefit in "
            "months 7–12. Sustained recovery means all four.",
        ),
        (
            Measure("cohort", "Completed successfully"),
            Measure("no_representation", "Not re-presenting"),
            Measure("no_reoffending", "Not reoffending"),
            Measure("alive", "Alive"),
            Measure("off_out_of_work_benefits", "Off out-of-work benefits"),
            Measure("sustained_recovery", "All four"),
            _rate("no_representation_rate", "Not re-presenting %", "no_representation", "cohort"),
            _rate("no_reoffending_rate", "Not reoffending %", "no_reoffending", "cohort"),
            _rate("alive_rate", "Alive %", "alive", "cohort"),
            _rate("off_out_of_work_benefits_rate", "Off benefits %", "off_out_of_work_benefits", "cohort"),
            _rate("sustained_recovery_rate", "Sustained recovery %", "sustained_recovery", "cohort"),
        ),
        chart=ChartSpec("sustained_recovery_rate", "rate", "Rate", "Sustained recovery, % of successful completions"),
        provisional="the 12-month follow-up of some completions is not over at the as-of date",
    ),
    Outcome(
        "proven_reoffending",
        "Proven reoffending",
        (
            "People starting treatment in the period who had a proven offence (a conviction or caution, breaches "
            "excluded) in the 2 years before. Reoffenders committed a proven offence in the 12 months after the "
            "start, proven within 6 months more; shown by where the person was in treatment at the end of those "
            "12 months.",
        ),
        (
            Measure("cohort", "Starting treatment"),
            Measure("reoffenders", "Reoffenders"),
            Measure("reoffences", "Proven offences"),
            _rate("rate", "Reoffending rate", "reoffenders", "cohort"),
            Measure("reoffences_per_reoffender", "Offences per reoffender", "ratio", ("reoffences", "reoffenders")),
        ),
        dims=("exit_type",),
        chart=ChartSpec(
            "rate",
            "rate",
            "Reoffending rate",
            "Proven reoffending rate",
            series=("exit_type",),
            panel="substance_group",
        ),
        provisional="the follow-up and the 6 months allowed for offences to be proven are not over",
    ),
    Outcome(
        "convictions_before_after",
        "Convictions before and after treatment",
        (
            "The same kind of cohort as proven reoffending: proven offences committed in the 2 years before the "
            "treatment start set against those in the 2 years after, by whether the person was still in "
            "treatment, had completed, or had left 2 years on; for all offences and for trigger offences "
            "(offences linked to drug use).",
            "Change = 100 × (after − before) ÷ before.",
        ),
        (
            Measure("cohort", "People"),
            Measure("offences_before", "Offences, 2 years before"),
            Measure("offences_after", "Offences, 2 years after"),
            Measure("percent_change", "Change", "percent", ("offences_before", "offences_after")),
        ),
        dims=("retention", "offence_scope"),
        chart=ChartSpec(
            "percent_change",
            "percent",
            "Change in offences",
            "Change in proven offences, 2 years after against 2 years before (all offences)",
            series=("retention",),
            panel="substance_group",
            where=(("offence_scope", "all"),),
        ),
        caveat=CAUSAL_CAVEAT,
        provisional="the 2-year follow-up and the 6 months allowed for offences to be proven are not over",
    ),
    Outcome(
        "drug_related_deaths",
        "Drug-related deaths",
        (
            "Deaths whose underlying cause is drug poisoning or drug misuse (Office for National Statistics "
            "definitions), by calendar year of registration or of death, with the person's treatment status "
            "when they died.",
        ),
        (
            Measure("drug_poisoning_deaths", "Drug poisoning deaths"),
            Measure("drug_misuse_deaths", "Drug misuse deaths"),
        ),
        dims=("year", "year_basis", "treatment_status", "sex", "age_band"),
    ),
    Outcome(
        "deaths_after_treatment",
        "Deaths after treatment",
        (
            "Deaths of people after they left treatment (successful, unsuccessful or transferred exits), "
            "followed for up to 5 years or until they returned to treatment. Crude death rates are deaths per "
            "1,000 person-years out of treatment, by time since exit.",
        ),
        (
            Measure("person_years", "Person-years", "years"),
            Measure("deaths_all_cause", "Deaths, all causes"),
            Measure("rate_all_cause_per_1000py", "All causes per 1,000 PY", "per1000", ("deaths_all_cause",)),
            Measure("deaths_drug_poisoning", "Drug poisoning deaths"),
            Measure(
                "rate_drug_poisoning_per_1000py", "Drug poisoning per 1,000 PY", "per1000", ("deaths_drug_poisoning",)
            ),
        ),
        dims=("exit_year", "exit_type", "substance_group", "time_since_exit"),
    ),
    Outcome(
        "treatment_flow",
        "Treatment flow",
        (
            "Activity in the period: people in treatment, journeys starting, journeys ending by exit type, and "
            "effective treatment (journeys that lasted 12 weeks or more, or ended in a successful completion "
            "sooner), by setting, housing at the start and age.",
        ),
        (
            Measure("in_treatment", "In treatment"),
            Measure("new_journeys", "New journeys"),
            Measure("exits_successful", "Exits: successful"),
            Measure("exits_unsuccessful", "Exits: unsuccessful"),
            Measure("exits_transferred", "Exits: transferred"),
            Measure("exits_died", "Exits: died"),
            Measure("effective_treatment", "Effective treatment"),
        ),
        dims=("setting", "housing_status", "age_band"),
        chart=ChartSpec(
            "in_treatment",
            "count",
            "People in treatment",
            "People in treatment, largest published groups (setting · housing · age)",
            series=("setting", "housing_status", "age_band"),
            panel="substance_group",
            top=4,
        ),
    ),
    Outcome(
        "benefits_outcome",
        "Out-of-work benefits",
        (
            "People leaving treatment in the period (their latest exit): the share on an out-of-work benefit "
            "(JSA, ESA, Income Support, Incapacity Benefit, or Universal Credit with a work-search or no-work "
            "requirement) when their treatment journey started, 6 months after they left and 12 months after.",
        ),
        (
            Measure("cohort", "Leaving treatment"),
            Measure("oow_at_start", "On benefits at start"),
            Measure("oow_at_6_months", "At 6 months"),
            Measure("oow_at_12_months", "At 12 months"),
            _rate("rate_at_start", "At start %", "oow_at_start", "cohort"),
            _rate("rate_at_6_months", "At 6 months %", "oow_at_6_months", "cohort"),
            _rate("rate_at_12_months", "At 12 months %", "oow_at_12_months", "cohort"),
        ),
        dims=("exit_type",),
        chart=ChartSpec(
            "rate_at_12_months",
            "rate",
            "On benefits",
            "On out-of-work benefits 12 months after leaving treatment",
            series=("exit_type",),
            panel="substance_group",
        ),
        provisional="12 months have not passed since every exit at the as-of date",
    ),
)
