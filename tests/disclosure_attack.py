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
# published nowhere). For each suppressed cell they solve min and max of it by LP. A count v
# suppressed as 1-4 must keep an interval reaching at least PROTECTION below and above it
# (low <= v - 1, high >= v + 1: never recovered, never shown non-zero when it is 1); any other
# suppressed cell must not be pinned (width 1).
PROTECTION = 1.0


def short(value: float, low: float, high: float) -> bool:
    """Whether the interval [low, high] of a suppressed cell of true `value` is too narrow."""
    if 1 <= value <= 4:
        return value - low < PROTECTION - 1e-6 or high - value < PROTECTION - 1e-6
    return high - low < 1.0 - 1e-6


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
    """Suppressed cells the LP attack narrows below their protection: (cell, low, high)."""
    values = np.asarray(values)
    virtual = np.zeros(len(values), bool) if virtual is None else np.asarray(virtual, bool)
    unknown = np.asarray(hidden, bool) | virtual
    out = []
    for cell in np.flatnonzero(np.asarray(hidden, bool) & ~virtual):
        low, high = lp_interval(values, unknown, equations, int(cell))
        if short(float(values[cell]), low, high):
            out.append((int(cell), low, high))
    return out


# -- Linked published tables -------------------------------------------------------------------
# How the published tables add up, written from outcomes.md and interfaces (not from the solver):
# (family, table, its key columns, the counts it sums over its rows) and which coarser table sums
# which finer one. Rows of one table naming the same cell (a financial year and the rolling year
# ending on its last day) are one cell; a total published nowhere (proven_reoffending's cohort by
# area and substance, which convictions_before_after's cohort also adds up to) is an unknown.
LABELS = ["period_type", "period_label"]
_KEYS = {
    "period_type",
    "period_label",
    "period_end",
    "la_code",
    "substance_group",
    "exit_type",
    "retention",
    "offence_scope",
    "year",
    "year_basis",
    "sex",
    "age_band",
    "treatment_status",
    "exit_year",
    "time_since_exit",
    "setting",
    "housing_status",
    "run_id",
    "source_a",
    "source_b",
}
COUNTS = {
    "successful_completion": ["in_treatment", "successful_completions", "not_representing"],
    "sustained_recovery": RELATIONS["sustained_recovery"].counts,
    "proven_reoffending": RELATIONS["proven_reoffending"].counts,
    "convictions_before_after": RELATIONS["convictions_before_after"].counts,
    "drug_related_deaths": RELATIONS["drug_related_deaths"].counts,
    "deaths_after_treatment": RELATIONS["deaths_after_treatment"].counts,
    "treatment_flow": RELATIONS["treatment_flow"].counts,
    "benefits_outcome": RELATIONS["benefits_outcome"].counts,
}


