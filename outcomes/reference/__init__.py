"""Reference data shipped with the package (README.md in this folder gives the sources)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pandas as pd

REFERENCE_DIR = Path(__file__).parent
ENGLAND = "E92000001"


def _read(name: str, **kwargs) -> pd.DataFrame:
    return pd.read_csv(REFERENCE_DIR / name, keep_default_na=False, na_values=[""], **kwargs)


@cache
def local_authorities() -> pd.DataFrame:
    """Upper-tier local authorities: la_code, la_name, region, police force, population."""
    return _read("local_authorities.csv", dtype={"population": "int64"})


@cache
def postcode_districts() -> pd.DataFrame:
    return _read("postcode_districts.csv")


@cache
def police_forces() -> pd.DataFrame:
    return _read("police_forces.csv")


@cache
def regions() -> pd.DataFrame:
    return _read("regions.csv")


@cache
def offence_codes() -> pd.DataFrame:
    df = _read("offence_codes.csv")
    df["trigger_offence"] = df["trigger_offence"].astype(str).str.lower().eq("true")
    return df


@cache
def icd10_causes() -> pd.DataFrame:
    df = _read("icd10_causes.csv")
    for col in ("drug_poisoning", "drug_misuse_if_controlled"):
        df[col] = df[col].astype(str).str.lower().eq("true")
    return df
