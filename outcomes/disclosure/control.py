"""The disclosure step of `outcomes publish`: read the marts, choose the suppressed cells of every
published table together, and write each table's cells with their suppression flags to the
restricted `disclosure` schema, from which the dbt models of `published` null what is flagged.

Deterministic: the same marts give the same flags, byte for byte (rows in key order, a fixed
solver, no time limits).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa

from outcomes.disclosure.former import former_macro
from outcomes.disclosure.frames import all_frames, read_marts
from outcomes.disclosure.linked import LinkedCells, link
from outcomes.disclosure.solver import INNER_STATS, TIE_BREAK, Limits, Memo, SolveStats, choose_suppression
from outcomes.disclosure.tables import ENGLAND, TABLES

SCHEMA = "disclosure"
# What a secondary cell costs: its people times the priority of the rows that publish it
# (docs/disclosure.md). The per-mart tables, published before the coarser grains existed, come
# first: a cell of theirs is suppressed only where no set of cells of the new grains protects as
# well at up to this many times the people; England's rows of the new grains (the headlines) next;
# the new grains' area rows (each area's total over a split whose cells the per-mart table
# publishes) last.
PER_MART_PRIORITY = 1000.0
ENGLAND_PRIORITY = 100.0
SUMMARY = "disclosure_summary"
# The components solved by the last publish (solver.Memo): restricted like the cells beside it.
MEMO = "solved_components"
_SQL_TYPES = {
    pa.int64(): "bigint",
    pa.int32(): "integer",
    pa.string(): "varchar",
    pa.large_string(): "varchar",
    pa.date32(): "date",
    pa.bool_(): "boolean",
    pa.float64(): "double precision",
}


@dataclass(frozen=True)
class TableShare:
    table: str
    cells: int  # published count cells (rows x counts)
    cells_suppressed: int
    people: int  # the sum of the counts: people, or offences and deaths where those are counted
    people_suppressed: int

    @property
    def cell_share(self) -> float:
        return self.cells_suppressed / self.cells if self.cells else 0.0

    @property
    def people_share(self) -> float:
        return self.people_suppressed / self.people if self.people else 0.0


@dataclass
class DisclosureResult:
    shares: list[TableShare] = field(default_factory=list)
    stats: SolveStats = field(default_factory=SolveStats)
    cells: int = 0
    seconds: float = 0.0
    reused: int = 0  # component solutions taken from the last publish (solver.Memo)
    solved: int = 0  # component solutions worked out in this one

    def lines(self) -> list[str]:
        out = [
            f"disclosure: {self.cells:,} linked cells, {self.stats.components:,} components with small counts, "
            f"{self.stats.programs:,} integer programs, {self.stats.fallbacks} fallbacks, "
            f"{self.stats.over_limit} over the former rule's limits, {self.seconds:.1f} s",
            f"  solutions: {self.solved:,} solved, {self.reused:,} reused from the last publish",
        ]
        out += [
            f"  {s.table}: {s.cells_suppressed:,} of {s.cells:,} cells suppressed ({100 * s.cell_share:.1f}%), "
            f"{100 * s.people_share:.1f}% of people"
            for s in self.shares
        ]
        return out


def shares_of(frames: dict[str, pd.DataFrame], hidden_of: dict[tuple[str, str], np.ndarray]) -> list[TableShare]:
    out = []
    for table in TABLES:
        frame = frames[table.name]
        cells = hidden = people = people_hidden = 0
        for count in table.counts:
            values = frame[count].fillna(0).to_numpy(np.int64)
            flags = hidden_of[(table.name, count)]
            cells += len(values)
            hidden += int(flags.sum())
            people += int(values.sum())
            people_hidden += int(values[flags].sum())
        out.append(TableShare(table.name, cells, hidden, people, people_hidden))
    return out


def costs(
    linked: LinkedCells,
    frames: dict[str, pd.DataFrame],
    per_mart: float = PER_MART_PRIORITY,
    england: float = ENGLAND_PRIORITY,
) -> np.ndarray:
    """The cost of suppressing each linked cell: (people + TIE_BREAK) times the highest priority
    of the rows that publish it (virtual cells: 1; the program gives them no cost anyway)."""
    priority = np.ones(len(linked.graph.values))
    for table in TABLES:
        frame = frames[table.name]
        if table.base:
            weight = np.full(len(frame), per_mart)
        elif "la_code" in frame.columns:
            weight = np.where(frame["la_code"].to_numpy() == ENGLAND, england, 1.0)
        else:
            weight = np.full(len(frame), england)
        for count in table.counts:
            ids = linked.cell_of[(table.name, count)]
            present = ids >= 0
            np.maximum.at(priority, ids[present], weight[present])
    return (linked.graph.values + TIE_BREAK) * priority


def former_limits(linked: LinkedCells, frames: dict[str, pd.DataFrame]) -> Limits:
    """Each per-mart table may lose, in each component of linked cells, no more people to secondary
    suppression than the former rule (outcomes.disclosure.former) hid there: so no per-mart table
    loses more than it did under that rule (the former pattern itself protects the per-mart cells
    once every new-grain cell linked to them is suppressed; where the protection still needs more,
    the limit is raised by the fewest people it needs, and SolveStats.over_limit says so)."""
    cell, group, people, reference = [], [], [], []
    for k, table in enumerate(TABLES):
        if not table.base:
            continue
        frame = frames[table.name]
        flags = former_macro(frame, table)
        for count in table.counts:
            ids = linked.cell_of[(table.name, count)]
            present = ids >= 0
            cell.append(ids[present])
            group.append(np.full(int(present.sum()), k))
            people.append(frame[count].fillna(0).to_numpy(np.int64)[present])
            reference.append(flags[count][present])
    return Limits(*(np.concatenate(x) for x in (cell, group, people, reference)))


def choose(
    linked: LinkedCells, frames: dict[str, pd.DataFrame], stats: SolveStats, memo: Memo | None = None, **priorities
) -> np.ndarray:
    """The suppressed linked cells: the program with the tables' priorities and the former rule's limits
    (`limits=False`: without them; `per_mart`, `england`: other priorities, for bench/disclosure.py);
    `memo`: components solved before with the same inputs are not solved again."""
    limits = former_limits(linked, frames) if priorities.pop("limits", True) else None
    return choose_suppression(linked.graph, stats, costs(linked, frames, **priorities), limits, memo)


def control(backend, full: bool = False) -> DisclosureResult:
    """Suppress, write `disclosure.<table>` for every published table and the summary; return the shares.

    Each component of linked cells whose inputs are those of a component the last publish solved
    (its cells' values, equations, costs and limits: solver.Memo) takes that solution rather than
    being solved again: a month's publish solves only the components whose cells changed, and its
    flags are those of solving everything (`full`: solve everything, the memo only written)."""
    started = time.perf_counter()
    memo = Memo()
    with backend.transaction() as s:
        marts = read_marts(s)
        declared = _declared_types(s)
        if not full:
            memo.known = read_memo(s, memo.version)
    frames = all_frames(marts)
    linked = link(frames)
    stats = SolveStats()
    hidden = choose(linked, frames, stats, memo)
    flags = {key: (ids >= 0) & hidden[np.maximum(ids, 0)] for key, ids in linked.cell_of.items()}
    result = DisclosureResult(shares_of(frames, flags), stats, len(linked.graph.values))
    result.reused, result.solved = memo.hits, memo.misses
    as_of = next(iter(frames.values()))["as_of"]
    summary = pd.DataFrame(
        {
            "as_of": as_of.iloc[0] if len(as_of) else None,
            "table_name": [s.table for s in result.shares],
            "cells": [s.cells for s in result.shares],
            "cells_suppressed": [s.cells_suppressed for s in result.shares],
            # Shares of people rounded to 0.1%: the exact number suppressed would be one more total.
            "cell_share_suppressed": [round(s.cell_share, 4) for s in result.shares],
            "people_share_suppressed": [round(s.people_share, 3) for s in result.shares],
        }
    )
    with backend.transaction() as s:
        s.execute(f"create schema if not exists {SCHEMA}")
        for table in TABLES:
            frame = frames[table.name].copy()
            for count in table.counts:
                frame[f"{count}__suppressed"] = flags[(table.name, count)]
            _replace(s, table.name, _arrow(frame, declared[table.family.mart]))
        _replace(s, SUMMARY, _arrow(summary, declared[TABLES[0].family.mart]))
        _replace(s, MEMO, memo_table(memo))
    result.seconds = time.perf_counter() - started
    return result


def memo_table(memo: Memo) -> pa.Table:
    """The solutions this publish used, for the next: one row a component (its flags as hex of packed bits)."""
    keys = sorted(memo.used)
    entries = [memo.used[k] for k in keys]
    columns = {
        "solver_version": pa.array([memo.version] * len(keys), pa.string()),
        "component_key": pa.array(keys, pa.string()),
        "cells": pa.array([len(h) for h, _ in entries], pa.int64()),
        "hidden": pa.array([np.packbits(h).tobytes().hex() for h, _ in entries], pa.string()),
    }
    for i, name in enumerate(INNER_STATS):
        columns[name] = pa.array([n[i] for _, n in entries], pa.int64())
    return pa.table(columns)


def read_memo(session, version: str) -> dict[str, tuple[np.ndarray, tuple[int, ...]]]:
    """The last publish's solutions by this solver version (none when there was no publish)."""
    there = session.scalar(
        "select count(*) from information_schema.tables where table_schema = :s and table_name = :t",
        {"s": SCHEMA, "t": MEMO},
    )
    if not there:
        return {}
    rows = session.fetch(
        f"select component_key, cells, hidden, {', '.join(INNER_STATS)} from {SCHEMA}.{MEMO} where solver_version = :v",
        {"v": version},
    ).to_pylist()
    out = {}
    for r in rows:
        bits = np.unpackbits(np.frombuffer(bytes.fromhex(r["hidden"]), np.uint8), count=int(r["cells"]))
        out[r["component_key"]] = (bits.astype(bool), tuple(int(r[name]) for name in INNER_STATS))
    return out


def _declared_types(session) -> dict[str, dict[str, pa.DataType]]:
    """Each mart's column types as declared in the warehouse (a PostgreSQL fetch gives every integer
    as int64; the published contracts want the marts' own types)."""
    rows = session.fetch(
        "select table_name, column_name, data_type from information_schema.columns where table_schema = 'marts'"
    ).to_pylist()
    out: dict[str, dict[str, pa.DataType]] = {}
    for r in rows:
        kind = str(r["data_type"]).lower()
        out.setdefault(r["table_name"], {})[r["column_name"]] = _ARROW_TYPES.get(kind, pa.string())
    return out


_ARROW_TYPES = {
    "integer": pa.int32(),
    "bigint": pa.int64(),
    "date": pa.date32(),
    "boolean": pa.bool_(),
    "double": pa.float64(),
    "double precision": pa.float64(),
}


def _arrow(frame: pd.DataFrame, like: dict[str, pa.DataType]) -> pa.Table:
    """`frame` typed as the mart's columns of the same name (bool flags, bigint counts otherwise)."""
    fields = []
    for name in frame.columns:
        if name in like:
            kind = like[name]
        elif name.endswith("__suppressed"):
            kind = pa.bool_()
        elif pd.api.types.is_float_dtype(frame[name]):
            kind = pa.float64()
        elif pd.api.types.is_integer_dtype(frame[name]):
            kind = pa.int64()
        else:
            kind = pa.string()
        fields.append(pa.field(name, kind))
    return pa.Table.from_pandas(frame, schema=pa.schema(fields), preserve_index=False)


def _replace(session, name: str, table: pa.Table) -> None:
    columns = ", ".join(f"{f.name} {_SQL_TYPES[f.type]}" for f in table.schema)
    session.execute(f"drop table if exists {SCHEMA}.{name}")
    session.execute(f"create table {SCHEMA}.{name} ({columns})")
    session.insert(f"{SCHEMA}.{name}", table)
