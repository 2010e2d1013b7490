"""The cells of every published table and the equations linking them, across tables.

Each count lives in a cube: its fixed columns (the period, the year basis) and the columns it adds
up over (area, substance group, ...). A published row is the cube's cell at the grain of the summed
columns it names (England names no area). Two rows naming the same cell (a financial year and the
rolling year ending on its last day; a table's England-by-period row and another's) are one cell.
For every grain G and each nearest finer grain H, each cell of G is the sum of the cells of H that
share its values. Where two published grains of a cube are not nested (proven_reoffending by exit
type, convictions_before_after by retention), the grain they share is added as virtual cells:
sums published nowhere, unknown to the intruder, through which the two tables add up.

Cells are keyed by integers (each column's values numbered, 0 meaning "all"), so that a million
cells link in a second or two.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from outcomes.disclosure.cells import CellGraph
from outcomes.disclosure.tables import ENGLAND, TABLES


@dataclass
class LinkedCells:
    graph: CellGraph
    cell_of: dict[tuple[str, str], np.ndarray]  # (table, count) -> cell id of each row (-1: null count)


@dataclass
class _Cube:
    columns: list[str]  # fixed columns first, then the summed ones
    n_fixed: int
    radix: np.ndarray  # place value of each column in a key
    codes: list[np.ndarray]  # per published piece: (rows, columns) codes, 0 = all
    ids: list[np.ndarray]  # per piece: cell id of each row


def _cube_columns() -> dict[str, tuple[list[str], int]]:
    """Each cube's columns: the fixed ones, then every column any of its tables sums over."""
    fixed: dict[str, list[str]] = {}
    summed: dict[str, list[str]] = {}
    for table in TABLES:
        for count in table.counts:
            family, cube = table.family, table.family.cube(count)
            fixed.setdefault(cube, list(family.fixed_columns(count)))
            summed.setdefault(cube, [])
            summed[cube] += [c for c in family.summed_columns(count) if c not in summed[cube]]
    return {cube: ([*fixed[cube], *summed[cube]], len(fixed[cube])) for cube in fixed}


def _dictionaries(frames: dict[str, pd.DataFrame], columns: set[str]) -> dict[str, pd.Index]:
    out = {}
    for column in sorted(columns):
        seen = [frames[t.name][column] for t in TABLES if column in t.dims]
        out[column] = pd.Index(pd.concat(seen, ignore_index=True).unique())
    return out


def link(frames: dict[str, pd.DataFrame]) -> LinkedCells:
    layout = _cube_columns()
    words = _dictionaries(frames, {c for columns, _ in layout.values() for c in columns})
    size = {c: len(words[c]) + 1 for c in words}
    cubes: dict[str, _Cube] = {}
    for name, (columns, n_fixed) in sorted(layout.items()):
        radix = np.cumprod([1] + [size[c] for c in columns[:-1]]).astype(np.int64)
        cubes[name] = _Cube(columns, n_fixed, radix, [], [])
    keys: list[np.ndarray] = []  # cube index * stride + key of every published (row, count)
    values: list[np.ndarray] = []
    owners: list[tuple[str, str, np.ndarray, int]] = []  # (table, count, rows, cube index)
    cube_index = {name: i for i, name in enumerate(cubes)}
    stride = max(int(c.radix[-1]) * size[c.columns[-1]] for c in cubes.values())
    for table in TABLES:
        frame = frames[table.name]
        coded = {c: words[c].get_indexer(frame[c]) + 1 for c in table.dims if c in words}
        for count in table.counts:
            cube_name = table.family.cube(count)
            cube = cubes[cube_name]
            present = frame[count].notna().to_numpy()
            rows = np.flatnonzero(present)
            codes = np.zeros((len(rows), len(cube.columns)), np.int64)
            for j, c in enumerate(cube.columns):
                if c in coded:
                    codes[:, j] = coded[c][rows]
            if "la_code" in cube.columns and "la_code" in table.dims:
                england = frame["la_code"].to_numpy()[rows] == ENGLAND
                codes[england, cube.columns.index("la_code")] = 0  # England: the sum over every area
            cube.codes.append(codes)
            keys.append(cube_index[cube_name] * stride + codes @ cube.radix)
            values.append(frame[count].to_numpy()[rows].astype(np.int64))
            owners.append((table.name, count, rows, cube_index[cube_name]))
    all_keys = np.concatenate(keys)
    _, first, inverse = np.unique(all_keys, return_index=True, return_inverse=True)
    all_values = np.concatenate(values)
    cell_values = all_values[first]
    clash = np.flatnonzero(all_values != cell_values[inverse])
    if len(clash):
        table, count = _owner(owners, keys, int(clash[0]))
        raise ValueError(f"{table}.{count}: one cell is published with two different values")
    cell_of = {(t.name, c): np.full(len(frames[t.name]), -1, np.int64) for t in TABLES for c in t.counts}
    start = 0
    for (table, count, rows, _), k in zip(owners, keys, strict=True):
        cell_of[(table, count)][rows] = inverse[start : start + len(k)]
        start += len(k)
    # Each cube's distinct cells: codes and ids, by grain (the set of columns not "all").
    value_list = [cell_values]
    virtual_list = [np.zeros(len(cell_values), bool)]
    n_cells = len(cell_values)
    eq_parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    n_eq = 0
    for i, cube in enumerate(cubes.values()):
        if not cube.codes:
            continue
        codes = np.concatenate(cube.codes)
        ids = np.concatenate([inverse[_span(keys, j)] for j, o in enumerate(owners) if o[3] == i])
        ids, pick = np.unique(ids, return_index=True)
        codes = codes[pick]
        grains = _by_grain(codes, ids, cube.n_fixed)
        extra_values = _add_virtual_grains(grains, cube, n_cells, np.concatenate(value_list))
        if len(extra_values):
            value_list.append(extra_values)
            virtual_list.append(np.ones(len(extra_values), bool))
            n_cells += len(extra_values)
        for coarse, fine in _nearest_pairs(grains):
            c_codes, c_ids = grains[coarse]
            f_codes, f_ids = grains[fine]
            drop = [j for j in range(cube.n_fixed, len(cube.columns)) if j not in coarse]
            projected = f_codes.copy()
            projected[:, drop] = 0
            c_keys = c_codes @ cube.radix
            order = np.argsort(c_keys)
            p_keys = projected @ cube.radix
            pos = np.searchsorted(c_keys[order], p_keys)
            found = (pos < len(order)) & (c_keys[order][np.minimum(pos, len(order) - 1)] == p_keys)
            if not found.any():
                continue
            totals = c_ids[order][pos[found]]
            members = f_ids[found]
            eq_ids, eq_of = np.unique(totals, return_inverse=True)
            eq_parts.append((n_eq + np.arange(len(eq_ids)), eq_ids, np.ones(len(eq_ids), np.int64)))
            eq_parts.append((n_eq + eq_of, members, -np.ones(len(members), np.int64)))
            n_eq += len(eq_ids)
    inc_eq, inc_cell, inc_coef = (
        np.concatenate([p[i] for p in eq_parts]) if eq_parts else np.zeros(0, np.int64) for i in range(3)
    )
    graph = CellGraph.from_arrays(np.concatenate(value_list), np.concatenate(virtual_list), inc_eq, inc_cell, inc_coef)
    return LinkedCells(graph, cell_of)


