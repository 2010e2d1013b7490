"""Comparison vectors of variant pairs, as recordlinkage features, fully vectorised.

Levels (higher = closer; -1 = a value is missing, which counts neither for nor against):
- names: 3 same token; 2 Dice of the Bloom filters >= 0.85; 1 Dice >= 0.6; 0 otherwise
- date of birth: 3 equal; 2 day and month swapped; 1 one of day, month, year differs; 0 otherwise
- sex: 1 equal; 0 different (U is missing); postcode district: 1 equal; 0 different
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import recordlinkage
from recordlinkage.base import BaseCompareFeature

from linkage.records import bloom_words

COMPARISONS = ("forename", "surname", "dob", "sex", "postcode")
LEVELS = {"forename": 4, "surname": 4, "dob": 4, "sex": 2, "postcode": 2}

_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def popcount(words: np.ndarray) -> np.ndarray:
    """Bits set per row of an (n, 8) uint64 array."""
    return _POPCOUNT[words.view(np.uint8)].reshape(len(words), -1).sum(axis=1, dtype=np.int64)


def dice(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    total = popcount(a) + popcount(b)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, 2 * popcount(a & b) / np.maximum(total, 1), np.nan)


class NameLevels(BaseCompareFeature):
    """Token equality, else Dice similarity of the field's Bloom filters, as levels."""

    def __init__(self, field: str, words: np.ndarray, label: str) -> None:
        super().__init__(f"{field}_token", f"{field}_token", label=label)
        self.words = words

    def _compute_vectorized(self, left: pd.Series, right: pd.Series) -> np.ndarray:
        # recordlinkage indexes both sides by the pairs' MultiIndex: level 0 left, level 1 right
        a = left.index.get_level_values(0).to_numpy()
        b = right.index.get_level_values(1).to_numpy()
        return name_levels(left.to_numpy(), right.to_numpy(), self.words[a], self.words[b])


def name_levels(tok_a, tok_b, words_a, words_b) -> np.ndarray:
    d = dice(words_a, words_b)
    level = np.select([tok_a == tok_b, d >= 0.85, d >= 0.6], [3, 2, 1], 0)
    return np.where(pd.isna(tok_a) | pd.isna(tok_b), -1, level).astype(np.int8)


class DobLevels(BaseCompareFeature):
    def __init__(self) -> None:
        super().__init__("date_of_birth", "date_of_birth", label="dob")

    def _compute_vectorized(self, left: pd.Series, right: pd.Series) -> np.ndarray:
        return dob_levels(left, right)


def dob_levels(left: pd.Series, right: pd.Series) -> np.ndarray:
    la, ra = pd.DatetimeIndex(left), pd.DatetimeIndex(right)
    ya, ma, da = la.year.to_numpy(), la.month.to_numpy(), la.day.to_numpy()
    yb, mb, db = ra.year.to_numpy(), ra.month.to_numpy(), ra.day.to_numpy()
    same = (ya == yb) & (ma == mb) & (da == db)
    swapped = (ya == yb) & (ma == db) & (da == mb)
    one_off = ((ya == yb).astype(int) + (ma == mb) + (da == db)) == 2
    level = np.select([same, swapped, one_off], [3, 2, 1], 0)
    return np.where(la.isna() | ra.isna(), -1, level).astype(np.int8)


class EqualLevels(BaseCompareFeature):
    def __init__(self, column: str, label: str, missing: tuple = ()) -> None:
        super().__init__(column, column, label=label)
        self.missing = missing

    def _compute_vectorized(self, left: pd.Series, right: pd.Series) -> np.ndarray:
        a, b = left.to_numpy(dtype=object), right.to_numpy(dtype=object)
        absent = pd.isna(a) | pd.isna(b) | np.isin(a, self.missing) | np.isin(b, self.missing)
        return np.where(absent, -1, (a == b).astype(np.int8)).astype(np.int8)


class Comparer:
    """Computes the comparison vectors of candidate pairs with recordlinkage.Compare."""

    def __init__(self, variants: pd.DataFrame) -> None:
        self.variants = variants.reset_index(drop=True)
        self.words = {f: bloom_words(self.variants[f"{f}_bloom"]) for f in ("forename", "surname")}
        self.compare = recordlinkage.Compare(
            features=[
                NameLevels("forename", self.words["forename"], "forename"),
                NameLevels("surname", self.words["surname"], "surname"),
                DobLevels(),
                EqualLevels("sex", "sex", missing=("U",)),
                EqualLevels("postcode_district", "postcode"),
            ]
        )

    def vectors(self, a: np.ndarray, b: np.ndarray) -> pd.DataFrame:
        if len(a) == 0:
            return pd.DataFrame({c: np.array([], dtype=np.int8) for c in COMPARISONS})
        index = pd.MultiIndex.from_arrays([a, b])
        out = self.compare.compute(index, self.variants)
        return out[list(COMPARISONS)].astype(np.int8).reset_index(drop=True)
