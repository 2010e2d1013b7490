"""An intruder's attack on the published tables (outcomes.md §7), written apart from the dbt macro.

The intruder knows every published cell and, for each group of cells that add up to a total,
that total where it is published: the England row of a local-authority group, or a breakdown's
total published by another table (proven_reoffending and convictions_before_after share their
cohort; treatment_flow's persons in treatment add up to successful_completion's). Suppressed
cells are known only to be >= 0. A cell
is recovered when a group's equation pins it to one value: it is the group's only unknown
(after substituting cells recovered elsewhere, repeated to a fixed point), or the group's
unknowns must all be 0.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

ENGLAND = "E92000001"
PERIOD = ["period_type", "period_label", "period_end"]


@dataclass(frozen=True)
class Breakdown:
    """Cells of `count` sharing `by` add up to a total another table publishes (`total_from`)."""

    by: list[str]
    count: str
    total_from: Callable[[dict[str, pd.DataFrame]], pd.DataFrame]  # columns: by + ["total"]


def _published_sum(table: str, by: list[str], count: str, where: dict | None = None):
    """Totals of `count` by `by` in another published table, where every cell summed is published."""

    def totals(published: dict[str, pd.DataFrame]) -> pd.DataFrame:
        frame = published[table]
        for column, value in (where or {}).items():
            frame = frame[frame[column] == value]
        grouped = frame.groupby(by, dropna=False)[count]
        out = grouped.sum(min_count=1).to_frame("total")
        out = out[grouped.apply(lambda v: v.notna().all())]
        return out.reset_index()

    return totals


@dataclass(frozen=True)
class Relation:
    dims: list[str]
    counts: list[str]
    breakdowns: list[Breakdown]

    @property
    def area_group(self) -> list[str] | None:
        return [d for d in self.dims if d != "la_code"] if "la_code" in self.dims else None


RELATIONS = {
    "successful_completion": Relation(
        [*PERIOD, "la_code", "substance_group"], ["in_treatment", "successful_completions", "not_representing"], []
    ),
    "sustained_recovery": Relation(
        [*PERIOD, "la_code", "substance_group"],
        ["cohort", "no_representation", "no_reoffending", "alive", "off_out_of_work_benefits", "sustained_recovery"],
        [],
    ),
    "proven_reoffending": Relation(
        [*PERIOD, "la_code", "substance_group", "exit_type"],
        ["cohort", "reoffenders", "reoffences"],
        [
            Breakdown(
                [*PERIOD, "la_code", "substance_group"],
                "cohort",
                _published_sum(
                    "convictions_before_after",
                    [*PERIOD, "la_code", "substance_group"],
                    "cohort",
                    {"offence_scope": "all"},
                ),
            )
        ],
    ),
    "convictions_before_after": Relation(
        [*PERIOD, "la_code", "substance_group", "retention", "offence_scope"],
        ["cohort", "offences_before", "offences_after"],
        [
            Breakdown(
                [*PERIOD, "la_code", "substance_group", "offence_scope"],
                "cohort",
                lambda published: _published_sum(
                    "proven_reoffending", [*PERIOD, "la_code", "substance_group"], "cohort"
                )(published).merge(pd.DataFrame({"offence_scope": ["all", "trigger"]}), how="cross"),
            )
        ],
    ),
    "drug_related_deaths": Relation(
        ["year", "year_basis", "la_code", "sex", "age_band", "treatment_status"],
        ["drug_poisoning_deaths", "drug_misuse_deaths"],
        [],
    ),
    "deaths_after_treatment": Relation(
        ["exit_year", "exit_type", "substance_group", "time_since_exit"],
        ["deaths_all_cause", "deaths_drug_poisoning"],
        [],
    ),
    "treatment_flow": Relation(
        [*PERIOD, "la_code", "substance_group", "setting", "housing_status", "age_band"],
        [
            "in_treatment",
            "new_journeys",
            "exits_successful",
            "exits_unsuccessful",
            "exits_transferred",
            "exits_died",
            "effective_treatment",
        ],
        [
            Breakdown(
                [*PERIOD, "la_code", "substance_group"],
                "in_treatment",
                _published_sum("successful_completion", [*PERIOD, "la_code", "substance_group"], "in_treatment"),
            )
        ],
    ),
    "benefits_outcome": Relation(
        [*PERIOD, "la_code", "substance_group", "exit_type"],
        ["cohort", "oow_at_start", "oow_at_6_months", "oow_at_12_months"],
        [],
    ),
}


def _equations(cells: pd.DataFrame, relation: Relation, count: str, published: dict[str, pd.DataFrame]):
    """Yield (members, total_cell or None, known total or None) for every group of cells."""
    if relation.area_group:
        for _, group in cells.groupby(relation.area_group, dropna=False, sort=False):
            areas = group.index[group["la_code"] != ENGLAND].tolist()
            england = group.index[group["la_code"] == ENGLAND].tolist()
            if england:
                yield areas, england[0], None
    for breakdown in relation.breakdowns:
        if breakdown.count != count:
            continue
        totals = breakdown.total_from(published)
        keyed = cells.reset_index().merge(totals, on=breakdown.by)
        for _, group in keyed.groupby(breakdown.by, dropna=False, sort=False):
            yield group["index"].tolist(), None, float(group["total"].iloc[0])


def recovered_cells(published: dict[str, pd.DataFrame], table: str, truth: pd.DataFrame) -> list[tuple]:
    """The suppressed cells of `table` the intruder can pin to a single value."""
    relation = RELATIONS[table]
    cells = published[table].merge(truth[relation.dims + relation.counts], on=relation.dims, suffixes=("", "__true"))
    assert len(cells) == len(published[table]) == len(truth), "published and marts rows must match one to one"
    out = []
    for count in relation.counts:
        known = cells[count].astype("Float64")
        unknown = set(cells.index[known.isna()])
        equations = list(_equations(cells, relation, count, published))
        value = {i: float(known[i]) for i in cells.index if i not in unknown}
        changed = True
        while changed and unknown:
            changed = False
            for members, total_cell, total in equations:
                # sum(c * x) = rhs, with the England cell on the left at -1 where there is one.
                terms = [(m, 1) for m in members] + ([(total_cell, -1)] if total_cell is not None else [])
                rhs = 0.0 if total_cell is not None else total
                missing = [(i, c) for i, c in terms if i in unknown]
                residual = rhs - sum(c * value[i] for i, c in terms if i not in unknown)
                if not missing:
                    continue
                if len(missing) == 1:
                    i, c = missing[0]
                    pinned = {i: residual / c}
                elif residual == 0 and all(c == 1 for _, c in missing):
                    pinned = {i: 0.0 for i, _ in missing}
                else:
                    continue
                for i, v in pinned.items():
                    value[i] = v
                    unknown.discard(i)
                    out.append((count, *cells.loc[i, relation.dims].tolist(), v))
                changed = True
    return out


# -- Interval (linear programming) attack -----------------------------------------------------------
# The intruder knows every published cell, that every cell is >= 0 and every equation "total = sum
# of members" between cells (those of one table and those linking tables; a virtual cell is a sum
# published nowhere). For each suppressed cell they solve min and max of it by LP. A count suppressed
# as 1-4 must keep an interval at least as wide as that range (3); any other suppressed cell must
# not be pinned (width 1).
RANGE_WIDTH = 3.0


def lp_interval(values, hidden, equations, cell: int) -> tuple[float, float]:
    """[min, max] of `cell` over every assignment of the hidden cells consistent with the rest."""
    from scipy.optimize import linprog

    unknown = sorted(set(np.flatnonzero(hidden).tolist()))
    column = {c: j for j, c in enumerate(unknown)}
    a, b = [], []
    for total, members in equations:
        row = np.zeros(len(unknown))
        rhs = 0.0
        for c, coef in [(total, 1.0), *((m, -1.0) for m in members)]:
            if c in column:
                row[column[c]] += coef
            else:
                rhs -= coef * float(values[c])
        if row.any():
            a.append(row)
            b.append(rhs)
    objective = np.zeros(len(unknown))
    objective[column[cell]] = 1.0
    kwargs = {"A_eq": np.array(a), "b_eq": np.array(b)} if a else {}
    low = linprog(objective, bounds=(0, None), method="highs", **kwargs)
    high = linprog(-objective, bounds=(0, None), method="highs", **kwargs)
    assert low.status == 0, low.message
    return float(low.fun), (np.inf if high.status == 3 else -float(high.fun))


def narrowed_cells(values, hidden, equations, virtual=None) -> list[tuple[int, float, float]]:
    """Suppressed cells the LP attack narrows below their range: (cell, low, high)."""
    values = np.asarray(values)
    virtual = np.zeros(len(values), bool) if virtual is None else np.asarray(virtual, bool)
    unknown = np.asarray(hidden, bool) | virtual
    out = []
    for cell in np.flatnonzero(np.asarray(hidden, bool) & ~virtual):
        low, high = lp_interval(values, unknown, equations, int(cell))
        need = RANGE_WIDTH if 1 <= values[cell] <= 4 else 1.0
        if high - low < need - 1e-6:
            out.append((int(cell), low, high))
    return out
