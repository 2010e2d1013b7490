"""Rows of a delivery in the forms ingestion needs.

Every row is first put in one canonical text form (dates ISO, booleans true/false, lists
`|`-joined), whether it came as Parquet or CSV: its hash is taken over that form, so the same
content hashes the same in either format; validation reads it; quarantine stores it; and valid
rows are typed from it for the event store.
"""

from __future__ import annotations

import threading

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from outcomes.contract import SOURCES

_TRUE = ("true", "t", "1", "yes", "y")
_FALSE = ("false", "f", "0", "no", "n")


def canonical_text(table: pa.Table, source: str) -> pa.Table:
    cols = {}
    for c in SOURCES[source].columns:
        a = table[c.name]
        if c.type == "list":
            text = pc.binary_join(a, "|") if pa.types.is_list(a.type) else a
            text = pc.fill_null(text, "")  # no entries and an empty list are the same fact
        elif c.type == "bool" and pa.types.is_string(a.type):
            low = pc.utf8_lower(pc.utf8_trim_whitespace(a))
            text = pc.if_else(
                pc.is_in(low, pa.array(_TRUE)), "true", pc.if_else(pc.is_in(low, pa.array(_FALSE)), "false", a)
            )
        elif pa.types.is_string(a.type):
            text = a
        else:
            text = pc.cast(a, pa.string())
        cols[c.name] = text
    return pa.table(cols)


_LOCAL = threading.local()


def _engine() -> duckdb.DuckDBPyConnection:
    """One in-memory DuckDB per thread for row-wise work on Arrow tables (never the warehouse)."""
    if getattr(_LOCAL, "con", None) is None:
        _LOCAL.con = duckdb.connect()
    return _LOCAL.con


def row_hashes(text: pa.Table) -> pa.Array:
    """md5 over the canonical text of every column, in row order (computed by in-process DuckDB)."""
    con = _engine().cursor()
    try:
        con.register("rows", text)
        parts = ", ".join(f'coalesce("{n}", chr(30))' for n in text.column_names)
        return con.sql(f"select md5(concat_ws(chr(31), {parts})) as h from rows").to_arrow_table()["h"].combine_chunks()
    finally:
        con.close()


def validation_frame(text: pa.Table, source: str) -> tuple[pd.DataFrame, list[tuple[int, str]]]:
    """The frame the great-expectations suites read (dates as text, booleans, lists), and the
    rows whose booleans are neither true nor false (a code outside its list)."""
    frame = text.to_pandas()
    bad: list[tuple[int, str]] = []
    for c in SOURCES[source].columns:
        if c.type == "bool":
            values = frame[c.name]
            ok = values.isna() | values.isin(["true", "false"])
            bad += [(int(i), f"code_list:{c.name}") for i in np.flatnonzero(~ok.to_numpy())]
            frame[c.name] = values.map({"true": True, "false": False}).astype(object).where(values.notna(), None)
        elif c.type == "list":
            frame[c.name] = frame[c.name].map(lambda v: v.split("|") if v else [])
    return frame, bad


def typed(text: pa.Table, source: str) -> pa.Table:
    """Valid rows in the event store's types (lists stay `|`-joined text)."""
    cols = {}
    for c in SOURCES[source].columns:
        a = text[c.name]
        if c.type == "date":
            cols[c.name] = pc.cast(pc.strptime(a, format="%Y-%m-%d", unit="s"), pa.date32())
        elif c.type == "bool":
            cols[c.name] = pc.equal(a, "true")
        else:
            cols[c.name] = a
    return pa.table(cols)
