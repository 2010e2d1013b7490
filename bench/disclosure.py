"""Disclosure control: what the integer program suppresses against the rule of the former dbt macro
(each group with one suppressed cell also loses its smallest other cell, repeated until no group has
one), both over the same linked published tables of one built warehouse, in the same run.

    .venv/bin/python -m bench.disclosure --warehouse /tmp/w.duckdb

Reads the marts only (read-only); prints per published table the share of cells and of people
suppressed by each method, the ratio of people suppressed (IP / rule), and each method's seconds.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from outcomes.disclosure.audit import weak_cells
from outcomes.disclosure.cells import CellGraph
from outcomes.disclosure.control import shares_of
from outcomes.disclosure.frames import all_frames, read_marts
from outcomes.disclosure.linked import link
from outcomes.disclosure.solver import LP_AUDIT_LIMIT, SolveStats, choose_suppression
from outcomes.eventstore import connect
from outcomes.warehouse import resolve_target


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
    args = parser.parse_args()
    with connect(resolve_target(args.warehouse), read_only=True) as backend, backend.transaction() as s:
        marts = read_marts(s)
    frames = all_frames(marts)
    linked = link(frames)
    started = time.perf_counter()
    rule = smallest_cell_rule(linked.graph)
    rule_s = time.perf_counter() - started
    started = time.perf_counter()
    stats = SolveStats()
    ip = choose_suppression(linked.graph, stats)
    ip_s = time.perf_counter() - started

    def flags(hidden: np.ndarray) -> dict:
        return {key: (ids >= 0) & hidden[np.maximum(ids, 0)] for key, ids in linked.cell_of.items()}

    print(f"{len(linked.graph.values):,} linked cells, {linked.graph.n_equations:,} equations")
    print(f"{'table':48s} {'rule cells':>10s} {'people':>7s} {'IP cells':>9s} {'people':>7s} {'IP/rule':>8s}")
    for r, i in zip(shares_of(frames, flags(rule)), shares_of(frames, flags(ip)), strict=True):
        ratio = i.people_suppressed / r.people_suppressed if r.people_suppressed else float("nan")
        print(
            f"{r.table:48s} {100 * r.cell_share:9.1f}% {100 * r.people_share:6.1f}% "
            f"{100 * i.cell_share:8.1f}% {100 * i.people_share:6.1f}% {ratio:8.2f}"
        )
    total_rule = int(linked.graph.values[rule & ~linked.graph.virtual].sum())
    total_ip = int(linked.graph.values[ip].sum())
    print(f"people in suppressed cells, all tables: rule {total_rule:,}, IP {total_ip:,} ({total_ip / total_rule:.2f})")
    print(f"seconds: rule {rule_s:.1f}, IP {ip_s:.1f} ({stats.programs} programs, {stats.fallbacks} fallbacks)")
    # The rule loses less only where it leaves cells the intruder narrows: the same audit on both.
    for name, hidden in (("rule", rule), ("IP", ip)):
        weak = weak_cells(linked.graph, hidden & ~linked.graph.virtual, LP_AUDIT_LIMIT)
        print(f"suppressed cells narrowed below their range ({name}): {len(weak):,}")


if __name__ == "__main__":
    main()
