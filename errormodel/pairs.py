"""True-match record pairs whose recorded identities differ by each error class."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from errormodel.rates import ERROR_CLASSES, KEY_CLASSES

FIELDS = {
    "forename": "forename",
    "surname": "surname",
    "date_of_birth": "date_of_birth",
    "sex": "sex",
    "postcode_district": "postcode",
    "person_key": "source_person_id",
}
PAIR_COLUMNS = ["error_class", "person_id", "source_a", "record_id_a", "source_b", "record_id_b"]


def _differs(a: pd.Series, b: pd.Series) -> np.ndarray:
    both_missing = a.isna().to_numpy() & b.isna().to_numpy()
    return ~both_missing & (a.astype(object).to_numpy() != b.astype(object).to_numpy())


def pairs_by_class(truth_dir: Path) -> pd.DataFrame:
    """Every pair of records of one true person (within a source and across sources) that an
    error class made differ: the class was applied to at least one of the two records and the
    fields it changes differ between them. For the person-key classes, a pair across sources is
    listed whenever one of its records carries the class (the keys of two sources are never
    comparable, but such a record stands apart from its person's other records in its source).

    Columns: error_class, person_id, source_a, record_id_a, source_b, record_id_b, with
    (source_a, record_id_a) < (source_b, record_id_b). A pair can appear under several classes.
    """
    truth_dir = Path(truth_dir)
    ident = pq.read_table(truth_dir / "identities.parquet").to_pandas()
    errors = pq.read_table(truth_dir / "errors.parquet").to_pandas()
    ident["date_of_birth"] = pd.to_datetime(ident["date_of_birth"])
    out = []
    for name, cls in ERROR_CLASSES.items():
        if not cls.fields:
            continue  # namesakes are pairs of different people: truth/namesakes.parquet
        flagged = errors.loc[errors["error_class"] == name, ["source", "record_id"]]
        if flagged.empty:
            continue
        left = flagged.merge(ident, on=["source", "record_id"])
        pairs = left.merge(ident, on="person_id", suffixes=("_a", "_b"))
        pairs = pairs[(pairs["source_a"] != pairs["source_b"]) | (pairs["record_id_a"] != pairs["record_id_b"])]
        differ = np.zeros(len(pairs), dtype=bool)
        for f in cls.fields:
            col = FIELDS[f]
            d = _differs(pairs[f"{col}_a"], pairs[f"{col}_b"])
            if f == "person_key":
                d &= (pairs["source_a"] == pairs["source_b"]).to_numpy()
            differ |= d
        if name in KEY_CLASSES:
            differ |= (pairs["source_a"] != pairs["source_b"]).to_numpy()
        pairs = pairs[differ]
        swap = (pairs["source_a"] > pairs["source_b"]) | (
            (pairs["source_a"] == pairs["source_b"]) & (pairs["record_id_a"] > pairs["record_id_b"])
        )
        a = (
            np.where(swap, pairs["source_b"], pairs["source_a"]),
            np.where(swap, pairs["record_id_b"], pairs["record_id_a"]),
        )
        b = (
            np.where(swap, pairs["source_a"], pairs["source_b"]),
            np.where(swap, pairs["record_id_a"], pairs["record_id_b"]),
        )
        out.append(
            pd.DataFrame(
                {
                    "error_class": name,
                    "person_id": pairs["person_id"].to_numpy(),
                    "source_a": a[0],
                    "record_id_a": a[1],
                    "source_b": b[0],
                    "record_id_b": b[1],
                }
            ).drop_duplicates()
        )
    if not out:
        return pd.DataFrame(columns=PAIR_COLUMNS)
    df = pd.concat(out, ignore_index=True)
    return df.sort_values(PAIR_COLUMNS, kind="mergesort", ignore_index=True)
