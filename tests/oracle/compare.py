"""Comparing a mart built by dbt with the oracle's, cell by cell."""

from __future__ import annotations

import numpy as np
import pandas as pd


def compare(sql: pd.DataFrame, oracle: pd.DataFrame, mart: str) -> list[str]:
    """The differences between a mart as built and as the oracle computes it, matched by grain
    (every non-measure column); rates equal to 1e-9 relative."""
    assert set(sql.columns) == set(oracle.columns), (mart, set(sql.columns) ^ set(oracle.columns))
    measures = [c for c in oracle.columns if oracle[c].dtype.kind in "if" and c not in ("year", "exit_year")]
    grain = [c for c in oracle.columns if c not in measures]
    sql = sql.copy()
    for c in grain:
        sql[c] = sql[c].astype(str)
        oracle = oracle.assign(**{c: oracle[c].astype(str)})
    merged = sql.merge(oracle, on=grain, how="outer", suffixes=("_sql", "_py"), indicator=True)
    problems = []
    only = merged[merged["_merge"] != "both"]
    if len(only):
        problems.append(
            f"{mart}: {len(only)} rows in one side only, e.g. {only[[*grain, '_merge']].head(3).to_dict('records')}"
        )
    both = merged[merged["_merge"] == "both"]
    for c in measures:
        a = pd.to_numeric(both[f"{c}_sql"], errors="coerce").to_numpy(dtype=float)
        b = pd.to_numeric(both[f"{c}_py"], errors="coerce").to_numpy(dtype=float)
        same = np.isclose(a, b, rtol=1e-9, atol=1e-12, equal_nan=True)
        if not same.all():
            bad = both.loc[~same, [*grain, f"{c}_sql", f"{c}_py"]].head(3).to_dict("records")
            problems.append(f"{mart}.{c}: {int((~same).sum())} cells differ, e.g. {bad}")
    return problems
