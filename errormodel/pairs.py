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


def _linked_person(links: pd.DataFrame) -> pd.Series:
    missing = {"source", "record_id", "person"} - set(links.columns)
    if missing:
        raise ValueError(f"links need columns source, record_id, person; missing {', '.join(sorted(missing))}")
    return links.set_index(["source", "record_id"])["person"]


def recall_by_class(truth_dir: Path, links: pd.DataFrame) -> pd.DataFrame:
    """Recall per error class: of the pairs `pairs_by_class` lists, the share whose two records
    the linkage put in one person. `links`: source, record_id, person (the linked person id).
    A record the linkage does not know counts as not linked. Columns: error_class, pairs,
    linked, recall."""
    person = _linked_person(links)
    pairs = pairs_by_class(truth_dir)
    a = person.reindex(pd.MultiIndex.from_arrays([pairs["source_a"], pairs["record_id_a"]])).to_numpy()
    b = person.reindex(pd.MultiIndex.from_arrays([pairs["source_b"], pairs["record_id_b"]])).to_numpy()
    pairs["linked"] = pd.notna(a) & (a == b)
    out = pairs.groupby("error_class").agg(pairs=("linked", "size"), linked=("linked", "sum")).reset_index()
    out["recall"] = out["linked"] / out["pairs"]
    return out


def namesake_links(truth_dir: Path, links: pd.DataFrame) -> pd.DataFrame:
    """Each namesake pair (truth/namesakes.parquet) and whether the linkage put any record of one
    in the same person as any record of the other (a false link). Columns: person_a, person_b,
    kind, linked."""
    truth_dir = Path(truth_dir)
    person = _linked_person(links).rename("person").reset_index()
    records = pq.read_table(truth_dir / "records.parquet").to_pandas().merge(person, on=["source", "record_id"])
    linked_to = records.groupby("person_id")["person"].agg(frozenset)
    names = pq.read_table(truth_dir / "namesakes.parquet").to_pandas()
    empty: frozenset = frozenset()
    names["linked"] = [
        bool(linked_to.get(a, empty) & linked_to.get(b, empty))
        for a, b in zip(names["person_a"], names["person_b"], strict=True)
    ]
    return names