class LinkedSystem:
    """Every published count as a cell (NaN when suppressed), unknown sums, and the equations."""

    def __init__(self, published: dict[str, pd.DataFrame]) -> None:
        self.values: list[float] = []
        self.names: list[tuple] = []
        self.index: dict[tuple, int] = {}
        self.equations: list[tuple[int, list[int]]] = []
        for family, counts in COUNTS.items():
            for table in [t for t in published if t == family or t.startswith(family + "_")]:
                for count in counts:
                    self._add_table(published, table, count)
        for family, counts in COUNTS.items():
            for count in counts:
                self._family_sums(published, family, count)
        self._link_tables(published)

    def cell(self, table: str, count: str, key: tuple) -> int | None:
        return self.index.get((table, count, key))

    def _add_table(self, published, table, count):
        frame = published[table]
        keys = [c for c in frame.columns if c in _KEYS and c not in LABELS]
        for key, value in zip(frame[keys].itertuples(index=False, name=None), frame[count], strict=True):
            name = (table, count, tuple(key))
            if name not in self.index:
                self.index[name] = len(self.values)
                self.values.append(np.nan)
                self.names.append(name)
            if not pd.isna(value):
                self.values[self.index[name]] = float(value)

    def _unknown(self, name) -> int:
        self.index[name] = len(self.values)
        self.values.append(np.nan)
        self.names.append(name)
        return self.index[name]

    def _sum(self, coarse, fine, count, over, published, fine_rows=None, coarse_rows=None):
        """Each coarse cell = the fine cells sharing its other key values (summing over `over`)."""
        f = published[fine] if fine_rows is None else fine_rows
        c = published[coarse] if coarse_rows is None else coarse_rows
        f_keys = [k for k in f.columns if k in _KEYS and k not in LABELS]
        c_keys = [k for k in c.columns if k in _KEYS and k not in LABELS]
        by = [k for k in c_keys if k not in over and k in f_keys]
        groups = {}
        for key in f[f_keys].drop_duplicates().itertuples(index=False, name=None):
            row = dict(zip(f_keys, key, strict=True))
            groups.setdefault(tuple(row[k] for k in by), []).append(self.index[(fine, count, key)])
        for key in c[c_keys].drop_duplicates().itertuples(index=False, name=None):
            row = dict(zip(c_keys, key, strict=True))
            members = groups.get(tuple(row[k] for k in by))
            if members:
                self.equations.append((self.index[(coarse, count, key)], members))

    def _family_sums(self, published, family, count):
        base = published[family]
        if "la_code" in base:
            areas, england = base[base["la_code"] != ENGLAND], base[base["la_code"] == ENGLAND]
            self._sum(family, family, count, ["la_code"], published, fine_rows=areas, coarse_rows=england)
        for table in [t for t in published if t.startswith(family + "_")]:
            frame = published[table]
            keys = [k for k in frame.columns if k in _KEYS and k not in LABELS]
            if "la_code" in frame:  # by area: every area and England, over the other splits
                over = [k for k in base.columns if k in _KEYS and k not in keys]
                self._sum(table, family, count, over, published)
            else:  # England (or pooled) by a split, from the England rows of the table
                fine = base[base["la_code"] == ENGLAND] if "la_code" in base else base
                over = [k for k in fine.columns if k in _KEYS and k not in keys and k != "la_code"]
                self._sum(table, family, count, over, published, fine_rows=fine)
                area = family + "_by_area"
                if area in published:  # England's row by area = the sum over the split
                    # (over the split's columns the area table does not name: convictions by
                    # retention and offence scope add up over retention within each scope)
                    self._sum(
                        area,
                        table,
                        count,
                        [k for k in keys if k not in _PERIODS and k not in published[area].columns],
                        published,
                        coarse_rows=published[area][published[area]["la_code"] == ENGLAND],
                    )

    def _link_tables(self, published):
        # treatment_flow's people in treatment add up to successful_completion's.
        self._sum(
            "successful_completion",
            "treatment_flow",
            "in_treatment",
            ["setting", "housing_status", "age_band"],
            published,
        )
        self._sum("successful_completion_by_area", "treatment_flow_by_area", "in_treatment", [], published)
        # proven_reoffending and convictions_before_after count one cohort: their sums by area and
        # substance group are one unknown (published nowhere); both offence scopes repeat the cohort.
        by = ["period_end", "la_code", "substance_group"]
        totals: dict[tuple, int] = {}
        for table, frame in (
            ("proven_reoffending", published["proven_reoffending"]),
            ("convictions_before_after", published["convictions_before_after"]),
        ):
            keys = [k for k in frame.columns if k in _KEYS and k not in LABELS]
            groups: dict[tuple, set[int]] = {}
            for key in frame[keys].drop_duplicates().itertuples(index=False, name=None):
                row = dict(zip(keys, key, strict=True))
                cell = self.index[(table, "cohort", key)]
                if row.get("offence_scope") == "trigger":
                    twin = self.index[(table, "cohort", tuple("all" if k == "offence_scope" else row[k] for k in keys))]
                    self.equations.append((twin, [cell]))
                    continue
                groups.setdefault(tuple(row[k] for k in by), set()).add(cell)
            for key, members in groups.items():
                if key not in totals:
                    totals[key] = self._unknown(("cohort_total", "cohort", key))
                self.equations.append((totals[key], sorted(members)))


_PERIODS = {"period_end", "year", "year_basis"}


def narrowed_published(system: LinkedSystem, truth: dict[tuple, float], targets: list[int]) -> list[tuple]:
    """Of the suppressed cells `targets`, those the LP attack over every linked equation narrows
    below their protection (truth: the true value of each suppressed cell, by name)."""
    from scipy.optimize import linprog
    from scipy.sparse import coo_array, csr_array
    from scipy.sparse.csgraph import connected_components

    values = np.array(system.values)
    unknown = np.isnan(values)
    position = np.full(len(values), -1)
    position[unknown] = np.arange(unknown.sum())
    rows, cols, data, rhs = [], [], [], []
    for total, members in system.equations:
        terms = [(total, 1.0)] + [(m, -1.0) for m in members]
        known = sum(c * values[i] for i, c in terms if not unknown[i])
        free = [(position[i], c) for i, c in terms if unknown[i]]
        if not free:
            continue
        for j, c in free:
            rows.append(len(rhs))
            cols.append(j)
            data.append(c)
        rhs.append(-known)
    n = int(unknown.sum())
    a = csr_array((data, (rows, cols)), shape=(len(rhs), n))
    b = np.array(rhs)
    incidence = coo_array((np.ones(len(rows)), (np.array(cols), n + np.array(rows))), shape=(n + len(rhs),) * 2)
    _, label = connected_components(incidence, directed=False)
    out = []
    for cell in targets:
        j = position[cell]
        cluster_rows = np.flatnonzero(label[n:] == label[j])
        cluster_cols = np.flatnonzero(label[:n] == label[j])
        sub = a[cluster_rows][:, cluster_cols]
        objective = np.zeros(len(cluster_cols))
        objective[np.searchsorted(cluster_cols, j)] = 1.0
        kwargs = {"A_eq": sub, "b_eq": b[cluster_rows]} if len(cluster_rows) else {}
        low = linprog(objective, bounds=(0, None), method="highs", **kwargs)
        high = linprog(-objective, bounds=(0, None), method="highs", **kwargs)
        assert low.status == 0, low.message
        hi = np.inf if high.status == 3 else -high.fun
        value = truth[system.names[cell]]
        if short(float(value), float(low.fun), float(hi)):
            out.append((system.names[cell], value, low.fun, hi))
    return out
