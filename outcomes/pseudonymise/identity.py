"""The identity block of a delivery, built from identities in clear (extracts.md §2)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from outcomes.pseudonymise.keyed import Pseudonymiser
from outcomes.pseudonymise.normalise import normalise_name, normalise_sex, postcode_district

# What an identified extract must carry besides the source's own columns.
CLEAR_IDENTITY_COLUMNS = (
    "record_id",
    "source_person_id",
    "forename",
    "surname",
    "date_of_birth",
    "sex",
    "postcode",
)


def _map_unique(values: pd.Series, fn, missing: str | None = None) -> np.ndarray:
    """Apply fn once per distinct value (names and postcodes repeat heavily); NA maps to missing."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    mapped = np.array([fn(u) for u in uniques] + [missing], dtype=object)
    return mapped[codes]  # code -1 (NA) picks the trailing `missing`


def _dates(values: pd.Series) -> pa.Array:
    days = pd.to_datetime(values).to_numpy().astype("datetime64[D]")
    missing = np.isnat(days)
    return pa.array(np.where(missing, 0, days.astype(np.int64)).astype(np.int32), pa.date32(), mask=missing)


def identity_block(p: Pseudonymiser, source: str, clear: pd.DataFrame) -> dict[str, pa.Array]:
    """Pseudonymised identity columns for rows of clear identities.

    `clear` has the columns of CLEAR_IDENTITY_COLUMNS; `date_of_birth` is already a date (or
    NaT/None), the others strings or missing.
    """
    forename = _map_unique(clear["forename"], normalise_name)
    surname = _map_unique(clear["surname"], normalise_name)
    fn = pd.Series(forename, dtype=object)
    sn = pd.Series(surname, dtype=object)

    def keyed(prefix):
        return lambda n: p.token(prefix, n)

    out: dict[str, pa.Array] = {
        "record_id": pa.array(clear["record_id"].astype(str).to_numpy(), pa.string()),
        "source_person_key": pa.array(_map_unique(clear["source_person_id"], keyed(f"{source}_person")), pa.string()),
        "forename_initial": pa.array(_map_unique(fn, lambda n: n[0]), pa.string()),
        "surname_initial": pa.array(_map_unique(sn, lambda n: n[0]), pa.string()),
        "forename_token": pa.array(_map_unique(fn, keyed("forename")), pa.string()),
        "surname_token": pa.array(_map_unique(sn, keyed("surname")), pa.string()),
        "surname_soundex_token": pa.array(_map_unique(sn, p.soundex_token), pa.string()),
        "forename_bloom": pa.array(_map_unique(fn, p.bloom), pa.string()),
        "surname_bloom": pa.array(_map_unique(sn, p.bloom), pa.string()),
        "date_of_birth": _dates(clear["date_of_birth"]),
        "sex": pa.array(_map_unique(clear["sex"], normalise_sex, missing="U"), pa.string()),
        "postcode_district": pa.array(_map_unique(clear["postcode"], postcode_district), pa.string()),
    }
    return out
