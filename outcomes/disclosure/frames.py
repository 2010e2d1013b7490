"""The unsuppressed rows of every published table: a mart's own rows, or its cells summed to a
coarser grain (sums of published-grain cells, so every total adds up exactly)."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

from outcomes.disclosure.tables import ENGLAND, TABLES, Family, Published


def read_marts(session) -> dict[str, pa.Table]:
    out = {}
    for family in {t.family.mart: t.family for t in TABLES}.values():
        columns = ", ".join(("as_of", *family.dims, *family.counts, *family.rates, *family.keep))
        where = f" where {family.where}" if family.where else ""
        out[family.mart] = session.fetch(f"select {columns} from marts.{family.mart}{where}")
    return out


def table_frame(table: Published, mart: pd.DataFrame) -> pd.DataFrame:
    """Rows of `table` (as_of, dims, counts, rates, keep) in a canonical order."""
    family: Family = table.family
    if table.base:
        frame = mart
    else:
        source = mart[mart["la_code"] == ENGLAND] if table.england_only else mart
        sums = {c: "sum" for c in family.counts}
        for k in family.keep:
            sums[k] = "sum" if pd.api.types.is_float_dtype(mart[k]) else "max"
        frame = source.groupby(["as_of", *table.dims], dropna=False, sort=True).agg(sums).reset_index()
        for rate, spec in family.rates.items():
            frame[rate] = spec.compute(frame)
    columns = ["as_of", *table.dims, *family.counts, *family.rates, *family.keep]
    return frame[columns].sort_values(list(table.dims), kind="stable").reset_index(drop=True)


def all_frames(marts: dict[str, pa.Table]) -> dict[str, pd.DataFrame]:
    # Rows in key order first: float sums (person-years) then add up in the same order every time.
    by_mart = {t.family.mart: t.family for t in TABLES}
    frames = {
        name: table.to_pandas().sort_values(list(by_mart[name].dims), kind="stable").reset_index(drop=True)
        for name, table in marts.items()
    }
    return {t.name: table_frame(t, frames[t.family.mart]) for t in TABLES}
