"""Secondary suppression by integer program, on hand-made tables where the answer is known, and the
intruder's LP attack (tests/disclosure_attack.py, written apart from the solver's audit) on random
small tables: no suppressed cell is ever narrowed below its suppression range."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from outcomes.disclosure.cells import CellGraph
from outcomes.disclosure.solver import SolveStats, choose_suppression
from tests.disclosure_attack import narrowed_cells


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
