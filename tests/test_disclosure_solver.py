"""Secondary suppression by integer program, on hand-made tables where the answer is known, and the
intruder's LP attack (tests/disclosure_attack.py, written apart from the solver's audit) on random
small tables: no suppressed cell is ever narrowed below its suppression range."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from outcomes.disclosure.audit import protection_cuts, weak_cells
from outcomes.disclosure.cells import CellGraph
from outcomes.disclosure.solver import Limits, Memo, SolveStats, choose_suppression
from tests.disclosure_attack import lp_interval, narrowed_cells, short


def table_with_margins(grid: list[list[int]]) -> tuple[CellGraph, dict]:
    """Cells of a 2-D table, its row totals, column totals and grand total, with their equations."""
    rows, cols = len(grid), len(grid[0])
    values = [v for row in grid for v in row]
    cell = {(r, c): r * cols + c for r in range(rows) for c in range(cols)}
    for r in range(rows):
        cell[(r, "*")] = len(values)
        values.append(sum(grid[r]))
    for c in range(cols):
        cell[("*", c)] = len(values)
        values.append(sum(grid[r][c] for r in range(rows)))
    cell[("*", "*")] = len(values)
    values.append(sum(map(sum, grid)))
    equations = [(cell[(r, "*")], [cell[(r, c)] for c in range(cols)]) for r in range(rows)]
    equations += [(cell[("*", c)], [cell[(r, c)] for r in range(rows)]) for c in range(cols)]
    equations += [(cell[("*", "*")], [cell[(r, "*")] for r in range(rows)])]
    equations += [(cell[("*", "*")], [cell[("*", c)] for c in range(cols)])]
    return CellGraph.build(values, equations=equations), cell


def equations_of(graph: CellGraph) -> list[tuple[int, list[int]]]:
    return [graph.equation(k) for k in range(graph.n_equations)]


def test_a_2x2_table_with_one_small_cell_loses_its_three_other_cells_and_keeps_the_totals():
    graph, cell = table_with_margins([[2, 30], [40, 50]])
    hidden = choose_suppression(graph)
    assert set(np.flatnonzero(hidden)) == {cell[(0, 0)], cell[(0, 1)], cell[(1, 0)], cell[(1, 1)]}
    assert not narrowed_cells(graph.values, hidden, equations_of(graph))


def test_the_secondary_cell_is_the_one_with_fewest_people():
    # Row 0 holds the small cell; the cheapest cycle goes through the 6s, not the 60s and 70s.
    graph, cell = table_with_margins([[3, 6, 60], [6, 7, 70], [50, 80, 90]])
    hidden = choose_suppression(graph)
    assert set(np.flatnonzero(hidden)) == {cell[(0, 0)], cell[(0, 1)], cell[(1, 0)], cell[(1, 1)]}


def test_a_cell_is_protected_against_a_total_published_in_a_linked_table():
    # Two areas of one table; England's total is published by another table only.
    areas = [2, 20]
    alone = CellGraph.build(areas)
    assert list(choose_suppression(alone)) == [True, False]  # no total known: the small cell alone
    linked = CellGraph.build([*areas, 22], equations=[(2, [0, 1])])
    hidden = choose_suppression(linked)
    assert list(hidden) == [True, True, False]
    assert not narrowed_cells(linked.values, hidden, equations_of(linked))


def test_a_link_through_a_total_published_nowhere_still_protects():
    # Table A splits England (30) by exit type, table B by retention; their shared total is
    # virtual (unknown): the small cell of A can be recovered only through B's published cells.
    values = [3, 27, 10, 20, 30]
    virtual = [False, False, False, False, True]
    graph = CellGraph.build(values, virtual, [(4, [0, 1]), (4, [2, 3])])
    hidden = choose_suppression(graph)
    assert hidden[0] and hidden.sum() >= 2 and not hidden[4]
    assert not narrowed_cells(graph.values, hidden, equations_of(graph), graph.virtual)


def test_cells_that_do_not_add_up_are_refused():
    with pytest.raises(ValueError, match="do not add up"):
        CellGraph.build([1, 2, 4], equations=[(2, [0, 1])])
    with pytest.raises(ValueError, match="counts"):
        CellGraph.build([-1])


def test_zeros_are_published_and_tables_without_small_counts_lose_nothing():
    graph, _ = table_with_margins([[0, 30], [40, 0]])
    assert not choose_suppression(graph).any()


def test_the_same_table_gives_the_same_cells():
    graph, _ = table_with_margins([[1, 9, 12, 3], [7, 2, 30, 8], [11, 14, 4, 20]])
    stats = SolveStats()
    first = choose_suppression(graph, stats)
    assert stats.programs >= 1
    assert (choose_suppression(graph) == first).all()


@settings(max_examples=25, deadline=None)
@given(
    st.integers(2, 4).flatmap(
        lambda rows: st.integers(2, 4).flatmap(
            lambda cols: st.lists(
                st.lists(st.sampled_from([0, 1, 2, 3, 4, 5, 6, 9, 15, 40]), min_size=cols, max_size=cols),
                min_size=rows,
                max_size=rows,
            )
        )
    )
)
def test_the_lp_attack_never_narrows_a_suppressed_cell_below_its_range(grid):
    graph, _ = table_with_margins(grid)
    hidden = choose_suppression(graph)
    values = graph.values
    assert hidden[(values >= 1) & (values <= 4)].all()
    assert not narrowed_cells(values, hidden, equations_of(graph))


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.lists(st.sampled_from([0, 1, 2, 3, 5, 9, 40]), min_size=3, max_size=3), min_size=3, max_size=4),
    st.integers(0, 2**20 - 1),
    st.booleans(),
)
def test_the_audit_finds_exactly_the_cells_the_lp_attack_narrows(grid, mask, grand_total_virtual):
    # Any pattern, protected or not: the audit (propagation, joint LPs and warm-started exact LPs,
    # each point seen reused) must flag the cells that tests/disclosure_attack.py's cold LP per
    # cell narrows, and only those. A virtual grand total joins the rows and columns as a cohort.
    graph, cell = table_with_margins(grid)
    if grand_total_virtual:
        graph.virtual[cell[("*", "*")]] = True
    hidden = graph.primary.copy()
    hidden[[c for c in range(len(graph.values)) if mask >> (c % 20) & 1]] = True
    hidden &= ~graph.virtual
    expected = sorted(c for c, _, _ in narrowed_cells(graph.values, hidden, equations_of(graph), graph.virtual))
    assert weak_cells(graph, hidden) == expected


def test_the_audit_finds_a_cell_only_the_exact_lp_pins():
    # Two counts of 3 under a cohort published nowhere (virtual: x1 + 10 = y1 + 10), and their sum
    # published as 6: bound propagation leaves each in [0, 6], while the LP (x1 = y1, x1 + y1 = 6)
    # pins both to 3, which only the exact LPs can show.
    x1, x2, y1, y2, cohort, pair = range(6)
    graph = CellGraph.build(
        [3, 10, 3, 10, 13, 6],
        virtual=[False, False, False, False, True, False],
        equations=[(cohort, [x1, x2]), (cohort, [y1, y2]), (pair, [x1, y1])],
    )
    hidden = graph.primary.copy()
    assert sorted(c for c, _, _ in narrowed_cells(graph.values, hidden, equations_of(graph), graph.virtual)) == [x1, y1]
    assert weak_cells(graph, hidden) == [x1, y1]


def _cheapest_protected(graph: CellGraph, short) -> tuple[int, set[int]]:
    """By brute force: the fewest people in secondary cells of any pattern the LP attack leaves
    protected under the rule `short(value, low, high)`, and that pattern (ties: fewest cells)."""
    primary = np.flatnonzero(graph.primary)
    others = [c for c in range(len(graph.values)) if c not in set(primary.tolist())]
    equations = equations_of(graph)
    patterns = [{c for k, c in enumerate(others) if mask >> k & 1} for mask in range(2 ** len(others))]
    patterns.sort(key=lambda p: (sum(int(graph.values[c]) for c in p), len(p), sorted(p)))
    for pattern in patterns:
        hidden = graph.primary.copy()
        hidden[list(pattern)] = True
        cells = np.flatnonzero(hidden)
        if all(not short(graph.values[c], *lp_interval(graph.values, hidden, equations, int(c))) for c in cells):
            return sum(int(graph.values[c]) for c in pattern), pattern
    raise AssertionError("no pattern protects")


def _width_3(value, low, high) -> bool:
    """The former protection: a count 1-4 keeps an interval at least 3 wide, others 1."""
    return high - low < (3.0 if 1 <= value <= 4 else 1.0) - 1e-6


def test_the_protection_needs_fewer_people_than_the_former_width_of_3_where_both_optima_are_known():
    # One group whose total is published: two counts of 1 and two larger cells. Each 1 can be 0, 1
    # or 2 (they sum to 2): neither is recovered, nor shown non-zero, so the ±1 protection needs
    # nothing more; the former width of 3 needs the 20 as well. The program keeps a capacity margin
    # of 3 in each such group (solver.CAPACITY, for the propagation audit of large clusters), so it
    # suppresses the 20 here too, and what it suppresses is protected under both definitions.
    graph = CellGraph.build([1, 1, 20, 30, 52], equations=[(4, [0, 1, 2, 3])])
    new_cost, new_pattern = _cheapest_protected(graph, short)
    old_cost, old_pattern = _cheapest_protected(graph, _width_3)
    assert (new_cost, new_pattern, old_cost, old_pattern) == (0, set(), 20, {2})
    hidden = choose_suppression(graph)
    assert set(np.flatnonzero(hidden)) == {0, 1, 2}
    assert not narrowed_cells(graph.values, hidden, equations_of(graph))


def test_the_priorities_keep_the_per_mart_table_at_the_former_macros_loss_where_people_alone_do_not():
    # A per-mart table of two areas x three substance groups with England's row (column totals),
    # and a new grain: each area's total (row totals) and England's total. The former macro
    # protected only the columns: the 2 and the 3 share one, so it suppressed nothing more (5
    # people). With the rows' totals published each small count is alone in its row: people alone
    # as the cost take the 9 and the 20 from the per-mart table (34 people there); the priorities
    # take the two area totals instead and the per-mart table loses only its small counts.
    grid = [[2, 9, 30], [3, 20, 40]]
    values = [v for row in grid for v in row]  # 0-5: the areas' cells
    values += [sum(col) for col in zip(*grid, strict=True)]  # 6-8: England's row
    values += [sum(row) for row in grid]  # 9-10: each area's total (new grain)
    values += [sum(values[:6])]  # 11: England's total (new grain)
    equations = [(6 + c, [c, 3 + c]) for c in range(3)]  # England = sum of the areas
    equations += [(9 + r, [3 * r, 3 * r + 1, 3 * r + 2]) for r in range(2)]  # area total = sum of groups
    equations += [(11, [9, 10]), (11, [6, 7, 8])]
    graph = CellGraph.build(values, equations=equations)
    per_mart = np.arange(len(values)) < 9
    people = choose_suppression(graph)
    priority = choose_suppression(graph, cost=(graph.values + 0.01) * np.where(per_mart, 1000.0, 1.0))
    lost = {name: int(graph.values[h & per_mart].sum()) for name, h in (("people", people), ("priority", priority))}
    assert lost == {"people": 34, "priority": 5}
    assert set(np.flatnonzero(priority)) == {0, 3, 9, 10}
    assert not narrowed_cells(graph.values, priority, equations_of(graph))


def test_a_2x3_table_loses_the_fewest_people_any_protecting_pattern_can():
    graph, _ = table_with_margins([[2, 7, 15], [9, 1, 30]])
    best, _ = _cheapest_protected(graph, short)
    hidden = choose_suppression(graph)
    assert int(graph.values[hidden & ~graph.primary].sum()) == best
    assert not narrowed_cells(graph.values, hidden, equations_of(graph))


def test_a_priority_moves_the_secondary_cell_from_the_fine_table_to_the_total():
    # An area's row of substance groups (a per-mart table) and its total (a coarser table).
    graph = CellGraph.build([2, 9, 30, 40, 81], equations=[(4, [0, 1, 2, 3])])
    assert set(np.flatnonzero(choose_suppression(graph))) == {0, 1}  # fewest people: the 9
    cost = (graph.values + 0.01) * np.array([1000, 1000, 1000, 1000, 1])
    hidden = choose_suppression(graph, cost=cost)
    assert set(np.flatnonzero(hidden)) == {0, 4}  # the fine table keeps its 9; the total goes
    assert not narrowed_cells(graph.values, hidden, equations_of(graph))


def test_a_table_never_loses_more_people_than_its_reference_pattern_where_one_protects():
    # A 2x3 table with its margins; its interior is the table under a limit. With the third
    # column's cells made cheap, the program alone takes the 1's protection there (20 + 8 + 30
    # people of the interior); the reference pattern (the 5, 8 and 6: 19 people) protects too,
    # and with it as the limit the program loses no more than 19 of the interior's people.
    graph, cell = table_with_margins([[1, 5, 20], [8, 6, 30]])
    interior = np.array([cell[(r, c)] for r in range(2) for c in range(3)])
    cost = graph.values + 0.01
    cost[[cell[(0, 2)], cell[(1, 2)]]] = 0.1
    reference = np.isin(interior, [cell[(0, 0)], cell[(0, 1)], cell[(1, 0)], cell[(1, 1)]])
    limits = Limits(interior, np.zeros(len(interior), np.int64), graph.values[interior], reference)

    def lost(hidden):
        return int(graph.values[interior][hidden[interior] & ~graph.primary[interior]].sum())

    assert lost(choose_suppression(graph, cost=cost)) == 58
    stats = SolveStats()
    hidden = choose_suppression(graph, stats, cost, limits)
    assert lost(hidden) <= 19 and stats.over_limit == 0
    assert not narrowed_cells(graph.values, hidden, equations_of(graph))
    # A limit no protecting pattern meets (no secondary cell anywhere) gives way to the protection,
    # raised by the fewest people that protect: the 1's cheapest protection, 19 people.
    every = np.arange(len(graph.values))
    nothing = Limits(every, np.zeros(len(every), np.int64), graph.values, np.zeros(len(every), bool))
    stats = SolveStats()
    hidden = choose_suppression(graph, stats, cost, nothing)
    assert stats.over_limit == 1 and stats.unlimited == 0
    assert int(graph.values[hidden & ~graph.primary].sum()) == _cheapest_protected(graph, short)[0]
    assert not narrowed_cells(graph.values, hidden, equations_of(graph))


def test_the_audit_cut_rules_out_the_weak_pattern_and_the_program_meets_it():
    graph, cell = table_with_margins([[2, 30], [40, 50]])
    weak_pattern = graph.primary.copy()
    weak_pattern[cell[(0, 1)]] = True  # the row is covered, the column gives the 2 away
    weak = weak_cells(graph, weak_pattern)
    assert cell[(0, 0)] in weak
    cuts = protection_cuts(graph, weak_pattern, weak)
    assert cuts
    final = choose_suppression(graph)
    for cells, coefs, rhs in cuts:
        assert float(coefs @ weak_pattern[cells]) < rhs - 1e-9  # the weak pattern violates it
        assert float(coefs @ final[cells]) >= rhs - 1e-9  # the protected one meets it


def test_what_a_table_has_left_under_its_limit_goes_where_the_limit_cost_most_whatever_the_order():
    # Three rows of one fine table (a group under one limit), each with a count of 2 and a
    # published total. The reference hides 30 people (the first row's 30); the program alone takes
    # 9 + 12 + 15 = 36 people of the table. 21 are left after the first row: enough for the second
    # row's 12 (else its total of 184 goes) or the third's 15 (else its 87), not both. The second
    # row's total is dearer, so it keeps its 12, whichever row is solved again first.
    rows = [[2, 9, 30, 40], [2, 12, 30, 140], [2, 15, 30, 40]]
    values, equations, interior = [], [], []
    for row in rows:
        first = len(values)
        values += [*row, sum(row)]
        interior += list(range(first, first + 4))
        equations.append((first + 4, list(range(first, first + 4))))
    graph = CellGraph.build(values, equations=equations)
    interior = np.array(interior)
    reference = interior == 2
    limits = Limits(interior, np.zeros(len(interior), np.int64), graph.values[interior], reference)
    stats = SolveStats()
    hidden = choose_suppression(graph, stats, None, limits)
    assert set(np.flatnonzero(hidden)) == {0, 1, 5, 6, 10, 14}
    assert stats.over_limit == 0 and stats.resolved == 2 and stats.rebudgeted == 2
    assert not narrowed_cells(graph.values, hidden, equations_of(graph))


def _rows_under_one_limit(rows: list[list[int]]) -> tuple[CellGraph, Limits]:
    values, equations, interior = [], [], []
    for row in rows:
        first = len(values)
        values += [*row, sum(row)]
        interior += list(range(first, first + len(row)))
        equations.append((first + len(row), list(range(first, first + len(row)))))
    graph = CellGraph.build(values, equations=equations)
    interior = np.array(interior)
    return graph, Limits(interior, np.zeros(len(interior), np.int64), graph.values[interior], interior % 5 == 2)


def test_a_memo_of_the_last_solve_gives_what_solving_again_gives_and_solves_only_what_changed():
    # The rows of the test above: solved again under their limit and re-budgeted, each a component.
    before = [[2, 9, 30, 40], [2, 12, 30, 140], [2, 15, 30, 40], [3, 50, 60, 70]]
    graph, limits = _rows_under_one_limit(before)
    first = Memo()
    stats = SolveStats()
    hidden = choose_suppression(graph, stats, None, limits, first)
    assert first.hits == 0 and first.misses > 0
    again = Memo(known=first.used)
    stats_again = SolveStats()
    assert (choose_suppression(graph, stats_again, None, limits, again) == hidden).all()
    assert again.misses == 0 and again.hits == first.misses and stats_again == stats
    # A month later the last row changed: only its component is solved; the result and the stats
    # are those of solving every component without a memo.
    after = [*before[:3], [3, 50, 61, 70]]
    graph, limits = _rows_under_one_limit(after)
    month = Memo(known=again.used)
    stats_month, stats_full = SolveStats(), SolveStats()
    hidden_month = choose_suppression(graph, stats_month, None, limits, month)
    hidden_full = choose_suppression(graph, stats_full, None, limits)
    assert (hidden_month == hidden_full).all() and stats_month == stats_full
    assert month.misses == 1 and month.hits >= 3
    # Another solver version (the code or the libraries changed) reuses nothing.
    other = Memo(known=again.used, version="another solver")
    choose_suppression(graph, SolveStats(), None, limits, other)
    assert other.hits == 0
    # A stored pattern that leaves a primary cell published (a damaged memo table) is not taken:
    # that component is solved again and the result is the full solve's.
    damaged = {key: (np.zeros_like(flags), stats) for key, (flags, stats) in month.used.items()}
    guarded = Memo(known=damaged)
    assert (choose_suppression(graph, SolveStats(), None, limits, guarded) == hidden_full).all()
    assert guarded.hits == 0 and guarded.misses == month.hits + month.misses


def _former_by_pandas_sort(frame, table) -> dict[str, np.ndarray]:
    """The former macro as first written: a stable pandas sort by (group, class, value, key) per pass."""
    import pandas as pd

    from outcomes.disclosure.former import FORMER_GROUPINGS, FORMER_ROUNDS

    dims = list(table.family.dims)
    flags = {c: frame[c].between(1, 4).to_numpy() for c in table.counts}
    for _ in range(FORMER_ROUNDS):
        for entry in FORMER_GROUPINGS.get(table.name, []):
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


@pytest.mark.parametrize("name", ["proven_reoffending", "convictions_before_after", "treatment_flow"])
def test_the_former_rule_by_integer_sort_flags_what_the_pandas_sort_flagged(name):
    # Rows in no particular order, keys repeated, values tied, zeros and small counts everywhere.
    import pandas as pd

    from outcomes.disclosure.former import former_macro
    from outcomes.disclosure.tables import BY_NAME

    table = BY_NAME[name]
    rng = np.random.default_rng(3)
    n = 3_000
    frame = pd.DataFrame({d: rng.choice([f"{d}{i}" for i in range(4)], n) for d in table.family.dims})
    for count in table.counts:
        frame[count] = rng.choice([0, 1, 2, 3, 5, 5, 6, 9, 30], n)
    expected, got = _former_by_pandas_sort(frame, table), former_macro(frame, table)
    assert sum(int(v.sum()) for v in expected.values()) > sum(int(frame[c].between(1, 4).sum()) for c in table.counts)
    for count in table.counts:
        assert (got[count] == expected[count]).all(), count


def test_cells_are_grouped_by_grain_as_a_sort_of_their_rows_groups_them():
    from outcomes.disclosure.linked import _by_grain

    rng = np.random.default_rng(5)
    codes = rng.integers(0, 3, (5_000, 6)) * rng.integers(0, 2, (5_000, 6))  # zeros: "all"
    ids = rng.permutation(5_000)
    named = codes[:, 2:] > 0
    patterns, which = np.unique(named, axis=0, return_inverse=True)
    expected = {
        tuple(int(2 + j) for j in np.flatnonzero(p)): (codes[which.ravel() == k], ids[which.ravel() == k])
        for k, p in enumerate(patterns)
    }
    got = _by_grain(codes, ids, 2)
    assert list(got) == list(expected) and len(got) > 8
    for grain, (c, i) in expected.items():
        assert (got[grain][0] == c).all() and (got[grain][1] == i).all()
