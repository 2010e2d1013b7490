"""Secondary suppression that loses the fewest people: an integer program solved with HiGHS
(scipy.optimize.milp), audited by the intruder's LP attack and augmented until every hidden cell
keeps its protection (cells.short_of_protection; docs/disclosure.md).

Per component of linked cells the program chooses x_c in {0, 1} (1: suppress, or for a virtual
cell: left unknown) for every cell that is not primary (a count 1-4, always suppressed),
minimising the cost of the suppressed cells (by default their people plus a hundredth, so that
fewer cells win a tie; the disclosure step weighs them by the priority of their tables,
control.costs; virtual cells cost nothing), subject to, for every equation (a total and its
members):

- no lone suppression: an equation with one suppressed cell would give it away by subtraction;
- capacity: with the total published, a primary member's upper bound is its value plus the other
  suppressed members' values: those of the largest must reach PROTECTION, and all of them CAPACITY;
- Benders cuts from the audit (audit.protection_cuts): where the LP attack still leaves a cell
  short, a row from the LP's duals that every protecting pattern satisfies and the current one
  does not (where the duals give none: one more published cell sharing an equation with it).

After MAX_ROUNDS the published neighbours of the cells still short are suppressed, up to
ESCALATIONS times, and at last the whole component (SolveStats.fallbacks counts these).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_array

from outcomes.disclosure.audit import clusters, protection_cuts, quiet_stdout, weak_cells
from outcomes.disclosure.cells import PROTECTION, CellGraph

# The suppressed members of an equation with a count 1-4 and a published total hold at least this
# many people together (the width of 1-4): more than the protection needs, but with less, large
# clusters audited by propagation alone left counts the LP pins (tests/test_marts.py, 4,000 people).
CAPACITY = 3.0
TIE_BREAK = 0.01  # cost of suppressing a cell beyond its people: fewer cells among equal losses
MAX_ROUNDS = 12
ESCALATIONS = 3
# Clusters of suppressed cells up to this size get the full LP audit in the build (audit.weak_cells).
LP_AUDIT_LIMIT = 150


@dataclass
class SolveStats:
    components: int = 0
    programs: int = 0
    audit_rounds: int = 0
    fallbacks: int = 0
    resolved: int = 0  # components solved again under the limits
    over_limit: int = 0  # times a component's limits were raised to let the protection be met
    unlimited: int = 0  # components solved without limits (the cuts not met in time with them)
    rebudgeted: int = 0  # components solved a third time with what their groups had left


# What _solve_component counts in SolveStats (the rest is counted around it): a memo keeps them.
INNER_STATS = ("programs", "audit_rounds", "fallbacks", "over_limit", "unlimited")


def solver_version() -> str:
    """sha256 of the code a component's solution depends on (this module, the audit, the cells'
    rules) and of the numeric libraries that solve it: a memo of another version is not used."""
    from importlib.metadata import version

    here = Path(__file__).parent
    digest = hashlib.sha256()
    for name in ("solver.py", "audit.py", "cells.py"):
        digest.update(name.encode())
        digest.update((here / name).read_bytes())
    for package in ("numpy", "scipy", "highspy"):
        digest.update(f"{package} {version(package)}".encode())
    return digest.hexdigest()


@dataclass
class Memo:
    """Solutions of components solved before (`outcomes publish`'s last run), keyed by a sha256 of
    everything _solve_component reads: the component's cells, equations, costs, limits, the extra
    people its limits allow, the mode, and the solver's version. A component whose key is known
    is not solved again: it gets the stored cells and the stored count of programs and audits, so
    the result, the flags and the stats, is what solving it again gives (solving is deterministic:
    a fixed solver, no time limits). `used` holds every key this run needed, to be kept for the next."""

    known: dict[str, tuple[np.ndarray, tuple[int, ...]]] = field(default_factory=dict)
    used: dict[str, tuple[np.ndarray, tuple[int, ...]]] = field(default_factory=dict)
    version: str = field(default_factory=solver_version)
    hits: int = 0
    misses: int = 0

    def key(self, graph: CellGraph, cost: np.ndarray, limits: Limits | None, extra, exact: bool) -> str:
        digest = hashlib.sha256(f"{self.version}\nexact={exact}\n".encode())
        parts = [graph.values, graph.virtual, graph.inc_eq, graph.inc_cell, graph.inc_coef, np.asarray(cost, float)]
        if limits is not None:
            parts += [limits.cell, limits.group, limits.people, limits.reference]
        for part in parts:
            part = np.ascontiguousarray(part)
            digest.update(f"{part.dtype.str}:{part.shape}".encode())
            digest.update(part.tobytes())
        digest.update(f"limits={limits is not None} extra={sorted((extra or {}).items())}".encode())
        return digest.hexdigest()

    def solve(self, graph: CellGraph, stats: SolveStats, cost, limits, extra, exact) -> np.ndarray:
        key = self.key(graph, cost, limits, extra, exact)
        entry = self.known.get(key)
        # A stored pattern is taken only if it could be this component's (a damaged memo table
        # must cost a solve, never publish a primary cell): one flag a cell, every primary hidden.
        if not _fits(entry, graph):
            self.misses += 1
            inner = SolveStats()
            hidden = _solve_component(graph, inner, cost, limits, extra, exact)
            entry = (hidden.copy(), tuple(getattr(inner, name) for name in INNER_STATS))
        else:
            self.hits += 1
        self.used[key] = entry
        for name, n in zip(INNER_STATS, entry[1], strict=True):
            setattr(stats, name, getattr(stats, name) + n)
        return entry[0].copy()


def _fits(entry: tuple[np.ndarray, tuple[int, ...]] | None, graph: CellGraph) -> bool:
    if entry is None:
        return False
    hidden = entry[0]
    return hidden.dtype == bool and hidden.shape == graph.values.shape and bool(hidden[graph.primary].all())


@dataclass(frozen=True)
class Limits:
    """Upper bounds on what groups of published counts (a table each) lose to secondary suppression,
    component by component: no more people than a reference pattern (the former rule) hides there.
    One entry per published count: its cell, its group, its people, and whether the reference hides it.
    A cell published in several rows of a group counts once per row, as the shares count it."""

    cell: np.ndarray
    group: np.ndarray
    people: np.ndarray
    reference: np.ndarray

    def of(self, cells: np.ndarray, order: np.ndarray, bounds: np.ndarray, comp: int) -> Limits:
        """The entries of component `comp` (sorted by component: `order`, `bounds`), their cells
        renumbered into `cells` (the component's sorted cells)."""
        pick = order[bounds[comp] : bounds[comp + 1]]
        cell = np.searchsorted(cells, self.cell[pick])
        return Limits(cell, self.group[pick], self.people[pick], self.reference[pick])


def choose_suppression(
    graph: CellGraph,
    stats: SolveStats | None = None,
    cost: np.ndarray | None = None,
    limits: Limits | None = None,
    memo: Memo | None = None,
) -> np.ndarray:
    """The cells to suppress (bool per cell; virtual cells are never marked): every primary cell
    and the secondary cells of least loss that keep every hidden cell protected.

    With `limits`, no group (table) loses more people to secondary suppression in all than its
    reference pattern does, where the protection allows: every component is solved first without
    them; then each component where a group over its reference total loses more than the reference
    there is solved again held to the reference's loss there (whatever the order: before, the
    limit was the reference total less the group's loss in every other component, so the first
    components solved again paid for the excess of those not yet solved, were raised 72 times on
    20,000 people and gave up new-grain cells the later ones did not need); at last what each group
    has left under its reference total goes back to those components, the one where the limit cost
    most first (so a group may go over its reference in one component where it stays under it in
    others). Where no protecting pattern meets a limit, it is raised by the fewest people that do
    (SolveStats.over_limit counts those times).

    With `memo`, a component solved before with the same inputs takes its stored solution (Memo)."""
    stats = stats if stats is not None else SolveStats()
    weights = loss(graph) if cost is None else np.asarray(cost, float)
    hidden = graph.primary.copy()
    n_comp, label = graph.components()
    has_primary = np.bincount(label, weights=hidden, minlength=n_comp) > 0
    has_equation = np.bincount(label[graph.inc_cell], minlength=n_comp) > 0
    cell_order = np.argsort(label, kind="stable")
    cell_bounds = np.searchsorted(label[cell_order], np.arange(n_comp + 1))
    inc_label = label[graph.inc_cell]
    inc_order = np.argsort(inc_label, kind="stable")
    inc_bounds = np.searchsorted(inc_label[inc_order], np.arange(n_comp + 1))

    def solve(
        comp: int, local_limits: Limits | None = None, extra: dict[int, float] | None = None, exact: bool = False
    ) -> None:
        cells = cell_order[cell_bounds[comp] : cell_bounds[comp + 1]]
        inc = inc_order[inc_bounds[comp] : inc_bounds[comp + 1]]
        local = _subgraph(graph, cells, inc)
        solver = memo.solve if memo is not None else _solve_component
        hidden[cells] = solver(local, stats, weights[cells], local_limits, extra, exact)

    for comp in np.flatnonzero(has_primary & has_equation):
        stats.components += 1
        solve(int(comp))
    if limits is None:
        return hidden & ~graph.virtual
    # Per entry (a published count): what its group may lose (the reference hides it) and loses.
    counted = ~graph.primary[limits.cell] & (limits.people > 0)
    people = np.where(counted, limits.people, 0).astype(float)
    allowed = people * limits.reference
    n_groups = int(limits.group.max()) + 1 if len(limits.group) else 0
    total_allowed = np.bincount(limits.group, weights=allowed, minlength=n_groups)
    total_lost = np.bincount(limits.group, weights=people * hidden[limits.cell], minlength=n_groups)
    over = total_lost > total_allowed
    if not over.any():
        return hidden & ~graph.virtual
    lim_label = label[limits.cell]
    lim_order = np.argsort(lim_label, kind="stable")
    lim_bounds = np.searchsorted(lim_label[lim_order], np.arange(n_comp + 1))
    key = lim_label * n_groups + limits.group
    excess = np.bincount(key, weights=people * hidden[limits.cell] - allowed, minlength=n_comp * n_groups)
    comps = np.unique(lim_label[over[limits.group] & (excess[key] > 0)])
    visible = ~graph.virtual

    def cost_of(comp: int) -> float:
        cells = cell_order[cell_bounds[comp] : cell_bounds[comp + 1]]
        return float(weights[cells][hidden[cells] & visible[cells]].sum())

    def resolve(comp: int, budget: dict[int, float] | None) -> None:
        """Solve `comp` again with, per group, `budget` people over the reference's loss there
        (None: the reference's loss there, for every group), and bring the totals up to date."""
        cells = cell_order[cell_bounds[comp] : cell_bounds[comp + 1]]
        pick = lim_order[lim_bounds[comp] : lim_bounds[comp + 1]]
        lost_here = np.bincount(limits.group[pick], weights=(people * hidden[limits.cell])[pick], minlength=n_groups)
        extra = budget if budget is not None else {int(g): 0.0 for g in np.unique(limits.group[pick])}
        solve(comp, limits.of(cells, lim_order, lim_bounds, comp), extra, exact=True)
        lost_now = np.bincount(limits.group[pick], weights=(people * hidden[limits.cell])[pick], minlength=n_groups)
        total_lost[:] += lost_now - lost_here

    # First, each component over its reference is held to the reference's loss there: whatever the
    # order, so that no component gives up its cells for the excess of components not yet solved
    # again (the former pattern protects once the new grains' cells linked to it are hidden, so this
    # is met but where the protection needs more; then the limit is raised, SolveStats.over_limit).
    first_cost = {int(c): cost_of(int(c)) for c in comps}
    for comp in comps:
        stats.resolved += 1
        resolve(int(comp), None)
    # Then what the groups still have left under their reference totals (components below the
    # reference, and those that met it with less) goes back to the components where the limit cost
    # most, dearest first: each is solved again with its group's loss there plus what is left.
    rise = sorted(((cost_of(int(c)) - first_cost[int(c)], int(c)) for c in comps), reverse=True)
    for increase, comp in rise:
        pick = lim_order[lim_bounds[comp] : lim_bounds[comp + 1]]
        groups = np.unique(limits.group[pick])
        left = total_allowed[groups] - total_lost[groups]
        if increase <= 0 or not (left >= 1).any():
            continue
        lost_here = np.bincount(limits.group[pick], weights=(people * hidden[limits.cell])[pick], minlength=n_groups)
        allowed_here = np.bincount(limits.group[pick], weights=allowed[pick], minlength=n_groups)
        budget = {
            int(g): float(lost_here[g] - allowed_here[g] + max(0.0, total_allowed[g] - total_lost[g])) for g in groups
        }
        stats.rebudgeted += 1
        resolve(comp, budget)
    return hidden & ~graph.virtual


def loss(graph: CellGraph) -> np.ndarray:
    """The default cost of suppressing each cell: its people, plus TIE_BREAK."""
    return graph.values.astype(float) + TIE_BREAK


def _subgraph(graph: CellGraph, cells: np.ndarray, inc: np.ndarray) -> CellGraph:
    """The component's cells renumbered 0.. in `cells` order (sorted), with its equations."""
    _, eq = np.unique(graph.inc_eq[inc], return_inverse=True)
    return CellGraph(
        graph.values[cells],
        graph.virtual[cells],
        eq.astype(np.int64),
        np.searchsorted(cells, graph.inc_cell[inc]),
        graph.inc_coef[inc],
    )


def _solve_component(
    graph: CellGraph,
    stats: SolveStats,
    cost: np.ndarray,
    limits: Limits | None,
    extra: dict[int, float] | None,
    exact: bool = False,
) -> np.ndarray:
    """The component's suppressed cells. `exact`: the capacity margin is dropped (PROTECTION only)
    and every cluster gets the exact LP audit, whatever its size (the margin is there for the
    clusters audited by propagation only)."""
    capacity = PROTECTION if exact else CAPACITY
    lp_limit = None if exact else LP_AUDIT_LIMIT
    # Virtual cells are candidates too, at no cost: one is unknown to the intruder only where its
    # own equations leave it so, which the same rows demand of it as of any suppressed cell.
    candidates = np.flatnonzero(~graph.primary)
    cuts: list[tuple[np.ndarray, np.ndarray, float]] = []
    hidden = graph.primary.copy()
    extra = dict(extra or {})  # people each group's limit is over its reference's loss here
    rounds = 0
    while rounds < MAX_ROUNDS:
        rounds += 1
        chosen = _program(graph, candidates, cuts, cost, limits, extra, capacity=capacity)
        if chosen is None:
            # The limits and the protection (its rows, the cuts so far) cannot be met together: the
            # protection wins, and each limit is raised by the least people that lets it (a first
            # program that minimises the people over the limits), then the program solved again.
            over = _program(graph, candidates, cuts, cost, limits, extra, overshoot=True, capacity=capacity)
            stats.over_limit += 1
            if not over:  # nothing to raise, yet no pattern: solve without the limits
                stats.unlimited += 1
                limits = None
            for group, people in over.items():
                extra[group] = extra.get(group, 0.0) + people
            rounds -= 1
            continue
        hidden = graph.primary.copy()
        hidden[chosen] = True
        hidden &= ~graph.virtual  # the audit knows virtual cells as unknown anyway
        stats.programs += 1
        weak = weak_cells(graph, hidden, lp_limit)
        stats.audit_rounds += 1
        if not weak:
            return hidden
        # The intruder's LP duals say which cells would give each weak cell room (valid for every
        # pattern); where they give none, one more published neighbour of the weak cell must go.
        new_cuts = protection_cuts(graph, hidden, weak) or [
            (around, np.ones(len(around)), 1.0) for around in _cuts(graph, hidden, weak)
        ]
        if not new_cuts:
            break
        cuts += new_cuts
        if rounds == MAX_ROUNDS and limits is not None:
            stats.unlimited += 1  # the limits may be what keeps the cuts from being met: drop them
            limits, rounds = None, 0
    # The program could not be steered to a safe pattern in time: suppress every published cell
    # sharing an equation with a weak cell, a few times over, and at last the whole component.
    stats.fallbacks += 1
    for _ in range(ESCALATIONS):
        around = np.isin(graph.inc_eq, np.unique(graph.inc_eq[np.isin(graph.inc_cell, weak)]))
        hidden[graph.inc_cell[around]] = True
        hidden &= ~graph.virtual
        weak = weak_cells(graph, hidden, lp_limit)
        if not weak:
            return hidden
    hidden[:] = True
    return hidden


def _cuts(graph: CellGraph, hidden: np.ndarray, weak: list[int]) -> list[np.ndarray]:
    """For each weak cell: one more of the published cells sharing an equation with it must be
    suppressed (else, where it has none, one sharing an equation with its suppressed cluster)."""
    published = ~hidden & ~graph.virtual
    out = []
    leftover = []
    for cell in weak:
        eqs = np.unique(graph.inc_eq[graph.inc_cell == cell])
        around = np.unique(graph.inc_cell[np.isin(graph.inc_eq, eqs)])
        # Through a virtual total the cell is bounded by the other table's cells: those count too.
        via = around[graph.virtual[around]]
        if len(via):
            eqs = np.unique(graph.inc_eq[np.isin(graph.inc_cell, via)])
            around = np.union1d(around, graph.inc_cell[np.isin(graph.inc_eq, eqs)])
        around = around[published[around]]
        if len(around):
            out.append(around)
        else:
            leftover.append(cell)
    if leftover:
        weak_set = set(leftover)
        for cells, eqs, _, _ in clusters(graph, hidden):
            if not weak_set.intersection(cells.tolist()):
                continue
            around = np.unique(graph.inc_cell[np.isin(graph.inc_eq, eqs)])
            around = around[published[around]]
            if len(around):
                out.append(around)
    return out


def _program(
    graph: CellGraph,
    candidates: np.ndarray,
    cuts: list[tuple[np.ndarray, np.ndarray, float]],
    weights: np.ndarray,
    limits: Limits | None = None,
    extra: dict[int, float] | None = None,
    overshoot: bool = False,
    capacity: float = CAPACITY,
):
    """Solve the integer program; return the candidates chosen (None: no pattern meets the limits,
    raised by `extra` people per group). With `overshoot`, instead: the least people by which each
    group must exceed its limit for a protecting pattern to exist ({group: people})."""
    n = len(candidates)
    if not n:
        return candidates
    values, primary, virtual = graph.values, graph.primary, graph.virtual
    n_eq = graph.n_equations
    var = np.full(len(values), -1)
    var[candidates] = np.arange(n)
    inc_eq, inc_cell, inc_coef = graph.inc_eq, graph.inc_cell, graph.inc_coef
    free = var[inc_cell] >= 0
    n_free = np.bincount(inc_eq, weights=free, minlength=n_eq)
    n_fixed = np.bincount(inc_eq, weights=primary[inc_cell], minlength=n_eq)
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (row, col, value) blocks
    lower: list[np.ndarray] = []
    upper: list[np.ndarray] = []
    rows = 0

    def block(row: np.ndarray, col: np.ndarray, val: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> None:
        nonlocal rows
        parts.append((row + rows, col, val))
        lower.append(lo)
        upper.append(hi)
        rows += len(lo)

    # No lone suppression where nothing is fixed: indicator y_e >= x_c, sum x >= 2 y_e.
    open_eq = np.flatnonzero((n_fixed == 0) & (n_free > 1))
    y_of = np.full(n_eq, -1)
    y_of[open_eq] = n + np.arange(len(open_eq))
    inc = np.flatnonzero(free & (y_of[inc_eq] >= 0))
    k = len(inc)
    block(
        np.repeat(np.arange(k), 2),
        np.column_stack([var[inc_cell[inc]], y_of[inc_eq[inc]]]).ravel(),
        np.tile([1.0, -1.0], k),
        np.full(k, -np.inf),
        np.zeros(k),
    )
    eq_row = np.full(n_eq, -1)
    eq_row[open_eq] = np.arange(len(open_eq))
    block(
        np.concatenate([eq_row[inc_eq[inc]], np.arange(len(open_eq))]),
        np.concatenate([var[inc_cell[inc]], y_of[open_eq]]),
        np.concatenate([np.ones(k), np.full(len(open_eq), -2.0)]),
        np.zeros(len(open_eq)),
        np.full(len(open_eq), np.inf),
    )
    # One primary alone in an equation: one more cell of it.
    lone = np.flatnonzero((n_fixed == 1) & (n_free > 0))
    _cover(block, lone, inc_eq, inc_cell, free, var, np.ones(len(inc_eq)), np.ones(len(lone)))
    # Capacity: with the total published, the suppressed members' sum bounds a primary member.
    total_of = np.zeros(n_eq, np.int64)
    total_of[inc_eq[inc_coef > 0]] = inc_cell[inc_coef > 0]
    member = inc_coef < 0
    primary_member = member & primary[inc_cell]
    fixed_mass = np.bincount(inc_eq, weights=primary_member * values[inc_cell], minlength=n_eq)
    largest = np.zeros(n_eq)
    np.maximum.at(largest, inc_eq[primary_member], values[inc_cell[primary_member]].astype(float))
    has_primary_member = np.bincount(inc_eq, weights=primary_member, minlength=n_eq) > 0
    # With the total published, a primary member's upper bound is its value plus the other suppressed
    # members' values: the largest primary's others (the other primaries and the secondary members
    # chosen) must reach PROTECTION, and the suppressed members together CAPACITY (a margin that
    # lets bound propagation, the build's audit of large clusters, find what the LP would).
    need = np.maximum(PROTECTION - (fixed_mass - largest), capacity - fixed_mass)
    cap = np.flatnonzero(has_primary_member & ~primary[total_of] & (need > 0))
    weight = np.where(member, values[inc_cell].astype(float), need[inc_eq])
    usable = free & (weight > 0)
    # Never ask for more than the equation's members hold (a small virtual total): the audit decides.
    reachable = np.bincount(inc_eq, weights=usable * weight, minlength=n_eq)
    goal = np.minimum(need, reachable)
    cap = cap[goal[cap] > 0]
    _cover(block, cap, inc_eq, inc_cell, usable, var, weight, goal[cap])
    # Cuts: sum(coef * x) >= rhs, where primary and virtual cells are unknown to the intruder anyway.
    for cells, coefs, rhs in cuts:
        fixed = primary[cells] | virtual[cells]
        free_cut = ~fixed & (var[cells] >= 0) & (coefs != 0)
        goal = rhs - float(coefs[fixed].sum())
        reach = float(np.clip(coefs[free_cut], 0, None).sum())
        if not free_cut.any() or (goal <= 1e-9 and (coefs[free_cut] >= 0).all()) or reach < goal - 1e-9:
            continue  # met by every pattern, or by none (the audit's escalation takes over)
        block(
            np.zeros(int(free_cut.sum()), np.int64),
            var[cells[free_cut]],
            coefs[free_cut].astype(float),
            np.full(1, goal),
            np.full(1, np.inf),
        )
    if not any(len(lo) for lo in lower[2:]):
        return candidates[:0]  # nothing demands a secondary cell: suppressing none is optimal
    if limits is not None:
        # Per group: the people of its secondary cells at most the reference's there (primary
        # cells are hidden by both; a zero costs no people).
        entry = np.flatnonzero((var[limits.cell] >= 0) & (limits.people > 0))
        groups, group_row = np.unique(limits.group[entry], return_inverse=True)
        allowed = np.bincount(group_row, weights=limits.people[entry] * limits.reference[entry], minlength=len(groups))
        allowed = allowed + np.array([(extra or {}).get(int(g), 0.0) for g in groups])
        rows_before = rows
        block(
            group_row,
            var[limits.cell[entry]],
            limits.people[entry].astype(float),
            np.full(len(groups), -np.inf),
            allowed.astype(float),
        )
    size = n + len(open_eq)
    cost = np.where(virtual[candidates], 0.0, weights[candidates])
    cost = np.concatenate([cost, np.zeros(len(open_eq))])
    integrality, upper_bound = np.ones(size), np.ones(size)
    if overshoot:
        # One continuous slack per limit row: the people over the limit, the only cost.
        slack = size + np.arange(len(groups))
        parts.append((rows_before + np.arange(len(groups)), slack, np.full(len(groups), -1.0)))
        size += len(groups)
        cost = np.concatenate([np.zeros(len(cost)), np.ones(len(groups))])
        integrality = np.concatenate([integrality, np.zeros(len(groups))])
        upper_bound = np.concatenate([upper_bound, np.full(len(groups), np.inf)])
    matrix = coo_array(
        (
            np.concatenate([p[2] for p in parts]),
            (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])),
        ),
        shape=(rows, size),
    ).tocsr()
    constraints = [LinearConstraint(matrix, np.concatenate(lower), np.concatenate(upper))] if rows else []
    with quiet_stdout():
        result = milp(cost, integrality=integrality, bounds=Bounds(0, upper_bound), constraints=constraints)
    if result.x is None:
        if limits is not None and result.status == 2 and not overshoot:  # infeasible
            return None
        raise RuntimeError(f"disclosure: the suppression program has no solution ({result.message})")
    if overshoot:
        # Whole people, a hair over, so that the raised limit is met by the pattern that met it here.
        over = np.ceil(result.x[slack] - 1e-6)
        return {int(g): float(o) for g, o in zip(groups, over, strict=True) if o > 0}
    return candidates[np.flatnonzero(np.round(result.x[:n]) > 0)]


def _cover(block, eqs, inc_eq, inc_cell, usable, var, weight, need) -> None:
    """Rows sum(weight * x over the usable cells of equation e) >= need_e for each e in `eqs`."""
    if not len(eqs):
        return
    row_of = np.full(int(inc_eq.max()) + 1, -1)
    row_of[eqs] = np.arange(len(eqs))
    inc = np.flatnonzero(usable & (row_of[inc_eq] >= 0))
    block(row_of[inc_eq[inc]], var[inc_cell[inc]], weight[inc], np.asarray(need, float), np.full(len(eqs), np.inf))
