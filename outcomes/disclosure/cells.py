"""Cells and the additivity relations between them: what an intruder knows about published counts.

A cell is one count of one published row (or a quantity published nowhere that links two tables,
a `virtual` cell: unknown to everyone). An equation says that a total cell is the sum of its member
cells. Every cell is non-negative. Cells connected by equations form components, solved apart.
Equations are held as arrays (an incidence list) so that a million cells stay cheap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_array
from scipy.sparse.csgraph import connected_components

# A count from 1 to 4 is suppressed (outcomes.md §7).
SMALL_MIN, SMALL_MAX = 1, 4
# Protection (docs/disclosure.md): the intruder's interval [low, high] for a suppressed count v
# (every value the published cells, the equations and non-negativity allow) must reach at least
# PROTECTION below and above v when v is a count 1-4 (low <= v - 1 and high >= v + 1: neither the
# value nor its neighbours on either side can be told apart, so it is never recovered and a count of
# 1 is never shown to be non-zero); any other suppressed cell must not be pinned (high - low >= 1).
PROTECTION = 1.0
SECONDARY_WIDTH = 1.0
_EPS = 1e-6


def short_of_protection(truth, low, high, primary) -> np.ndarray:
    """Which cells' intervals [low, high] fail the protection (truth: their values)."""
    truth, low, high = (np.asarray(x, float) for x in (truth, low, high))
    primary = np.asarray(primary, bool)
    primary_short = (truth - low < PROTECTION - _EPS) | (high - truth < PROTECTION - _EPS)
    return np.where(primary, primary_short, high - low < SECONDARY_WIDTH - _EPS)


@dataclass
class CellGraph:
    values: np.ndarray  # int64, one per cell
    virtual: np.ndarray  # bool: published nowhere, unknown to the intruder
    # Incidence of the equations: equation k holds cell inc_cell[i] with coefficient inc_coef[i]
    # (+1 its total, -1 a member) for every i with inc_eq[i] == k; sum(coef * value) == 0.
    inc_eq: np.ndarray
    inc_cell: np.ndarray
    inc_coef: np.ndarray

    @classmethod
    def build(cls, values, virtual=None, equations=()) -> CellGraph:
        """From a list of (total, [members]) equations."""
        eq, cell, coef = [], [], []
        for k, (total, members) in enumerate(equations):
            if not len(members) or total in members:
                raise ValueError(f"bad equation: total {total}, members {list(members)}")
            eq += [k] * (len(members) + 1)
            cell += [int(total), *map(int, members)]
            coef += [1] + [-1] * len(members)
        return cls.from_arrays(values, virtual, np.array(eq, np.int64), np.array(cell, np.int64), np.array(coef))

    @classmethod
    def from_arrays(cls, values, virtual, inc_eq, inc_cell, inc_coef) -> CellGraph:
        values = np.asarray(values, dtype=np.int64)
        if (values < 0).any():
            raise ValueError("cell values must be counts (>= 0)")
        virtual = np.zeros(len(values), bool) if virtual is None else np.asarray(virtual, bool)
        if len(virtual) != len(values):
            raise ValueError("one virtual flag per cell")
        inc_cell = np.asarray(inc_cell, np.int64)
        if len(inc_cell) and (inc_cell.min() < 0 or inc_cell.max() >= len(values)):
            raise ValueError("an equation names a cell that does not exist")
        graph = cls(values, virtual, np.asarray(inc_eq, np.int64), inc_cell, np.asarray(inc_coef, np.int64))
        residual = np.bincount(graph.inc_eq, weights=graph.inc_coef * values[inc_cell], minlength=graph.n_equations)
        bad = np.flatnonzero(residual != 0)
        if len(bad):
            k = int(bad[0])
            raise ValueError(f"cells do not add up in equation {k}: {graph.equation(k)}")
        return graph

    @property
    def n_equations(self) -> int:
        return int(self.inc_eq.max()) + 1 if len(self.inc_eq) else 0

    def equation(self, k: int) -> tuple[int, list[int]]:
        rows = self.inc_eq == k
        cells, coefs = self.inc_cell[rows], self.inc_coef[rows]
        return int(cells[coefs > 0][0]), cells[coefs < 0].tolist()

    @property
    def primary(self) -> np.ndarray:
        return ~self.virtual & (self.values >= SMALL_MIN) & (self.values <= SMALL_MAX)

    def components(self) -> tuple[int, np.ndarray]:
        """(number, label of each cell) of the sets of cells connected by equations."""
        n = len(self.values)
        totals = np.zeros(self.n_equations, np.int64)
        totals[self.inc_eq[self.inc_coef > 0]] = self.inc_cell[self.inc_coef > 0]
        adjacency = coo_array((np.ones(len(self.inc_eq)), (totals[self.inc_eq], self.inc_cell)), shape=(n, n))
        return connected_components(adjacency, directed=False)
