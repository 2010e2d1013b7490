"""The published tables: each mart at its own grain and at the grains readers use (England by
period, England by the table's main split, area by period), with their counts, rates and how the
counts of different tables are the same quantity (docs/disclosure.md)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

ENGLAND = "E92000001"
PERIOD = ("period_type", "period_label", "period_end")
# Columns that name a cell without being summed over: the rolling, financial-year and calendar-year
# rows ending on one date are the same cells, so the period is keyed by its end only.
LABELS = ("period_type", "period_label")


def _ratio(numerator: str, denominator: str, scale: float = 1.0) -> Callable[[pd.DataFrame], pd.Series]:
    def rate(frame: pd.DataFrame) -> pd.Series:
        den = frame[denominator].astype(float)
        return (frame[numerator].astype(float) * scale / den).where(den != 0)

    return rate


def _change(frame: pd.DataFrame) -> pd.Series:
    before = frame["offences_before"].astype(float)
    return ((frame["offences_after"] - frame["offences_before"]).astype(float) * 100 / before).where(before != 0)


@dataclass(frozen=True)
class Rate:
    inputs: tuple[str, ...]  # counts it is built on: suppressed when any of them is
    compute: Callable[[pd.DataFrame], pd.Series]  # from the summed counts (grain tables only)


@dataclass(frozen=True)
class Family:
    """One mart and what is true of its counts."""

    mart: str
    dims: tuple[str, ...]  # the mart's key, period labels included
    counts: tuple[str, ...]
    rates: dict[str, Rate] = field(default_factory=dict)
    keep: tuple[str, ...] = ()  # passed through: summed where numeric (person-years), else any()
    fixed: tuple[str, ...] = ()  # key columns never summed over (periods, year basis)
    fixed_for: dict[str, tuple[str, ...]] = field(default_factory=dict)  # extra fixed columns per count
    ignore_for: dict[str, tuple[str, ...]] = field(default_factory=dict)  # key columns a count repeats over
    cube_of: dict[str, str] = field(default_factory=dict)  # counts that are another family's quantity
    where: str | None = None  # row filter of the mart (SQL)

    def cube(self, count: str) -> str:
        return self.cube_of.get(count, f"{self.mart}.{count}")

    def fixed_columns(self, count: str) -> tuple[str, ...]:
        return self.fixed + self.fixed_for.get(count, ())

    def summed_columns(self, count: str) -> tuple[str, ...]:
        """Key columns the count adds up over (a total over all their values is a sum of cells)."""
        skip = (*LABELS, *self.fixed_columns(count), *self.ignore_for.get(count, ()))
        return tuple(d for d in self.dims if d not in skip)


@dataclass(frozen=True)
class Published:
    name: str  # published.<name>
    family: Family
    dims: tuple[str, ...]  # key columns of the published table
    england_only: bool = False  # rows of England only (no la_code column)
    description: str = ""

    @property
    def base(self) -> bool:
        return self.dims == self.family.dims

    @property
    def counts(self) -> tuple[str, ...]:
        return self.family.counts

    @property
    def rates(self) -> dict[str, Rate]:
        return self.family.rates

    @property
    def keep(self) -> tuple[str, ...]:
        return self.family.keep


SC = Family(
    "successful_completion",
    (*PERIOD, "la_code", "substance_group"),
    ("in_treatment", "successful_completions", "not_representing"),
    {"rate": Rate(("not_representing", "in_treatment"), _ratio("not_representing", "in_treatment"))},
    ("provisional",),
    ("period_end",),
    cube_of={"in_treatment": "in_treatment"},
)
SR_FLAGS = ("no_representation", "no_reoffending", "alive", "off_out_of_work_benefits", "sustained_recovery")
SR = Family(
    "sustained_recovery",
    (*PERIOD, "la_code", "substance_group"),
    ("cohort", *SR_FLAGS),
    {f"{f}_rate": Rate((f, "cohort"), _ratio(f, "cohort")) for f in SR_FLAGS},
    ("provisional",),
    ("period_end",),
)
PR = Family(
    "proven_reoffending",
    (*PERIOD, "la_code", "substance_group", "exit_type"),
    ("cohort", "reoffenders", "reoffences"),
    {
        "rate": Rate(("reoffenders", "cohort"), _ratio("reoffenders", "cohort")),
        "reoffences_per_reoffender": Rate(("reoffences", "reoffenders"), _ratio("reoffences", "reoffenders")),
    },
    ("provisional",),
    ("period_end",),
    cube_of={"cohort": "reoffending_cohort"},
)
CBA = Family(
    "convictions_before_after",
    (*PERIOD, "la_code", "substance_group", "retention", "offence_scope"),
    ("cohort", "offences_before", "offences_after"),
    {"percent_change": Rate(("offences_before", "offences_after"), _change)},
    ("provisional",),
    ("period_end",),
    # The cohort is the same people for both offence scopes (and proven_reoffending's cohort).
    fixed_for={"offences_before": ("offence_scope",), "offences_after": ("offence_scope",)},
    ignore_for={"cohort": ("offence_scope",)},
    cube_of={"cohort": "reoffending_cohort"},
)
DRD = Family(
    "drug_related_deaths",
    ("year", "year_basis", "la_code", "sex", "age_band", "treatment_status"),
    ("drug_poisoning_deaths", "drug_misuse_deaths"),
    fixed=("year", "year_basis"),
)
DAT = Family(
    "deaths_after_treatment",
    ("exit_year", "exit_type", "substance_group", "time_since_exit"),
    ("deaths_all_cause", "deaths_drug_poisoning"),
    {
        "rate_all_cause_per_1000py": Rate(("deaths_all_cause",), _ratio("deaths_all_cause", "person_years", 1000.0)),
        "rate_drug_poisoning_per_1000py": Rate(
            ("deaths_drug_poisoning",), _ratio("deaths_drug_poisoning", "person_years", 1000.0)
        ),
    },
    ("person_years",),
)
TF = Family(
    "treatment_flow",
    (*PERIOD, "la_code", "substance_group", "setting", "housing_status", "age_band"),
    (
        "in_treatment",
        "new_journeys",
        "exits_successful",
        "exits_unsuccessful",
        "exits_transferred",
        "exits_died",
        "effective_treatment",
    ),
    fixed=("period_end",),
    cube_of={"in_treatment": "in_treatment"},
)
BO = Family(
    "benefits_outcome",
    (*PERIOD, "la_code", "substance_group", "exit_type"),
    ("cohort", "oow_at_start", "oow_at_6_months", "oow_at_12_months"),
    {
        f"rate_at_{s}": Rate((f"oow_at_{s}", "cohort"), _ratio(f"oow_at_{s}", "cohort"))
        for s in ("start", "6_months", "12_months")
    },
    ("provisional",),
    ("period_end",),
)
LQ = Family(
    "linkage_quality",
    ("run_id", "source_a", "source_b"),
    ("records_a", "records_b", "linked_records", "review_pairs"),
    {"match_rate": Rate(("linked_records", "records_a"), _ratio("linked_records", "records_a"))},
    ("pairwise_precision", "pairwise_recall", "pairwise_f1", "cluster_precision", "cluster_recall", "cluster_f1"),
    ("run_id", "source_a", "source_b"),
    where="breakdown = 'all'",
)
FAMILIES = (SC, SR, PR, CBA, DRD, DAT, TF, BO, LQ)


def _by_area(f: Family, *extra: str) -> Published:
    dims = (*[d for d in f.dims if d in (*PERIOD, "year", "year_basis")], "la_code", *extra)
    return Published(
        f"{f.mart}_by_area",
        f,
        dims,
        description=f"{f.mart} of every area and England (E92000001) by period, all "
        + ("substance groups and breakdowns" if not extra else f"substance groups and breakdowns but {extra}"),
    )


def _england_by(f: Family, *split: str, name: str | None = None) -> Published:
    dims = (*[d for d in f.dims if d in (*PERIOD, "year", "year_basis")], *split)
    return Published(
        name or f"{f.mart}_england_by_{split[0]}",
        f,
        dims,
        england_only=f.mart != "deaths_after_treatment",
        description=f"England's {f.mart} by period and {' and '.join(split)}, all substance groups",
    )


TABLES: tuple[Published, ...] = (
    *(Published(f.mart, f, f.dims) for f in FAMILIES),
    _by_area(SC),
    _by_area(SR),
    _by_area(PR),
    _england_by(PR, "exit_type"),
    _by_area(CBA, "offence_scope"),
    _england_by(CBA, "retention", "offence_scope"),
    _by_area(DRD),
    _england_by(DRD, "treatment_status"),
    _england_by(DAT, "exit_type", "time_since_exit", name="deaths_after_treatment_by_exit_type"),
    _england_by(DAT, "exit_year", name="deaths_after_treatment_by_exit_year"),
    _by_area(TF),
    _by_area(BO),
    _england_by(BO, "exit_type"),
)
BY_NAME = {t.name: t for t in TABLES}
