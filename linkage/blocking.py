"""Blocking: several recordlinkage passes whose union keeps nearly every true pair."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import recordlinkage

# Each pass: a name and the variant columns that must be equal.
PASSES: dict[str, list[str]] = {
    "dob+soundex": ["date_of_birth", "surname_soundex_token"],
    "dob+forename_initial": ["date_of_birth", "forename_initial"],
    "swapped_dob+soundex": ["dob_swapped", "surname_soundex_token"],
    "names+birth_year": ["forename_token", "surname_token", "birth_year"],
    "names+birth_day": ["forename_token", "surname_token", "birth_month", "birth_day"],
    "soundex+initial+postcode": ["surname_soundex_token", "forename_initial", "postcode_district"],
    "forename+birth_year+postcode": ["forename_token", "birth_year", "postcode_district"],
}


@dataclass
class PassStats:
    name: str
    pairs: int
    new_pairs: int


def _block(left: pd.DataFrame, right: pd.DataFrame | None, on: list[str], swap: bool) -> pd.MultiIndex:
    indexer = recordlinkage.Index()
    if swap:  # the left's swapped date against the right's date, and the other way round
        l_on, r_on = on, ["date_of_birth" if c == "dob_swapped" else c for c in on]
        indexer.block(left_on=l_on, right_on=r_on)
        return indexer.index(left, right if right is not None else left)
    indexer.block(left_on=on, right_on=on)
    return indexer.index(left) if right is None else indexer.index(left, right)


def candidate_pairs(variants: pd.DataFrame, new: pd.Index | None = None) -> tuple[pd.DataFrame, list[PassStats]]:
    """Candidate variant pairs (a < b, different nodes) from every pass, with a boolean column per
    pass saying which passes found the pair. With `new`, only pairs involving a new variant."""
    frames, stats, seen = [], [], set()
    left = variants if new is None else variants.loc[new]
    node = variants["node"].to_numpy()
    for name, on in PASSES.items():
        swap = "dob_swapped" in on
        sub_l = left.dropna(subset=on)
        sub_r = variants.dropna(subset=["date_of_birth" if c == "dob_swapped" else c for c in on])
        if sub_l.empty or sub_r.empty:
            stats.append(PassStats(name, 0, 0))
            continue
        idx = _block(sub_l, None if (new is None and not swap) else sub_r, on, swap)
        a = idx.get_level_values(0).to_numpy(dtype=np.int64)
        b = idx.get_level_values(1).to_numpy(dtype=np.int64)
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        keep = (lo != hi) & (node[lo] != node[hi])
        key = np.unique(lo[keep] * np.int64(1 << 32) + hi[keep])
        new_keys = len(np.setdiff1d(key, np.fromiter(seen, dtype=np.int64, count=len(seen)), assume_unique=True))
        seen.update(key.tolist())
        frames.append(pd.DataFrame({"key": key, name: True}))
        stats.append(PassStats(name, len(key), new_keys))
    if not frames:
        empty = pd.DataFrame({"a": pd.Series([], dtype=np.int64), "b": pd.Series([], dtype=np.int64)})
        return empty.assign(**{n: pd.Series([], dtype=bool) for n in PASSES}), stats
    merged = frames[0]
    for f in frames[1:]:
        merged = merged.merge(f, on="key", how="outer")
    merged = merged.sort_values("key").reset_index(drop=True)
    for n in PASSES:
        merged[n] = merged[n].eq(True) if n in merged else False
    key = merged["key"].to_numpy(dtype=np.int64)
    merged.insert(0, "a", key >> 32)
    merged.insert(1, "b", key & ((1 << 32) - 1))
    return merged.drop(columns="key"), stats