def _span(keys: list[np.ndarray], j: int) -> slice:
    start = sum(len(k) for k in keys[:j])
    return slice(start, start + len(keys[j]))


def _owner(owners: list, keys: list[np.ndarray], position: int) -> tuple[str, str]:
    for (table, count, _, _), k in zip(owners, keys, strict=True):
        if position < len(k):
            return table, count
        position -= len(k)
    return "?", "?"


def _by_grain(codes: np.ndarray, ids: np.ndarray, n_fixed: int) -> dict[tuple[int, ...], tuple[np.ndarray, np.ndarray]]:
    """Cells grouped by their grain: the summed columns (indices) they name."""
    named = codes[:, n_fixed:] > 0
    # Each row's pattern as one integer, its first column the most significant bit: integers order
    # as the rows do (np.unique(named, axis=0) sorts the rows, several times slower).
    bits = named.astype(np.int64) @ (1 << np.arange(named.shape[1] - 1, -1, -1, dtype=np.int64))
    _, first, which = np.unique(bits, return_index=True, return_inverse=True)
    patterns = named[first]
    out = {}
    for p, pattern in enumerate(patterns):
        grain = tuple(int(n_fixed + j) for j in np.flatnonzero(pattern))
        mine = which == p
        out[grain] = (codes[mine], ids[mine])
    return out


def _add_virtual_grains(grains, cube: _Cube, first_id: int, values: np.ndarray) -> np.ndarray:
    """Add the meet of every two published grains that are not nested, summed from a finer one;
    return the new cells' values."""
    new_values: list[np.ndarray] = []
    next_id = first_id
    while True:
        known = sorted(grains, key=lambda g: (len(g), g))
        missing = sorted(
            {
                tuple(sorted(set(a) & set(b)))
                for a in known
                for b in known
                if not set(a) <= set(b) and not set(b) <= set(a)
            }
            - set(grains),
            key=lambda g: (len(g), g),
        )
        if not missing:
            return np.concatenate(new_values) if new_values else np.zeros(0, np.int64)
        for meet in missing:
            source = min((g for g in grains if set(meet) < set(g)), key=lambda g: (len(g), g))
            s_codes, s_ids = grains[source]
            projected = s_codes.copy()
            projected[:, [j for j in range(cube.n_fixed, len(cube.columns)) if j not in meet]] = 0
            cells, inverse = np.unique(projected, axis=0, return_inverse=True)
            everything = np.concatenate([values, *new_values])
            sums = np.bincount(inverse.ravel(), weights=everything[s_ids].astype(float))
            ids = next_id + np.arange(len(cells))
            next_id += len(cells)
            new_values.append(np.rint(sums).astype(np.int64))
            grains[meet] = (cells, ids)


def _nearest_pairs(grains) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    ordered = sorted(grains, key=lambda g: (len(g), g))
    out = []
    for coarse in ordered:
        finer = [g for g in ordered if set(coarse) < set(g)]
        out += [(coarse, g) for g in finer if not any(set(coarse) < set(h) < set(g) for h in finer)]
    return out
