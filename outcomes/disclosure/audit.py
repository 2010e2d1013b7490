"""The intruder's linear-programming attack: for each hidden cell, the smallest and largest value
it can take given every published cell, every equation and non-negativity (scipy's HiGHS)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import highspy
import numpy as np
from scipy.optimize import linprog
from scipy.sparse import coo_array, csr_array
from scipy.sparse.csgraph import connected_components

from outcomes.disclosure.cells import PROTECTION, SECONDARY_WIDTH, CellGraph, short_of_protection

# Bound given to every unknown in the quick joint check only: a smaller feasible set can only
# narrow intervals, so a cell found wide enough there is wide enough in the intruder's problem.
_QUICK_SLACK = 1_000
_QUICK_ROUNDS = 40
_QUICK_MIN_CELLS = 3  # below this, one LP per cell is as quick


def clusters(graph: CellGraph, hidden: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray, csr_array, np.ndarray]]:
    """For each set of hidden cells linked by equations: (cells, equations, A, b) with A y = b the
    equations over the hidden cells once every published cell is substituted."""
    hidden = np.asarray(hidden, bool) | graph.virtual
    sel = hidden[graph.inc_cell]
    eqs = np.unique(graph.inc_eq[sel])
    cells = np.flatnonzero(hidden)
    if not len(cells):
        return
    n = len(cells)
    cell_pos = np.full(len(graph.values), -1)
    cell_pos[cells] = np.arange(n)
    eq_pos = np.full(graph.n_equations, -1)
    eq_pos[eqs] = np.arange(len(eqs))
    edges = coo_array(
        (np.ones(int(sel.sum())), (cell_pos[graph.inc_cell[sel]], n + eq_pos[graph.inc_eq[sel]])),
        shape=(n + len(eqs), n + len(eqs)),
    )
    _, label = connected_components(edges, directed=False)
    cell_label, eq_label = label[:n], label[n:]
    # Every incidence of an equation touching a hidden cell, grouped by cluster.
    touching = eq_pos[graph.inc_eq] >= 0
    inc = np.flatnonzero(touching)
    inc_label = eq_label[eq_pos[graph.inc_eq[inc]]]
    order = np.argsort(inc_label, kind="stable")
    inc, inc_label = inc[order], inc_label[order]
    bounds = np.searchsorted(inc_label, np.arange(label.max() + 2))
    cells_by = np.split(cells[np.argsort(cell_label, kind="stable")], np.cumsum(np.bincount(cell_label))[:-1])
    for c, members in enumerate(cells_by):
        mine = inc[bounds[c] : bounds[c + 1]]
        if not len(mine) or not len(members):
            continue
        eq_ids = np.unique(graph.inc_eq[mine])
        row = np.searchsorted(eq_ids, graph.inc_eq[mine])
        is_hidden = hidden[graph.inc_cell[mine]]
        local = np.searchsorted(members, graph.inc_cell[mine[is_hidden]])
        a = csr_array(
            (graph.inc_coef[mine[is_hidden]].astype(float), (row[is_hidden], local)), shape=(len(eq_ids), len(members))
        )
        known = mine[~is_hidden]
        b = -np.bincount(
            row[~is_hidden], weights=graph.inc_coef[known] * graph.values[graph.inc_cell[known]], minlength=len(eq_ids)
        )
        yield members, eq_ids, a, b


def _solve(objective, a, b, bounds) -> float | None:
    """Optimum of min objective·y, or None when unbounded."""
    result = linprog(objective, A_eq=a, b_eq=b, bounds=bounds, method="highs")
    if result.status == 3:
        return None
    if result.status != 0:
        raise RuntimeError(f"disclosure audit: the intruder's LP failed ({result.message})")
    return float(result.fun)


def intervals(graph: CellGraph, hidden: np.ndarray) -> dict[int, tuple[float, float]]:
    """The intruder's interval [low, high] of every hidden published cell (high is inf when nothing
    bounds it)."""
    out = {}
    for cells, _, a, b in clusters(graph, hidden):
        for j, c in enumerate(cells):
            if graph.virtual[c]:
                continue
            objective = np.zeros(len(cells))
            objective[j] = 1.0
            low = _solve(objective, a, b, (0, None))
            high = _solve(-objective, a, b, (0, None))
            out[int(c)] = (low, np.inf if high is None else -high)
    # A hidden cell in no equation is known to be >= 0 only.
    for c in np.flatnonzero(np.asarray(hidden, bool) & ~graph.virtual):
        out.setdefault(int(c), (0.0, np.inf))
    return out


def weak_cells(graph: CellGraph, hidden: np.ndarray, lp_limit: int | None = None) -> list[int]:
    """Hidden published cells whose interval fails the protection (cells.short_of_protection:
    primary cells must move at least 1 down and 1 up; other hidden cells must not be pinned).

    Clusters of more than `lp_limit` hidden cells (default: no limit) get bound propagation only, not
    the LP: in tables where nearly everything is suppressed an LP per cell costs minutes, and the
    integer program's capacity rows already give every primary cell room in each equation.
    """
    weak: list[int] = []
    for cells, _, a, b in clusters(graph, hidden):
        targets = ~graph.virtual[cells]
        if not targets.any():
            continue
        truth = graph.values[cells].astype(float)
        primary = graph.primary[cells]
        # Propagated bounds contain the LP interval: a cell they leave short is short.
        low, high = propagated_bounds(a, b, len(cells))
        narrow = targets & short_of_protection(truth, low, high, primary)
        weak += [int(cells[j]) for j in np.flatnonzero(narrow)]
        # Large clusters get propagation only, except those joined through a virtual cell (the
        # shared cohort): there propagation left a count of 1 the LP pins (4,000 people).
        if lp_limit is not None and len(cells) > lp_limit and not graph.virtual[cells].any():
            continue
        unsure, seen_low, seen_high = _quick_check(truth, primary, targets & ~narrow, a, b)
        exact = _ClusterLP(a, b) if unsure.any() else None
        for j in np.flatnonzero(unsure):
            # Every LP's optimum is a feasible point: it may already show this cell's room.
            lo, hi = _exact_range(int(j), truth, primary, exact, seen_low, seen_high)
            if short_of_protection(truth[j], lo, hi, primary[j]):
                weak.append(int(cells[j]))
    return sorted(weak)


def _exact_range(j: int, truth, primary, lp: _ClusterLP, low: np.ndarray, high: np.ndarray) -> tuple[float, float]:
    """Cell j's interval as far as the protection needs it. `low` and `high` hold, per cell, the
    least and greatest values of the feasible points seen so far (the truth, the quick check's
    solutions): a side they already show wide enough needs no LP, since the true bound lies beyond
    it; every other side gets the exact LP (`lp`: y >= 0, no other bound), whose optimum (a
    feasible point) widens `low` and `high` of every cell for the cells audited after this one."""
    for sign in (1.0, -1.0):  # minimise y_j, then maximise it
        if not short_of_protection(truth[j], low[j], high[j], primary[j]):
            break
        if primary[j] and sign > 0 and truth[j] - low[j] >= PROTECTION - _ROOM_EPS:
            continue  # room below already seen
        objective = np.zeros(len(truth))
        objective[j] = sign
        solved = lp.solve(objective)
        if solved is None:  # unbounded: only upwards, as every cell is >= 0
            high[j] = np.inf
            continue
        fun, x = solved
        np.minimum(low, x, out=low)
        np.maximum(high, x, out=high)
        # The optimum itself, not the point's rounding: the LP's own bound on this side.
        if sign > 0:
            low[j] = min(low[j], fun)
            if primary[j] and truth[j] - low[j] < PROTECTION - _ROOM_EPS:
                break  # short below, exactly: no need to look above
        else:
            high[j] = max(high[j], -fun)
    return float(low[j]), float(high[j])


class _ClusterLP:
    """min c.y subject to A y = b and 0 <= y <= upper, for one cluster, in one HiGHS instance
    (highspy): each solve changes the objective only, so the simplex starts from the last optimal
    basis instead of from scratch (tens of pivots where a cold start takes hundreds). Presolve is off
    so that the basis carries over and an unbounded problem says so."""

    def __init__(self, a: csr_array, b: np.ndarray, upper: np.ndarray | None = None) -> None:
        n = a.shape[1]
        a = csr_array(a)
        self.n = n
        with quiet_stdout():  # the banner, on a process's first instance
            self.highs = highspy.Highs()
        self.highs.setOptionValue("output_flag", False)
        self.highs.setOptionValue("presolve", "off")
        # Primal simplex: a new objective leaves the last optimal basis primal feasible, so it goes
        # on from there (the dual simplex, HiGHS's choice, started nearly from scratch each time).
        self.highs.setOptionValue("simplex_strategy", 4)
        inf = highspy.kHighsInf
        top = np.full(n, inf) if upper is None else np.where(np.isinf(upper), inf, upper)
        self.highs.addVars(n, np.zeros(n), top.astype(float))
        self.highs.addRows(
            a.shape[0],
            np.asarray(b, float),
            np.asarray(b, float),
            a.nnz,
            a.indptr[:-1].astype(np.int32),
            a.indices.astype(np.int32),
            a.data.astype(float),
        )
        self._cols = np.arange(n, dtype=np.int32)

    def solve(self, objective: np.ndarray) -> tuple[float, np.ndarray] | None:
        """(optimum, optimal point), or None when unbounded below."""
        self.highs.changeColsCost(self.n, self._cols, np.asarray(objective, float))
        self.highs.run()
        status = self.highs.getModelStatus()
        if status == highspy.HighsModelStatus.kUnbounded:
            return None
        if status != highspy.HighsModelStatus.kOptimal:
            raise RuntimeError(f"disclosure audit: the intruder's LP failed ({self.highs.modelStatusToString(status)})")
        return float(self.highs.getInfo().objective_function_value), np.asarray(self.highs.getSolution().col_value)


_ROOM_EPS = 1e-6


def propagated_bounds(a: csr_array, b: np.ndarray, n: int, rounds: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """Bounds on every unknown of A y = b, y >= 0 (A of +-1) by constraint propagation: each row
    bounds each of its unknowns by the others' bounds, repeated. Every true interval lies inside
    them, so an unknown they pin or narrow is narrowed by the intruder's LP too."""
    a = a.tocoo()
    row, col, coef = a.row, a.col, a.data
    low, high = np.zeros(n), np.full(n, np.inf)
    for _ in range(rounds):
        # Each entry's term coef * y lies in [least, most]; the others' terms bound this one's.
        least = np.where(coef > 0, low[col], -high[col])
        most = np.where(coef > 0, high[col], -low[col])
        others_least, least_inf = _others(row, least, len(b))
        others_most, most_inf = _others(row, most, len(b))
        term_low = np.where(most_inf, -np.inf, b[row] - others_most)
        term_high = np.where(least_inf, np.inf, b[row] - others_least)
        new_high = np.where(coef > 0, term_high, -term_low)
        new_low = np.where(coef > 0, term_low, -term_high)
        high_next = np.minimum(high, _reduce(col, new_high, n, np.minimum, np.inf))
        low_next = np.maximum(low, _reduce(col, new_low, n, np.maximum, 0.0))
        if np.array_equal(high_next, high) and np.array_equal(low_next, low):
            break
        low, high = low_next, high_next
    return low, high


