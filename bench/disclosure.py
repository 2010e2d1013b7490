"""Disclosure control: what the integer program suppresses against the former dbt macro, on the
same marts of one built warehouse, in the same run.

    .venv/bin/python -m bench.disclosure --warehouse /tmp/w.duckdb [--rule] [--no-limits]
        [--per-mart-priority P] [--england-priority P]

The former macro (`disclose` in dbt_project/macros/disclosure.sql before the disclosure step; its
per-mart groupings in outcomes/disclosure/former.py) published only the nine per-mart tables:
primary suppression of 1-4, then within each group of cells (a published England row with its
areas; a cohort shared with another table) with exactly one suppressed cell, the smallest non-zero
other cell, four rounds of passes.
Reads the marts only (read-only); prints per published table the share of cells and of people
suppressed before (the former macro, per-mart tables only) and after (the program), the floor
(primary suppression alone: no table can lose less), then per per-mart table the exact cells and
people before and after and whether after is at most before, and the program's seconds (the
program as `outcomes publish` runs it: priorities and the former rule's limits; --no-limits and
the priorities change it, for comparison). With --rule, also
the macro's rule applied over every linked equation of the new tables, and the LP audit of both.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from outcomes.disclosure.audit import weak_cells
from outcomes.disclosure.cells import CellGraph
from outcomes.disclosure.control import ENGLAND_PRIORITY, PER_MART_PRIORITY, TableShare, choose, shares_of
from outcomes.disclosure.former import former_macro
from outcomes.disclosure.frames import all_frames, read_marts
from outcomes.disclosure.linked import link
from outcomes.disclosure.solver import LP_AUDIT_LIMIT, SolveStats
from outcomes.disclosure.tables import TABLES, Published
from outcomes.eventstore import connect
from outcomes.warehouse import resolve_target


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
    parser.add_argument("--no-limits", action="store_true", help="without the former rule's limits per table")
    parser.add_argument("--per-mart-priority", type=float, default=PER_MART_PRIORITY)
    parser.add_argument("--england-priority", type=float, default=ENGLAND_PRIORITY)
    args = parser.parse_args()
    with connect(resolve_target(args.warehouse), read_only=True) as backend, backend.transaction() as s:
        marts = read_marts(s)
    frames = all_frames(marts)
    started = time.perf_counter()
    linked = link(frames)
    link_s = time.perf_counter() - started
    started = time.perf_counter()
    stats = SolveStats()
    ip = choose(
        linked,
        frames,
        stats,
        limits=not args.no_limits,
        per_mart=args.per_mart_priority,
        england=args.england_priority,
    )
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
    print("per-mart tables, suppressed (before -> after): cells; people; after at most before in both")
    for table in TABLES:
        if table.base:
            a = after[table.name]
            b = _share(frames[table.name], table, former_macro(frames[table.name], table))
            at_most = a.cells_suppressed <= b.cells_suppressed and a.people_suppressed <= b.people_suppressed
            print(
                f"  {table.name}: {b.cells_suppressed:,} -> {a.cells_suppressed:,}; "
                f"{b.people_suppressed:,} -> {a.people_suppressed:,}; {'yes' if at_most else 'NO'}"
            )
    people = sum(s.people_suppressed for s in after.values())
    print(f"people in suppressed cells, all published tables: {people:,}")
    print(
        f"seconds: linking {link_s:.1f}, program {ip_s:.1f} ({stats.components} components, "
        f"{stats.programs} programs, {stats.fallbacks} fallbacks; {stats.resolved} solved again under the "
        f"limits, {stats.rebudgeted} again with what their tables had left, {stats.over_limit} over them, "
        f"{stats.unlimited} without)"
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
