"""Disclosure control: what the integer program suppresses against the former dbt macro, on the
same marts of one built warehouse, in the same run.

    .venv/bin/python -m bench.disclosure --warehouse /tmp/w.duckdb [--rule]

The former macro (`disclose` in dbt_project/macros/disclosure.sql before the disclosure step; its
per-mart groupings below) published only the nine per-mart tables: primary suppression of 1-4, then
within each group of cells (a published England row with its areas; a cohort shared with another
table) with exactly one suppressed cell, the smallest non-zero other cell, four rounds of passes.
Reads the marts only (read-only); prints per published table the share of cells and of people
suppressed before (the former macro, per-mart tables only) and after (the program), the floor
(primary suppression alone: no table can lose less), and the program's seconds. With --rule, also
the macro's rule applied over every linked equation of the new tables, and the LP audit of both.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from outcomes.disclosure.audit import weak_cells
from outcomes.disclosure.cells import SMALL_MAX, SMALL_MIN, CellGraph
from outcomes.disclosure.control import TableShare, costs, shares_of
from outcomes.disclosure.frames import all_frames, read_marts
from outcomes.disclosure.linked import link
from outcomes.disclosure.solver import LP_AUDIT_LIMIT, SolveStats, choose_suppression
from outcomes.disclosure.tables import TABLES, Published
from outcomes.eventstore import connect
from outcomes.warehouse import resolve_target

_P = ["period_type", "period_label", "period_end"]
# The former published models' `groupings` (git show 673bd72^^:dbt_project/models/published/):
# a list of partition columns (every count), or (columns, counts) for a total published elsewhere.
FORMER_GROUPINGS: dict[str, list] = {
    "successful_completion": [[*_P, "substance_group"]],
    "sustained_recovery": [[*_P, "substance_group"]],
    "proven_reoffending": [
        [*_P, "substance_group", "exit_type"],
        ([*_P, "la_code", "substance_group"], ["cohort"]),
    ],
    "convictions_before_after": [
        [*_P, "substance_group", "retention", "offence_scope"],
        ([*_P, "la_code", "substance_group", "offence_scope"], ["cohort"]),
    ],
    "drug_related_deaths": [["year", "year_basis", "sex", "age_band", "treatment_status"]],
    "deaths_after_treatment": [],
    "treatment_flow": [
        [*_P, "substance_group", "setting", "housing_status", "age_band"],
        ([*_P, "la_code", "substance_group"], ["in_treatment"]),
    ],
    "benefits_outcome": [[*_P, "substance_group", "exit_type"]],
    "linkage_quality": [],
}
FORMER_ROUNDS = 4


def former_macro(frame: pd.DataFrame, table: Published) -> dict[str, np.ndarray]:
    """The former macro's suppression flags per count of a per-mart table: each pass, in a group
    with exactly one suppressed cell, the first cell ordered by (suppressed last, zeros after
    non-zeros, value, the table's key) is suppressed too."""
    dims = list(table.family.dims)
    flags = {c: frame[c].between(SMALL_MIN, SMALL_MAX).to_numpy() for c in table.counts}
    for _ in range(FORMER_ROUNDS):
        for entry in FORMER_GROUPINGS[table.name]:
            by, counts = entry if isinstance(entry, tuple) else (entry, list(table.counts))
            group = frame.groupby(by, dropna=False, sort=False).ngroup().to_numpy()
            for count in counts:
                hidden = flags[count].copy()
                value = frame[count].to_numpy()
                alone = np.bincount(group, weights=hidden, minlength=group.max() + 1) == 1
                work = pd.DataFrame({"g": group, "cls": np.where(hidden, 2, np.where(value == 0, 1, 0)), "v": value})
                for d in dims:
                    work[d] = frame[d].to_numpy()
                first = work.sort_values(["g", "cls", "v", *dims], kind="stable").drop_duplicates("g")
                hidden[first.index[alone[first["g"].to_numpy()]]] = True
                flags[count] = hidden
    return flags


def _share(frame: pd.DataFrame, table: Published, flags: dict[str, np.ndarray]) -> TableShare:
    values = {c: frame[c].fillna(0).to_numpy(np.int64) for c in table.counts}
    return TableShare(
        table.name,
        sum(len(v) for v in values.values()),
        sum(int(flags[c].sum()) for c in table.counts),
        sum(int(v.sum()) for v in values.values()),
        sum(int(values[c][flags[c]].sum()) for c in table.counts),
    )


def smallest_cell_rule(graph: CellGraph) -> np.ndarray:
    """The former macro's rule over every equation: where a group (an equation's cells) has exactly
    one suppressed cell, suppress its smallest non-zero published member, else a zero member, else
    the total; until no group has one. Virtual totals (published nowhere) are not groups."""
    hidden = graph.primary.copy()
    order = np.argsort(graph.inc_eq, kind="stable")
    bounds = np.searchsorted(graph.inc_eq[order], np.arange(graph.n_equations + 1))
    groups = []
    for k in range(graph.n_equations):
        inc = order[bounds[k] : bounds[k + 1]]
        total = int(graph.inc_cell[inc][graph.inc_coef[inc] > 0][0])
        if not graph.virtual[total]:
            groups.append((total, graph.inc_cell[inc][graph.inc_coef[inc] < 0]))
    changed = True
    while changed:
        changed = False
        for total, members in groups:
            cells = np.append(members, total)
            if hidden[cells].sum() != 1:
                continue
            free = members[~hidden[members]]
            nonzero = free[graph.values[free] > 0]
            if len(nonzero):
                pick = nonzero[np.argmin(graph.values[nonzero])]
            elif len(free):
                pick = free[0]
            else:
                pick = total
            hidden[pick] = True
            changed = True
    return hidden


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse", required=True, help="a built DuckDB warehouse (marts present)")
    parser.add_argument("--rule", action="store_true", help="also the macro's rule over every linked equation")
    args = parser.parse_args()
    with connect(resolve_target(args.warehouse), read_only=True) as backend, backend.transaction() as s:
        marts = read_marts(s)
    frames = all_frames(marts)
    started = time.perf_counter()
    linked = link(frames)
    link_s = time.perf_counter() - started
    started = time.perf_counter()
    stats = SolveStats()
    ip = choose_suppression(linked.graph, stats, costs(linked, frames))
    ip_s = time.perf_counter() - started

    def flags(hidden: np.ndarray) -> dict:
        return {key: (ids >= 0) & hidden[np.maximum(ids, 0)] for key, ids in linked.cell_of.items()}

    after = {s.table: s for s in shares_of(frames, flags(ip))}
    floor = {s.table: s for s in shares_of(frames, flags(linked.graph.primary))}
    print(f"{len(linked.graph.values):,} linked cells, {linked.graph.n_equations:,} equations")
    head = ("cells: before", "after", "floor", "people: before", "after", "floor")
    print(f"{'table':48s} {head[0]:>13s} {head[1]:>6s} {head[2]:>6s}  {head[3]:>14s} {head[4]:>6s} {head[5]:>6s}")
    for table in TABLES:
        a, f = after[table.name], floor[table.name]
        if table.base:
            b = _share(frames[table.name], table, former_macro(frames[table.name], table))
            before = (f"{100 * b.cell_share:12.1f}%", f"{100 * b.people_share:13.1f}%")
        else:
            before = (f"{'(new)':>13s}", f"{'(new)':>14s}")
        print(
            f"{table.name:48s} {before[0]} {100 * a.cell_share:5.1f}% {100 * f.cell_share:5.1f}%  "
            f"{before[1]} {100 * a.people_share:5.1f}% {100 * f.people_share:5.1f}%"
        )
    print(
        f"seconds: linking {link_s:.1f}, program {ip_s:.1f} ({stats.components} components, "
        f"{stats.programs} programs, {stats.fallbacks} fallbacks)"
    )
    weak = weak_cells(linked.graph, ip & ~linked.graph.virtual, LP_AUDIT_LIMIT)
    print(f"suppressed cells short of their protection (the build's audit): {len(weak):,}")
    if args.rule:
        rule = smallest_cell_rule(linked.graph)
        total_rule = int(linked.graph.values[rule & ~linked.graph.virtual].sum())
        total_ip = int(linked.graph.values[ip].sum())
        print(f"people in suppressed cells, all tables: rule {total_rule:,}, program {total_ip:,}")
        weak = weak_cells(linked.graph, rule & ~linked.graph.virtual, LP_AUDIT_LIMIT)
        print(f"the rule's suppressed cells short of their protection: {len(weak):,}")


if __name__ == "__main__":
    main()