def _others(row: np.ndarray, term: np.ndarray, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Per entry: the sum of the other entries' terms of its row, and whether one is infinite."""
    infinite = np.isinf(term)
    finite = np.where(infinite, 0.0, term)
    total = np.bincount(row, weights=finite, minlength=rows)[row] - finite
    count = np.bincount(row, weights=infinite, minlength=rows)[row] - infinite
    return total, count > 0


def _reduce(index: np.ndarray, values: np.ndarray, n: int, op, start: float) -> np.ndarray:
    out = np.full(n, start)
    op.at(out, index, values)
    return out


def pinned(a: csr_array, b: np.ndarray) -> list[int]:
    """Unknowns of A y = b, y >= 0 (A of +-1) that substitution pins: an equation with one unknown
    left, or one whose unknowns all carry the same sign and must sum to 0."""
    a = a.tocsr()
    # Most large clusters have nothing to pin: check the first pass without a Python loop.
    nnz = np.diff(a.indptr)
    signs = np.sign(a.data)
    same_sign = np.maximum.reduceat(signs, a.indptr[:-1]) == np.minimum.reduceat(signs, a.indptr[:-1])
    if not ((nnz == 1).any() or ((nnz > 0) & (np.abs(b) < 1e-9) & same_sign).any()):
        return []
    known: dict[int, float] = {}
    changed = True
    while changed:
        changed = False
        for i in range(a.shape[0]):
            cols = a.indices[a.indptr[i] : a.indptr[i + 1]]
            coefs = a.data[a.indptr[i] : a.indptr[i + 1]]
            rest = b[i] - sum(c * known[j] for j, c in zip(cols, coefs, strict=True) if j in known)
            free = [(j, c) for j, c in zip(cols, coefs, strict=True) if j not in known]
            if len(free) == 1:
                known[free[0][0]] = rest / free[0][1]
                changed = True
            elif free and abs(rest) < 1e-9 and len({c for _, c in free}) == 1:
                known.update({j: 0.0 for j, _ in free})
                changed = True
    return sorted(known)


def _quick_check(
    truth: np.ndarray, primary: np.ndarray, targets: np.ndarray, a, b
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Targets not yet shown protected, after a few joint LPs: each pushes every unsure target in
    the direction it has moved least (the truth is one feasible point; every solution is another).
    Also the least and greatest value of each cell over those points."""
    low, high = truth.copy(), truth.copy()
    lp = _ClusterLP(a, b, truth + _QUICK_SLACK) if targets.any() and len(truth) >= _QUICK_MIN_CELLS else None
    unsure = targets.copy()
    left = int(unsure.sum()) + 1
    for k in range(_QUICK_ROUNDS):
        unsure = targets & short_of_protection(truth, low, high, primary)
        # Stop when nothing is left, or a round certified nothing (after the first two directions).
        if not unsure.any() or len(truth) < _QUICK_MIN_CELLS or (k > 2 and unsure.sum() >= left):
            break
        left = int(unsure.sum())
        # Alternate which half of the unsure cells is pushed, so that cells sharing an equation do
        # not cancel each other out round after round.
        half = (np.cumsum(unsure) + k) % 2 == 0 if k > 1 else unsure
        objective = np.where(unsure & half, np.where(high - truth <= truth - low, -1.0, 1.0), 0.0)
        _, x = lp.solve(objective)  # bounded: never unbounded, the truth is feasible
        low, high = np.minimum(low, x), np.maximum(high, x)
    return targets & short_of_protection(truth, low, high, primary), low, high


_TOL = 1e-7


def protection_cuts(
    graph: CellGraph, hidden: np.ndarray, weak: list[int]
) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """For each weak cell, rows `sum(coef * x) >= rhs` over cells (x = 1: suppressed or virtual)
    that every protecting pattern satisfies and the current one does not (Benders cuts from the
    intruder's LP, as in Fischetti and Salazar-Gonzalez's model of cell suppression).

    For any multipliers w of the equations, y_j - v_j <= sum over cells i of g_i z_i with
    g_i = [i = j] - w.a_i and z_i = y_i - v_i, which a published cell pins to 0, a suppressed one
    lets range over [-v_i, inf). So the room above v_j is at most sum over suppressed i of
    (inf where g_i > 0, |g_i| v_i where g_i < 0); with w the LP's optimal duals, the current pattern
    meets it with equality. The room below is the same with -y_j. A primary cell needs PROTECTION of
    room each way; another suppressed cell needs room 1 up and down together (only while it is
    suppressed: x_j on the right)."""
    weak_set = np.zeros(len(graph.values), bool)
    weak_set[weak] = True
    out = []
    for members, eq_ids, a, b in clusters(graph, hidden):
        targets = members[weak_set[members]]
        if not len(targets):
            continue
        # Every cell touching the cluster's equations, hidden or published, as columns.
        inc = np.flatnonzero(np.isin(graph.inc_eq, eq_ids))
        touching, col = np.unique(graph.inc_cell[inc], return_inverse=True)
        full = csr_array(
            (graph.inc_coef[inc].astype(float), (np.searchsorted(eq_ids, graph.inc_eq[inc]), col)),
            shape=(len(eq_ids), len(touching)),
        )
        values = graph.values[touching].astype(float)
        for cell in targets:
            j = int(np.searchsorted(members, cell))
            rooms = []
            for sign in (-1.0, 1.0):  # -1: maximise y_j (room above), +1: minimise (room below)
                objective = np.zeros(len(members))
                objective[j] = sign
                result = linprog(objective, A_eq=a, b_eq=b, bounds=(0, None), method="highs")
                if result.status == 3:
                    rooms.append(None)  # unbounded above: all the room needed
                    continue
                if result.status != 0:
                    raise RuntimeError(f"disclosure audit: the intruder's LP failed ({result.message})")
                reduced = -(full.T @ result.eqlin.marginals)
                reduced[np.searchsorted(touching, cell)] += sign
                # Room above: max y_j - v_j = -fun - v_j; room below: v_j - min y_j = v_j - fun.
                value = float(graph.values[cell])
                rooms.append((reduced, -result.fun - value if sign < 0 else value - result.fun))
            if graph.primary[cell]:
                for got in rooms:
                    if got is None:
                        continue
                    reduced, room = got
                    if room >= PROTECTION - 1e-6:
                        continue
                    coef = _terms(reduced, values, PROTECTION)
                    out.append((touching, coef, PROTECTION))
            else:
                if any(got is None for got in rooms):
                    continue
                coef = np.minimum(sum(_terms(r, values, SECONDARY_WIDTH) for r, _ in rooms), SECONDARY_WIDTH)
                coef[np.searchsorted(touching, cell)] -= SECONDARY_WIDTH
                out.append((touching, coef, 0.0))
    return [cut for cut in out if (cut[1] != 0).any()]


def _terms(reduced: np.ndarray, values: np.ndarray, need: float) -> np.ndarray:
    """Each cell's bound on the room it gives when suppressed: unbounded (capped at `need`) where its
    reduced cost is negative, its value times the reduced cost where positive."""
    return np.where(reduced < -_TOL, need, np.where(reduced > _TOL, np.minimum(reduced * values, need), 0.0))


@contextmanager
def quiet_stdout() -> Iterator[None]:
    """HiGHS writes to the process's standard output, not through Python (highspy its banner on a
    process's first instance, the MIP solver stray debugging lines): silence file descriptor 1."""
    sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:  # no standard output to silence
        yield
        return
    with open(os.devnull, "wb") as null:
        os.dup2(null.fileno(), 1)
        try:
            yield
        finally:
            os.dup2(saved, 1)
            os.close(saved)
