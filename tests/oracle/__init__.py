"""An independent plain-Python reference implementation of the outcome marts.

Written from shared/spec/outcomes.md, shared/spec/extracts.md and docs/marts.md only: it reads the raw
deliveries of a landing folder itself (no warehouse ingest, event store, linkage or SQL) and takes each
record's person from the synthetic population's ground truth (truth/records.parquet) instead of the
linkage spine. Tests compare the dbt marts with it.

    from tests.oracle import compute_marts, default_as_of
    marts = compute_marts(out / "landing", out / "truth", default_as_of(out / "landing"))
    marts["successful_completion"]  # one DataFrame per mart, columns as in docs/marts.md
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd

from tests.oracle.landing import default_as_of
from tests.oracle.marts import MARTS
from tests.oracle.population import Population, load_population

__all__ = ["MARTS", "Population", "compute_marts", "compute_marts_from", "default_as_of", "load_population"]


def compute_marts(landing: Path, truth: Path, as_of: dt.date) -> dict[str, pd.DataFrame]:
    """Every outcome mart as of `as_of`, from the deliveries in `landing` with extract_date <= as_of and the
    true person of every record (`truth`: the truth folder or its records.parquet)."""
    return compute_marts_from(load_population(Path(landing), Path(truth), as_of))


def compute_marts_from(pop: Population) -> dict[str, pd.DataFrame]:
    return {name: build(pop) for name, build in MARTS.items()}
